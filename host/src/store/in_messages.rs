//! Received messages waiting for the archive system: stored once, peeked under a lock, popped,
//! deleted.
//!
//! Storing is keyed by the message id through the INCOMING conversation, which outlives the
//! message itself, so a provider that delivers a message again (after a lost confirmation, say)
//! never makes the archive system see it twice. A peek takes a lock with one conditional
//! `UPDATE`, so two readers never get the same message.

use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::conversations::{Labels, conversation_id_in, insert_conversation, register_in};
use super::filter::{MessageQuery, PageRequest, bind_all, page_of};
use super::model::*;
use super::status_outbox::{StatusReply, queue_in};
use super::{Store, StoreError};

const IN_COLUMNS: &str = "message_id, conversation_id, process_identifier, document_type, \
    sender_identifier, receiver_identifier, service_identifier, channel, sbd, package_blob, \
    lock_until, last_updated";

fn in_from(row: &AnyRow) -> Result<InMessage, sqlx::Error> {
    Ok(InMessage {
        message_id: row.try_get("message_id")?,
        conversation_id: row.try_get("conversation_id")?,
        process_identifier: row.try_get("process_identifier")?,
        document_type: row.try_get("document_type")?,
        sender_identifier: row.try_get("sender_identifier")?,
        receiver_identifier: row.try_get("receiver_identifier")?,
        service_identifier: row.try_get("service_identifier")?,
        channel: row.try_get("channel")?,
        sbd: row.try_get("sbd")?,
        package_blob: row.try_get("package_blob")?,
        lock_until: row.try_get("lock_until")?,
        last_updated: row.try_get("last_updated")?,
    })
}

/// How many unlocked candidates a peek tries before it reports nothing available.
const PEEK_CANDIDATES: i64 = 20;

impl Store {
    /// Stores a received message with its INCOMING conversation (OPPRETTET, then
    /// INNKOMMENDE_MOTTATT). Returns false, storing nothing, when the message was received
    /// before.
    pub async fn store_incoming(
        &self,
        message: &InMessage,
        conversation: &NewConversation,
    ) -> Result<bool, StoreError> {
        self.store_incoming_replying(message, conversation, None)
            .await
    }

    /// As [`Store::store_incoming`], queueing the status message `reply` to the sender in the
    /// same transaction, so it is owed exactly when the message is stored.
    pub async fn store_incoming_replying(
        &self,
        message: &InMessage,
        conversation: &NewConversation,
        reply: Option<&StatusReply>,
    ) -> Result<bool, StoreError> {
        let mut writer = self.write_connection().await?;
        let mut tx = writer.begin().await?;
        let conv_id = match insert_conversation(
            &mut tx,
            Direction::Incoming,
            conversation,
            Labels::default(),
            message.last_updated,
        )
        .await
        {
            Ok(id) => id,
            Err(StoreError::Duplicate(_)) => return Ok(false),
            Err(other) => return Err(other),
        };
        sqlx::query(&format!(
            "INSERT INTO in_message ({IN_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11)"
        ))
        .bind(&message.message_id)
        .bind(&message.conversation_id)
        .bind(&message.process_identifier)
        .bind(&message.document_type)
        .bind(&message.sender_identifier)
        .bind(&message.receiver_identifier)
        .bind(&message.service_identifier)
        .bind(&message.channel)
        .bind(&message.sbd)
        .bind(&message.package_blob)
        .bind(message.last_updated)
        .execute(&mut *tx)
        .await?;
        register_in(
            &mut tx,
            conv_id,
            &StatusUpdate::new(ReceiptStatus::InnkommendeMottatt),
            false,
            false,
        )
        .await?;
        if let Some(reply) = reply {
            queue_in(&mut tx, reply, message.last_updated).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Locks and returns the oldest unlocked message matching `query`, locked until
    /// `lock_until`.
    pub async fn peek_incoming(
        &self,
        query: &MessageQuery,
        now: Millis,
        lock_until: Millis,
    ) -> Result<Option<InMessage>, StoreError> {
        let mut filter = query.to_where();
        let now_placeholder = filter.placeholder();
        filter.raw(&format!(
            "(lock_until IS NULL OR lock_until < ${now_placeholder})"
        ));
        filter.values.push(super::filter::Value::Int(now));
        let candidates = bind_all(
            sqlx::query(&format!(
                "SELECT message_id FROM in_message{} ORDER BY last_updated, message_id LIMIT {PEEK_CANDIDATES}",
                filter.sql()
            )),
            &filter.values,
        )
        .fetch_all(self.pool())
        .await?;
        for candidate in candidates {
            let message_id: String = candidate.try_get("message_id")?;
            let locked = sqlx::query(
                "UPDATE in_message SET lock_until = $1 WHERE message_id = $2 \
                 AND (lock_until IS NULL OR lock_until < $3)",
            )
            .bind(lock_until)
            .bind(&message_id)
            .bind(now)
            .execute(&mut *self.write_connection().await?)
            .await?;
            if locked.rows_affected() == 1 {
                return self.in_message(&message_id).await;
            }
        }
        Ok(None)
    }

    /// The received message `message_id`.
    pub async fn in_message(&self, message_id: &str) -> Result<Option<InMessage>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {IN_COLUMNS} FROM in_message WHERE message_id = $1"
        ))
        .bind(message_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(in_from).transpose()?)
    }

    /// A page of received messages.
    pub async fn in_messages(
        &self,
        query: &MessageQuery,
        page: &PageRequest,
    ) -> Result<Page<InMessage>, StoreError> {
        page_of(
            self.pool(),
            IN_COLUMNS,
            "in_message",
            &query.to_where(),
            page,
            "message_id",
            in_from,
        )
        .await
    }

    /// Deletes a received message the archive system has taken: it must hold the lock of a
    /// peek. Registers INNKOMMENDE_LEVERT and returns the message (its package blob is the
    /// caller's to remove).
    pub async fn take_incoming(
        &self,
        message_id: &str,
        now: Millis,
    ) -> Result<InMessage, StoreError> {
        self.take_incoming_replying(message_id, now, |_| None).await
    }

    /// As [`Store::take_incoming`], queueing the status message `reply` makes of the message
    /// (if any) in the same transaction, so it is owed exactly when the message is delivered.
    pub async fn take_incoming_replying(
        &self,
        message_id: &str,
        now: Millis,
        reply: impl FnOnce(&InMessage) -> Option<StatusReply>,
    ) -> Result<InMessage, StoreError> {
        let mut writer = self.write_connection().await?;
        let mut tx = writer.begin().await?;
        let row = sqlx::query(&format!(
            "SELECT {IN_COLUMNS} FROM in_message WHERE message_id = $1"
        ))
        .bind(message_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!(
                "Message with id {message_id} not found"
            )));
        };
        let message = in_from(&row)?;
        if message.lock_until.is_none_or(|until| until < now) {
            return Err(StoreError::Conflict(format!(
                "Message with id {message_id} is not locked; peek it first"
            )));
        }
        sqlx::query("DELETE FROM in_message WHERE message_id = $1")
            .bind(message_id)
            .execute(&mut *tx)
            .await?;
        let conv_id = conversation_id_in(&mut tx, message_id, Direction::Incoming).await?;
        register_in(
            &mut tx,
            conv_id,
            &StatusUpdate::new(ReceiptStatus::InnkommendeLevert),
            false,
            false,
        )
        .await?;
        if let Some(reply) = reply(&message) {
            queue_in(&mut tx, &reply, now).await?;
        }
        tx.commit().await?;
        Ok(message)
    }

    /// Removes a received message without delivering it (its lifetime ran out, its package is
    /// unreadable), registering `status` with `reason`. Returns it when it was there.
    pub async fn discard_incoming(
        &self,
        message_id: &str,
        status: ReceiptStatus,
        reason: &str,
    ) -> Result<Option<InMessage>, StoreError> {
        let mut writer = self.write_connection().await?;
        let mut tx = writer.begin().await?;
        let row = sqlx::query(&format!(
            "SELECT {IN_COLUMNS} FROM in_message WHERE message_id = $1"
        ))
        .bind(message_id)
        .fetch_optional(&mut *tx)
        .await?;
        let message = row.as_ref().map(in_from).transpose()?;
        sqlx::query("DELETE FROM in_message WHERE message_id = $1")
            .bind(message_id)
            .execute(&mut *tx)
            .await?;
        if let Ok(conv_id) = conversation_id_in(&mut tx, message_id, Direction::Incoming).await {
            register_in(
                &mut tx,
                conv_id,
                &StatusUpdate::new(status).described(reason),
                false,
                false,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(message)
    }

    /// Releases locks of peeks that ran out; returns how many.
    pub async fn unlock_expired(&self, now: Millis) -> Result<u64, StoreError> {
        let unlocked = sqlx::query(
            "UPDATE in_message SET lock_until = NULL WHERE lock_until IS NOT NULL AND lock_until < $1",
        )
        .bind(now)
        .execute(&mut *self.write_connection().await?)
        .await?;
        Ok(unlocked.rows_affected())
    }

    /// How many received messages wait for the archive system.
    pub async fn incoming_depth(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM in_message")
            .fetch_one(self.pool())
            .await?
            .try_get("n")?)
    }
}
