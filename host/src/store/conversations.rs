//! Conversations and their statuses.
//!
//! Registering a status is the one place where the conversation rules of the real integration
//! point live: a status is kept once per conversation (registering it again changes nothing),
//! LEVERT finishes a conversation, LEST/FEIL/LEVETID_UTLOPT/INNKOMMENDE_LEVERT also end its
//! polling, and every new status becomes webhook events in the same transaction, so an event is
//! never lost nor sent for a status that was rolled back.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::{Any, Row as _, Transaction};

use super::filter::{ConversationQuery, PageRequest, StatusQuery, page_of};
use super::model::*;
use super::sql_lists::{ROWS_PER_STATEMENT, parameters, value_rows};
use super::webhooks::enqueue_events;
use super::{Store, StoreError, flag};

const CONVERSATION_COLUMNS: &str = "id, conversation_id, message_id, direction, sender, \
    sender_identifier, receiver, receiver_identifier, process_identifier, document_identifier, \
    message_reference, message_title, service_identifier, channel, external_system_reference, \
    expiry, last_update, finished, pollable";

const STATUS_COLUMNS: &str = "s.id, s.conv_id, s.status, s.description, s.raw_receipt, \
    s.last_update, c.conversation_id, c.message_id, c.direction, c.service_identifier";

fn conversation_from(row: &AnyRow) -> Result<Conversation, sqlx::Error> {
    let direction: String = row.try_get("direction")?;
    Ok(Conversation {
        id: row.try_get("id")?,
        conversation_id: row.try_get("conversation_id")?,
        message_id: row.try_get("message_id")?,
        direction: direction.parse().map_err(decode_error)?,
        sender: row.try_get("sender")?,
        sender_identifier: row.try_get("sender_identifier")?,
        receiver: row.try_get("receiver")?,
        receiver_identifier: row.try_get("receiver_identifier")?,
        process_identifier: row.try_get("process_identifier")?,
        document_identifier: row.try_get("document_identifier")?,
        message_reference: row.try_get("message_reference")?,
        message_title: row.try_get("message_title")?,
        service_identifier: row.try_get("service_identifier")?,
        channel: row.try_get("channel")?,
        external_system_reference: row.try_get("external_system_reference")?,
        expiry: row.try_get("expiry")?,
        last_update: row.try_get("last_update")?,
        finished: flag(row.try_get("finished")?),
        pollable: flag(row.try_get("pollable")?),
        statuses: Vec::new(),
    })
}

pub(super) fn status_from(row: &AnyRow) -> Result<MessageStatus, sqlx::Error> {
    let status: String = row.try_get("status")?;
    let direction: String = row.try_get("direction")?;
    Ok(MessageStatus {
        id: row.try_get("id")?,
        conv_id: row.try_get("conv_id")?,
        status: status.parse().map_err(decode_error)?,
        description: row.try_get("description")?,
        raw_receipt: row.try_get("raw_receipt")?,
        last_update: row.try_get("last_update")?,
        conversation_id: row.try_get("conversation_id")?,
        message_id: row.try_get("message_id")?,
        direction: direction.parse().map_err(decode_error)?,
        service_identifier: row.try_get("service_identifier")?,
    })
}

pub(super) fn decode_error(message: String) -> sqlx::Error {
    sqlx::Error::Decode(message.into())
}

/// Inserts a conversation with OPPRETTET; fails when the message has one in that direction.
/// An outgoing message's archive reference and title come with it, so they need no update.
pub(super) async fn insert_conversation(
    tx: &mut Transaction<'_, Any>,
    direction: Direction,
    new: &NewConversation,
    labels: Labels<'_>,
    now: Millis,
) -> Result<i64, StoreError> {
    insert_conversations(tx, direction, &[(new, labels)], now).await?[0].ok_or_else(|| {
        StoreError::Duplicate(format!(
            "a conversation for message {} exists already",
            new.message_id
        ))
    })
}

/// The columns of a new conversation, in the order [`insert_conversations`] binds them.
const NEW_CONVERSATION_COLUMNS: &str = "conversation_id, message_id, direction, sender, \
    sender_identifier, receiver, receiver_identifier, process_identifier, document_identifier, \
    service_identifier, channel, expiry, last_update, message_reference, message_title";

/// The statement that inserts `rows` conversations, each bound as
/// [`NEW_CONVERSATION_COLUMNS`], skipping each whose message has one in that direction; it
/// returns `returning` of each new row.
pub(super) fn insert_conversations_sql(rows: usize, returning: &str) -> String {
    format!(
        "INSERT INTO conversation ({NEW_CONVERSATION_COLUMNS}) VALUES {} \
         ON CONFLICT (message_id, direction) DO NOTHING RETURNING {returning}",
        value_rows(rows, NEW_CONVERSATION_COLUMNS.split(", ").count())
    )
}

/// Inserts conversations with OPPRETTET, two statements for them all; for each, in order, its
/// row id, or `None` when its message has one in that direction already.
pub(super) async fn insert_conversations(
    tx: &mut Transaction<'_, Any>,
    direction: Direction,
    new: &[(&NewConversation, Labels<'_>)],
    now: Millis,
) -> Result<Vec<Option<i64>>, StoreError> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let sql = insert_conversations_sql(new.len(), &format!("id, message_id, {SUBSCRIPTIONS}"));
    let mut query = sqlx::query(&sql);
    for (conversation, labels) in new {
        query = query
            .bind(&conversation.conversation_id)
            .bind(&conversation.message_id)
            .bind(direction.as_str())
            .bind(&conversation.sender)
            .bind(&conversation.sender_identifier)
            .bind(&conversation.receiver)
            .bind(&conversation.receiver_identifier)
            .bind(&conversation.process_identifier)
            .bind(&conversation.document_identifier)
            .bind(&conversation.service_identifier)
            .bind(&conversation.channel)
            .bind(conversation.expiry)
            .bind(now)
            .bind(labels.reference)
            .bind(labels.title);
    }
    let mut inserted: HashMap<String, i64> = HashMap::new();
    let mut subscriptions = 0;
    for row in query.fetch_all(&mut **tx).await? {
        inserted.insert(row.try_get("message_id")?, row.try_get("id")?);
        subscriptions = row.try_get::<i64, _>("subscriptions")?;
    }
    let ids: Vec<Option<i64>> = new
        .iter()
        .map(|(conversation, _)| inserted.get(&conversation.message_id).copied())
        .collect();
    // A new conversation is as OPPRETTET leaves it (not finished, not polled, updated now),
    // so its status needs only its row.
    let update = StatusUpdate::new(ReceiptStatus::Opprettet);
    let created: Vec<(&NewConversation, i64)> = new
        .iter()
        .zip(&ids)
        .filter_map(|((conversation, _), id)| Some((*conversation, (*id)?)))
        .collect();
    let updates: Vec<(i64, &StatusUpdate)> = created.iter().map(|(_, id)| (*id, &update)).collect();
    let statuses = insert_statuses(tx, &updates).await?;
    if subscriptions > 0 {
        for ((conversation, id), status) in created.iter().zip(statuses) {
            let Some((status_id, at)) = status else {
                continue;
            };
            let registered = MessageStatus {
                id: status_id,
                conv_id: *id,
                status: update.status,
                description: None,
                raw_receipt: None,
                last_update: at,
                conversation_id: conversation.conversation_id.clone(),
                message_id: conversation.message_id.clone(),
                direction,
                service_identifier: conversation.service_identifier.clone(),
            };
            enqueue_events(tx, &registered).await?;
        }
    }
    Ok(ids)
}

/// An outgoing message's archive reference and title (from its arkivmelding), when known.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Labels<'a> {
    pub reference: Option<&'a str>,
    pub title: Option<&'a str>,
}

/// How many webhook subscriptions there are, as a column of a statement's `RETURNING`: a
/// status with none to tell needs no look at them, and asking there costs no round trip.
const SUBSCRIPTIONS: &str = "(SELECT COUNT(*) FROM subscription) AS subscriptions";

/// The statement that inserts `rows` statuses, each bound as its conversation, status,
/// description, raw receipt and time, skipping each its conversation has; it returns each new
/// row's `id`, `conv_id` and `status`.
pub(super) fn insert_statuses_sql(rows: usize) -> String {
    format!(
        "INSERT INTO message_status (conv_id, status, description, raw_receipt, last_update) \
         VALUES {} ON CONFLICT (conv_id, status) DO NOTHING RETURNING id, conv_id, status",
        value_rows(rows, 5)
    )
}

/// Inserts the status rows of `updates` (conversation, status) in one statement, skipping
/// each whose conversation has that status; for each update, in order, its new row's id and
/// time, or `None` when it was there already. A status appears at most once per conversation.
async fn insert_statuses(
    tx: &mut Transaction<'_, Any>,
    updates: &[(i64, &StatusUpdate)],
) -> Result<Vec<Option<(i64, Millis)>>, StoreError> {
    if updates.is_empty() {
        return Ok(Vec::new());
    }
    let now = now_millis();
    let sql = insert_statuses_sql(updates.len());
    let mut query = sqlx::query(&sql);
    for (conv_id, update) in updates {
        query = query
            .bind(*conv_id)
            .bind(update.status.as_str())
            .bind(&update.description)
            .bind(&update.raw_receipt)
            .bind(update.at.unwrap_or(now));
    }
    let mut inserted = HashMap::new();
    for row in query.fetch_all(&mut **tx).await? {
        let key: (i64, String) = (row.try_get("conv_id")?, row.try_get("status")?);
        inserted.insert(key, row.try_get::<i64, _>("id")?);
    }
    Ok(updates
        .iter()
        .map(|(conv_id, update)| {
            inserted
                .get(&(*conv_id, update.status.as_str().to_owned()))
                .map(|id| (*id, update.at.unwrap_or(now)))
        })
        .collect())
}

/// A status to register on a conversation, and what it does there beyond the status rules.
pub(super) struct Registration<'a> {
    pub conv_id: i64,
    pub update: &'a StatusUpdate,
    /// The channel polls the conversation's statuses from now on.
    pub starts_polling: bool,
    /// The status goes on the status queue.
    pub queue: bool,
}

/// The status rules, for the conversations a `WHERE` that follows names: updated at `$1`,
/// finished when `$2` is 1, no longer polled when `$3` is 1, polled from now on when `$4` is 1
/// and the conversation is not finished.
pub(super) const APPLY_STATUS_RULES: &str = "UPDATE conversation SET last_update = $1, \
    finished = CASE WHEN $2 = 1 THEN 1 ELSE finished END, \
    pollable = CASE WHEN $3 = 1 THEN 0 WHEN $4 = 1 AND finished = 0 THEN 1 ELSE pollable END";

/// Registers each of `registrations`, at most one per conversation, unless its conversation
/// has that status; returns the new statuses, in order.
///
/// Many registrations cost the statements of one: the status rows in one insert, the
/// conversations' changes in one update per kind of change, the queue entries in one insert.
/// That is what lets a round of polled statuses, or a batch of completed sends on PostgreSQL,
/// take the writer for a few round trips instead of a few per message.
pub(super) async fn register_all(
    tx: &mut Transaction<'_, Any>,
    registrations: &[Registration<'_>],
) -> Result<Vec<MessageStatus>, StoreError> {
    let updates: Vec<(i64, &StatusUpdate)> = registrations
        .iter()
        .map(|registration| (registration.conv_id, registration.update))
        .collect();
    let new: Vec<(&Registration<'_>, i64, Millis)> = registrations
        .iter()
        .zip(insert_statuses(tx, &updates).await?)
        .filter_map(|(registration, inserted)| inserted.map(|(id, at)| (registration, id, at)))
        .collect();
    // The conversation's columns a status carries come back from its update, so the new
    // statuses need no second read. One update serves every conversation a status changes
    // alike.
    let effect = |registration: &Registration<'_>| {
        let status = registration.update.status;
        (
            status.finishes(),
            status.ends_polling(),
            registration.starts_polling,
        )
    };
    let mut effects: Vec<(bool, bool, bool)> = new.iter().map(|(r, _, _)| effect(r)).collect();
    effects.sort_unstable();
    effects.dedup();
    let now = now_millis();
    let mut conversations: HashMap<i64, AnyRow> = HashMap::new();
    for (finishes, ends_polling, starts_polling) in effects {
        let ids: Vec<i64> = new
            .iter()
            .filter(|(r, _, _)| effect(r) == (finishes, ends_polling, starts_polling))
            .map(|(r, _, _)| r.conv_id)
            .collect();
        let sql = format!(
            "{APPLY_STATUS_RULES} WHERE id IN ({}) \
             RETURNING id, conversation_id, message_id, direction, service_identifier, \
             {SUBSCRIPTIONS}",
            parameters(5, ids.len())
        );
        let mut query = sqlx::query(&sql)
            .bind(now)
            .bind(i64::from(finishes))
            .bind(i64::from(ends_polling))
            .bind(i64::from(starts_polling));
        for id in &ids {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut **tx).await? {
            conversations.insert(row.try_get("id")?, row);
        }
    }
    let queued: Vec<i64> = new
        .iter()
        .filter(|(r, _, _)| r.queue)
        .map(|(_, id, _)| *id)
        .collect();
    if !queued.is_empty() {
        let sql = format!(
            "INSERT INTO status_queue (status_id) VALUES {}",
            value_rows(queued.len(), 1)
        );
        let mut query = sqlx::query(&sql);
        for id in &queued {
            query = query.bind(*id);
        }
        query.execute(&mut **tx).await?;
    }
    let mut registered = Vec::with_capacity(new.len());
    for (registration, status_id, at) in new {
        let conversation = conversations.get(&registration.conv_id).ok_or_else(|| {
            StoreError::NotFound(format!("no conversation {}", registration.conv_id))
        })?;
        let direction: String = conversation.try_get("direction")?;
        let status = MessageStatus {
            id: status_id,
            conv_id: registration.conv_id,
            status: registration.update.status,
            description: registration.update.description.clone(),
            raw_receipt: registration.update.raw_receipt.clone(),
            last_update: at,
            conversation_id: conversation.try_get("conversation_id")?,
            message_id: conversation.try_get("message_id")?,
            direction: direction.parse().map_err(decode_error)?,
            service_identifier: conversation.try_get("service_identifier")?,
        };
        if conversation.try_get::<i64, _>("subscriptions")? > 0 {
            enqueue_events(tx, &status).await?;
        }
        registered.push(status);
    }
    Ok(registered)
}

/// Registers `update` on conversation `conv_id` unless it has that status; returns the new
/// status, or `None` when it was there already.
pub(super) async fn register_in(
    tx: &mut Transaction<'_, Any>,
    conv_id: i64,
    update: &StatusUpdate,
    starts_polling: bool,
    queue: bool,
) -> Result<Option<MessageStatus>, StoreError> {
    let registration = Registration {
        conv_id,
        update,
        starts_polling,
        queue,
    };
    Ok(register_all(tx, std::slice::from_ref(&registration))
        .await?
        .pop())
}

/// How a status registration treats polling and the status queue.
#[derive(Clone, Copy, Debug, Default)]
pub struct StatusEffects {
    /// The channel polls statuses from now on (SENDT on a polling channel).
    pub starts_polling: bool,
    /// The status goes on the queue of `GET /api/statuses/peek`.
    pub queue: bool,
}

impl Store {
    /// The conversation of `message_id` in `direction`, with its statuses.
    pub async fn conversation(
        &self,
        message_id: &str,
        direction: Direction,
    ) -> Result<Option<Conversation>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversation WHERE message_id = $1 AND direction = $2"
        ))
        .bind(message_id)
        .bind(direction.as_str())
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(row) => {
                let mut conversation = conversation_from(&row)?;
                self.attach_statuses(std::slice::from_mut(&mut conversation))
                    .await?;
                Ok(Some(conversation))
            }
            None => Ok(None),
        }
    }

    /// The conversation with row id `id`, with its statuses.
    pub async fn conversation_by_id(&self, id: i64) -> Result<Option<Conversation>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversation WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(row) => {
                let mut conversation = conversation_from(&row)?;
                self.attach_statuses(std::slice::from_mut(&mut conversation))
                    .await?;
                Ok(Some(conversation))
            }
            None => Ok(None),
        }
    }

    /// A page of conversations.
    pub async fn conversations(
        &self,
        query: &ConversationQuery,
        page: &PageRequest,
    ) -> Result<Page<Conversation>, StoreError> {
        let mut conversations = page_of(
            self.pool(),
            CONVERSATION_COLUMNS,
            "conversation",
            &query.to_where(),
            page,
            "id",
            conversation_from,
        )
        .await?;
        self.attach_statuses(&mut conversations.items).await?;
        Ok(conversations)
    }

    async fn attach_statuses(&self, conversations: &mut [Conversation]) -> Result<(), StoreError> {
        for conversation in conversations {
            let rows = sqlx::query(&format!(
                "SELECT {STATUS_COLUMNS} FROM message_status s JOIN conversation c ON c.id = s.conv_id \
                 WHERE s.conv_id = $1 ORDER BY s.id"
            ))
            .bind(conversation.id)
            .fetch_all(self.pool())
            .await?;
            conversation.statuses = rows.iter().map(status_from).collect::<Result<_, _>>()?;
        }
        Ok(())
    }

    /// Deletes a conversation and its statuses; true when there was one.
    pub async fn delete_conversation(&self, id: i64) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM conversation WHERE id = $1")
            .bind(id)
            .execute(&mut *self.write_connection().await?)
            .await?;
        Ok(deleted.rows_affected() > 0)
    }

    /// Registers a status on the conversation of `message_id` in `direction`; `None` when the
    /// conversation had it already.
    pub async fn register_status(
        &self,
        message_id: &str,
        direction: Direction,
        update: &StatusUpdate,
        effects: StatusEffects,
    ) -> Result<Option<MessageStatus>, StoreError> {
        let mut writer = self.write_connection().await?;
        let mut tx = writer.begin().await?;
        let conv_id = conversation_id_in(&mut tx, message_id, direction).await?;
        let registered = register_in(
            &mut tx,
            conv_id,
            update,
            effects.starts_polling,
            effects.queue,
        )
        .await?;
        tx.commit().await?;
        Ok(registered)
    }

    /// Registers a round of statuses of outgoing messages in one transaction, as a status
    /// poll brings them: the conversations looked up in one query, then the first status of
    /// each conversation registered together, then the second of each, and so on, so each
    /// conversation's statuses keep their order. A status of a message with no conversation
    /// (deleted meanwhile) is skipped.
    pub async fn register_outgoing_statuses(
        &self,
        updates: &[(String, StatusUpdate, StatusEffects)],
    ) -> Result<(), StoreError> {
        let mut writer = self.write_connection().await?;
        let mut tx = writer.begin().await?;
        let mut message_ids: Vec<&str> = updates.iter().map(|(id, _, _)| id.as_str()).collect();
        message_ids.sort_unstable();
        message_ids.dedup();
        let mut conversations: HashMap<String, i64> = HashMap::new();
        for chunk in message_ids.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "SELECT id, message_id FROM conversation \
                 WHERE direction = 'OUTGOING' AND message_id IN ({})",
                parameters(1, chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(&mut *tx).await? {
                conversations.insert(row.try_get("message_id")?, row.try_get("id")?);
            }
        }
        let mut rounds: Vec<Vec<Registration<'_>>> = Vec::new();
        let mut registered: HashMap<i64, usize> = HashMap::new();
        for (message_id, update, effects) in updates {
            let Some(conv_id) = conversations.get(message_id) else {
                continue;
            };
            let round = registered.entry(*conv_id).or_default();
            if rounds.len() <= *round {
                rounds.push(Vec::new());
            }
            rounds[*round].push(Registration {
                conv_id: *conv_id,
                update,
                starts_polling: effects.starts_polling,
                queue: effects.queue,
            });
            *round += 1;
        }
        for round in &rounds {
            for chunk in round.chunks(ROWS_PER_STATEMENT) {
                register_all(&mut tx, chunk).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records the provider's reference of a sent message.
    pub async fn set_external_reference(
        &self,
        message_id: &str,
        reference: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE conversation SET external_system_reference = $1 \
             WHERE message_id = $2 AND direction = 'OUTGOING'",
        )
        .bind(reference)
        .bind(message_id)
        .execute(&mut *self.write_connection().await?)
        .await?;
        Ok(())
    }

    /// Sets the archive reference and title of an outgoing conversation.
    pub async fn set_reference_and_title(
        &self,
        message_id: &str,
        reference: Option<&str>,
        title: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE conversation SET message_reference = COALESCE($1, message_reference), \
             message_title = COALESCE($2, message_title) \
             WHERE message_id = $3 AND direction = 'OUTGOING'",
        )
        .bind(reference)
        .bind(title)
        .bind(message_id)
        .execute(&mut *self.write_connection().await?)
        .await?;
        Ok(())
    }

    /// Outgoing conversations of `channel` whose statuses are polled, with the provider's
    /// reference, oldest change first.
    pub async fn pollable(
        &self,
        channel: &str,
        limit: i64,
    ) -> Result<Vec<Conversation>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversation WHERE pollable = 1 AND channel = $1 \
             AND direction = 'OUTGOING' AND external_system_reference IS NOT NULL \
             ORDER BY last_update LIMIT $2"
        ))
        .bind(channel)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(conversation_from)
            .collect::<Result<_, _>>()?)
    }

    /// Unfinished conversations whose lifetime ended before `now`.
    pub async fn expired(&self, now: Millis, limit: i64) -> Result<Vec<Conversation>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversation WHERE finished = 0 \
             AND expiry IS NOT NULL AND expiry < $1 ORDER BY expiry LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(conversation_from)
            .collect::<Result<_, _>>()?)
    }

    /// A page of statuses.
    pub async fn statuses(
        &self,
        query: &StatusQuery,
        page: &PageRequest,
    ) -> Result<Page<MessageStatus>, StoreError> {
        page_of(
            self.pool(),
            STATUS_COLUMNS,
            "message_status s JOIN conversation c ON c.id = s.conv_id",
            &query.to_where(),
            page,
            "s.id",
            status_from,
        )
        .await
    }

    /// Deletes finished conversations last changed before `before`, with their statuses.
    pub async fn purge_finished(&self, before: Millis) -> Result<u64, StoreError> {
        let mut writer = self.write_connection().await?;
        let mut tx = writer.begin().await?;
        sqlx::query(
            "DELETE FROM status_queue WHERE status_id IN (SELECT s.id FROM message_status s \
             JOIN conversation c ON c.id = s.conv_id WHERE c.finished = 1 AND c.last_update < $1)",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM message_status WHERE conv_id IN (SELECT id FROM conversation \
             WHERE finished = 1 AND last_update < $1)",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?;
        let deleted =
            sqlx::query("DELETE FROM conversation WHERE finished = 1 AND last_update < $1")
                .bind(before)
                .execute(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(deleted.rows_affected())
    }

    /// The oldest status on the status queue.
    pub async fn peek_status_queue(&self) -> Result<Option<MessageStatus>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {STATUS_COLUMNS} FROM status_queue q JOIN message_status s ON s.id = q.status_id \
             JOIN conversation c ON c.id = s.conv_id ORDER BY q.status_id LIMIT 1"
        ))
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(status_from).transpose()?)
    }

    /// Takes status `id` off the status queue; false when it was not on it.
    pub async fn remove_from_status_queue(&self, id: i64) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM status_queue WHERE status_id = $1")
            .bind(id)
            .execute(&mut *self.write_connection().await?)
            .await?;
        Ok(deleted.rows_affected() > 0)
    }
}

/// The row id of the conversation of `message_id` in `direction`.
pub(super) async fn conversation_id_in(
    tx: &mut Transaction<'_, Any>,
    message_id: &str,
    direction: Direction,
) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT id FROM conversation WHERE message_id = $1 AND direction = $2")
        .bind(message_id)
        .bind(direction.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        Some(row) => Ok(row.try_get("id")?),
        None => Err(StoreError::NotFound(format!(
            "no {} conversation for message {message_id}",
            direction.as_str().to_ascii_lowercase()
        ))),
    }
}
