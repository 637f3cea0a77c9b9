//! The store, end to end, on both of its databases.
//!
//! One set of queries serves SQLite (the embedded default) and PostgreSQL (several instances)
//! through sqlx's `Any` driver (and SQLite's send-path batches their own, which must behave as
//! PostgreSQL's), so a query that is right on one dialect can still be wrong on the other: a
//! parameter PostgreSQL cannot type, a claim that is atomic under SQLite's single writer
//! but not under PostgreSQL's concurrency, an integer that decodes differently. Every behaviour
//! below is therefore one `check_…` function run twice, once per dialect (`sqlite::…` and
//! `postgres::…`). Each PostgreSQL test gets a database of its own, so the tests run in parallel;
//! PostgreSQL being unreachable fails the PostgreSQL tests, it never skips them.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use integrasjonspunkt::store::{
    CompletedSend, Conversation, ConversationQuery, Direction, FileContent, InMessage, MessageFile,
    MessageQuery, MessageStatus, NewConversation, OutMessage, PageRequest, QueuedMessage,
    ReceiptStatus, StatusEffects, StatusQuery, StatusUpdate, Store, StoreError, Subscription,
    WebhookEvent, now_millis,
};
use ip_tests::postgres::FreshDatabase;
use sqlx::{AnyPool, Row as _};

// ---------------------------------------------------------------------------------------------
// The databases.

/// A store on a database of its own, with a plain pool on the same database for assertions the
/// store's API does not answer (row counts, the migration table).
struct TestDb {
    store: Store,
    url: String,
    raw: AnyPool,
    _sqlite_dir: Option<tempfile::TempDir>,
    // Last, so the pools above are dropped before the database is.
    _postgres: Option<FreshDatabase>,
}

impl Deref for TestDb {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

impl TestDb {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        let store = Store::open(&url).await.expect("open the SQLite store");
        let raw = AnyPool::connect(&url)
            .await
            .expect("a plain pool on the SQLite file");
        Self {
            store,
            url,
            raw,
            _sqlite_dir: Some(dir),
            _postgres: None,
        }
    }

    async fn postgres() -> Self {
        let database = FreshDatabase::create("ip_store").await;
        let url = database.url.clone();
        let store = Store::open(&url).await.expect("open the PostgreSQL store");
        let raw = AnyPool::connect(&url)
            .await
            .expect("a plain pool on the PostgreSQL database");
        Self {
            store,
            url,
            raw,
            _sqlite_dir: None,
            _postgres: Some(database),
        }
    }

    /// `SELECT COUNT(*)` of a query with one text parameter, or none.
    async fn count(&self, sql: &str, parameter: Option<&str>) -> i64 {
        let mut query = sqlx::query(sql);
        if let Some(parameter) = parameter {
            query = query.bind(parameter.to_owned());
        }
        query
            .fetch_one(&self.raw)
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error}"))
            .get::<i64, _>(0)
    }
}

/// Runs every check on both dialects: `sqlite::<name>` and `postgres::<name>`.
macro_rules! on_both_dialects {
    ($($name:ident => $check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = super::TestDb::sqlite().await;
                    super::$check(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = super::TestDb::postgres().await;
                    super::$check(&db).await;
                }
            )*
        }
    };
}

on_both_dialects! {
    migrations_are_idempotent => check_migrations_are_idempotent,
    create_out_message_registers_opprettet_and_rejects_duplicates => check_create_out_message,
    add_file_keeps_upload_order_and_rejects_bad_files => check_add_file,
    queue_for_sending_twice_conflicts => check_queue_for_sending_twice,
    claim_is_a_lease => check_claim_is_a_lease,
    concurrent_workers_send_each_message_once => check_concurrent_workers,
    complete_send_registers_sendt_and_removes_the_message => check_complete_send,
    completions_in_one_batch_each_get_their_own_outcome => check_complete_sends,
    whole_messages_in_one_batch_each_get_their_own_outcome => check_create_queued_messages,
    accepts_and_completions_share_one_transaction => check_accept_and_complete,
    after_commit_is_told_each_accepted_outcome_once_committed => check_after_commit,
    a_batch_the_database_refuses_stores_nothing_of_it => check_refused_batch,
    completions_register_in_rounds_with_queue_entries_and_events => check_completion_rounds,
    a_batchs_conversations_take_the_newest_stored_creation_time => check_batch_times,
    a_batch_records_each_message_as_alone_with_its_events => check_new_messages_batch,
    writes_queue_survive_abandoned_callers_and_fail_once_closed => check_writer,
    register_status_is_idempotent_and_finishes => check_register_status,
    a_round_of_polled_statuses_keeps_each_conversations_order => check_polled_round,
    dead_letter_and_finish_unsent_end_the_message => check_dead_letter,
    store_incoming_deduplicates => check_store_incoming_dedupe,
    peek_incoming_locks => check_peek_incoming_locks,
    take_incoming_needs_the_lock => check_take_incoming,
    conversations_and_statuses_filter_and_page => check_listings,
    webhook_events_follow_subscriptions_in_order => check_webhooks,
    retention_removes_only_what_is_finished_and_old => check_retention,
}

// ---------------------------------------------------------------------------------------------
// Fixtures.

const CHANNEL: &str = "dpo";

fn new_message(message_id: &str) -> (OutMessage, NewConversation) {
    let conversation_id = format!("conv-{message_id}");
    let message = OutMessage {
        message_id: message_id.to_owned(),
        conversation_id: conversation_id.clone(),
        process_identifier: "urn:no:difi:profile:arkivmelding:administrasjon:ver1.0".to_owned(),
        document_type: "urn:no:difi:arkivmelding:xsd::arkivmelding".to_owned(),
        sender_identifier: "0192:910075918".to_owned(),
        receiver_identifier: Some("0192:910077473".to_owned()),
        service_identifier: "DPO".to_owned(),
        channel: CHANNEL.to_owned(),
        sbd: format!(r#"{{"messageId":"{message_id}"}}"#),
        service_record: r#"{"service":"DPO"}"#.to_owned(),
        expiry: None,
        queued: false,
        created: now_millis(),
    };
    let conversation = NewConversation {
        conversation_id,
        message_id: message_id.to_owned(),
        sender: Some("0192:910075918".to_owned()),
        sender_identifier: Some("910075918".to_owned()),
        receiver: Some("0192:910077473".to_owned()),
        receiver_identifier: Some("910077473".to_owned()),
        process_identifier: Some(message.process_identifier.clone()),
        document_identifier: Some(message.document_type.clone()),
        service_identifier: Some("DPO".to_owned()),
        channel: Some(CHANNEL.to_owned()),
        expiry: None,
    };
    (message, conversation)
}

async fn create(store: &Store, message_id: &str) {
    let (message, conversation) = new_message(message_id);
    store
        .create_out_message(&message, &conversation)
        .await
        .unwrap_or_else(|error| panic!("create {message_id}: {error}"));
}

/// What the outbox worker reads to send `message_id`: the message with its files.
async fn read_for_sending(
    store: &Store,
    message_id: &str,
) -> Option<(OutMessage, Vec<MessageFile>)> {
    store
        .out_messages_with_files(&[message_id])
        .await
        .unwrap()
        .remove(message_id)
}

async fn create_and_queue(store: &Store, message_id: &str) {
    create(store, message_id).await;
    store
        .queue_for_sending(message_id)
        .await
        .unwrap_or_else(|error| panic!("queue {message_id}: {error}"));
}

fn file(message_id: &str, filename: &str, blob_id: &str) -> MessageFile {
    MessageFile {
        message_id: message_id.to_owned(),
        ordinal: 99, // The store numbers files itself.
        filename: filename.to_owned(),
        title: Some(format!("Title of {filename}")),
        mime_type: "application/pdf".to_owned(),
        primary_document: filename.ends_with(".pdf"),
        size: 1234,
        content: FileContent::Blob(blob_id.to_owned()),
    }
}

/// A small file kept in its row.
fn inline_file(message_id: &str, filename: &str, sealed: &[u8]) -> MessageFile {
    MessageFile {
        content: FileContent::Inline(sealed.to_vec()),
        ..file(message_id, filename, "")
    }
}

fn incoming(message_id: &str, service: &str, last_updated: i64) -> (InMessage, NewConversation) {
    let message = InMessage {
        message_id: message_id.to_owned(),
        conversation_id: format!("conv-{message_id}"),
        process_identifier: Some("urn:no:difi:profile:arkivmelding:administrasjon:ver1.0".into()),
        document_type: Some("urn:no:difi:arkivmelding:xsd::arkivmelding".into()),
        sender_identifier: Some("0192:910077473".into()),
        receiver_identifier: Some("0192:910075918".into()),
        service_identifier: service.to_owned(),
        channel: CHANNEL.to_owned(),
        sbd: format!(r#"{{"messageId":"{message_id}"}}"#),
        package_blob: Some(format!("blob-{message_id}")),
        lock_until: None,
        last_updated,
    };
    let conversation = NewConversation {
        conversation_id: message.conversation_id.clone(),
        message_id: message_id.to_owned(),
        sender: Some("0192:910077473".into()),
        sender_identifier: Some("910077473".into()),
        receiver: Some("0192:910075918".into()),
        receiver_identifier: Some("910075918".into()),
        service_identifier: Some(service.to_owned()),
        channel: Some(CHANNEL.to_owned()),
        ..NewConversation::default()
    };
    (message, conversation)
}

async fn store_in(store: &Store, message_id: &str, service: &str, last_updated: i64) {
    let (message, conversation) = incoming(message_id, service, last_updated);
    assert!(
        store
            .store_incoming(&message, &conversation)
            .await
            .unwrap_or_else(|error| panic!("store incoming {message_id}: {error}")),
        "{message_id} is new, so it must be stored"
    );
}

async fn conversation(store: &Store, message_id: &str, direction: Direction) -> Conversation {
    store
        .conversation(message_id, direction)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no {direction:?} conversation for {message_id}"))
}

/// The message ids of the channel's conversations whose statuses are polled.
async fn pollable_ids(store: &Store) -> Vec<String> {
    store
        .pollable(CHANNEL, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.message_id)
        .collect()
}

fn status_names(conversation: &Conversation) -> Vec<ReceiptStatus> {
    conversation.statuses.iter().map(|s| s.status).collect()
}

async fn register(
    store: &Store,
    message_id: &str,
    direction: Direction,
    status: ReceiptStatus,
    effects: StatusEffects,
) -> Option<MessageStatus> {
    store
        .register_status(message_id, direction, &StatusUpdate::new(status), effects)
        .await
        .unwrap_or_else(|error| panic!("register {status} on {message_id}: {error}"))
}

const POLLING: StatusEffects = StatusEffects {
    starts_polling: true,
    queue: false,
};

fn page(page: i64, size: i64, sort_column: &'static str, descending: bool) -> PageRequest {
    PageRequest {
        page,
        size,
        sort_column,
        descending,
    }
}

fn is_sorted_descending(values: &[i64]) -> bool {
    values.windows(2).all(|pair| pair[0] > pair[1])
}

// ---------------------------------------------------------------------------------------------
// 1. Migrations.

async fn check_migrations_are_idempotent(db: &TestDb) {
    create(db, "m-1").await;
    let applied = "SELECT COUNT(*) FROM _sqlx_migrations WHERE success = TRUE";
    let first = db.count(applied, None).await;
    assert!(first >= 1, "the first open applied the migrations");
    let again = Store::open(&db.url)
        .await
        .expect("opening a migrated database again must succeed");
    again.ping().await.expect("the second store answers");
    let message = again
        .out_message("m-1")
        .await
        .unwrap()
        .expect("the second store sees what the first wrote: the schema was kept");
    assert_eq!(message.message_id, "m-1");
    assert_eq!(
        db.count(applied, None).await,
        first,
        "opening again applies nothing more"
    );
    assert_eq!(
        db.count(
            "SELECT COUNT(DISTINCT version) FROM _sqlx_migrations WHERE success = TRUE",
            None
        )
        .await,
        first,
        "each migration is recorded once"
    );
    for table in [
        "conversation",
        "message_status",
        "status_queue",
        "out_message",
        "message_file",
        "outbox",
        "dead_letter",
        "in_message",
        "subscription",
        "webhook_event",
    ] {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let rows = sqlx::query(&sql).fetch_one(&db.raw).await;
        assert!(rows.is_ok(), "table {table} is missing: {:?}", rows.err());
    }
    // And a third open, after the second, still finds nothing to do.
    Store::open(&db.url)
        .await
        .expect("a third open of the same database");
    assert_eq!(
        db.count("SELECT COUNT(*) FROM _sqlx_migrations", None)
            .await,
        first
    );
    again.close().await;
}

// ---------------------------------------------------------------------------------------------
// 2. Creating outgoing messages.

async fn check_create_out_message(store: &Store) {
    let (message, new_conversation) = new_message("out-1");
    store
        .create_out_message(&message, &new_conversation)
        .await
        .unwrap();

    let stored = store.out_message("out-1").await.unwrap().unwrap();
    assert_eq!(stored, message, "the message reads back as written");
    let created = conversation(store, "out-1", Direction::Outgoing).await;
    assert_eq!(status_names(&created), [ReceiptStatus::Opprettet]);
    assert_eq!(created.conversation_id, "conv-out-1");
    assert_eq!(created.direction, Direction::Outgoing);
    assert_eq!(created.channel.as_deref(), Some(CHANNEL));
    assert_eq!(created.receiver_identifier.as_deref(), Some("910077473"));
    assert!(!created.finished && !created.pollable);
    assert!(
        store
            .conversation("out-1", Direction::Incoming)
            .await
            .unwrap()
            .is_none(),
        "an outgoing message has no incoming conversation"
    );

    // The same message id again, with different content.
    let (mut duplicate, mut duplicate_conversation) = new_message("out-1");
    duplicate.conversation_id = "another".into();
    duplicate.sbd = "{}".into();
    duplicate_conversation.conversation_id = "another".into();
    let error = store
        .create_out_message(&duplicate, &duplicate_conversation)
        .await
        .expect_err("a taken message id must be refused");
    assert!(
        matches!(error, StoreError::Duplicate(_)),
        "expected Duplicate, got {error:?}"
    );
    assert_eq!(
        store.out_message("out-1").await.unwrap().unwrap(),
        message,
        "the first message is untouched"
    );
    let after = conversation(store, "out-1", Direction::Outgoing).await;
    assert_eq!(after, created, "the conversation is untouched");
    let all = store
        .conversations(&ConversationQuery::default(), &page(0, 10, "id", false))
        .await
        .unwrap();
    assert_eq!(all.total, 1, "no second conversation");

    // A message whose out_message row is gone but whose conversation lives on (sent, or
    // deleted) cannot be created again either, and the refused create leaves no message behind.
    assert_eq!(
        store.delete_out_message("out-1").await.unwrap(),
        Some(Vec::new())
    );
    let error = store
        .create_out_message(&message, &new_conversation)
        .await
        .expect_err("the conversation of the id exists");
    assert!(
        matches!(error, StoreError::Duplicate(_)),
        "expected Duplicate, got {error:?}"
    );
    assert!(
        store.out_message("out-1").await.unwrap().is_none(),
        "the refused create was rolled back"
    );
    assert_eq!(
        conversation(store, "out-1", Direction::Outgoing)
            .await
            .statuses
            .len(),
        1,
        "no second OPPRETTET"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Files.

async fn check_add_file(store: &Store) {
    create(store, "f-1").await;
    for (filename, blob) in [
        ("z.pdf", "blob-z"),
        ("a.xml", "blob-a"),
        ("m.txt", "blob-m"),
    ] {
        store.add_file(&file("f-1", filename, blob)).await.unwrap();
    }
    let sealed: Vec<u8> = (0..=255).collect();
    store
        .add_file(&inline_file("f-1", "small.txt", &sealed))
        .await
        .unwrap();
    let files = store.files("f-1").await.unwrap();
    let order: Vec<(i64, &str, &FileContent)> = files
        .iter()
        .map(|f| (f.ordinal, f.filename.as_str(), &f.content))
        .collect();
    assert_eq!(
        order,
        [
            (0, "z.pdf", &FileContent::Blob("blob-z".into())),
            (1, "a.xml", &FileContent::Blob("blob-a".into())),
            (2, "m.txt", &FileContent::Blob("blob-m".into())),
            (3, "small.txt", &FileContent::Inline(sealed)),
        ],
        "files are numbered in upload order, an inline one with its bytes"
    );
    // What sending reads: the message and its files in one query.
    let (message, with_files) = read_for_sending(store, "f-1").await.unwrap();
    assert_eq!(Some(message), store.out_message("f-1").await.unwrap());
    assert_eq!(with_files, files);
    assert!(files[0].primary_document && !files[1].primary_document);
    assert_eq!(files[0].title.as_deref(), Some("Title of z.pdf"));
    assert_eq!(files[0].size, 1234);

    // A second message numbers its files from 0 again.
    create(store, "f-2").await;
    let (_, none_yet) = read_for_sending(store, "f-2").await.unwrap();
    assert!(none_yet.is_empty(), "a message without files has none");
    assert!(read_for_sending(store, "no-such-message").await.is_none());
    store
        .add_file(&file("f-2", "z.pdf", "blob-2z"))
        .await
        .unwrap();
    assert_eq!(store.files("f-2").await.unwrap()[0].ordinal, 0);

    // What the outbox worker reads for the sends it claimed together: each message with its
    // own files in order, an unknown id left out.
    create(store, "f-3").await;
    let mut together = store
        .out_messages_with_files(&["f-3", "no-such-message", "f-2", "f-1"])
        .await
        .unwrap();
    assert_eq!(together.len(), 3, "only the messages that exist");
    for id in ["f-1", "f-2", "f-3"] {
        let (message, files) = together.remove(id).unwrap();
        assert_eq!(Some(message), store.out_message(id).await.unwrap());
        assert_eq!(files, store.files(id).await.unwrap(), "the files of {id}");
    }
    assert!(
        store.out_messages_with_files(&[]).await.unwrap().is_empty(),
        "no ids, nothing read"
    );

    let error = store
        .add_file(&file("f-1", "a.xml", "blob-other"))
        .await
        .expect_err("a taken file name must be refused");
    assert!(
        matches!(error, StoreError::Duplicate(_)),
        "expected Duplicate, got {error:?}"
    );
    assert_eq!(
        store.files("f-1").await.unwrap(),
        files,
        "the files are untouched"
    );

    let error = store
        .add_file(&file("no-such-message", "a.pdf", "blob"))
        .await
        .expect_err("no message, no file");
    assert!(
        matches!(error, StoreError::NotFound(_)),
        "expected NotFound, got {error:?}"
    );
    assert!(store.files("no-such-message").await.unwrap().is_empty());

    store.queue_for_sending("f-1").await.unwrap();
    let error = store
        .add_file(&file("f-1", "late.pdf", "blob-late"))
        .await
        .expect_err("a queued message takes no more files");
    assert!(
        matches!(error, StoreError::Conflict(_)),
        "expected Conflict, got {error:?}"
    );
    assert_eq!(store.files("f-1").await.unwrap().len(), 4);
}

// ---------------------------------------------------------------------------------------------
// 4. Queueing.

async fn check_queue_for_sending_twice(store: &Store) {
    create(store, "q-1").await;
    assert_eq!(store.outbox_depth(now_millis()).await.unwrap(), (0, None));
    assert!(!store.out_message("q-1").await.unwrap().unwrap().queued);

    store.queue_for_sending("q-1").await.unwrap();
    assert!(store.out_message("q-1").await.unwrap().unwrap().queued);
    let error = store
        .queue_for_sending("q-1")
        .await
        .expect_err("a message is queued once");
    assert!(
        matches!(error, StoreError::Conflict(_)),
        "expected Conflict, got {error:?}"
    );
    let (depth, oldest) = store.outbox_depth(now_millis()).await.unwrap();
    assert_eq!(depth, 1, "one outbox row");
    assert!(oldest.is_some_and(|age| age >= 0));

    let error = store
        .queue_for_sending("no-such-message")
        .await
        .expect_err("an unknown message cannot be queued");
    assert!(
        matches!(error, StoreError::NotFound(_)),
        "expected NotFound, got {error:?}"
    );
    assert_eq!(store.outbox_depth(now_millis()).await.unwrap().0, 1);
}

// ---------------------------------------------------------------------------------------------
// 5. Claims are leases.

async fn check_claim_is_a_lease(store: &Store) {
    create_and_queue(store, "c-1").await;
    let t0 = now_millis();
    let lease = t0 + 10_000;

    let claimed = store.claim_outbox("w1", t0, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].message_id, "c-1");
    assert_eq!(claimed[0].channel, CHANNEL);
    assert_eq!(claimed[0].attempts, 0);

    assert!(
        store
            .claim_outbox("w2", t0 + 1, t0 + 20_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "a claimed row is not claimed again while the lease runs"
    );
    assert!(
        store
            .claim_outbox("w2", lease, lease + 10_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "the lease still holds at its last millisecond"
    );
    let reclaimed = store
        .claim_outbox("w2", lease + 1, lease + 10_000, 10)
        .await
        .unwrap();
    assert_eq!(
        reclaimed.len(),
        1,
        "after the lease the row is claimable again"
    );

    // Releasing: first only another worker's claims, which releases nothing here.
    assert_eq!(store.release_claims("w1").await.unwrap(), 0);
    assert!(
        store
            .claim_outbox("w3", t0 + 2, t0 + 10_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "w2 still holds it"
    );
    assert_eq!(store.release_all_claims().await.unwrap(), 1);
    let after_release = store
        .claim_outbox("w3", t0 + 2, t0 + 10_000, 10)
        .await
        .unwrap();
    assert_eq!(
        after_release.len(),
        1,
        "a released row is claimable at once"
    );
    assert_eq!(store.release_claims("w3").await.unwrap(), 1);
    assert_eq!(
        store
            .claim_outbox("w4", t0 + 2, t0 + 10_000, 10)
            .await
            .unwrap()
            .len(),
        1
    );

    // Rescheduling by a worker that does not hold the claim changes nothing.
    assert!(
        !store
            .reschedule("c-1", Some("not-w4"), t0 + 60_000, "not mine")
            .await
            .unwrap()
    );
    assert!(
        !store
            .reschedule("c-1", None, t0 + 60_000, "nobody's lease")
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_outbox("w5", t0 + 3, t0 + 10_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "w4's claim survives a reschedule by another worker, leased or not"
    );

    assert!(
        store
            .reschedule("c-1", Some("w4"), t0 + 60_000, "provider down")
            .await
            .unwrap()
    );
    for now in [t0 + 3, t0 + 59_999] {
        assert!(
            store
                .claim_outbox("w5", now, now + 10_000, 10)
                .await
                .unwrap()
                .is_empty(),
            "a rescheduled row is not due before its next attempt ({now})"
        );
    }
    let due = store
        .claim_outbox("w5", t0 + 60_000, t0 + 70_000, 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1, "due at its next attempt");
    assert_eq!(due[0].attempts, 1, "the failed attempt is counted");

    // The limit is honoured and due rows come oldest first.
    for id in ["c-2", "c-3", "c-4"] {
        create_and_queue(store, id).await;
    }
    let now = now_millis();
    let first = store
        .claim_outbox("w6", now, now + 10_000, 2)
        .await
        .unwrap();
    assert_eq!(first.len(), 2, "at most the limit");
    let second = store
        .claim_outbox("w7", now, now + 10_000, 10)
        .await
        .unwrap();
    assert_eq!(second.len(), 1, "the rest");
    let mut all: Vec<String> = first
        .iter()
        .chain(&second)
        .map(|entry| entry.message_id.clone())
        .collect();
    all.sort();
    assert_eq!(all, ["c-2", "c-3", "c-4"]);

    // A stopping worker releases the claims it will not start, and only its own.
    let (mine, theirs) = (&first[0].message_id, &second[0].message_id);
    assert_eq!(
        store
            .release_claims_on("w6", &[mine.as_str(), theirs.as_str(), "no-such-message"])
            .await
            .unwrap(),
        1,
        "only w6's claim on {mine} is released"
    );
    assert_eq!(store.release_claims_on("w6", &[]).await.unwrap(), 0);
    let again = store
        .claim_outbox("w8", now, now + 10_000, 10)
        .await
        .unwrap();
    let again: Vec<&str> = again
        .iter()
        .map(|entry| entry.message_id.as_str())
        .collect();
    assert_eq!(
        again,
        [mine.as_str()],
        "the released row is due at once; w7's is not"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Concurrent workers on two stores.

async fn check_concurrent_workers(db: &TestDb) {
    const MESSAGES: usize = 200;
    let other = Store::open(&db.url).await.expect("a second store");
    for n in 0..MESSAGES {
        create_and_queue(db, &format!("cc-{n:03}")).await;
    }
    assert_eq!(
        db.outbox_depth(now_millis()).await.unwrap().0,
        MESSAGES as i64
    );

    let mut workers = Vec::new();
    for (s, store) in [db.store.clone(), other.clone()].into_iter().enumerate() {
        for t in 0..2 {
            let store = store.clone();
            let worker = format!("store{s}-task{t}");
            workers.push(tokio::spawn(async move {
                let mut claimed = Vec::new();
                loop {
                    let now = now_millis();
                    let batch = store
                        .claim_outbox(&worker, now, now + 600_000, 7)
                        .await
                        .unwrap_or_else(|error| panic!("{worker} claim: {error}"));
                    if batch.is_empty() {
                        break;
                    }
                    for entry in batch {
                        store
                            .complete_send(
                                &entry.message_id,
                                &format!("ref-{}", entry.message_id),
                                &[],
                                false,
                                false,
                            )
                            .await
                            .unwrap_or_else(|error| {
                                panic!("{worker} complete {}: {error}", entry.message_id)
                            });
                        claimed.push(entry.message_id);
                    }
                }
                claimed
            }));
        }
    }
    let mut claims: HashMap<String, usize> = HashMap::new();
    for worker in workers {
        for message_id in worker.await.expect("a worker panicked") {
            *claims.entry(message_id).or_default() += 1;
        }
    }
    let twice: Vec<_> = claims.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "claimed more than once: {twice:?}");
    assert_eq!(claims.len(), MESSAGES, "every message was claimed");
    assert_eq!(db.outbox_depth(now_millis()).await.unwrap(), (0, None));

    let sent = db
        .statuses(
            &StatusQuery {
                status: Some(ReceiptStatus::Sendt),
                ..StatusQuery::default()
            },
            &page(0, 1000, "s.id", false),
        )
        .await
        .unwrap();
    assert_eq!(sent.total, MESSAGES as i64, "one SENDT per message");
    let conversations = db
        .conversations(&ConversationQuery::default(), &page(0, 1000, "id", false))
        .await
        .unwrap();
    for conversation in &conversations.items {
        assert_eq!(
            status_names(conversation),
            [ReceiptStatus::Opprettet, ReceiptStatus::Sendt],
            "{}",
            conversation.message_id
        );
        assert_eq!(
            conversation.external_system_reference,
            Some(format!("ref-{}", conversation.message_id))
        );
    }
    other.close().await;
}

// ---------------------------------------------------------------------------------------------
// 6b. Whole messages (multipart sends) stored together.

fn queued_message(message_id: &str, reference: &str, files: Vec<MessageFile>) -> QueuedMessage {
    let (mut message, conversation) = new_message(message_id);
    message.queued = true;
    QueuedMessage {
        message,
        conversation,
        files,
        reference: Some(reference.to_owned()),
        title: Some(format!("Title of {message_id}")),
    }
}

async fn check_create_queued_messages(store: &Store) {
    create(store, "taken").await;
    // A message id a sent and removed message left in its conversation stays taken.
    create_and_queue(store, "sent-before").await;
    store
        .complete_send("sent-before", "ext", &[], false, false)
        .await
        .unwrap();
    let mut first = queued_message(
        "q-1",
        "2026/1",
        vec![
            file("q-1", "main.pdf", "blob-q1"),
            inline_file("q-1", "arkivmelding.xml", b"sealed xml"),
        ],
    );
    // As the API brings it: not queued yet, its files not numbered.
    first.message.queued = false;
    let second = queued_message("q-2", "2026/2", vec![file("q-2", "b.pdf", "blob-q2")]);
    let taken = queued_message("taken", "2026/3", vec![file("taken", "t.pdf", "blob-t")]);
    let sent_before = queued_message(
        "sent-before",
        "2026/4",
        vec![file("sent-before", "s.pdf", "blob-s")],
    );
    let again = queued_message(
        "q-1",
        "2026/5",
        vec![file("q-1", "other.pdf", "blob-again")],
    );
    let outcomes = store
        .accept_and_complete(&[&first, &taken, &second, &sent_before, &again], &[])
        .await
        .expect("the batch is written")
        .0;
    let kinds: Vec<&str> = outcomes
        .iter()
        .map(|outcome| match outcome {
            Ok(()) => "stored",
            Err(StoreError::Duplicate(_)) => "duplicate",
            Err(_) => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        ["stored", "duplicate", "stored", "duplicate", "duplicate"],
        "{outcomes:?}"
    );

    for (message_id, reference, names) in [
        ("q-1", "2026/1", vec!["main.pdf", "arkivmelding.xml"]),
        ("q-2", "2026/2", vec!["b.pdf"]),
    ] {
        let stored = store
            .out_message(message_id)
            .await
            .unwrap()
            .expect("stored");
        assert!(stored.queued, "{message_id} is queued");
        let files: Vec<String> = store
            .files(message_id)
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.filename)
            .collect();
        assert_eq!(files, names, "{message_id}'s files in their order");
        let created = conversation(store, message_id, Direction::Outgoing).await;
        assert_eq!(status_names(&created), [ReceiptStatus::Opprettet]);
        assert_eq!(created.message_reference.as_deref(), Some(reference));
    }
    // What the API hands the outbox worker for each is what the worker would read back.
    let read = store
        .out_messages_with_files(&["q-1", "q-2"])
        .await
        .unwrap();
    for one in [&first, &second] {
        assert_eq!(read[&one.message.message_id], one.as_stored());
    }
    // The refused ones left nothing: the taken message as it was, the sent one still gone.
    assert!(!store.out_message("taken").await.unwrap().unwrap().queued);
    assert!(store.files("taken").await.unwrap().is_empty());
    assert!(store.out_message("sent-before").await.unwrap().is_none());
    assert!(store.files("sent-before").await.unwrap().is_empty());
    assert_eq!(
        claim_all(store).await,
        ["q-1", "q-2"],
        "one outbox row per stored message"
    );
}

/// The ids of every due outbox entry, claimed, in order.
async fn claim_all(store: &Store) -> Vec<String> {
    let now = now_millis();
    let mut claimed: Vec<String> = store
        .claim_outbox("w", now, now + 10_000, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.message_id)
        .collect();
    claimed.sort();
    claimed
}

/// The conversation of `id`, sent as [`completed_send`] completes it: OPPRETTET then SENDT,
/// the provider's reference `ext-{id}`, and its message and files removed.
async fn sent_and_removed(store: &Store, id: &str) -> Conversation {
    let sent = conversation(store, id, Direction::Outgoing).await;
    assert_eq!(
        status_names(&sent),
        [ReceiptStatus::Opprettet, ReceiptStatus::Sendt],
        "{id}"
    );
    let reference = format!("ext-{id}");
    assert_eq!(sent.external_system_reference, Some(reference), "{id}");
    assert!(
        store.out_message(id).await.unwrap().is_none(),
        "{id} removed"
    );
    assert!(
        store.files(id).await.unwrap().is_empty(),
        "{id}'s files removed"
    );
    sent
}

/// A message the database refuses: two files by one name break the files' key.
fn refused_message(message_id: &str) -> QueuedMessage {
    queued_message(
        message_id,
        "2026/b",
        vec![
            file(message_id, "same.pdf", "blob-1"),
            file(message_id, "same.pdf", "blob-2"),
        ],
    )
}

/// A send of `id` the provider accepted as `ext-{id}`, implying `statuses`.
fn completed_send(id: &str, statuses: Vec<StatusUpdate>, polls: bool) -> CompletedSend {
    CompletedSend {
        message_id: id.to_owned(),
        reference: format!("ext-{id}"),
        statuses,
        polls_statuses: polls,
        queue: false,
    }
}

/// What runs after a batch's commit is told each accepted message's outcome, in order, once;
/// after a batch the database refuses, it does not run.
async fn check_after_commit(store: &Store) {
    create(store, "taken").await;
    let told: Arc<Mutex<Vec<Vec<bool>>>> = Arc::default();
    let tell = |told: &Arc<Mutex<Vec<Vec<bool>>>>| {
        let told = told.clone();
        move |outcomes: &[Result<(), StoreError>]| {
            told.lock()
                .unwrap()
                .push(outcomes.iter().map(Result::is_ok).collect());
        }
    };
    let fresh = queued_message("fresh", "2026/9", vec![file("fresh", "f.pdf", "blob-f")]);
    let taken = queued_message("taken", "2026/8", vec![file("taken", "t.pdf", "blob-t")]);
    store
        .accept_and_complete_then(&[&fresh, &taken], &[], tell(&told))
        .await
        .expect("the batch is written");
    assert_eq!(*told.lock().unwrap(), [vec![true, false]]);

    let bad = refused_message("bad");
    let refused = store
        .accept_and_complete_then(&[&bad], &[], tell(&told))
        .await;
    assert!(refused.is_err(), "the batch is refused: {refused:?}");
    assert_eq!(told.lock().unwrap().len(), 1, "not told of a refused batch");
}

/// On SQLite what runs after a batch's commit runs before anything else takes the writer: the
/// outbox read of a worker that keeps its claims itself, waiting for the writer meanwhile,
/// reads only once it has run, and finds the batch's message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_runs_after_commit_before_the_next_write() {
    let db = TestDb::sqlite().await;
    let store = db.store.clone();
    let (entered, in_after_commit) = std::sync::mpsc::channel();
    let done = Arc::new(AtomicBool::new(false));
    let after_commit = {
        let done = done.clone();
        move |_: &[Result<(), StoreError>]| {
            entered.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            done.store(true, Ordering::SeqCst);
        }
    };
    let batch = tokio::spawn(async move {
        let fresh = queued_message("fresh", "2026/9", vec![file("fresh", "f.pdf", "blob-f")]);
        store
            .accept_and_complete_then(&[&fresh], &[], after_commit)
            .await
            .map(|_| ())
    });
    tokio::task::spawn_blocking(move || in_after_commit.recv())
        .await
        .unwrap()
        .expect("after_commit runs");
    assert!(
        db.out_message("fresh").await.unwrap().is_some(),
        "after_commit runs once the batch is committed"
    );
    let (due, full) = db
        .due_outbox(now_millis(), 10, |entry| {
            Some((entry.message_id, done.load(Ordering::SeqCst)))
        })
        .await
        .unwrap();
    assert_eq!(
        due,
        [("fresh".to_owned(), true)],
        "the read waited for after_commit"
    );
    assert!(!full, "one entry of ten asked for");
    batch.await.unwrap().expect("the batch is written");
}

/// Messages accepted and sends completed in one call each get their own outcome, as the two
/// calls alone give them, and a refused one leaves the rest written.
async fn check_accept_and_complete(store: &Store) {
    let sent = queued_message(
        "sent",
        "2026/7",
        vec![file("sent", "main.pdf", "blob-sent")],
    );
    let (outcomes, _) = store.accept_and_complete(&[&sent], &[]).await.unwrap();
    assert!(outcomes[0].is_ok(), "{outcomes:?}");
    create(store, "taken").await;
    let fresh = queued_message("fresh", "2026/9", vec![file("fresh", "f.pdf", "blob-f")]);
    let taken = queued_message("taken", "2026/8", vec![file("taken", "t.pdf", "blob-t")]);
    let (accepted, recorded) = store
        .accept_and_complete(
            &[&fresh, &taken],
            &[
                &completed_send("sent", vec![], false),
                &completed_send("missing", vec![], false),
            ],
        )
        .await
        .expect("the batch is written");
    assert!(accepted[0].is_ok(), "{:?}", accepted[0]);
    assert!(
        matches!(accepted[1], Err(StoreError::Duplicate(_))),
        "{:?}",
        accepted[1]
    );
    assert_eq!(
        recorded[0].as_ref().ok(),
        Some(&vec!["blob-sent".to_owned()])
    );
    assert!(
        matches!(recorded[1], Err(StoreError::NotFound(_))),
        "{:?}",
        recorded[1]
    );

    let stored = store.out_message("fresh").await.unwrap().expect("stored");
    assert!(stored.queued);
    let created = conversation(store, "fresh", Direction::Outgoing).await;
    assert_eq!(status_names(&created), [ReceiptStatus::Opprettet]);
    sent_and_removed(store, "sent").await;
    assert!(!store.out_message("taken").await.unwrap().unwrap().queued);
    assert_eq!(
        claim_all(store).await,
        ["fresh"],
        "the sent message left the outbox"
    );
}

/// The rows message `id` has, weighted so that each mix of them sums differently: its
/// message 1, its conversation 2, each file 4, its outbox entry 8. One statement, so one
/// snapshot, even while a write may still be finishing.
async fn stored_rows(db: &TestDb, id: &str) -> i64 {
    db.count(
        "SELECT (SELECT COUNT(*) FROM out_message WHERE message_id = $1) \
         + 2 * (SELECT COUNT(*) FROM conversation WHERE message_id = $1) \
         + 4 * (SELECT COUNT(*) FROM message_file WHERE message_id = $1) \
         + 8 * (SELECT COUNT(*) FROM outbox WHERE message_id = $1)",
        Some(id),
    )
    .await
}

/// A batch the database refuses (two files of one message by one name break the files' key)
/// fails whole: none of its messages is stored and none of its sends is recorded, and the
/// next batch is written as if it had not been.
async fn check_refused_batch(db: &TestDb) {
    let store: &Store = db;
    create_and_queue(store, "to-complete").await;
    let good = queued_message("good", "2026/g", vec![file("good", "g.pdf", "blob-g")]);
    let bad = refused_message("bad");
    let refused = store
        .accept_and_complete(
            &[&good, &bad],
            &[&completed_send("to-complete", vec![], false)],
        )
        .await;
    assert!(refused.is_err(), "the batch is refused: {refused:?}");
    for id in ["good", "bad"] {
        assert_eq!(stored_rows(db, id).await, 0, "nothing of {id} is stored");
    }
    let waiting = conversation(store, "to-complete", Direction::Outgoing).await;
    assert_eq!(
        status_names(&waiting),
        [ReceiptStatus::Opprettet],
        "the send is not recorded"
    );
    assert!(store.out_message("to-complete").await.unwrap().is_some());

    let (accepted, recorded) = store
        .accept_and_complete(&[&good], &[&completed_send("to-complete", vec![], false)])
        .await
        .expect("the next batch is written");
    assert!(accepted[0].is_ok(), "{accepted:?}");
    assert!(recorded[0].is_ok(), "{recorded:?}");
    sent_and_removed(store, "to-complete").await;
    assert!(store.out_message("good").await.unwrap().is_some());
}

/// Sends completed together register their statuses in rounds, as a round of polled statuses
/// would: every SENDT, then every first further status, and so on. Each new status goes on the
/// status queue in that order and gives each subscription an event that names its message,
/// conversation, direction and status; by the status rules SENDT starts polling where the
/// channel polls and LEVERT finishes the conversation without stopping it.
async fn check_completion_rounds(db: &TestDb) {
    let store: &Store = db;
    store
        .create_subscription(&subscription("everything", "http://a.test/hook", None))
        .await
        .unwrap();
    for id in ["round-a", "round-b"] {
        create_and_queue(store, id).await;
    }
    let send = |id: &str| CompletedSend {
        message_id: id.to_owned(),
        reference: format!("ext-{id}"),
        statuses: vec![
            StatusUpdate::new(ReceiptStatus::Mottatt),
            StatusUpdate::new(ReceiptStatus::Levert),
        ],
        polls_statuses: true,
        queue: true,
    };
    let (a, b) = (send("round-a"), send("round-b"));
    let (_, recorded) = store.accept_and_complete(&[], &[&a, &b]).await.unwrap();
    assert!(recorded.iter().all(Result::is_ok), "{recorded:?}");

    let expected: Vec<(String, String)> = [
        ("round-a", "SENDT"),
        ("round-b", "SENDT"),
        ("round-a", "MOTTATT"),
        ("round-b", "MOTTATT"),
        ("round-a", "LEVERT"),
        ("round-b", "LEVERT"),
    ]
    .iter()
    .map(|(id, status)| ((*id).to_owned(), (*status).to_owned()))
    .collect();
    let statuses: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.message_id, s.status FROM message_status s \
         JOIN conversation c ON c.id = s.conv_id WHERE s.status <> 'OPPRETTET' ORDER BY s.id",
    )
    .fetch_all(&db.raw)
    .await
    .unwrap();
    assert_eq!(statuses, expected, "the statuses, numbered in rounds");
    let queued: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.message_id, s.status FROM status_queue q \
         JOIN message_status s ON s.id = q.status_id \
         JOIN conversation c ON c.id = s.conv_id ORDER BY q.status_id",
    )
    .fetch_all(&db.raw)
    .await
    .unwrap();
    assert_eq!(queued, expected, "each new status queued, in order");

    let payloads: Vec<(String,)> = sqlx::query_as("SELECT payload FROM webhook_event ORDER BY id")
        .fetch_all(&db.raw)
        .await
        .unwrap();
    let told: Vec<(String, String, String, String)> = payloads
        .iter()
        .map(|(payload,)| {
            let json: serde_json::Value = serde_json::from_str(payload).expect("JSON");
            let field = |name: &str| json[name].as_str().unwrap_or_default().to_owned();
            (
                field("messageId"),
                field("conversationId"),
                field("direction"),
                field("status"),
            )
        })
        .filter(|(_, _, _, status)| status != "OPPRETTET")
        .collect();
    let expected_events: Vec<(String, String, String, String)> = expected
        .iter()
        .map(|(id, status)| {
            (
                id.clone(),
                format!("conv-{id}"),
                "OUTGOING".to_owned(),
                status.clone(),
            )
        })
        .collect();
    assert_eq!(
        told, expected_events,
        "an event for each new status, in order"
    );

    for id in ["round-a", "round-b"] {
        let done = conversation(store, id, Direction::Outgoing).await;
        assert!(done.finished, "{id} finished by LEVERT");
        assert!(
            done.pollable,
            "{id} polled from SENDT on; LEVERT does not stop it"
        );
        assert!(store.out_message(id).await.unwrap().is_none());
    }
}

/// The conversations a batch creates are last updated when the newest message stored was
/// created: a message refused as a repeat of an id in the batch does not count, however new.
async fn check_batch_times(db: &TestDb) {
    let store: &Store = db;
    create(store, "timed-taken").await;
    let older = queued_message("timed-older", "2026/t", vec![]);
    let mut newer = queued_message("timed-newer", "2026/t", vec![]);
    newer.message.created = older.message.created + 1_000;
    // Newer still, both refused: a repeat of an id in the batch, and an id taken before.
    let mut repeat = queued_message("timed-older", "2026/t", vec![]);
    repeat.message.created = older.message.created + 60_000;
    let mut taken = queued_message("timed-taken", "2026/t", vec![]);
    taken.message.created = older.message.created + 120_000;
    let (accepted, _) = store
        .accept_and_complete(&[&older, &repeat, &newer, &taken], &[])
        .await
        .unwrap();
    let stored: Vec<bool> = accepted.iter().map(Result::is_ok).collect();
    assert_eq!(stored, [true, false, true, false], "{accepted:?}");
    for id in ["timed-older", "timed-newer"] {
        let created = conversation(store, id, Direction::Outgoing).await;
        assert_eq!(
            created.last_update, newer.message.created,
            "{id}: the newest creation time of the messages stored"
        );
    }
}

/// A batch of new messages is stored as storing each alone would: each queued with its files
/// in their order, its conversation with OPPRETTET (the statuses numbered in the batch's
/// order), one outbox entry, and an event for a subscription. A batch with one message whose
/// id a sent message left taken stores the others whole and nothing of that one. Sends
/// completed beside an accepted message are recorded as alone: each takes its reference, a
/// new SENDT with an event, and starts polling where its channel polls; one with SENDT
/// already takes only the new reference.
async fn check_new_messages_batch(db: &TestDb) {
    let store: &Store = db;
    store
        .create_subscription(&subscription("everything", "http://a.test/hook", None))
        .await
        .unwrap();
    // Not in the order of their ids, which an index would give.
    let batch: Vec<QueuedMessage> = ["new-3", "new-1", "new-2"]
        .iter()
        .map(|id| {
            queued_message(
                id,
                &format!("2026/{id}"),
                vec![
                    file(id, "main.pdf", &format!("blob-{id}")),
                    inline_file(id, "arkivmelding.xml", id.as_bytes()),
                ],
            )
        })
        .collect();
    let refs: Vec<&QueuedMessage> = batch.iter().collect();
    let (outcomes, _) = store.accept_and_complete(&refs, &[]).await.unwrap();
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    let read = store
        .out_messages_with_files(&["new-3", "new-1", "new-2"])
        .await
        .unwrap();
    let mut status_ids = Vec::new();
    for one in &batch {
        let id = &one.message.message_id;
        assert_eq!(read[id], one.as_stored(), "{id} as stored");
        let created = conversation(store, id, Direction::Outgoing).await;
        assert_eq!(status_names(&created), [ReceiptStatus::Opprettet], "{id}");
        assert_eq!(created.message_reference, one.reference, "{id}");
        assert_eq!(created.message_title, one.title, "{id}");
        status_ids.push(created.statuses[0].id);
    }
    assert!(
        status_ids.is_sorted(),
        "statuses numbered in the batch's order: {status_ids:?}"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM webhook_event", None).await,
        3,
        "an event for each OPPRETTET"
    );
    assert_eq!(claim_all(store).await, ["new-1", "new-2", "new-3"]);

    create_and_queue(store, "sent-earlier").await;
    store
        .complete_send("sent-earlier", "ext", &[], false, false)
        .await
        .unwrap();
    let events = db.count("SELECT COUNT(*) FROM webhook_event", None).await;
    let fresh = queued_message("new-4", "2026/4", vec![file("new-4", "d.pdf", "blob-4")]);
    let again = queued_message(
        "sent-earlier",
        "2026/5",
        vec![file("sent-earlier", "e.pdf", "blob-5")],
    );
    let (outcomes, _) = store
        .accept_and_complete(&[&fresh, &again], &[])
        .await
        .unwrap();
    assert!(outcomes[0].is_ok(), "{outcomes:?}");
    assert!(
        matches!(outcomes[1], Err(StoreError::Duplicate(_))),
        "{outcomes:?}"
    );
    let read = store.out_messages_with_files(&["new-4"]).await.unwrap();
    assert_eq!(read["new-4"], fresh.as_stored(), "the new one once, whole");
    assert!(store.out_message("sent-earlier").await.unwrap().is_none());
    assert!(store.files("sent-earlier").await.unwrap().is_empty());
    let earlier = conversation(store, "sent-earlier", Direction::Outgoing).await;
    assert_eq!(
        earlier.message_reference, None,
        "the taken one's conversation as it was"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM webhook_event", None).await,
        events + 1,
        "an event for the new one's OPPRETTET only"
    );
    assert_eq!(claim_all(store).await, ["new-4"]);

    // Sends completed in the batch of an accepted message, one of them completed before.
    for id in ["done-1", "done-2"] {
        create(store, id).await;
        store
            .add_file(&file(id, "main.pdf", &format!("blob-{id}")))
            .await
            .unwrap();
        store.queue_for_sending(id).await.unwrap();
    }
    let events = db.count("SELECT COUNT(*) FROM webhook_event", None).await;
    let fresh = queued_message("new-5", "2026/6", vec![file("new-5", "f.pdf", "blob-6")]);
    let (accepted, completed) = store
        .accept_and_complete(
            &[&fresh],
            &[
                &completed_send("done-1", vec![], true),
                &completed_send("missing", vec![], false),
                &completed_send("done-2", vec![], false),
                &completed_send("sent-earlier", vec![], true),
            ],
        )
        .await
        .unwrap();
    assert!(accepted[0].is_ok(), "{accepted:?}");
    assert_eq!(
        completed[0].as_ref().ok(),
        Some(&vec!["blob-done-1".to_owned()])
    );
    assert!(
        matches!(completed[1], Err(StoreError::NotFound(_))),
        "{:?}",
        completed[1]
    );
    assert_eq!(
        completed[2].as_ref().ok(),
        Some(&vec!["blob-done-2".to_owned()])
    );
    assert_eq!(
        completed[3].as_ref().ok(),
        Some(&vec![]),
        "nothing left to remove"
    );
    for (id, polled) in [("done-1", true), ("done-2", false)] {
        let sent = sent_and_removed(store, id).await;
        assert_eq!(sent.pollable, polled, "{id} polled as its channel does");
        assert!(!sent.finished, "{id}");
    }
    let again = conversation(store, "sent-earlier", Direction::Outgoing).await;
    assert_eq!(
        status_names(&again),
        [ReceiptStatus::Opprettet, ReceiptStatus::Sendt],
        "SENDT once"
    );
    assert!(!again.pollable, "a SENDT there already starts no polling");
    assert_eq!(
        again.external_system_reference.as_deref(),
        Some("ext-sent-earlier")
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM webhook_event", None).await,
        events + 3,
        "events for new-5's OPPRETTET and the two new SENDT"
    );
    assert_eq!(
        claim_all(store).await,
        ["new-5"],
        "the sent ones left the outbox"
    );
}

/// Writers take the store's writing connection in turn: many at once all get written; one
/// whose caller gives up midway leaves its batch stored whole or not at all and the next
/// writer unhindered; once the store is closed a write fails at once instead of waiting.
async fn check_writer(db: &TestDb) {
    let store: &Store = db;
    let ids: Vec<String> = (0..32).map(|i| format!("together-{i}")).collect();
    futures::future::join_all(ids.iter().map(|id| create(store, id))).await;
    let together = db
        .count(
            "SELECT COUNT(*) FROM out_message WHERE message_id LIKE 'together-%'",
            None,
        )
        .await;
    assert_eq!(together, 32, "every concurrent write is stored");

    for i in 0..40u64 {
        let id = format!("abandoned-{i}");
        // Given up after a moment that grows, so that some are dropped midway: a batch of the
        // send path, or (every other time) a create, whose transaction sqlx rolls back. Either
        // is stored whole (its rows weigh `whole` below) or not at all.
        let patience = std::time::Duration::from_micros(50 * (i / 2));
        let whole = if i % 2 == 1 {
            let (message, conversation) = new_message(&id);
            let write = store.create_out_message(&message, &conversation);
            let _ = tokio::time::timeout(patience, write).await;
            3
        } else {
            let one = queued_message(&id, "2026/a", vec![file(&id, "a.pdf", "blob-a")]);
            let batch = [&one];
            let write = store.accept_and_complete(&batch, &[]);
            let _ = tokio::time::timeout(patience, write).await;
            15
        };
        let stored = stored_rows(db, &id).await;
        assert!(
            stored == 0 || stored == whole,
            "{id} stored whole ({whole}) or not at all (0): {stored}"
        );
    }
    create(store, "after-abandoned").await;
    let after = queued_message("after-abandoned-batch", "2026/b", vec![]);
    let (accepted, _) = store
        .accept_and_complete(&[&after], &[])
        .await
        .expect("a batch after the abandoned writes");
    assert!(accepted[0].is_ok(), "{accepted:?}");

    store.close().await;
    let after = queued_message("after-close", "2026/c", vec![]);
    let refused = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        store.accept_and_complete(&[&after], &[]),
    )
    .await
    .expect("a write after closing fails at once");
    assert!(refused.is_err(), "{refused:?}");
}

// ---------------------------------------------------------------------------------------------
// 7. Completing a send.

async fn check_complete_sends(store: &Store) {
    for id in ["b-1", "b-2", "b-3"] {
        create(store, id).await;
        store
            .add_file(&file(id, "main.pdf", &format!("blob-{id}")))
            .await
            .unwrap();
        store.queue_for_sending(id).await.unwrap();
    }
    let outcomes = store
        .accept_and_complete(
            &[],
            &[
                &completed_send("b-1", vec![], true),
                &completed_send("missing", vec![], false),
                &completed_send("b-2", vec![StatusUpdate::new(ReceiptStatus::Levert)], false),
                &completed_send("b-1", vec![], true),
                &completed_send("b-3", vec![], false),
            ],
        )
        .await
        .expect("the batch is written")
        .1;
    let outcomes: Vec<Result<Vec<String>, String>> = outcomes
        .into_iter()
        .map(|outcome| outcome.map_err(|error| format!("{error:?}")))
        .collect();
    assert_eq!(outcomes[0], Ok(vec!["blob-b-1".to_owned()]));
    assert!(
        outcomes[1]
            .as_ref()
            .is_err_and(|e| e.starts_with("NotFound")),
        "{:?}",
        outcomes[1]
    );
    assert_eq!(outcomes[2], Ok(vec!["blob-b-2".to_owned()]));
    assert_eq!(outcomes[3], Ok(vec![]), "a repeat completes nothing more");
    assert_eq!(outcomes[4], Ok(vec!["blob-b-3".to_owned()]));

    let first = conversation(store, "b-1", Direction::Outgoing).await;
    assert_eq!(
        status_names(&first),
        [ReceiptStatus::Opprettet, ReceiptStatus::Sendt],
        "SENDT once, though completed twice"
    );
    assert!(first.pollable && !first.finished);
    assert_eq!(first.external_system_reference.as_deref(), Some("ext-b-1"));
    let second = conversation(store, "b-2", Direction::Outgoing).await;
    assert_eq!(
        status_names(&second),
        [
            ReceiptStatus::Opprettet,
            ReceiptStatus::Sendt,
            ReceiptStatus::Levert
        ]
    );
    assert!(second.finished && !second.pollable);
    assert_eq!(second.external_system_reference.as_deref(), Some("ext-b-2"));
    let third = conversation(store, "b-3", Direction::Outgoing).await;
    assert!(!third.pollable, "its channel does not poll");
    assert_eq!(third.external_system_reference.as_deref(), Some("ext-b-3"));
    for id in ["b-1", "b-2", "b-3"] {
        assert!(
            store.out_message(id).await.unwrap().is_none(),
            "{id} removed"
        );
    }
    assert_eq!(store.outbox_depth(now_millis()).await.unwrap(), (0, None));
}

async fn check_complete_send(store: &Store) {
    create(store, "s-1").await;
    store
        .add_file(&file("s-1", "main.pdf", "blob-1"))
        .await
        .unwrap();
    store
        .add_file(&file("s-1", "attachment.xml", "blob-2"))
        .await
        .unwrap();
    store
        .add_file(&inline_file("s-1", "small.txt", b"sealed"))
        .await
        .unwrap();
    store.queue_for_sending("s-1").await.unwrap();
    let now = now_millis();
    assert_eq!(
        store
            .claim_outbox("w", now, now + 10_000, 10)
            .await
            .unwrap()
            .len(),
        1
    );

    let mut blobs = store
        .complete_send(
            "s-1",
            "ext-1",
            &[StatusUpdate::new(ReceiptStatus::Mottatt).described("received by the provider")],
            true,
            true,
        )
        .await
        .unwrap();
    blobs.sort();
    // The channel's statuses go on the status queue, oldest first.
    let head = store
        .peek_status_queue()
        .await
        .unwrap()
        .expect("a queued status");
    assert_eq!(head.status, ReceiptStatus::Sendt);
    assert!(store.remove_from_status_queue(head.id).await.unwrap());
    let next = store
        .peek_status_queue()
        .await
        .unwrap()
        .expect("a second queued status");
    assert_eq!(next.status, ReceiptStatus::Mottatt);
    assert!(store.remove_from_status_queue(next.id).await.unwrap());
    assert!(store.peek_status_queue().await.unwrap().is_none());
    assert!(!store.remove_from_status_queue(next.id).await.unwrap());
    assert_eq!(
        blobs,
        ["blob-1", "blob-2"],
        "the blobs to remove; the inline file went with its row"
    );
    let sent = conversation(store, "s-1", Direction::Outgoing).await;
    assert_eq!(
        status_names(&sent),
        [
            ReceiptStatus::Opprettet,
            ReceiptStatus::Sendt,
            ReceiptStatus::Mottatt
        ]
    );
    assert_eq!(
        sent.statuses[2].description.as_deref(),
        Some("received by the provider")
    );
    assert_eq!(sent.external_system_reference.as_deref(), Some("ext-1"));
    assert!(sent.pollable, "a polling channel's message is polled");
    assert!(!sent.finished);
    assert!(store.out_message("s-1").await.unwrap().is_none());
    assert!(store.files("s-1").await.unwrap().is_empty());
    assert_eq!(store.outbox_depth(now_millis()).await.unwrap(), (0, None));
    assert_eq!(pollable_ids(store).await, ["s-1"]);

    // A channel that does not poll.
    create_and_queue(store, "s-2").await;
    let blobs = store
        .complete_send("s-2", "ext-2", &[], false, false)
        .await
        .unwrap();
    assert!(blobs.is_empty());
    let sent = conversation(store, "s-2", Direction::Outgoing).await;
    assert_eq!(
        status_names(&sent),
        [ReceiptStatus::Opprettet, ReceiptStatus::Sendt]
    );
    assert!(!sent.pollable, "no polls flag, not pollable");
    assert_eq!(sent.external_system_reference.as_deref(), Some("ext-2"));
    assert_eq!(store.pollable(CHANNEL, 10).await.unwrap().len(), 1);

    // A provider that says delivered at once.
    create_and_queue(store, "s-3").await;
    store
        .complete_send(
            "s-3",
            "ext-3",
            &[StatusUpdate::new(ReceiptStatus::Levert)],
            false,
            false,
        )
        .await
        .unwrap();
    let delivered = conversation(store, "s-3", Direction::Outgoing).await;
    assert!(delivered.finished, "LEVERT finishes");

    let error = store
        .complete_send("no-such-message", "ext", &[], false, false)
        .await
        .expect_err("no conversation to complete");
    assert!(
        matches!(error, StoreError::NotFound(_)),
        "expected NotFound, got {error:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Registering statuses.

async fn check_polled_round(store: &Store) {
    for id in ["p-1", "p-2"] {
        create_and_queue(store, id).await;
        store
            .complete_send(id, &format!("ext-{id}"), &[], true, false)
            .await
            .unwrap();
    }
    let polled = |id: &str, update: StatusUpdate| (id.to_owned(), update, StatusEffects::default());
    store
        .register_outgoing_statuses(&[
            polled("p-1", StatusUpdate::new(ReceiptStatus::Mottatt)),
            polled("p-2", StatusUpdate::new(ReceiptStatus::Mottatt)),
            polled("gone", StatusUpdate::new(ReceiptStatus::Levert)),
            polled("p-1", StatusUpdate::new(ReceiptStatus::Levert)),
            polled("p-1", StatusUpdate::new(ReceiptStatus::Levert)),
            polled(
                "p-2",
                StatusUpdate::new(ReceiptStatus::Feil).described("refused by the receiver"),
            ),
        ])
        .await
        .expect("the round is registered");
    let first = conversation(store, "p-1", Direction::Outgoing).await;
    assert_eq!(
        status_names(&first),
        [
            ReceiptStatus::Opprettet,
            ReceiptStatus::Sendt,
            ReceiptStatus::Mottatt,
            ReceiptStatus::Levert
        ],
        "in the order polled, LEVERT once"
    );
    assert!(
        first.finished && first.pollable,
        "LEVERT finishes; polling goes on, for LEST"
    );
    let second = conversation(store, "p-2", Direction::Outgoing).await;
    assert_eq!(
        status_names(&second),
        [
            ReceiptStatus::Opprettet,
            ReceiptStatus::Sendt,
            ReceiptStatus::Mottatt,
            ReceiptStatus::Feil
        ]
    );
    assert_eq!(
        second.statuses[3].description.as_deref(),
        Some("refused by the receiver")
    );
    assert!(second.finished && !second.pollable, "FEIL ends polling");
    assert_eq!(pollable_ids(store).await, ["p-1"]);
}

async fn check_register_status(store: &Store) {
    create(store, "r-1").await;
    let first = store
        .register_status(
            "r-1",
            Direction::Outgoing,
            &StatusUpdate::new(ReceiptStatus::Sendt).described("first"),
            POLLING,
        )
        .await
        .unwrap()
        .expect("a new status is registered");
    assert_eq!(first.status, ReceiptStatus::Sendt);
    assert_eq!(first.message_id, "r-1");
    assert_eq!(first.conversation_id, "conv-r-1");
    assert_eq!(first.direction, Direction::Outgoing);
    assert_eq!(first.description.as_deref(), Some("first"));

    let second = store
        .register_status(
            "r-1",
            Direction::Outgoing,
            &StatusUpdate::new(ReceiptStatus::Sendt).described("second"),
            POLLING,
        )
        .await
        .unwrap();
    assert_eq!(second, None, "a status is registered once");
    let after = conversation(store, "r-1", Direction::Outgoing).await;
    assert_eq!(
        status_names(&after),
        [ReceiptStatus::Opprettet, ReceiptStatus::Sendt],
        "one SENDT row"
    );
    assert_eq!(after.statuses[1].description.as_deref(), Some("first"));
    assert!(after.pollable && !after.finished);

    register(
        store,
        "r-1",
        Direction::Outgoing,
        ReceiptStatus::Levert,
        StatusEffects::default(),
    )
    .await
    .expect("LEVERT is new");
    let delivered = conversation(store, "r-1", Direction::Outgoing).await;
    assert!(delivered.finished, "LEVERT finishes");
    assert!(delivered.pollable, "LEVERT leaves polling on for LEST");

    register(
        store,
        "r-1",
        Direction::Outgoing,
        ReceiptStatus::Lest,
        StatusEffects::default(),
    )
    .await
    .expect("LEST is new");
    let read = conversation(store, "r-1", Direction::Outgoing).await;
    assert!(
        read.finished && !read.pollable,
        "LEST finishes and ends polling"
    );

    // LEST straight after SENDT, on a polled conversation.
    create(store, "r-2").await;
    register(
        store,
        "r-2",
        Direction::Outgoing,
        ReceiptStatus::Sendt,
        POLLING,
    )
    .await;
    assert!(
        conversation(store, "r-2", Direction::Outgoing)
            .await
            .pollable
    );
    register(
        store,
        "r-2",
        Direction::Outgoing,
        ReceiptStatus::Lest,
        StatusEffects::default(),
    )
    .await;
    let read = conversation(store, "r-2", Direction::Outgoing).await;
    assert!(read.finished && !read.pollable);

    // A finished conversation is not polled again.
    create(store, "r-3").await;
    register(
        store,
        "r-3",
        Direction::Outgoing,
        ReceiptStatus::Levert,
        StatusEffects::default(),
    )
    .await;
    register(
        store,
        "r-3",
        Direction::Outgoing,
        ReceiptStatus::Mottatt,
        POLLING,
    )
    .await;
    let late = conversation(store, "r-3", Direction::Outgoing).await;
    assert!(late.finished && !late.pollable);

    // The status queue, when asked for.
    assert!(store.peek_status_queue().await.unwrap().is_none());
    let queued = register(
        store,
        "r-3",
        Direction::Outgoing,
        ReceiptStatus::Annet,
        StatusEffects {
            starts_polling: false,
            queue: true,
        },
    )
    .await
    .unwrap();
    let peeked = store.peek_status_queue().await.unwrap();
    assert_eq!(peeked.as_ref().map(|s| s.id), Some(queued.id));
    assert!(store.remove_from_status_queue(queued.id).await.unwrap());
    assert!(!store.remove_from_status_queue(queued.id).await.unwrap());
    assert!(store.peek_status_queue().await.unwrap().is_none());

    let error = store
        .register_status(
            "no-such-message",
            Direction::Outgoing,
            &StatusUpdate::new(ReceiptStatus::Levert),
            StatusEffects::default(),
        )
        .await
        .expect_err("no conversation");
    assert!(
        matches!(error, StoreError::NotFound(_)),
        "expected NotFound, got {error:?}"
    );
    let error = store
        .register_status(
            "r-1",
            Direction::Incoming,
            &StatusUpdate::new(ReceiptStatus::Levert),
            StatusEffects::default(),
        )
        .await
        .expect_err("r-1 has no incoming conversation");
    assert!(matches!(error, StoreError::NotFound(_)));
}

// ---------------------------------------------------------------------------------------------
// 9. Dead letters.

async fn check_dead_letter(db: &TestDb) {
    let store: &Store = db;
    assert_eq!(store.dead_letter_count().await.unwrap(), 0);

    create(store, "d-1").await;
    store
        .add_file(&file("d-1", "main.pdf", "blob-d1"))
        .await
        .unwrap();
    store.queue_for_sending("d-1").await.unwrap();
    let now = now_millis();
    store.claim_outbox("w", now, now + 1000, 1).await.unwrap();
    store
        .reschedule("d-1", Some("w"), now, "provider down")
        .await
        .unwrap();
    let blobs = store
        .dead_letter("d-1", "gave up", StatusEffects::default())
        .await
        .unwrap();
    assert_eq!(blobs, ["blob-d1"]);
    assert_eq!(store.dead_letter_count().await.unwrap(), 1);
    let failed = conversation(store, "d-1", Direction::Outgoing).await;
    assert_eq!(
        status_names(&failed),
        [ReceiptStatus::Opprettet, ReceiptStatus::Feil]
    );
    assert_eq!(failed.statuses[1].description.as_deref(), Some("gave up"));
    assert!(failed.finished && !failed.pollable);
    assert!(store.out_message("d-1").await.unwrap().is_none());
    assert!(store.files("d-1").await.unwrap().is_empty());
    assert_eq!(store.outbox_depth(now_millis()).await.unwrap(), (0, None));
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM dead_letter WHERE message_id = $1 AND attempts = 1 \
             AND reason = 'gave up' AND channel = 'dpo'",
            Some("d-1")
        )
        .await,
        1,
        "the dead letter keeps the attempts, the reason and the channel"
    );

    // A message whose lifetime ran out before it was ever queued.
    create(store, "d-2").await;
    let blobs = store
        .finish_unsent(
            "d-2",
            ReceiptStatus::LevetidUtlopt,
            "expired",
            StatusEffects {
                starts_polling: false,
                queue: true,
            },
        )
        .await
        .unwrap();
    assert!(blobs.is_empty());
    assert_eq!(store.dead_letter_count().await.unwrap(), 2);
    let expired = conversation(store, "d-2", Direction::Outgoing).await;
    assert_eq!(
        status_names(&expired),
        [ReceiptStatus::Opprettet, ReceiptStatus::LevetidUtlopt]
    );
    assert!(expired.finished);
    assert!(store.out_message("d-2").await.unwrap().is_none());
    let queued = store.peek_status_queue().await.unwrap().unwrap();
    assert_eq!(
        (queued.message_id.as_str(), queued.status),
        ("d-2", ReceiptStatus::LevetidUtlopt),
        "queue: true puts the status on the status queue"
    );

    let error = store
        .dead_letter("no-such-message", "gave up", StatusEffects::default())
        .await
        .expect_err("nothing to dead-letter");
    assert!(
        matches!(error, StoreError::NotFound(_)),
        "expected NotFound, got {error:?}"
    );
    assert_eq!(store.dead_letter_count().await.unwrap(), 2);
}

// ---------------------------------------------------------------------------------------------
// 10. Storing received messages.

async fn check_store_incoming_dedupe(store: &Store) {
    let (message, new_conversation) = incoming("in-1", "DPO", now_millis());
    assert!(
        store
            .store_incoming(&message, &new_conversation)
            .await
            .unwrap()
    );
    let mut again = message.clone();
    again.sbd = "{}".into();
    assert!(
        !store
            .store_incoming(&again, &new_conversation)
            .await
            .unwrap(),
        "a message received before is not stored again"
    );
    assert_eq!(
        store.incoming_depth().await.unwrap(),
        1,
        "one in_message row"
    );
    assert_eq!(
        store.in_message("in-1").await.unwrap().unwrap(),
        message,
        "the first copy is kept"
    );
    let received = conversation(store, "in-1", Direction::Incoming).await;
    assert_eq!(
        status_names(&received),
        [ReceiptStatus::Opprettet, ReceiptStatus::InnkommendeMottatt]
    );
    assert_eq!(received.direction, Direction::Incoming);
    assert!(!received.finished);

    // Once the archive system took it, a redelivery is still recognised.
    let now = now_millis();
    store
        .peek_incoming(&MessageQuery::default(), now, now + 60_000)
        .await
        .unwrap()
        .unwrap();
    store.take_incoming("in-1", now).await.unwrap();
    assert!(
        !store
            .store_incoming(&message, &new_conversation)
            .await
            .unwrap(),
        "the conversation outlives the message and still deduplicates"
    );
    assert_eq!(store.incoming_depth().await.unwrap(), 0);

    // An outgoing message with the same id does not hide an incoming one.
    create(store, "in-2").await;
    store_in(store, "in-2", "DPO", now_millis()).await;
    assert_eq!(store.incoming_depth().await.unwrap(), 1);
}

// ---------------------------------------------------------------------------------------------
// 11. Peeking locks.

async fn check_peek_incoming_locks(store: &Store) {
    let now = now_millis();
    store_in(store, "p-old", "DPO", now - 2_000).await;
    store_in(store, "p-new", "DPE", now - 1_000).await;
    let any = MessageQuery::default();

    let first = store
        .peek_incoming(&any, now, now + 1_000)
        .await
        .unwrap()
        .expect("a message to peek");
    assert_eq!(first.message_id, "p-old", "the oldest first");
    assert_eq!(first.lock_until, Some(now + 1_000));
    let second = store
        .peek_incoming(&any, now, now + 1_000)
        .await
        .unwrap()
        .expect("the other message");
    assert_eq!(second.message_id, "p-new", "a locked message is skipped");
    assert!(
        store
            .peek_incoming(&any, now, now + 1_000)
            .await
            .unwrap()
            .is_none(),
        "both are locked"
    );

    // The lock holds through its last millisecond, then lapses.
    assert!(
        store
            .peek_incoming(&any, now + 1_000, now + 5_000)
            .await
            .unwrap()
            .is_none()
    );
    let relocked = store
        .peek_incoming(&any, now + 1_001, now + 5_000)
        .await
        .unwrap()
        .expect("an expired lock does not hold");
    assert_eq!(relocked.message_id, "p-old");
    assert_eq!(relocked.lock_until, Some(now + 5_000));

    // unlock_expired clears only the locks that ran out (p-new's, not p-old's new one).
    assert_eq!(store.unlock_expired(now + 2_000).await.unwrap(), 1);
    assert_eq!(
        store.in_message("p-new").await.unwrap().unwrap().lock_until,
        None
    );
    assert_eq!(
        store.in_message("p-old").await.unwrap().unwrap().lock_until,
        Some(now + 5_000)
    );
    assert_eq!(store.unlock_expired(now + 2_000).await.unwrap(), 0);
    let unlocked = store
        .peek_incoming(&any, now, now + 1_000)
        .await
        .unwrap()
        .expect("an unlocked message is peekable at once");
    assert_eq!(unlocked.message_id, "p-new");

    // A filter narrows the peek.
    store_in(store, "p-dpe", "DPE", now - 500).await;
    store_in(store, "p-dpo", "DPO", now - 400).await;
    let dpo = MessageQuery {
        service_identifier: Some("DPO".into()),
        ..MessageQuery::default()
    };
    let peeked = store
        .peek_incoming(&dpo, now, now + 1_000)
        .await
        .unwrap()
        .expect("the unlocked DPO message");
    assert_eq!(peeked.message_id, "p-dpo");
    assert!(
        store
            .peek_incoming(&dpo, now, now + 1_000)
            .await
            .unwrap()
            .is_none(),
        "no unlocked DPO message left, though a DPE one is"
    );
}

// ---------------------------------------------------------------------------------------------
// 12. Taking received messages.

async fn check_take_incoming(store: &Store) {
    store_in(store, "t-1", "DPO", now_millis()).await;
    let now = now_millis();
    let error = store
        .take_incoming("t-1", now)
        .await
        .expect_err("an unpeeked message cannot be taken");
    assert!(
        matches!(error, StoreError::Conflict(_)),
        "expected Conflict, got {error:?}"
    );
    assert!(store.in_message("t-1").await.unwrap().is_some());

    store
        .peek_incoming(&MessageQuery::default(), now, now + 1_000)
        .await
        .unwrap()
        .unwrap();
    let error = store
        .take_incoming("t-1", now + 1_001)
        .await
        .expect_err("a lapsed lock does not allow taking");
    assert!(
        matches!(error, StoreError::Conflict(_)),
        "expected Conflict, got {error:?}"
    );
    assert!(store.in_message("t-1").await.unwrap().is_some());

    let taken = store.take_incoming("t-1", now + 500).await.unwrap();
    assert_eq!(taken.message_id, "t-1");
    assert_eq!(taken.package_blob.as_deref(), Some("blob-t-1"));
    assert!(store.in_message("t-1").await.unwrap().is_none(), "row gone");
    assert_eq!(store.incoming_depth().await.unwrap(), 0);
    let delivered = conversation(store, "t-1", Direction::Incoming).await;
    assert_eq!(
        status_names(&delivered),
        [
            ReceiptStatus::Opprettet,
            ReceiptStatus::InnkommendeMottatt,
            ReceiptStatus::InnkommendeLevert
        ]
    );
    assert!(delivered.finished && !delivered.pollable);

    let error = store
        .take_incoming("t-1", now + 500)
        .await
        .expect_err("taken already");
    assert!(
        matches!(error, StoreError::NotFound(_)),
        "expected NotFound, got {error:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 13. Listings.

async fn check_listings(store: &Store) {
    let t0 = now_millis();
    // Five outgoing, three incoming; three outgoing have a lifetime.
    for (n, expiry) in [
        Some(t0 + 1_000),
        Some(t0 + 5_000),
        None,
        Some(t0 + 500),
        None,
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("l-out-{n}");
        let (mut message, mut new_conversation) = new_message(&id);
        message.expiry = expiry;
        new_conversation.expiry = expiry;
        if n == 4 {
            new_conversation.receiver_identifier = Some("999999999".into());
        }
        store
            .create_out_message(&message, &new_conversation)
            .await
            .unwrap();
    }
    for n in 0..3 {
        store_in(store, &format!("l-in-{n}"), "DPE", t0).await;
    }
    // l-out-3 is delivered, so its lifetime no longer matters.
    register(
        store,
        "l-out-3",
        Direction::Outgoing,
        ReceiptStatus::Levert,
        StatusEffects::default(),
    )
    .await;
    register(
        store,
        "l-in-0",
        Direction::Incoming,
        ReceiptStatus::Levert,
        StatusEffects::default(),
    )
    .await;
    // Statuses at known times.
    for (id, at) in [("l-out-0", 1_000), ("l-out-1", 2_000), ("l-out-2", 3_000)] {
        store
            .register_status(
                id,
                Direction::Outgoing,
                &StatusUpdate {
                    at: Some(at),
                    ..StatusUpdate::new(ReceiptStatus::Annet)
                },
                StatusEffects::default(),
            )
            .await
            .unwrap();
    }

    let everything = ConversationQuery::default();
    let first = store
        .conversations(&everything, &page(0, 3, "id", true))
        .await
        .unwrap();
    assert_eq!(first.total, 8);
    assert_eq!(first.items.len(), 3);
    let ids: Vec<i64> = first.items.iter().map(|c| c.id).collect();
    assert!(is_sorted_descending(&ids), "newest first: {ids:?}");
    assert_eq!(first.items[0].message_id, "l-in-2");
    assert!(
        !first.items[0].statuses.is_empty(),
        "listed conversations carry their statuses"
    );
    let last = store
        .conversations(&everything, &page(2, 3, "id", true))
        .await
        .unwrap();
    assert_eq!(last.total, 8);
    assert_eq!(last.items.len(), 2, "the last page holds the rest");
    assert_eq!(last.items[1].message_id, "l-out-0", "the oldest is last");
    let beyond = store
        .conversations(&everything, &page(3, 3, "id", true))
        .await
        .unwrap();
    assert!(beyond.items.is_empty());
    assert_eq!(beyond.total, 8);
    let ascending = store
        .conversations(&everything, &page(0, 1, "id", false))
        .await
        .unwrap();
    assert_eq!(ascending.items[0].message_id, "l-out-0");

    let incoming = store
        .conversations(
            &ConversationQuery {
                direction: Some(Direction::Incoming),
                ..ConversationQuery::default()
            },
            &page(0, 10, "id", false),
        )
        .await
        .unwrap();
    assert_eq!(incoming.total, 3);
    assert!(
        incoming
            .items
            .iter()
            .all(|c| c.direction == Direction::Incoming)
    );
    let finished = store
        .conversations(
            &ConversationQuery {
                finished: Some(true),
                ..ConversationQuery::default()
            },
            &page(0, 10, "id", false),
        )
        .await
        .unwrap();
    let finished_ids: Vec<&str> = finished
        .items
        .iter()
        .map(|c| c.message_id.as_str())
        .collect();
    assert_eq!(finished_ids, ["l-out-3", "l-in-0"]);
    let by_receiver = store
        .conversations(
            &ConversationQuery {
                receiver_identifier: Some("999999999".into()),
                direction: Some(Direction::Outgoing),
                ..ConversationQuery::default()
            },
            &page(0, 10, "id", false),
        )
        .await
        .unwrap();
    assert_eq!(by_receiver.total, 1);
    assert_eq!(by_receiver.items[0].message_id, "l-out-4");
    let none = store
        .conversations(
            &ConversationQuery {
                last_update_to: Some(t0 - 1),
                ..ConversationQuery::default()
            },
            &page(0, 10, "id", false),
        )
        .await
        .unwrap();
    assert_eq!(none.total, 0, "nothing was changed before the test began");

    // Statuses.
    let opprettet = store
        .statuses(
            &StatusQuery {
                status: Some(ReceiptStatus::Opprettet),
                ..StatusQuery::default()
            },
            &page(0, 5, "s.id", true),
        )
        .await
        .unwrap();
    assert_eq!(opprettet.total, 8);
    assert_eq!(opprettet.items.len(), 5);
    let status_ids: Vec<i64> = opprettet.items.iter().map(|s| s.id).collect();
    assert!(is_sorted_descending(&status_ids), "{status_ids:?}");
    assert!(
        opprettet
            .items
            .iter()
            .all(|s| s.status == ReceiptStatus::Opprettet)
    );
    let in_window = store
        .statuses(
            &StatusQuery {
                from: Some(1_500),
                to: Some(3_000),
                ..StatusQuery::default()
            },
            &page(0, 10, "s.last_update", true),
        )
        .await
        .unwrap();
    let window: Vec<(&str, i64)> = in_window
        .items
        .iter()
        .map(|s| (s.message_id.as_str(), s.last_update))
        .collect();
    assert_eq!(
        window,
        [("l-out-2", 3_000), ("l-out-1", 2_000)],
        "from is inclusive, to is inclusive, newest first"
    );
    let of_one = store
        .statuses(
            &StatusQuery {
                message_id: Some("l-in-0".into()),
                ..StatusQuery::default()
            },
            &page(0, 10, "s.id", false),
        )
        .await
        .unwrap();
    let names: Vec<ReceiptStatus> = of_one.items.iter().map(|s| s.status).collect();
    assert_eq!(
        names,
        [
            ReceiptStatus::Opprettet,
            ReceiptStatus::InnkommendeMottatt,
            ReceiptStatus::Levert
        ]
    );
    let by_id = store
        .statuses(
            &StatusQuery {
                id: Some(of_one.items[1].id),
                ..StatusQuery::default()
            },
            &page(0, 10, "s.id", false),
        )
        .await
        .unwrap();
    assert_eq!(by_id.total, 1);
    assert_eq!(by_id.items[0].status, ReceiptStatus::InnkommendeMottatt);

    // Expired: unfinished, with a lifetime that ended, soonest first.
    let expired_ids = |list: Vec<Conversation>| -> Vec<String> {
        list.into_iter().map(|c| c.message_id).collect()
    };
    assert!(store.expired(t0, 10).await.unwrap().is_empty());
    assert_eq!(
        expired_ids(store.expired(t0 + 2_000, 10).await.unwrap()),
        ["l-out-0"],
        "l-out-3 expired too, but it is finished"
    );
    assert_eq!(
        expired_ids(store.expired(t0 + 6_000, 10).await.unwrap()),
        ["l-out-0", "l-out-1"]
    );
    assert_eq!(store.expired(t0 + 6_000, 1).await.unwrap().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// 14. Webhooks.

fn subscription(name: &str, endpoint: &str, filter: Option<&str>) -> Subscription {
    Subscription {
        id: 0,
        name: name.to_owned(),
        push_endpoint: endpoint.to_owned(),
        resource: "all".to_owned(),
        event: "all".to_owned(),
        filter: filter.map(str::to_owned),
    }
}

fn payload_of(event: &WebhookEvent) -> (String, String, String) {
    let json: serde_json::Value =
        serde_json::from_str(&event.payload).expect("the payload is JSON");
    let field = |name: &str| json[name].as_str().unwrap_or_default().to_owned();
    (field("messageId"), field("status"), field("direction"))
}

async fn check_webhooks(db: &TestDb) {
    let store: &Store = db;
    let all = store
        .create_subscription(&subscription("everything", "http://a.test/hook", None))
        .await
        .unwrap();
    assert!(all.id > 0);
    assert_eq!(all.name, "everything");
    let error = store
        .create_subscription(&subscription("everything", "http://a.test/hook", None))
        .await
        .expect_err("same name and endpoint");
    assert!(
        matches!(error, StoreError::Duplicate(_)),
        "expected Duplicate, got {error:?}"
    );
    let delivered = store
        .create_subscription(&subscription(
            "delivered",
            "http://b.test/hook",
            Some("status=LEVERT&direction=OUTGOING"),
        ))
        .await
        .unwrap();
    assert_ne!(all.id, delivered.id);
    assert_eq!(
        store.subscription(delivered.id).await.unwrap(),
        Some(delivered.clone())
    );

    create(store, "w-out").await; // OPPRETTET, outgoing
    register(
        store,
        "w-out",
        Direction::Outgoing,
        ReceiptStatus::Levert,
        StatusEffects::default(),
    )
    .await; // LEVERT, outgoing
    store_in(store, "w-in", "DPO", now_millis()).await; // OPPRETTET, INNKOMMENDE_MOTTATT
    register(
        store,
        "w-in",
        Direction::Incoming,
        ReceiptStatus::Levert,
        StatusEffects::default(),
    )
    .await; // LEVERT, incoming
    // A status registered again makes no event.
    assert!(
        register(
            store,
            "w-out",
            Direction::Outgoing,
            ReceiptStatus::Levert,
            StatusEffects::default(),
        )
        .await
        .is_none()
    );

    let events_of = |id: i64| {
        let id = id.to_string();
        async move {
            db.count(
                "SELECT COUNT(*) FROM webhook_event WHERE CAST(subscription_id AS TEXT) = $1",
                Some(&id),
            )
            .await
        }
    };
    assert_eq!(events_of(all.id).await, 5, "one event per status");
    assert_eq!(
        events_of(delivered.id).await,
        1,
        "only LEVERT of an outgoing message"
    );

    // Only the head of each subscription is due, in id order.
    let far = now_millis() + 1_000_000;
    let due = store.due_webhook_events(far).await.unwrap();
    assert_eq!(due.len(), 2, "one head per subscription: {due:?}");
    assert!(due[0].id < due[1].id);
    assert_eq!(due[0].subscription_id, all.id);
    assert_eq!(due[0].push_endpoint, "http://a.test/hook");
    assert_eq!(
        payload_of(&due[0]),
        ("w-out".into(), "OPPRETTET".into(), "OUTGOING".into())
    );
    assert_eq!(due[1].subscription_id, delivered.id);
    assert_eq!(due[1].push_endpoint, "http://b.test/hook");
    assert_eq!(
        payload_of(&due[1]),
        ("w-out".into(), "LEVERT".into(), "OUTGOING".into())
    );
    assert_eq!(due[0].attempts, 0);

    // A failed push holds its subscription back until it is due again.
    let head = due[0].id;
    store
        .webhook_failed(head, far + 10_000, "503 Service Unavailable")
        .await
        .unwrap();
    let now_due = store.due_webhook_events(far).await.unwrap();
    assert_eq!(
        now_due.iter().map(|e| e.id).collect::<Vec<_>>(),
        [due[1].id],
        "the failed head is not due and nothing overtakes it"
    );
    let retried = store.due_webhook_events(far + 10_000).await.unwrap();
    assert_eq!(retried[0].id, head);
    assert_eq!(retried[0].attempts, 1);

    // Delivering each head in turn yields the subscription's events in order.
    let mut sequence = Vec::new();
    loop {
        let due = store.due_webhook_events(far + 10_000).await.unwrap();
        let Some(event) = due.iter().find(|e| e.subscription_id == all.id) else {
            break;
        };
        sequence.push(payload_of(event));
        store.webhook_delivered(event.id).await.unwrap();
        assert!(sequence.len() <= 5, "delivered events come back");
    }
    let expected: Vec<(String, String, String)> = [
        ("w-out", "OPPRETTET", "OUTGOING"),
        ("w-out", "LEVERT", "OUTGOING"),
        ("w-in", "OPPRETTET", "INCOMING"),
        ("w-in", "INNKOMMENDE_MOTTATT", "INCOMING"),
        ("w-in", "LEVERT", "INCOMING"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(sequence, expected);
    assert_eq!(events_of(all.id).await, 0);
    assert_eq!(events_of(delivered.id).await, 1);

    // Deleting a subscription takes its pending events with it.
    assert!(store.delete_subscription(delivered.id).await.unwrap());
    assert_eq!(events_of(delivered.id).await, 0);
    assert!(store.due_webhook_events(far).await.unwrap().is_empty());
}

async fn check_retention(store: &Store) {
    create(store, "r-finished").await;
    create(store, "r-open").await;
    create_and_queue(store, "r-dead").await;
    store
        .register_status(
            "r-finished",
            Direction::Outgoing,
            &StatusUpdate::new(ReceiptStatus::Levert),
            StatusEffects::default(),
        )
        .await
        .unwrap();
    store
        .dead_letter("r-dead", "gave up", StatusEffects::default())
        .await
        .unwrap();

    // Nothing is old enough yet.
    let long_ago = now_millis() - 86_400_000;
    assert_eq!(store.purge_finished(long_ago).await.unwrap(), 0);
    assert_eq!(store.purge_dead_letters(long_ago).await.unwrap(), 0);
    assert_eq!(store.dead_letter_count().await.unwrap(), 1);

    // Past the retention time, the finished conversations go with their statuses; the open
    // one stays, whatever its age.
    let later = now_millis() + 1000;
    assert_eq!(store.purge_finished(later).await.unwrap(), 2);
    assert!(
        store
            .conversation("r-finished", Direction::Outgoing)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .conversation("r-dead", Direction::Outgoing)
            .await
            .unwrap()
            .is_none()
    );
    let open = conversation(store, "r-open", Direction::Outgoing).await;
    assert_eq!(status_names(&open), [ReceiptStatus::Opprettet]);
    let statuses = store
        .statuses(&StatusQuery::default(), &page(0, 100, "s.id", false))
        .await
        .unwrap();
    assert_eq!(
        statuses.total, 1,
        "only the open conversation's status is left"
    );
    assert_eq!(store.purge_dead_letters(later).await.unwrap(), 1);
    assert_eq!(store.dead_letter_count().await.unwrap(), 0);
}

/// Closing the store while a batch of the send path is written on its thread waits for the
/// batch and returns, even on a runtime of one thread, where the batch's caller cannot run
/// again before the close is done.
#[test]
fn closing_the_store_during_a_batch_returns() {
    let (closed, returned) = std::sync::mpsc::channel();
    let closing = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let db = TestDb::sqlite().await;
            let messages: Vec<QueuedMessage> = (0..200)
                .map(|i| queued_message(&format!("closing-{i}"), "2026/c", vec![]))
                .collect();
            let store = db.store.clone();
            let batch = tokio::spawn(async move {
                let batch: Vec<&QueuedMessage> = messages.iter().collect();
                store.accept_and_complete(&batch, &[]).await.map(|_| ())
            });
            // The batch takes the writer and hands its job to the thread meanwhile.
            for _ in 0..50 {
                tokio::task::yield_now().await;
            }
            db.store.close().await;
            let written = batch.await.expect("the batch's task ends");
            assert!(written.is_ok(), "the batch in hand is written: {written:?}");
            let stored = db
                .count(
                    "SELECT COUNT(*) FROM out_message WHERE message_id LIKE 'closing-%'",
                    None,
                )
                .await;
            assert_eq!(stored, 200);
        });
        let _ = closed.send(());
    });
    // A failed assertion ends the thread without a word (and its panic is shown below); a
    // close that waits on the batch's caller never ends it.
    if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
        returned.recv_timeout(std::time::Duration::from_secs(30))
    {
        panic!("closing the store during a batch did not return within 30 s");
    }
    if let Err(panic) = closing.join() {
        std::panic::resume_unwind(panic);
    }
}
