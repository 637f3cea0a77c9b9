//! The shared blob store: blobs in the PostgreSQL database that several instances share.
//!
//! Instances behind one database cannot share a data directory, so their message files live in
//! the database too. They are kept as ordinary rows of [`CHUNK`] bytes (`blob_chunk`), not as
//! PostgreSQL large objects: rows replicate, back up (`pg_dump` without `--blobs`) and vacuum
//! like every other row, and a blob's rows go with a plain `DELETE` instead of needing
//! `lo_unlink` or `vacuumlo` to stop them leaking. Fixed-size chunks also keep memory bounded
//! whatever a blob's size: a writer holds at most one chunk before inserting it, a reader caches
//! the one chunk it is in and finds any offset's chunk by division, which is what makes it
//! seekable.
//!
//! A blob exists once its `blob_object` row (its size) is inserted at commit; a writer dropped
//! before that deletes the chunks it inserted, and readers never see chunks without that row.
//!
//! # Blocking
//!
//! [`BlobStore`] is synchronous because blob I/O runs on tokio's blocking pool, and sqlx is async,
//! so every query is driven to completion with [`Handle::block_on`] on the runtime the store was
//! made with. That is only sound off the runtime's worker threads, so the store looks at where it
//! is called from:
//!
//! * outside any runtime, or on the blocking pool (`spawn_blocking`), it blocks: the intended use;
//! * on a worker of a multi-thread runtime it first hands the worker's other tasks to another
//!   thread with [`tokio::task::block_in_place`]. That keeps a blob dropped in async code (a
//!   temporary [`Blob`](super::Blob) is removed by its last handle, wherever that goes) from
//!   panicking or stalling the runtime, but it costs a thread hand-over, so async code should
//!   still go through the blocking pool;
//! * anywhere in a current-thread runtime it refuses with [`io::ErrorKind::Unsupported`]. On that
//!   runtime's one thread, blocking would deadlock (the queries' I/O is driven by the very thread
//!   that waits), tokio has no way to tell that thread from its blocking pool, and an error is
//!   clearer than a deadlock or a panic. The only exception is the clean-up of a dropped writer,
//!   which is then spawned onto the store's runtime instead.

use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom, Write};

use sqlx::{AnyPool, Row as _};
use tokio::runtime::{Handle, RuntimeFlavor};

use super::{BlobId, BlobReader, BlobStore, BlobWriter};
use crate::store::{Store, now_millis};

/// The bytes in every chunk row but a blob's last: large enough that a row's overhead and a
/// query's round trip are small next to it, small enough to hold one per reader and writer.
const CHUNK: usize = 1024 * 1024;

/// Blobs as chunked rows in the store's PostgreSQL database.
#[derive(Clone, Debug)]
pub struct DbBlobStore {
    pool: AnyPool,
    runtime: Handle,
}

impl DbBlobStore {
    /// Keeps blobs in `store`'s database (its schema has the `blob_chunk` and `blob_object`
    /// tables); queries run on `runtime`, which must be the runtime the store's pool was opened
    /// on and should be a multi-thread one (see the module documentation).
    pub fn new(store: &Store, runtime: Handle) -> Self {
        Self {
            pool: store.pool().clone(),
            runtime,
        }
    }
}

impl BlobStore for DbBlobStore {
    fn create(&self) -> io::Result<Box<dyn BlobWriter>> {
        // Refuse at once rather than after the caller has produced a chunk's worth of bytes.
        blocking_context()?;
        Ok(Box::new(DbBlobWriter {
            store: self.clone(),
            id: BlobId::new(uuid::Uuid::new_v4().to_string()),
            buffer: Vec::with_capacity(CHUNK),
            chunks: 0,
            size: 0,
            state: WriterState::Writing,
        }))
    }

    fn open(&self, id: &BlobId) -> io::Result<Box<dyn BlobReader>> {
        let row = self.run(
            sqlx::query("SELECT size FROM blob_object WHERE blob_id = $1")
                .bind(id.as_str().to_owned())
                .fetch_optional(&self.pool),
        )?;
        let row = row.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no blob {id} in the database"),
            )
        })?;
        let size = row.try_get::<i64, _>(0).map_err(database_error)?;
        let size = u64::try_from(size).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("blob {id} has a negative size"),
            )
        })?;
        Ok(Box::new(DbBlobReader {
            store: self.clone(),
            id: id.clone(),
            size,
            position: 0,
            cached: None,
        }))
    }

    fn remove(&self, id: &BlobId) -> io::Result<()> {
        self.run(delete_blob(self.pool.clone(), id.as_str().to_owned()))
    }

    /// A committed blob is committed rows: as durable as the database already.
    fn keep(&self, id: &BlobId) -> io::Result<BlobId> {
        Ok(id.clone())
    }
}

/// Deletes a blob's object row and chunks together; deleting nothing is fine.
async fn delete_blob(pool: AnyPool, id: String) -> Result<(), sqlx::Error> {
    let mut transaction = pool.begin().await?;
    sqlx::query("DELETE FROM blob_object WHERE blob_id = $1")
        .bind(id.clone())
        .execute(&mut *transaction)
        .await?;
    sqlx::query("DELETE FROM blob_chunk WHERE blob_id = $1")
        .bind(id)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await
}

impl DbBlobStore {
    /// Drives a query to completion from synchronous code (see the module documentation).
    fn run<T>(&self, query: impl Future<Output = Result<T, sqlx::Error>>) -> io::Result<T> {
        let result = match blocking_context()? {
            Context::Outside => self.runtime.block_on(query),
            Context::MultiThread => tokio::task::block_in_place(|| self.runtime.block_on(query)),
        };
        result.map_err(database_error)
    }
}

/// Where a synchronous call may block on a query.
enum Context {
    /// No runtime on this thread.
    Outside,
    /// A multi-thread runtime's worker or blocking pool: `block_in_place` makes blocking safe.
    MultiThread,
}

fn blocking_context() -> io::Result<Context> {
    match Handle::try_current() {
        Err(_) => Ok(Context::Outside),
        Ok(current) if current.runtime_flavor() == RuntimeFlavor::MultiThread => {
            Ok(Context::MultiThread)
        }
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the database blob store blocks on its queries and cannot do so in a current-thread \
             tokio runtime; call it from a multi-thread runtime's blocking pool or outside any \
             runtime",
        )),
    }
}

fn database_error(error: sqlx::Error) -> io::Error {
    match error {
        sqlx::Error::Io(error) => error,
        other => io::Error::other(format!("blob store database: {other}")),
    }
}

/// Inserts each full chunk as it is written; the blob appears at commit.
struct DbBlobWriter {
    store: DbBlobStore,
    id: BlobId,
    /// The chunk being filled; inserted when it holds [`CHUNK`] bytes.
    buffer: Vec<u8>,
    /// Chunk rows inserted so far, which is also the next one's `seq`.
    chunks: i64,
    size: u64,
    state: WriterState,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum WriterState {
    Writing,
    /// A chunk could not be inserted, so the bytes written are no longer all there.
    Failed,
    Committed,
}

impl DbBlobWriter {
    fn insert_buffer(&mut self) -> io::Result<()> {
        let data = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        // Whatever happens to the insert, the chunk has left the buffer; until it is known to be
        // stored, the writer cannot go on.
        self.state = WriterState::Failed;
        self.store.run(
            sqlx::query("INSERT INTO blob_chunk (blob_id, seq, data) VALUES ($1, $2, $3)")
                .bind(self.id.as_str().to_owned())
                .bind(self.chunks)
                .bind(data)
                .execute(&self.store.pool),
        )?;
        self.state = WriterState::Writing;
        self.chunks += 1;
        Ok(())
    }

    fn ensure_writing(&self) -> io::Result<()> {
        match self.state {
            WriterState::Writing => Ok(()),
            WriterState::Failed => Err(io::Error::other(
                "an earlier write of this blob failed; start a new one",
            )),
            WriterState::Committed => Err(io::Error::other("blob already committed")),
        }
    }
}

impl Write for DbBlobWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.ensure_writing()?;
        let take = bytes.len().min(CHUNK - self.buffer.len());
        self.buffer.extend_from_slice(&bytes[..take]);
        self.size += take as u64;
        if self.buffer.len() == CHUNK {
            self.insert_buffer()?;
        }
        Ok(take)
    }

    /// Nothing to do: only full chunks and, at commit, the last one can be stored, and the bytes
    /// are not a blob before the commit anyway.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobWriter for DbBlobWriter {
    fn commit(mut self: Box<Self>) -> io::Result<(BlobId, u64)> {
        self.ensure_writing()?;
        if !self.buffer.is_empty() {
            self.insert_buffer()?;
        }
        let size = i64::try_from(self.size)
            .map_err(|_| io::Error::new(io::ErrorKind::FileTooLarge, "blob too large"))?;
        // Should the answer be lost, the row may or may not be there; dropping cleans up.
        self.state = WriterState::Failed;
        self.store.run(
            sqlx::query("INSERT INTO blob_object (blob_id, size, created) VALUES ($1, $2, $3)")
                .bind(self.id.as_str().to_owned())
                .bind(size)
                .bind(now_millis())
                .execute(&self.store.pool),
        )?;
        self.state = WriterState::Committed;
        Ok((self.id.clone(), self.size))
    }
}

impl Drop for DbBlobWriter {
    fn drop(&mut self) {
        // Nothing can have reached the database before the first insert was attempted. After
        // one, the object row is deleted too: a commit whose answer was lost may have made it.
        let attempted = self.chunks > 0 || self.state == WriterState::Failed;
        if self.state == WriterState::Committed || !attempted {
            return;
        }
        let delete = delete_blob(self.store.pool.clone(), self.id.as_str().to_owned());
        let result = match blocking_context() {
            Ok(_) => self.store.run(delete),
            // Dropped in async code on a current-thread runtime: blocking is impossible there,
            // so the store's runtime deletes the chunks when it gets to it.
            Err(_) => {
                self.store.runtime.spawn(delete);
                Ok(())
            }
        };
        if let Err(error) = result {
            tracing::warn!(blob = %self.id, %error, "could not remove an abandoned blob's chunks");
        }
    }
}

/// Reads through a cache of the one chunk it is in.
struct DbBlobReader {
    store: DbBlobStore,
    id: BlobId,
    size: u64,
    position: u64,
    /// The chunk last fetched and its `seq`.
    cached: Option<(u64, Vec<u8>)>,
}

impl DbBlobReader {
    /// The chunk holding `position`, fetched unless it is the cached one.
    fn chunk(&mut self, seq: u64) -> io::Result<&[u8]> {
        if self
            .cached
            .as_ref()
            .is_none_or(|(cached, _)| *cached != seq)
        {
            self.cached = None;
            let row = self.store.run(
                sqlx::query("SELECT data FROM blob_chunk WHERE blob_id = $1 AND seq = $2")
                    .bind(self.id.as_str().to_owned())
                    .bind(seq as i64)
                    .fetch_optional(&self.store.pool),
            )?;
            let data = match row {
                Some(row) => row.try_get::<Vec<u8>, _>(0).map_err(database_error)?,
                None => Vec::new(),
            };
            let start = seq * CHUNK as u64;
            let expected = (self.size - start).min(CHUNK as u64);
            if data.len() as u64 != expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "chunk {seq} of blob {} holds {} bytes where {expected} were expected; \
                         was the blob removed while it was read?",
                        self.id,
                        data.len()
                    ),
                ));
            }
            self.cached = Some((seq, data));
        }
        Ok(self.cached.as_ref().map_or(&[][..], |(_, data)| data))
    }
}

impl Read for DbBlobReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.position >= self.size || buffer.is_empty() {
            return Ok(0);
        }
        let seq = self.position / CHUNK as u64;
        let within = (self.position % CHUNK as u64) as usize;
        let chunk = self.chunk(seq)?;
        let n = buffer.len().min(chunk.len() - within);
        buffer[..n].copy_from_slice(&chunk[within..within + n]);
        self.position += n as u64;
        Ok(n)
    }
}

impl Seek for DbBlobReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.size.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        self.position = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek to a negative or overflowing position",
            )
        })?;
        Ok(self.position)
    }
}
