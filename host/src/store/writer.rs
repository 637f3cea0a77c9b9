//! The connection writes go to.
//!
//! SQLite has one writer at a time, so writes queue for one writer: a connection, and the send
//! path's thread beside it (`sqlite_send_path`), which writes only while it holds the writer.
//! Behind a pool of one, every write also paid for the pool's hand-back: sqlx returns a
//! connection from a task it spawns, and pings it there first (a round trip to the
//! connection's thread), so each write, a batch of the send path or a retry's record,
//! began only after the previous one's spawned task and ping had run. One connection behind an
//! async mutex has no hand-back: the next writer takes it the moment the last lets go, in the
//! order they asked.
//!
//! What the pool's ping was for stays, for the sqlx connection (the send path's thread cleans
//! up after its own batches before it lets the writer go). A write whose caller gave up midway
//! leaves its rollback queued on the connection's thread, and the next writer pings first,
//! which waits for it. And at most once a [`CHECK_EVERY`] the connection is pinged before a
//! write: one whose thread has stopped (sqlx stops it when it cannot roll back an abandoned
//! `BEGIN`), or that still holds a transaction, is replaced by a new one, so writes do not fail
//! until a restart. PostgreSQL, where several connections write at once, keeps its pool.

use std::ops::{Deref, DerefMut};
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Any, AnyConnection, AnyPool, Connection as _, Executor as _, Transaction};
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard};

use super::StoreError;
use super::sqlite_send_path::SendPathThread;

/// How long a write waits for SQLite's connection before it fails (with sqlx's "pool timed
/// out"), as it waits for a connection of PostgreSQL's pool.
const WRITE_WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// How often, at most, the writing connection is pinged before a write.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Where writes go: SQLite's one writing connection, or PostgreSQL's pool.
#[derive(Clone)]
pub(super) enum Writer {
    Sqlite(Arc<Mutex<SqliteWriter>>),
    Postgres(AnyPool),
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(_) => f.write_str("Writer::Sqlite"),
            Self::Postgres(pool) => f.debug_tuple("Writer::Postgres").field(pool).finish(),
        }
    }
}

/// SQLite's writing connection and how to open another, and the send path's own.
pub(super) struct SqliteWriter {
    url: String,
    settings: String,
    /// `None` once closed, or after its thread stopped and before a new one opened.
    connection: Option<AnyConnection>,
    /// Where the send path's batches are written; `None` once closed, and only then.
    send_path: Option<SendPathThread>,
    last_checked: Instant,
}

impl SqliteWriter {
    /// Opens the writing connection to `url` and runs `settings` on it, as on every connection
    /// that replaces it, and the send path's connection to the same file.
    pub(super) async fn open(url: &str, settings: String) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?;
        let connection = connect(url, &settings).await?;
        Ok(Self {
            send_path: Some(SendPathThread::open(options.get_filename(), &settings)?),
            connection: Some(connection),
            url: url.to_owned(),
            settings,
            last_checked: Instant::now(),
        })
    }

    /// Makes sure a live connection is there: pinged when it was not lately, replaced when it
    /// does not answer.
    async fn ready(&mut self) -> Result<(), sqlx::Error> {
        if self.send_path.is_none() {
            return Err(sqlx::Error::PoolClosed);
        }
        // A writer whose caller gave up midway leaves its transaction's rollback queued on
        // the connection's thread; a ping waits for it, as the pool's ping did.
        if let Some(connection) = &mut self.connection
            && (connection.is_in_transaction() || self.last_checked.elapsed() >= CHECK_EVERY)
        {
            match connection.ping().await {
                Ok(()) if !connection.is_in_transaction() => {}
                Ok(()) => {
                    tracing::warn!(
                        "the database's writing connection kept a transaction open; opening another"
                    );
                    self.connection = None;
                }
                Err(error) => {
                    tracing::warn!(%error, "the database's writing connection stopped; opening another");
                    self.connection = None;
                }
            }
            self.last_checked = Instant::now();
        }
        if self.connection.is_none() {
            self.connection = Some(connect(&self.url, &self.settings).await?);
        }
        Ok(())
    }

    /// Takes `writer` once the writes before have let go of it, with its connection ready (a
    /// transaction an abandoned write left is rolled back).
    pub(super) async fn take(
        writer: &Arc<Mutex<Self>>,
    ) -> Result<OwnedMutexGuard<Self>, sqlx::Error> {
        let mut held = tokio::time::timeout(WRITE_WAIT_TIMEOUT, writer.clone().lock_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?;
        held.ready().await?;
        Ok(held)
    }

    /// The send path's thread; `None` once closed.
    pub(super) fn send_path(&self) -> Option<&SendPathThread> {
        self.send_path.as_ref()
    }
}

async fn connect(url: &str, settings: &str) -> Result<AnyConnection, sqlx::Error> {
    let mut connection = AnyConnection::connect(url).await?;
    connection.execute(settings).await?;
    Ok(connection)
}

impl Writer {
    /// The writing connection, once the writes before have let go of it.
    pub(super) async fn connection(&self) -> Result<WriteConnection, sqlx::Error> {
        match self {
            Self::Sqlite(writer) => {
                let held = SqliteWriter::take(writer).await?;
                OwnedMutexGuard::try_map(held, |writer| writer.connection.as_mut())
                    .map(WriteConnection::Sqlite)
                    .map_err(|_| sqlx::Error::PoolClosed)
            }
            Self::Postgres(pool) => pool.acquire().await.map(WriteConnection::Postgres),
        }
    }

    /// SQLite's writer, to take with [`SqliteWriter::take`]; `None` on PostgreSQL.
    pub(super) fn sqlite(&self) -> Option<&Arc<Mutex<SqliteWriter>>> {
        match self {
            Self::Sqlite(writer) => Some(writer),
            Self::Postgres(_) => None,
        }
    }

    /// Closes it, waiting for the write in progress; writes after that fail.
    pub(super) async fn close(&self) {
        match self {
            Self::Sqlite(writer) => {
                let mut writer = writer.lock().await;
                // Closed from now on (see `ready`).
                writer.send_path = None;
                if let Some(connection) = writer.connection.take()
                    && let Err(error) = connection.close().await
                {
                    tracing::warn!(%error, "the database's writing connection closed uncleanly");
                }
            }
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

/// A connection to write on, held until dropped.
pub(crate) enum WriteConnection {
    Sqlite(OwnedMappedMutexGuard<SqliteWriter, AnyConnection>),
    Postgres(PoolConnection<Any>),
}

impl WriteConnection {
    /// Begins a transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`): a
    /// deferred transaction that reads before it writes cannot wait for another writer when
    /// it upgrades (SQLite answers "database is locked" at once, busy timeout or not), which
    /// another process on the same file could otherwise cause under load.
    pub(crate) async fn begin(&mut self) -> Result<Transaction<'_, Any>, sqlx::Error> {
        match self {
            Self::Sqlite(connection) => connection.begin_with("BEGIN IMMEDIATE").await,
            Self::Postgres(connection) => connection.begin().await,
        }
    }
}

impl Deref for WriteConnection {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        match self {
            Self::Sqlite(connection) => connection,
            Self::Postgres(connection) => connection,
        }
    }
}

impl DerefMut for WriteConnection {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            Self::Sqlite(connection) => connection,
            Self::Postgres(connection) => connection,
        }
    }
}
