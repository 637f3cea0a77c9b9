//! Outgoing messages and their files, from create to the outbox.
//!
//! Create writes the message and its OPPRETTET conversation in one transaction; send writes the
//! outbox row in the same transaction that marks the message queued, so a message is either
//! waiting for its files or certain to be sent, never in between.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::conversations::{Labels, insert_conversation, insert_conversations};
use super::filter::{MessageQuery, PageRequest, page_of};
use super::model::*;
use super::outbox::{remove_out_message, remove_out_messages};
use super::sql_lists::{ROWS_PER_STATEMENT, first_of_each, parameters, value_rows};
use super::writer::SqliteWriter;
use super::{Store, StoreError, flag};

const OUT_COLUMNS: &str = "message_id, conversation_id, process_identifier, document_type, \
    sender_identifier, receiver_identifier, service_identifier, channel, sbd, service_record, \
    expiry, queued, created";

const FILE_COLUMNS: &str =
    "message_id, ordinal, filename, title, mime_type, primary_document, size, blob_id, data";

/// Messages' columns and their files' (each message's id once), one row per file, for the
/// messages whose ids follow as `IN (…)` parameters: the query of every send, spelled out once.
static MESSAGES_WITH_FILES: LazyLock<String> = LazyLock::new(|| {
    let files: Vec<String> = FILE_COLUMNS
        .split(", ")
        .filter(|column| *column != "message_id")
        .map(|column| format!("f.{column}"))
        .collect();
    format!(
        "SELECT m.{}, {} FROM out_message m \
         LEFT JOIN message_file f ON f.message_id = m.message_id \
         WHERE m.message_id IN",
        OUT_COLUMNS.replace(", ", ", m."),
        files.join(", "),
    )
});

/// The `blob_id` and `data` columns of a file's content: an inline file has no blob.
pub(super) fn content_columns(content: &FileContent) -> (&str, Option<&[u8]>) {
    match content {
        FileContent::Blob(id) => (id, None),
        FileContent::Inline(sealed) => ("", Some(sealed)),
    }
}

fn out_from(row: &AnyRow) -> Result<OutMessage, sqlx::Error> {
    Ok(OutMessage {
        message_id: row.try_get("message_id")?,
        conversation_id: row.try_get("conversation_id")?,
        process_identifier: row.try_get("process_identifier")?,
        document_type: row.try_get("document_type")?,
        sender_identifier: row.try_get("sender_identifier")?,
        receiver_identifier: row.try_get("receiver_identifier")?,
        service_identifier: row.try_get("service_identifier")?,
        channel: row.try_get("channel")?,
        sbd: row.try_get("sbd")?,
        service_record: row.try_get("service_record")?,
        expiry: row.try_get("expiry")?,
        queued: flag(row.try_get("queued")?),
        created: row.try_get("created")?,
    })
}

fn file_from(row: &AnyRow) -> Result<MessageFile, sqlx::Error> {
    Ok(MessageFile {
        message_id: row.try_get("message_id")?,
        ordinal: row.try_get("ordinal")?,
        filename: row.try_get("filename")?,
        title: row.try_get("title")?,
        mime_type: row.try_get("mime_type")?,
        primary_document: flag(row.try_get("primary_document")?),
        size: row.try_get("size")?,
        content: match row.try_get::<Option<Vec<u8>>, _>("data")? {
            Some(sealed) => FileContent::Inline(sealed),
            None => FileContent::Blob(row.try_get("blob_id")?),
        },
    })
}

/// The statement that inserts `rows` outgoing messages, each bound as [`OUT_COLUMNS`] and
/// `last_updated` (its creation time), skipping each whose id is taken; it returns the ids
/// inserted.
pub(super) fn insert_out_messages_sql(rows: usize) -> String {
    let width = OUT_COLUMNS.split(", ").count() + 1;
    format!(
        "INSERT INTO out_message ({OUT_COLUMNS}, last_updated) VALUES {} \
         ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
        value_rows(rows, width)
    )
}

/// Inserts outgoing messages, `queued` or waiting for their files, in one statement, skipping
/// each whose id is taken; the ids inserted.
async fn insert_out_messages(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    messages: &[&OutMessage],
    queued: bool,
) -> Result<HashSet<String>, StoreError> {
    if messages.is_empty() {
        return Ok(HashSet::new());
    }
    let sql = insert_out_messages_sql(messages.len());
    let mut query = sqlx::query(&sql);
    for message in messages {
        query = query
            .bind(&message.message_id)
            .bind(&message.conversation_id)
            .bind(&message.process_identifier)
            .bind(&message.document_type)
            .bind(&message.sender_identifier)
            .bind(&message.receiver_identifier)
            .bind(&message.service_identifier)
            .bind(&message.channel)
            .bind(&message.sbd)
            .bind(&message.service_record)
            .bind(message.expiry)
            .bind(i64::from(queued))
            .bind(message.created)
            .bind(message.created);
    }
    let mut inserted = HashSet::new();
    for row in query.fetch_all(&mut **tx).await? {
        inserted.insert(row.try_get::<String, _>("message_id")?);
    }
    Ok(inserted)
}

/// Inserts a new outgoing message waiting for its files, and its OPPRETTET conversation;
/// [`StoreError::Duplicate`] when the message id is taken.
async fn insert_new(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    message: &OutMessage,
    conversation: &NewConversation,
) -> Result<(), StoreError> {
    if insert_out_messages(tx, &[message], false).await?.is_empty() {
        return Err(StoreError::Duplicate(format!(
            "Message with id {} already exists",
            message.message_id
        )));
    }
    insert_conversation(
        tx,
        Direction::Outgoing,
        conversation,
        Labels::default(),
        message.created,
    )
    .await?;
    Ok(())
}

/// Rows of one multi-row `INSERT` into `message_file`: one round trip for a message's files
/// instead of one each, within the bound parameters every database allows.
const FILES_PER_INSERT: usize = 64;

/// The statement that inserts `rows` files, each bound as [`FILE_COLUMNS`].
pub(super) fn insert_files_sql(rows: usize) -> String {
    format!(
        "INSERT INTO message_file ({FILE_COLUMNS}) VALUES {}",
        value_rows(rows, FILE_COLUMNS.split(", ").count())
    )
}

/// Inserts the files of messages, each message's numbered in their order: one statement per
/// `FILES_PER_INSERT` files, whichever messages they belong to.
async fn insert_files(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    messages: &[(&str, &[MessageFile])],
) -> Result<(), StoreError> {
    let rows: Vec<(&str, usize, &MessageFile)> = messages
        .iter()
        .flat_map(|(message_id, files)| {
            files
                .iter()
                .enumerate()
                .map(move |(ordinal, file)| (*message_id, ordinal, file))
        })
        .collect();
    for chunk in rows.chunks(FILES_PER_INSERT) {
        let sql = insert_files_sql(chunk.len());
        let mut query = sqlx::query(&sql);
        for (message_id, ordinal, file) in chunk {
            let (blob_id, data) = content_columns(&file.content);
            query = query
                .bind(*message_id)
                .bind(i64::try_from(*ordinal).unwrap_or(i64::MAX))
                .bind(&file.filename)
                .bind(&file.title)
                .bind(&file.mime_type)
                .bind(i64::from(file.primary_document))
                .bind(file.size)
                .bind(blob_id)
                .bind(data);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

impl QueuedMessage {
    /// The message and its files as [`Store::accept_and_complete`] stores them (queued,
    /// its files numbered in their order as `insert_files` numbers them), and
    /// [`Store::out_messages_with_files`] reads them back.
    pub fn as_stored(&self) -> (OutMessage, Vec<MessageFile>) {
        let message = OutMessage {
            queued: true,
            ..self.message.clone()
        };
        let files = self
            .files
            .iter()
            .enumerate()
            .map(|(ordinal, file)| MessageFile {
                message_id: message.message_id.clone(),
                ordinal: i64::try_from(ordinal).unwrap_or(i64::MAX),
                ..file.clone()
            })
            .collect();
        (message, files)
    }
}

/// The statement that puts `rows` messages in the outbox, each bound as its id, channel,
/// attempts (0), the time it is due and the time it entered.
pub(super) fn insert_outbox_rows_sql(rows: usize) -> String {
    format!(
        "INSERT INTO outbox (message_id, channel, attempts, next_attempt_at, created) VALUES {}",
        value_rows(rows, 5)
    )
}

/// Puts messages in the outbox, each (message id, channel, time) due at its time, in one
/// statement.
async fn insert_outbox_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    entries: &[(&str, &str, Millis)],
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let sql = insert_outbox_rows_sql(entries.len());
    let mut query = sqlx::query(&sql);
    for (message_id, channel, due) in entries {
        query = query
            .bind(*message_id)
            .bind(*channel)
            .bind(0_i64)
            .bind(*due)
            .bind(*due);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// What [`Store::accept_and_complete`] tells of each message stored and each send recorded.
pub type AcceptedAndCompleted = (
    Vec<Result<(), StoreError>>,
    Vec<Result<Vec<String>, StoreError>>,
);

impl Store {
    /// Stores a new outgoing message and its OPPRETTET conversation; fails with
    /// [`StoreError::Duplicate`] when the message id is taken.
    pub async fn create_out_message(
        &self,
        message: &OutMessage,
        conversation: &NewConversation,
    ) -> Result<(), StoreError> {
        let mut writer = self.write_connection().await?;
        let mut tx = writer.begin().await?;
        insert_new(&mut tx, message, conversation).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The send path's two writes in one transaction, so they share a commit instead of taking
    /// the writer in turn; the whole call fails only when the database does, and then nothing
    /// is written. On PostgreSQL one statement per kind of row; on SQLite the whole
    /// transaction on the send path's own thread (see `sqlite_send_path`).
    ///
    /// `queued` are whole outgoing messages, as multipart sends bring them: each message
    /// (queued), its OPPRETTET conversation with the arkivmelding's reference and title, its
    /// files in the given order, and its outbox row. For each, in order, `Ok` or
    /// [`StoreError::Duplicate`] when its message id is taken (by an earlier message or one
    /// before it in `queued`), and then nothing of it is stored.
    ///
    /// `sends` are completed, each as [`Store::complete_send`] does. For each, in order, the
    /// blobs to remove, or [`StoreError::NotFound`] when its message has no outgoing
    /// conversation.
    pub async fn accept_and_complete(
        &self,
        queued: &[&QueuedMessage],
        sends: &[&CompletedSend],
    ) -> Result<AcceptedAndCompleted, StoreError> {
        self.accept_and_complete_then(queued, sends, |_| {}).await
    }

    /// [`Store::accept_and_complete`], calling `after_commit` with the accepted messages'
    /// outcomes once they are committed and, on SQLite, before the writer is let go: a read of
    /// the outbox under the writer ([`Store::due_outbox`]) then never finds them before
    /// `after_commit` has run. On PostgreSQL, where other connections write meanwhile, it runs
    /// right after the commit.
    pub async fn accept_and_complete_then(
        &self,
        queued: &[&QueuedMessage],
        sends: &[&CompletedSend],
        after_commit: impl FnOnce(&[Result<(), StoreError>]) + Send + 'static,
    ) -> Result<AcceptedAndCompleted, StoreError> {
        if let Some(writer) = self.writer.sqlite() {
            // Copied for the send path's thread before the writer is taken, not while it waits.
            let queued = queued.iter().map(|one| (*one).clone()).collect();
            let sends = sends.iter().map(|send| (*send).clone()).collect();
            let held = SqliteWriter::take(writer).await?;
            return super::sqlite_send_path::accept_and_complete(held, queued, sends, after_commit)
                .await;
        }
        let mut writer = self.write_connection().await?;
        let mut tx = writer.begin().await?;
        let accepted = create_queued_in(&mut tx, queued).await?;
        let completed = super::outbox::complete_sends_in(&mut tx, sends).await?;
        tx.commit().await?;
        after_commit(&accepted);
        Ok((accepted, completed))
    }

    /// The outgoing message `message_id`.
    pub async fn out_message(&self, message_id: &str) -> Result<Option<OutMessage>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {OUT_COLUMNS} FROM out_message WHERE message_id = $1"
        ))
        .bind(message_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(out_from).transpose()?)
    }

    /// The outgoing messages `message_ids` that exist, each with its files in upload order,
    /// read together: what the outbox worker needs for the sends it claimed together, in one
    /// query per [`ROWS_PER_STATEMENT`] messages.
    pub async fn out_messages_with_files(
        &self,
        message_ids: &[&str],
    ) -> Result<HashMap<String, (OutMessage, Vec<MessageFile>)>, StoreError> {
        let mut found: HashMap<String, (OutMessage, Vec<MessageFile>)> = HashMap::new();
        for chunk in message_ids.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "{} ({}) ORDER BY m.message_id, f.ordinal",
                *MESSAGES_WITH_FILES,
                parameters(1, chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(self.pool()).await? {
                let message_id: String = row.try_get("message_id")?;
                let (_, files) = match found.entry(message_id) {
                    Entry::Occupied(known) => known.into_mut(),
                    Entry::Vacant(new) => new.insert((out_from(&row)?, Vec::new())),
                };
                // A message without files is one row of NULL file columns.
                if row.try_get::<Option<i64>, _>("ordinal")?.is_some() {
                    files.push(file_from(&row)?);
                }
            }
        }
        Ok(found)
    }

    /// A page of outgoing messages.
    pub async fn out_messages(
        &self,
        query: &MessageQuery,
        page: &PageRequest,
    ) -> Result<Page<OutMessage>, StoreError> {
        page_of(
            self.pool(),
            OUT_COLUMNS,
            "out_message",
            &query.to_where(),
            page,
            "message_id",
            out_from,
        )
        .await
    }

    /// Adds a file to an unsent message. Fails with [`StoreError::Duplicate`] when the name is
    /// taken, [`StoreError::NotFound`] without the message, [`StoreError::Conflict`] once sent.
    pub async fn add_file(&self, file: &MessageFile) -> Result<(), StoreError> {
        let (blob_id, data) = content_columns(&file.content);
        let mut writer = self.write_connection().await?;
        let mut tx = writer.begin().await?;
        let queued = sqlx::query("SELECT queued FROM out_message WHERE message_id = $1")
            .bind(&file.message_id)
            .fetch_optional(&mut *tx)
            .await?;
        match queued {
            None => {
                return Err(StoreError::NotFound(format!(
                    "Message with id {} not found",
                    file.message_id
                )));
            }
            Some(row) if flag(row.try_get("queued")?) => {
                return Err(StoreError::Conflict(format!(
                    "Message with id {} has been sent; files can no longer be added",
                    file.message_id
                )));
            }
            Some(_) => {}
        }
        let inserted = sqlx::query(&format!(
            "INSERT INTO message_file ({FILE_COLUMNS}) \
             SELECT $1, COALESCE(MAX(ordinal), -1) + 1, $2, $3, $4, $5, $6, $7, $8 \
             FROM message_file WHERE message_id = $1 \
             ON CONFLICT (message_id, filename) DO NOTHING"
        ))
        .bind(&file.message_id)
        .bind(&file.filename)
        .bind(&file.title)
        .bind(&file.mime_type)
        .bind(i64::from(file.primary_document))
        .bind(file.size)
        .bind(blob_id)
        .bind(data)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Duplicate(format!(
                "Duplicate filename: {}",
                file.filename
            )));
        }
        sqlx::query("UPDATE out_message SET last_updated = $1 WHERE message_id = $2")
            .bind(now_millis())
            .bind(&file.message_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The files of an outgoing message, in upload order.
    pub async fn files(&self, message_id: &str) -> Result<Vec<MessageFile>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {FILE_COLUMNS} FROM message_file WHERE message_id = $1 ORDER BY ordinal"
        ))
        .bind(message_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(file_from).collect::<Result<_, _>>()?)
    }

    /// Puts the message in the outbox for `channel`, due now. Fails with
    /// [`StoreError::Conflict`] when it was sent already.
    pub async fn queue_for_sending(&self, message_id: &str) -> Result<(), StoreError> {
        let now = now_millis();
        let mut writer = self.write_connection().await?;
        let mut tx = writer.begin().await?;
        let row = sqlx::query("SELECT channel, queued FROM out_message WHERE message_id = $1")
            .bind(message_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!(
                "Message with id {message_id} not found"
            )));
        };
        if flag(row.try_get("queued")?) {
            return Err(StoreError::Conflict(format!(
                "Message with id {message_id} has been sent already"
            )));
        }
        let channel: String = row.try_get("channel")?;
        sqlx::query("UPDATE out_message SET queued = 1, last_updated = $1 WHERE message_id = $2")
            .bind(now)
            .bind(message_id)
            .execute(&mut *tx)
            .await?;
        insert_outbox_rows(&mut tx, &[(message_id, &channel, now)]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes an outgoing message and its file rows (and its outbox entry), returning the
    /// blobs that held the files so the caller removes them; `None` when there was none.
    pub async fn delete_out_message(
        &self,
        message_id: &str,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let mut writer = self.write_connection().await?;
        let mut tx = writer.begin().await?;
        let exists = sqlx::query("SELECT 1 AS one FROM out_message WHERE message_id = $1")
            .bind(message_id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Ok(None);
        }
        let blobs = remove_out_message(&mut tx, message_id).await?;
        tx.commit().await?;
        Ok(Some(blobs))
    }
}

/// Stores `queued` as [`Store::accept_and_complete`] does, inside `tx`; the caller commits (and nothing
/// is stored when it drops `tx` after an error instead).
async fn create_queued_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    queued: &[&QueuedMessage],
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    let first = first_of_each(queued, |one| one.message.message_id.as_str());
    let distinct: Vec<&QueuedMessage> = queued
        .iter()
        .zip(&first)
        .filter_map(|(one, first)| first.then_some(*one))
        .collect();
    let messages: Vec<&OutMessage> = distinct.iter().map(|one| &one.message).collect();
    let inserted = insert_out_messages(tx, &messages, true).await?;
    let fresh: Vec<&QueuedMessage> = distinct
        .into_iter()
        .filter(|one| inserted.contains(&one.message.message_id))
        .collect();
    let now = fresh.iter().map(|one| one.message.created).max();
    let conversations: Vec<(&NewConversation, Labels<'_>)> = fresh
        .iter()
        .map(|one| {
            let labels = Labels {
                reference: one.reference.as_deref(),
                title: one.title.as_deref(),
            };
            (&one.conversation, labels)
        })
        .collect();
    let conversation_ids = insert_conversations(
        tx,
        Direction::Outgoing,
        &conversations,
        now.unwrap_or_default(),
    )
    .await?;
    // A message id can be taken by a conversation whose message was sent and removed.
    let (stored, taken): (Vec<_>, Vec<_>) = fresh
        .into_iter()
        .zip(conversation_ids)
        .partition(|(_, id)| id.is_some());
    let taken: Vec<&str> = taken
        .iter()
        .map(|(one, _)| one.message.message_id.as_str())
        .collect();
    remove_out_messages(tx, &taken).await?;
    let stored: Vec<&QueuedMessage> = stored.into_iter().map(|(one, _)| one).collect();
    let files: Vec<(&str, &[MessageFile])> = stored
        .iter()
        .map(|one| (one.message.message_id.as_str(), one.files.as_slice()))
        .collect();
    insert_files(tx, &files).await?;
    let entries: Vec<(&str, &str, Millis)> = stored
        .iter()
        .map(|one| {
            let message = &one.message;
            (
                message.message_id.as_str(),
                message.channel.as_str(),
                message.created,
            )
        })
        .collect();
    insert_outbox_rows(tx, &entries).await?;
    let stored: HashSet<&str> = stored
        .iter()
        .map(|one| one.message.message_id.as_str())
        .collect();
    Ok(queued
        .iter()
        .zip(first)
        .map(|(one, first)| {
            let id = one.message.message_id.as_str();
            if first && stored.contains(id) {
                Ok(())
            } else {
                Err(StoreError::Duplicate(format!(
                    "Message with id {id} already exists"
                )))
            }
        })
        .collect())
}
