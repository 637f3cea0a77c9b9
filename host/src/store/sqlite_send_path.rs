//! The send path's batches on SQLite, each written whole on a thread of its own.
//!
//! Every accepted message and every completed send is written in a batch of the send path
//! (see `group_commit`), and on SQLite those batches are the one writer's work that the
//! pipeline waits for. Through sqlx each statement of a batch is a round trip from an async
//! task to the connection's thread and back: a dozen a batch, each waiting for a busy runtime
//! to run the task again, so the writer sat idle for more than half of every batch. Here a
//! batch is one job for a thread that owns a connection of its own and runs the whole
//! transaction there, each statement prepared once and kept: one round trip a batch.
//!
//! The thread writes only while its caller holds SQLite's writing connection (the store's
//! writer lock), so it and the sqlx writes never wait for each other in SQLite's busy handler.
//! It writes the rows the sqlx path writes on PostgreSQL, in the same order, with the status
//! rules' and events' statements shared; only its clock is read once a batch, where the sqlx
//! path reads it once a statement. The store's tests check both databases alike.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::{LazyLock, mpsc};

use rusqlite::{Connection, OptionalExtension as _, Transaction, TransactionBehavior, params};
use tokio::sync::{OwnedMutexGuard, oneshot};

use super::StoreError;
use super::conversations::{
    APPLY_STATUS_RULES, Registration, decode_error, insert_conversations_sql, insert_statuses_sql,
};
use super::group_commit::abandoned;
use super::model::*;
use super::out_messages::{
    AcceptedAndCompleted, content_columns, insert_files_sql, insert_out_messages_sql,
    insert_outbox_rows_sql,
};
use super::webhooks::{INSERT_EVENT, SELECT_SUBSCRIPTIONS, status_event_payload, wants};
use super::writer::SqliteWriter;

/// The sqlx path's statements, for one row each.
static INSERT_MESSAGE: LazyLock<String> = LazyLock::new(|| insert_out_messages_sql(1));
/// A conversation's insert asks for its id alone: the batch read the subscriptions once.
static INSERT_CONVERSATION: LazyLock<String> = LazyLock::new(|| insert_conversations_sql(1, "id"));
static INSERT_STATUS: LazyLock<String> = LazyLock::new(|| insert_statuses_sql(1));
static INSERT_FILE: LazyLock<String> = LazyLock::new(|| insert_files_sql(1));
static INSERT_OUTBOX_ROW: LazyLock<String> = LazyLock::new(|| insert_outbox_rows_sql(1));

/// The status rules applied to conversation `$5`, which tells what a status event carries.
static APPLY_STATUS_RULES_TO_ONE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{APPLY_STATUS_RULES} WHERE id = $5 \
         RETURNING conversation_id, message_id, direction, service_identifier"
    )
});

/// Statements kept prepared: every statement below, with room to spare.
const PREPARED_STATEMENTS: usize = 32;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// The thread and the way to it; the thread ends, closing its connection, when this is dropped.
pub(super) struct SendPathThread {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SendPathThread {
    /// Opens a connection to the database file at `path` with `settings` and starts its thread.
    pub(super) fn open(path: &Path, settings: &str) -> Result<Self, StoreError> {
        let connection = Connection::open(path)?;
        connection.execute_batch(settings)?;
        connection.set_prepared_statement_cache_capacity(PREPARED_STATEMENTS);
        let (jobs, waiting) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("sqlite-send-path".into())
            .spawn(move || {
                let mut connection = connection;
                for job in waiting {
                    job(&mut connection);
                }
            })
            .map_err(|error| {
                StoreError::Conflict(format!(
                    "the SQLite send-path thread did not start: {error}"
                ))
            })?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }
}

impl Drop for SendPathThread {
    fn drop(&mut self) {
        // The thread finishes the job in hand, then finds no more and ends.
        self.jobs = None;
        // The last job may hold the last handle on the writer, and drop it there.
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

/// Writes accepted messages and completed sends as [`Store::accept_and_complete_then`]
/// describes, on the thread of `held`, SQLite's writer, and runs `after_commit` with the
/// accepted messages' outcomes once they are committed. The writer is let go only after both,
/// so no other write can begin meanwhile. A caller that gives up before the commit leaves
/// nothing written, as a dropped sqlx transaction would.
///
/// [`Store::accept_and_complete_then`]: super::Store::accept_and_complete_then
pub(super) async fn accept_and_complete(
    held: OwnedMutexGuard<SqliteWriter>,
    queued: Vec<QueuedMessage>,
    sends: Vec<CompletedSend>,
    after_commit: impl FnOnce(&[Result<(), StoreError>]) + Send + 'static,
) -> Result<AcceptedAndCompleted, StoreError> {
    // Without an answer the job panicked (its transaction rolled back) or the thread is gone.
    let unanswered = || StoreError::Database(sqlx::Error::WorkerCrashed);
    let jobs = held
        .send_path()
        .and_then(|thread| thread.jobs.clone())
        .ok_or(StoreError::Database(sqlx::Error::PoolClosed))?;
    let (answer, outcome) = oneshot::channel();
    let job: Job = Box::new(move |connection| {
        let written = std::panic::catch_unwind(AssertUnwindSafe(|| {
            write_batch(connection, &queued, &sends, &answer)
        }));
        // Committed: what follows the commit runs before the writer is let go. Should it
        // panic, the batch stays committed and is answered as such, so its writes are not
        // retried one by one as if it had failed.
        if let Ok(Ok((accepted, _))) = &written
            && std::panic::catch_unwind(AssertUnwindSafe(|| after_commit(accepted))).is_err()
        {
            tracing::error!("what follows a send-path batch's commit panicked");
        }
        // A failed batch's transaction is rolled back as it ends; should that rollback have
        // failed, the connection would keep SQLite's write lock once the writer is let go.
        if !connection.is_autocommit()
            && let Err(error) = connection.execute_batch("ROLLBACK")
        {
            tracing::error!(%error, "the SQLite send path could not roll back a failed batch");
        }
        drop(held);
        // A panic leaves the answer unsent: the caller learns of it as a crashed worker.
        if let Ok(written) = written {
            let _ = answer.send(written);
        }
    });
    let sent = jobs.send(job);
    // Only the thread's own handle may keep it waiting for jobs: `close` drops that handle
    // and joins the thread, perhaps before this caller runs again.
    drop(jobs);
    sent.map_err(|_| unanswered())?;
    outcome.await.map_err(|_| unanswered())?
}

/// One batch in one transaction: nothing of it is written when it fails, or when nobody waits
/// for `answer` any more by the time it would commit. Its statuses and the conversations they
/// change are registered at one time, as one statement would register them.
fn write_batch(
    connection: &mut Connection,
    queued: &[QueuedMessage],
    sends: &[CompletedSend],
    answer: &oneshot::Sender<Result<AcceptedAndCompleted, StoreError>>,
) -> Result<AcceptedAndCompleted, StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let subscriptions = Subscriptions::read(&tx)?;
    let now = now_millis();
    let accepted = accept(&tx, &subscriptions, queued, now)?;
    let completed = complete(&tx, &subscriptions, sends, now)?;
    if answer.is_closed() {
        // Dropped unanswered, `tx` rolls back.
        return Err(abandoned());
    }
    tx.commit()?;
    Ok((accepted, completed))
}

/// The webhook subscriptions, read once a batch, that a new status may have to tell.
struct Subscriptions(Vec<Subscription>);

impl Subscriptions {
    fn read(tx: &Transaction<'_>) -> Result<Self, rusqlite::Error> {
        let mut statement = tx.prepare_cached(SELECT_SUBSCRIPTIONS)?;
        let subscriptions = statement
            .query_map([], |row| {
                Ok(Subscription {
                    id: row.get("id")?,
                    name: row.get("name")?,
                    push_endpoint: row.get("push_endpoint")?,
                    resource: row.get("resource")?,
                    event: row.get("event")?,
                    filter: row.get("filter")?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(Self(subscriptions))
    }

    /// Writes an event for `status`, due `now`, to every subscription that wants it.
    fn enqueue(
        &self,
        tx: &Transaction<'_>,
        status: &MessageStatus,
        now: Millis,
    ) -> Result<(), rusqlite::Error> {
        let wanting: Vec<&Subscription> = self
            .0
            .iter()
            .filter(|subscription| wants(subscription, status))
            .collect();
        if wanting.is_empty() {
            return Ok(());
        }
        let payload = status_event_payload(status);
        let mut statement = tx.prepare_cached(INSERT_EVENT)?;
        for subscription in wanting {
            statement.execute(params![subscription.id, payload, now])?;
        }
        Ok(())
    }
}

/// Stores each queued message whose id is free: the message (queued), its OPPRETTET
/// conversation, its files in order and its outbox entry.
fn accept(
    tx: &Transaction<'_>,
    subscriptions: &Subscriptions,
    queued: &[QueuedMessage],
    now: Millis,
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    // The messages first, each id once: their conversations are last updated when the newest
    // of those stored was created, as on PostgreSQL.
    let mut seen = HashSet::new();
    let mut inserted = Vec::with_capacity(queued.len());
    for one in queued {
        let first = seen.insert(one.message.message_id.as_str());
        inserted.push(first && insert_message(tx, &one.message)?);
    }
    let created = queued
        .iter()
        .zip(&inserted)
        .filter(|(_, inserted)| **inserted)
        .map(|(one, _)| one.message.created)
        .max()
        .unwrap_or(now);
    let mut outcomes = Vec::with_capacity(queued.len());
    for (one, inserted) in queued.iter().zip(inserted) {
        let stored = inserted && store_the_rest(tx, subscriptions, one, created, now)?;
        outcomes.push(if stored {
            Ok(())
        } else {
            Err(StoreError::Duplicate(format!(
                "Message with id {} already exists",
                one.message.message_id
            )))
        });
    }
    Ok(outcomes)
}

/// Inserts a queued message unless its id is taken; whether it was inserted.
fn insert_message(tx: &Transaction<'_>, message: &OutMessage) -> Result<bool, rusqlite::Error> {
    let mut statement = tx.prepare_cached(&INSERT_MESSAGE)?;
    let mut inserted = statement.query(params![
        message.message_id,
        message.conversation_id,
        message.process_identifier,
        message.document_type,
        message.sender_identifier,
        message.receiver_identifier,
        message.service_identifier,
        message.channel,
        message.sbd,
        message.service_record,
        message.expiry,
        1_i64, // queued
        message.created,
        message.created, // last updated
    ])?;
    Ok(inserted.next()?.is_some())
}

/// Stores the rest of an inserted message: its conversation, last updated at `created`, with
/// OPPRETTET, its files and its outbox entry. False, with the message removed again, when a
/// conversation whose message was sent and removed holds its id.
fn store_the_rest(
    tx: &Transaction<'_>,
    subscriptions: &Subscriptions,
    one: &QueuedMessage,
    created: Millis,
    now: Millis,
) -> Result<bool, StoreError> {
    let message = &one.message;
    let conversation = &one.conversation;
    let conv_id: Option<i64> = tx
        .prepare_cached(&INSERT_CONVERSATION)?
        .query_row(
            params![
                conversation.conversation_id,
                conversation.message_id,
                Direction::Outgoing.as_str(),
                conversation.sender,
                conversation.sender_identifier,
                conversation.receiver,
                conversation.receiver_identifier,
                conversation.process_identifier,
                conversation.document_identifier,
                conversation.service_identifier,
                conversation.channel,
                conversation.expiry,
                created,
                one.reference,
                one.title,
            ],
            |row| row.get("id"),
        )
        .optional()?;
    let Some(conv_id) = conv_id else {
        tx.prepare_cached("DELETE FROM out_message WHERE message_id = $1")?
            .execute([&message.message_id])?;
        return Ok(false);
    };
    // A new conversation is as OPPRETTET leaves it, so its status needs only its row.
    let no_text: Option<&str> = None;
    let status_id: i64 = tx.prepare_cached(&INSERT_STATUS)?.query_row(
        params![
            conv_id,
            ReceiptStatus::Opprettet.as_str(),
            no_text,
            no_text,
            now
        ],
        |row| row.get("id"),
    )?;
    subscriptions.enqueue(
        tx,
        &MessageStatus {
            id: status_id,
            conv_id,
            status: ReceiptStatus::Opprettet,
            description: None,
            raw_receipt: None,
            last_update: now,
            conversation_id: conversation.conversation_id.clone(),
            message_id: conversation.message_id.clone(),
            direction: Direction::Outgoing,
            service_identifier: conversation.service_identifier.clone(),
        },
        now,
    )?;
    let mut insert_file = tx.prepare_cached(&INSERT_FILE)?;
    for (ordinal, file) in one.files.iter().enumerate() {
        let (blob_id, data) = content_columns(&file.content);
        insert_file.execute(params![
            message.message_id,
            i64::try_from(ordinal).unwrap_or(i64::MAX),
            file.filename,
            file.title,
            file.mime_type,
            i64::from(file.primary_document),
            file.size,
            blob_id,
            data,
        ])?;
    }
    tx.prepare_cached(&INSERT_OUTBOX_ROW)?.execute(params![
        message.message_id,
        message.channel,
        0_i64,
        message.created,
        message.created
    ])?;
    Ok(true)
}

/// Records each completed send: its reference, SENDT and the provider's further statuses
/// (the nth of every send together, as on PostgreSQL), and its message and files removed.
fn complete(
    tx: &Transaction<'_>,
    subscriptions: &Subscriptions,
    sends: &[CompletedSend],
    now: Millis,
) -> Result<Vec<Result<Vec<String>, StoreError>>, StoreError> {
    let mut first = HashSet::new();
    let distinct: Vec<&CompletedSend> = sends
        .iter()
        .filter(|send| first.insert(send.message_id.as_str()))
        .collect();
    let mut found: Vec<(&CompletedSend, i64)> = Vec::with_capacity(distinct.len());
    {
        let mut reference = tx.prepare_cached(
            "UPDATE conversation SET external_system_reference = $1 \
             WHERE direction = $2 AND message_id = $3 RETURNING id",
        )?;
        for send in distinct {
            let conv_id: Option<i64> = reference
                .query_row(
                    params![
                        send.reference,
                        Direction::Outgoing.as_str(),
                        send.message_id
                    ],
                    |row| row.get(0),
                )
                .optional()?;
            if let Some(conv_id) = conv_id {
                found.push((send, conv_id));
            }
        }
    }
    let sendt = StatusUpdate::new(ReceiptStatus::Sendt);
    for (send, conv_id) in &found {
        let registration = Registration {
            conv_id: *conv_id,
            update: &sendt,
            starts_polling: send.polls_statuses,
            queue: send.queue,
        };
        register(tx, subscriptions, &registration, now)?;
    }
    let rounds = found.iter().map(|(send, _)| send.statuses.len()).max();
    for round in 0..rounds.unwrap_or(0) {
        for (send, conv_id) in &found {
            if let Some(update) = send.statuses.get(round) {
                let registration = Registration {
                    conv_id: *conv_id,
                    update,
                    starts_polling: false,
                    queue: send.queue,
                };
                register(tx, subscriptions, &registration, now)?;
            }
        }
    }
    let mut blobs: HashMap<&str, Vec<String>> = HashMap::new();
    {
        let mut files =
            tx.prepare_cached("DELETE FROM message_file WHERE message_id = $1 RETURNING blob_id")?;
        let mut message = tx.prepare_cached("DELETE FROM out_message WHERE message_id = $1")?;
        for (send, _) in &found {
            let id = send.message_id.as_str();
            let removed: Vec<String> = files
                .query_map([id], |row| row.get::<_, String>(0))?
                .collect::<Result<_, _>>()?;
            // An inline file goes with its row; only a blob is left to remove.
            blobs.insert(
                id,
                removed
                    .into_iter()
                    .filter(|blob| !blob.is_empty())
                    .collect(),
            );
            message.execute([id])?;
        }
    }
    let mut answered = HashSet::new();
    Ok(sends
        .iter()
        .map(|send| {
            let id = send.message_id.as_str();
            match blobs.get_mut(id) {
                None => Err(StoreError::NotFound(format!(
                    "no outgoing conversation for message {id}"
                ))),
                Some(removed) if answered.insert(id) => Ok(std::mem::take(removed)),
                Some(_) => Ok(Vec::new()),
            }
        })
        .collect())
}

/// Registers a status unless its conversation has it, as `register_all` does: its row, the
/// conversation's changes by the status rules, its place on the status queue and its events.
fn register(
    tx: &Transaction<'_>,
    subscriptions: &Subscriptions,
    registration: &Registration<'_>,
    now: Millis,
) -> Result<(), StoreError> {
    let Registration {
        conv_id,
        update,
        starts_polling,
        queue,
    } = *registration;
    let at = update.at.unwrap_or(now);
    let status_id: Option<i64> = tx
        .prepare_cached(&INSERT_STATUS)?
        .query_row(
            params![
                conv_id,
                update.status.as_str(),
                update.description,
                update.raw_receipt,
                at
            ],
            |row| row.get("id"),
        )
        .optional()?;
    let Some(status_id) = status_id else {
        return Ok(());
    };
    let (conversation_id, message_id, direction, service_identifier): (
        String,
        String,
        String,
        Option<String>,
    ) = tx.prepare_cached(&APPLY_STATUS_RULES_TO_ONE)?.query_row(
        params![
            now,
            i64::from(update.status.finishes()),
            i64::from(update.status.ends_polling()),
            i64::from(starts_polling),
            conv_id,
        ],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
    )?;
    if queue {
        tx.prepare_cached("INSERT INTO status_queue (status_id) VALUES ($1)")?
            .execute([status_id])?;
    }
    subscriptions.enqueue(
        tx,
        &MessageStatus {
            id: status_id,
            conv_id,
            status: update.status,
            description: update.description.clone(),
            raw_receipt: update.raw_receipt.clone(),
            last_update: at,
            conversation_id,
            message_id,
            direction: direction.parse().map_err(decode_error)?,
            service_identifier,
        },
        now,
    )?;
    Ok(())
}
