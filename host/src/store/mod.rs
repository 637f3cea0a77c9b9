//! Persistence: conversations, statuses, messages in and out with their files, the outbox, dead
//! letters, subscriptions and webhook events.
//!
//! One set of queries serves both deployments through sqlx's `Any` driver: SQLite (embedded, the
//! default, WAL) and PostgreSQL (several instances). Keeping a single implementation means every
//! rule (idempotent statuses, the lock of a peek, the claim of an outbox row) is written once and
//! proven on both; where the dialects must differ (claiming with `FOR UPDATE SKIP LOCKED`,
//! advisory locks for the pollers) the code says so next to the query. The one exception is the
//! send path's batch on SQLite, written on a thread and connection of its own for speed
//! (`sqlite_send_path`); it shares the status rules' and events' statements, and the store's
//! tests hold it to the same behaviour. Times are integers (milliseconds) and flags are 0/1 so
//! that both drivers decode them alike.

mod conversations;
mod filter;
mod group_commit;
mod in_messages;
mod metrics;
mod model;
mod out_messages;
mod outbox;
mod schema;
mod sql_lists;
mod sqlite_send_path;
mod status_outbox;
mod webhooks;
mod writer;

use std::path::Path;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor as _};

use writer::{SqliteWriter, WriteConnection, Writer};

pub use conversations::StatusEffects;
pub use filter::{ConversationQuery, MessageQuery, PageRequest, StatusQuery};
pub use group_commit::{BatchWrite, GroupCommit, no_outcome};
pub use metrics::MessageCount;
pub use model::*;
pub use out_messages::AcceptedAndCompleted;
pub use status_outbox::{StatusReply, StatusReplyEntry};
pub use webhooks::{EventFilter, status_event_payload};

/// Which database is behind the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// The embedded default: one instance.
    Sqlite,
    /// Several instances share it.
    Postgres,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row to create exists already.
    #[error("{0}")]
    Duplicate(String),
    /// The row asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The row exists but is not in a state that allows the change.
    #[error("{0}")]
    Conflict(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// SQLite failed on the send path's own connection (see `sqlite_send_path`).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The schema could not be brought up to date.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

/// The store; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    /// Where writes go. On SQLite one writer (a connection, and the send path's thread):
    /// writers wait their turn for it instead of in SQLite's busy handler, which sleeps 1, 2,
    /// 5 … 100 ms between tries and leaves the write lock idle meanwhile. On PostgreSQL it is
    /// `pool`.
    writer: Writer,
}

impl Store {
    /// Opens the database at `url` (`sqlite://…` or `postgres://…`), creating an SQLite file
    /// and its directory when missing, and brings the schema up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Dialect::Postgres
        } else {
            return Err(StoreError::Conflict(format!(
                "database URL {url:?} is neither sqlite:// nor postgres://"
            )));
        };
        let url = match dialect {
            Dialect::Sqlite => sqlite_url(url)?,
            Dialect::Postgres => url.to_owned(),
        };
        let (pool, writer) = match dialect {
            // One writer at a time is SQLite's nature: readers share a small pool (WAL lets
            // them read while a write goes on) and writers queue for the one writing
            // connection (see `writer`).
            Dialect::Sqlite => {
                let settings = format!("PRAGMA journal_mode = WAL; {SQLITE_SETTINGS}");
                let writer = SqliteWriter::open(&url, settings).await?;
                let writer = Writer::Sqlite(Arc::new(tokio::sync::Mutex::new(writer)));
                (sqlite_pool(&url).await?, writer)
            }
            Dialect::Postgres => {
                let pool = AnyPoolOptions::new()
                    .acquire_timeout(Duration::from_secs(30))
                    .max_connections(16)
                    .connect(&url)
                    .await?;
                (pool.clone(), Writer::Postgres(pool))
            }
        };
        schema::migrate(&mut *writer.connection().await?, dialect).await?;
        Ok(Self { pool, writer })
    }

    /// The database behind it.
    pub fn dialect(&self) -> Dialect {
        match self.writer {
            Writer::Sqlite(_) => Dialect::Sqlite,
            Writer::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Whether the database answers, for readiness.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the readers' pool and the writing connection (or pool), waiting for those in use;
    /// on SQLite it also ends the send path's thread, which by then has no batch in hand.
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }

    /// The pool reads go to.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The connection writes go to, held until dropped: statements outside a transaction run
    /// on it, and [`WriteConnection::begin`] begins one.
    async fn write_connection(&self) -> Result<WriteConnection, sqlx::Error> {
        self.writer.connection().await
    }
}

impl Store {
    /// The statement that leases due rows of a queue table (`outbox`, `status_outbox`) keyed by
    /// `key`: up to `$4` rows due at `$3`, unclaimed or with an expired lease, are claimed by
    /// worker `$2` until `$1`, and `columns` of them returned. PostgreSQL skips rows another
    /// instance is claiming at that moment; SQLite has one writer.
    fn lease_statement(&self, table: &str, key: &str, columns: &str) -> String {
        let lock = match self.dialect() {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        format!(
            "UPDATE {table} SET claimed_until = $1, claimed_by = $2 WHERE {key} IN (\
             SELECT {key} FROM {table} WHERE next_attempt_at <= $3 \
             AND (claimed_until IS NULL OR claimed_until < $3) \
             ORDER BY next_attempt_at LIMIT $4{lock}) \
             RETURNING {columns}"
        )
    }
}

/// How every SQLite connection is set up. The busy timeout stays for anything else that opens
/// the file.
const SQLITE_SETTINGS: &str =
    "PRAGMA busy_timeout = 30000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;";

/// The connections SQLite's readers share.
const SQLITE_READERS: u32 = 4;

/// The readers' pool of [`SQLITE_READERS`] connections to the SQLite database at `url`, each
/// set up alike.
///
/// A connection is not pinged before each use, as sqlx does by default: an SQLite connection is
/// a file this process holds open, not a socket that can break, and each ping is one more
/// round trip to the connection's thread, two thread switches, for every query.
async fn sqlite_pool(url: &str) -> Result<AnyPool, sqlx::Error> {
    AnyPoolOptions::new()
        .acquire_timeout(Duration::from_secs(30))
        .max_connections(SQLITE_READERS)
        .test_before_acquire(false)
        .after_connect(|connection, _| {
            Box::pin(async move {
                connection.execute(SQLITE_SETTINGS).await?;
                Ok(())
            })
        })
        .connect(url)
        .await
}

/// The file of the SQLite database at `url` (`sqlite://path` or `sqlite:path`), as it is
/// opened; `None` for another database or one in memory.
pub fn sqlite_file(url: &str) -> Option<&Path> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split_once('?').map_or(rest, |(path, _)| path);
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| Path::new(path))
}

/// `sqlite://path` with the file created when missing; the directory is made here because
/// SQLite will not.
fn sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or_default();
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if let Some(parent) = sqlite_file(url)
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|error| {
            StoreError::Conflict(format!(
                "cannot create the database directory {}: {error}",
                parent.display()
            ))
        })?;
    }
    let mut query = query.to_owned();
    if !query.split('&').any(|part| part.starts_with("mode=")) {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str("mode=rwc");
    }
    // Validate early so a bad URL names itself instead of failing inside the pool.
    sqlx::sqlite::SqliteConnectOptions::from_str(&format!("sqlite://{path}?{query}"))?;
    Ok(format!("sqlite://{path}?{query}"))
}

/// Decodes a 0/1 flag.
fn flag(value: i64) -> bool {
    value != 0
}
