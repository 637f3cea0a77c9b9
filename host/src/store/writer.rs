//! The connection writes go to.
//!
//! SQLite has one writer at a time, so writes queue for one connection. Behind a pool of one,
//! every write also paid for the pool's hand-back: sqlx returns a connection from a task it
//! spawns, and pings it there first (a round trip to the connection's thread), so each write,
//! a batch of the send path or a claim of the outbox, began only after the previous one's
//! spawned task and ping had run. On a busy runtime that wait was longer than the batch's
//! own statements. One connection behind an async mutex has no hand-back: the next writer
//! takes it the moment the last lets go, in the order they asked. PostgreSQL, where several
//! connections write at once, keeps its pool.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection as _, Transaction};
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard};

/// How long a write waits for SQLite's connection before it fails, as it waits for a
/// connection of PostgreSQL's pool.
const WAIT_AT_MOST: Duration = Duration::from_secs(30);

/// Where writes go: SQLite's one writing connection (`None` once closed), or PostgreSQL's pool.
#[derive(Clone)]
pub(super) enum Writer {
    Sqlite(Arc<Mutex<Option<AnyConnection>>>),
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

impl Writer {
    /// The writing connection, once the writes before have let go of it.
    pub(super) async fn connection(&self) -> Result<WriteConnection, sqlx::Error> {
        match self {
            Self::Sqlite(connection) => {
                let held = tokio::time::timeout(WAIT_AT_MOST, connection.clone().lock_owned())
                    .await
                    .map_err(|_| sqlx::Error::PoolTimedOut)?;
                OwnedMutexGuard::try_map(held, Option::as_mut)
                    .map(WriteConnection::Sqlite)
                    .map_err(|_| sqlx::Error::PoolClosed)
            }
            Self::Postgres(pool) => pool.acquire().await.map(WriteConnection::Postgres),
        }
    }

    /// Closes it, waiting for the write in progress; writes after that fail.
    pub(super) async fn close(&self) {
        match self {
            Self::Sqlite(connection) => {
                if let Some(connection) = connection.lock().await.take()
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
    Sqlite(OwnedMappedMutexGuard<Option<AnyConnection>, AnyConnection>),
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
