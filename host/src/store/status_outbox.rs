//! Status messages owed to senders: the durable half of telling a sender MOTTATT and LEVERT.
//!
//! On DPO and DPE the receiving integration point sends status messages back over the same
//! channel. Each is queued in the very transaction that stores (MOTTATT) or delivers (LEVERT)
//! the incoming message, so a crash can neither lose it nor send it for a message that was not
//! stored. It is claimed, retried and given up on like an outbox row, but it is not a message of
//! this organisation's archive system: it has no conversation and no files of its own.

use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::model::Millis;
use super::{Store, StoreError};

/// A status message to queue: the status SBD and the channel that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReply {
    /// The message the status is about (the status SBD's own id).
    pub message_id: String,
    /// The status, `MOTTATT` or `LEVERT`.
    pub status: String,
    /// The plugin that carries it back.
    pub channel: String,
    /// The status SBD, JSON.
    pub sbd: String,
}

/// A queued status message, as a worker claims it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReplyEntry {
    /// The row's key.
    pub id: i64,
    /// What to send.
    pub reply: StatusReply,
    /// Attempts so far.
    pub attempts: i64,
    /// When it was queued.
    pub created: Millis,
}

fn entry_from(row: &AnyRow) -> Result<StatusReplyEntry, sqlx::Error> {
    Ok(StatusReplyEntry {
        id: row.try_get("id")?,
        reply: StatusReply {
            message_id: row.try_get("message_id")?,
            status: row.try_get("status")?,
            channel: row.try_get("channel")?,
            sbd: row.try_get("sbd")?,
        },
        attempts: row.try_get("attempts")?,
        created: row.try_get("created")?,
    })
}

/// Queues `reply` inside the caller's transaction; a status already owed is not queued twice.
pub(super) async fn queue_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    reply: &StatusReply,
    now: Millis,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO status_outbox (message_id, status, channel, sbd, next_attempt_at, created) \
         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (message_id, status) DO NOTHING",
    )
    .bind(&reply.message_id)
    .bind(&reply.status)
    .bind(&reply.channel)
    .bind(&reply.sbd)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Claims up to `limit` due status messages for `worker` until `lease_until`.
    pub async fn claim_status_replies(
        &self,
        worker: &str,
        now: Millis,
        lease_until: Millis,
        limit: i64,
    ) -> Result<Vec<StatusReplyEntry>, StoreError> {
        let rows = sqlx::query(&self.lease_statement(
            "status_outbox",
            "id",
            "id, message_id, status, channel, sbd, attempts, created",
        ))
        .bind(lease_until)
        .bind(worker)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *self.write_connection().await?)
        .await?;
        Ok(rows.iter().map(entry_from).collect::<Result<_, _>>()?)
    }

    /// Removes a status message: it was sent, or it was given up on.
    pub async fn remove_status_reply(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM status_outbox WHERE id = $1")
            .bind(id)
            .execute(&mut *self.write_connection().await?)
            .await?;
        Ok(())
    }

    /// Records a failed attempt; the status message is due again at `next_attempt_at`.
    pub async fn reschedule_status_reply(
        &self,
        id: i64,
        next_attempt_at: Millis,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE status_outbox SET attempts = attempts + 1, next_attempt_at = $1, \
             claimed_until = NULL, claimed_by = NULL, last_error = $2 WHERE id = $3",
        )
        .bind(next_attempt_at)
        .bind(error)
        .bind(id)
        .execute(&mut *self.write_connection().await?)
        .await?;
        Ok(())
    }
}
