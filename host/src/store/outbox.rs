//! The outbox: messages accepted for sending, claimed by workers, retried, or dead-lettered.
//!
//! A claim is a lease: the worker that claims a row owns it until `claimed_until`. A worker that
//! dies (a crash, a kill -9) simply lets its lease run out and another claims the row again;
//! a provider that deduplicates on the message id turns that second attempt into the first one's
//! answer. On PostgreSQL the claim skips rows other instances are claiming at that moment
//! (`FOR UPDATE SKIP LOCKED`), so several instances share one outbox without waiting on each
//! other. An SQLite database has one instance, whose worker keeps its claims in memory and
//! only reads the due entries here (`due_outbox`): a lease would be one more write for SQLite's
//! one writer, and each write by another connection costs the send path's connection its page
//! cache.

use std::collections::HashMap;
use std::fmt::Write as _;

use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::conversations::{
    Registration, StatusEffects, conversation_id_in, register_all, register_in,
};
use super::model::*;
use super::sql_lists::{ROWS_PER_STATEMENT, first_of_each, parameters};
use super::{Store, StoreError};

fn entry_from(row: &AnyRow) -> Result<OutboxEntry, sqlx::Error> {
    Ok(OutboxEntry {
        message_id: row.try_get("message_id")?,
        channel: row.try_get("channel")?,
        attempts: row.try_get("attempts")?,
        created: row.try_get("created")?,
    })
}

impl Store {
    /// Claims up to `limit` due entries for `worker` until `lease_until`.
    pub async fn claim_outbox(
        &self,
        worker: &str,
        now: Millis,
        lease_until: Millis,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = sqlx::query(&self.lease_statement(
            "outbox",
            "message_id",
            "message_id, channel, attempts, created",
        ))
        .bind(lease_until)
        .bind(worker)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *self.write_connection().await?)
        .await?;
        Ok(rows.iter().map(entry_from).collect::<Result<_, _>>()?)
    }

    /// Up to `limit` entries due at `now`, soonest due first, leased or not, each given to
    /// `take` while the writer is still held; what `take` makes of those it takes, and whether
    /// the read came back full (the outbox may hold more).
    ///
    /// For a worker that is its database's one instance and keeps its claims itself: no write
    /// of the send path is halfway through meanwhile (one that has committed has also handed
    /// its messages over), and no outcome of an attempt is recorded between the read and
    /// `take`, so an entry read is as stored when `take` claims it.
    pub async fn due_outbox<T>(
        &self,
        now: Millis,
        limit: usize,
        take: impl FnMut(OutboxEntry) -> Option<T>,
    ) -> Result<(Vec<T>, bool), StoreError> {
        let mut writer = self.write_connection().await?;
        let rows = sqlx::query(
            "SELECT message_id, channel, attempts, created FROM outbox \
             WHERE next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2",
        )
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *writer)
        .await?;
        let full = rows.len() == limit;
        let entries: Vec<OutboxEntry> = rows.iter().map(entry_from).collect::<Result<_, _>>()?;
        let taken = entries.into_iter().filter_map(take).collect();
        drop(writer);
        Ok((taken, full))
    }

    /// Releases every claim `worker` holds, for a restart of the only instance.
    pub async fn release_claims(&self, worker: &str) -> Result<u64, StoreError> {
        let released = sqlx::query(
            "UPDATE outbox SET claimed_until = NULL, claimed_by = NULL WHERE claimed_by = $1",
        )
        .bind(worker)
        .execute(&mut *self.write_connection().await?)
        .await?;
        Ok(released.rows_affected())
    }

    /// Releases `worker`'s claims on `message_ids`, claimed but not started (the worker is
    /// stopping): they are due again at once, for another instance or the next start.
    pub async fn release_claims_on(
        &self,
        worker: &str,
        message_ids: &[&str],
    ) -> Result<u64, StoreError> {
        let mut released = 0;
        for chunk in message_ids.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "UPDATE outbox SET claimed_until = NULL, claimed_by = NULL \
                 WHERE claimed_by = $1 AND message_id IN ({})",
                parameters(2, chunk.len())
            );
            let mut query = sqlx::query(&sql).bind(worker);
            for id in chunk {
                query = query.bind(*id);
            }
            released += query
                .execute(&mut *self.write_connection().await?)
                .await?
                .rows_affected();
        }
        Ok(released)
    }

    /// Releases every claim, whoever holds it: an SQLite database has one instance, so at its
    /// start no claim can belong to a live worker.
    /// The status messages' outbox (`status_outbox`) is released alike.
    pub async fn release_all_claims(&self) -> Result<u64, StoreError> {
        let mut released = 0;
        for table in ["outbox", "status_outbox"] {
            released += sqlx::query(&format!(
                "UPDATE {table} SET claimed_until = NULL, claimed_by = NULL \
                 WHERE claimed_by IS NOT NULL"
            ))
            .execute(&mut *self.write_connection().await?)
            .await?
            .rows_affected();
        }
        Ok(released)
    }

    /// Records a failed attempt; the entry is due again at `next_attempt_at`. The entry must
    /// be leased to `Some(worker)`, or unleased for `None` (a worker that keeps its claims
    /// itself); otherwise nothing changes. Whether it changed.
    pub async fn reschedule(
        &self,
        message_id: &str,
        worker: Option<&str>,
        next_attempt_at: Millis,
        error: &str,
    ) -> Result<bool, StoreError> {
        let held = match worker {
            Some(_) => "claimed_by = $4",
            None => "claimed_by IS NULL",
        };
        let sql = format!(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2, \
             claimed_until = NULL, claimed_by = NULL WHERE message_id = $3 AND {held}"
        );
        let mut query = sqlx::query(&sql)
            .bind(next_attempt_at)
            .bind(error)
            .bind(message_id);
        if let Some(worker) = worker {
            query = query.bind(worker);
        }
        let changed = query.execute(&mut *self.write_connection().await?).await?;
        Ok(changed.rows_affected() > 0)
    }

    /// Completes a send: registers SENDT (and any further statuses the provider implied),
    /// keeps the provider's reference, and deletes the message, its files and its outbox entry.
    /// Returns the blobs to remove.
    pub async fn complete_send(
        &self,
        message_id: &str,
        reference: &str,
        statuses: &[StatusUpdate],
        polls_statuses: bool,
        queue: bool,
    ) -> Result<Vec<String>, StoreError> {
        let send = CompletedSend {
            message_id: message_id.to_owned(),
            reference: reference.to_owned(),
            statuses: statuses.to_vec(),
            polls_statuses,
            queue,
        };
        self.accept_and_complete(&[], &[&send])
            .await?
            .1
            .pop()
            .unwrap_or_else(|| Ok(Vec::new()))
    }

    /// Gives up on a message: keeps it as a dead letter, registers FEIL with `reason`, and
    /// deletes the message, its files and its outbox entry. Returns the blobs to remove.
    pub async fn dead_letter(
        &self,
        message_id: &str,
        reason: &str,
        effects: StatusEffects,
    ) -> Result<Vec<String>, StoreError> {
        self.finish_unsent(message_id, ReceiptStatus::Feil, reason, effects)
            .await
    }

    /// Ends an unsent message with `status` (FEIL or LEVETID_UTLOPT), keeping it as a dead
    /// letter.
    pub async fn finish_unsent(
        &self,
        message_id: &str,
        status: ReceiptStatus,
        reason: &str,
        effects: StatusEffects,
    ) -> Result<Vec<String>, StoreError> {
        let now = now_millis();
        let mut writer = self.write_connection().await?;
        let mut tx = writer.begin().await?;
        let message = sqlx::query(
            "SELECT m.channel, m.sbd, COALESCE(o.attempts, 0) AS attempts FROM out_message m \
             LEFT JOIN outbox o ON o.message_id = m.message_id WHERE m.message_id = $1",
        )
        .bind(message_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = message {
            sqlx::query(
                "INSERT INTO dead_letter (message_id, channel, attempts, reason, sbd, dead_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (message_id) DO NOTHING",
            )
            .bind(message_id)
            .bind(row.try_get::<String, _>("channel")?)
            .bind(row.try_get::<i64, _>("attempts")?)
            .bind(reason)
            .bind(row.try_get::<String, _>("sbd")?)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let conv_id = conversation_id_in(&mut tx, message_id, Direction::Outgoing).await?;
        register_in(
            &mut tx,
            conv_id,
            &StatusUpdate::new(status).described(reason),
            false,
            effects.queue,
        )
        .await?;
        let blobs = remove_out_message(&mut tx, message_id).await?;
        tx.commit().await?;
        Ok(blobs)
    }

    /// How many entries wait in the outbox, and the age of the oldest in milliseconds.
    pub async fn outbox_depth(&self, now: Millis) -> Result<(i64, Option<Millis>), StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n, MIN(created) AS oldest FROM outbox")
            .fetch_one(self.pool())
            .await?;
        let oldest: Option<i64> = row.try_get("oldest")?;
        Ok((row.try_get("n")?, oldest.map(|created| now - created)))
    }

    /// Deletes dead letters older than `before`; returns how many.
    pub async fn purge_dead_letters(&self, before: Millis) -> Result<u64, StoreError> {
        let deleted = sqlx::query("DELETE FROM dead_letter WHERE dead_at < $1")
            .bind(before)
            .execute(&mut *self.write_connection().await?)
            .await?;
        Ok(deleted.rows_affected())
    }

    /// How many messages were dead-lettered.
    pub async fn dead_letter_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM dead_letter")
            .fetch_one(self.pool())
            .await?
            .try_get("n")?)
    }
}

/// Deletes an outgoing message with its files and outbox entry inside `tx`, returning the blobs
/// of its files that had one (an inline file goes with its row).
pub(super) async fn remove_out_message(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    message_id: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(remove_out_messages(tx, &[message_id])
        .await?
        .into_iter()
        .map(|(_, blob)| blob)
        .collect())
}

/// Deletes outgoing messages with their files and outbox entries inside `tx`, two statements
/// for them all; returns (message id, blob) of each of their files that had a blob.
pub(super) async fn remove_out_messages(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    message_ids: &[&str],
) -> Result<Vec<(String, String)>, StoreError> {
    if message_ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = parameters(1, message_ids.len());
    let sql = format!(
        "DELETE FROM message_file WHERE message_id IN ({list}) RETURNING message_id, blob_id"
    );
    let mut query = sqlx::query(&sql);
    for id in message_ids {
        query = query.bind(*id);
    }
    let mut blobs = Vec::new();
    for row in query.fetch_all(&mut **tx).await? {
        let blob: String = row.try_get("blob_id")?;
        if !blob.is_empty() {
            blobs.push((row.try_get("message_id")?, blob));
        }
    }
    // The outbox entries go with the messages (ON DELETE CASCADE).
    let sql = format!("DELETE FROM out_message WHERE message_id IN ({list})");
    let mut query = sqlx::query(&sql);
    for id in message_ids {
        query = query.bind(*id);
    }
    query.execute(&mut **tx).await?;
    Ok(blobs)
}

/// Records `sends` as [`Store::accept_and_complete`] does, inside `tx`; the caller commits (and nothing is
/// recorded when it drops `tx` after an error instead).
pub(super) async fn complete_sends_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    sends: &[&CompletedSend],
) -> Result<Vec<Result<Vec<String>, StoreError>>, StoreError> {
    if sends.is_empty() {
        return Ok(Vec::new());
    }
    // A message completed twice in one batch is completed once; the second finds it gone,
    // as it would after the first's commit.
    let first = first_of_each(sends, |send| send.message_id.as_str());
    let distinct: Vec<&CompletedSend> = sends
        .iter()
        .zip(&first)
        .filter_map(|(send, first)| first.then_some(*send))
        .collect();
    // Each send binds its message id ($odd) and reference ($even); the IN list reuses the ids.
    let mut cases = String::new();
    let mut ids = String::new();
    for i in 0..distinct.len() {
        let (id, reference) = (2 * i + 1, 2 * i + 2);
        let _ = write!(cases, " WHEN ${id} THEN ${reference}");
        let _ = write!(ids, "{}${id}", if i > 0 { ", " } else { "" });
    }
    let sql = format!(
        "UPDATE conversation SET external_system_reference = CASE message_id{cases} END \
         WHERE direction = 'OUTGOING' AND message_id IN ({ids}) RETURNING id, message_id"
    );
    let mut query = sqlx::query(&sql);
    for send in &distinct {
        query = query.bind(&send.message_id).bind(&send.reference);
    }
    let mut conversations: HashMap<String, i64> = HashMap::new();
    for row in query.fetch_all(&mut **tx).await? {
        conversations.insert(row.try_get("message_id")?, row.try_get("id")?);
    }
    let found: Vec<(&CompletedSend, i64)> = distinct
        .iter()
        .filter_map(|send| Some((*send, *conversations.get(&send.message_id)?)))
        .collect();
    let sendt = StatusUpdate::new(ReceiptStatus::Sendt);
    let registrations: Vec<Registration<'_>> = found
        .iter()
        .map(|(send, conv_id)| Registration {
            conv_id: *conv_id,
            update: &sendt,
            starts_polling: send.polls_statuses,
            queue: send.queue,
        })
        .collect();
    register_all(tx, &registrations).await?;
    // The provider's further statuses, in their order: the nth of every send together.
    let rounds = found.iter().map(|(send, _)| send.statuses.len()).max();
    for round in 0..rounds.unwrap_or(0) {
        let registrations: Vec<Registration<'_>> = found
            .iter()
            .filter_map(|(send, conv_id)| {
                Some(Registration {
                    conv_id: *conv_id,
                    update: send.statuses.get(round)?,
                    starts_polling: false,
                    queue: send.queue,
                })
            })
            .collect();
        register_all(tx, &registrations).await?;
    }
    let removed: Vec<&str> = found
        .iter()
        .map(|(send, _)| send.message_id.as_str())
        .collect();
    let mut blobs: HashMap<String, Vec<String>> = HashMap::new();
    for (message_id, blob) in remove_out_messages(tx, &removed).await? {
        blobs.entry(message_id).or_default().push(blob);
    }
    Ok(sends
        .iter()
        .zip(first)
        .map(|(send, first)| {
            if !conversations.contains_key(&send.message_id) {
                Err(StoreError::NotFound(format!(
                    "no outgoing conversation for message {}",
                    send.message_id
                )))
            } else if first {
                Ok(blobs.remove(&send.message_id).unwrap_or_default())
            } else {
                Ok(Vec::new())
            }
        })
        .collect())
}
