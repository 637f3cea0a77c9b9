//! Payload bytes held by the host.
//!
//! Documents and packages are passed to plugins as handles to blobs so that document bytes need
//! not enter the sandbox and memory never grows with a message's size. The store sits behind a
//! trait because the embedded default keeps files on disk while a PostgreSQL deployment will keep
//! them in chunked rows; everything above it (the plugin runtime, the archive and HTTP streaming)
//! only sees readers and writers.
//!
//! The trait is synchronous on purpose: file and zip libraries speak `std::io`, and async callers
//! run blob I/O on tokio's blocking pool, exactly as `tokio::fs` does.

mod db_store;
mod file_store;
mod scratch;
mod stream;

use std::fmt;
use std::io::{self, Read, Seek, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use db_store::DbBlobStore;
pub use file_store::FileBlobStore;
pub use scratch::ScratchBlobStore;
pub use stream::{read_all, read_stream, write_stream};

/// A blob's identity inside its store.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BlobId(String);

impl BlobId {
    /// Wraps an identifier the store produced.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The identifier as text, for persistence.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Random-access reading of one blob.
pub trait BlobReader: Read + Seek + Send {}
impl<T: Read + Seek + Send> BlobReader for T {}

/// Writing a new blob; it exists only once committed, so a failed write leaves nothing behind.
pub trait BlobWriter: Write + Send {
    /// Makes the written bytes a blob and returns its identity and length.
    fn commit(self: Box<Self>) -> io::Result<(BlobId, u64)>;
}

/// Where blobs live.
pub trait BlobStore: Send + Sync + fmt::Debug {
    /// Starts a new blob.
    fn create(&self) -> io::Result<Box<dyn BlobWriter>>;
    /// Opens a committed blob for reading.
    fn open(&self, id: &BlobId) -> io::Result<Box<dyn BlobReader>>;
    /// Removes a blob; removing one that is gone is not an error.
    fn remove(&self, id: &BlobId) -> io::Result<()>;
    /// Makes a committed blob durable through a power loss, not only through a crash of this
    /// process, and returns the identity it is durable under: the same one where the blob is
    /// already stored for good, a new one for a blob so far held in memory (which then stays
    /// under its old identity too, until removed). Committing does not: most blobs are a
    /// plugin's intermediate results, gone within the call, and paying a disk write and flush
    /// for each would be waste. Called for the blobs a database row is about to refer to,
    /// before that row commits.
    fn keep(&self, id: &BlobId) -> io::Result<BlobId>;
    /// `plain` sealed as this store seals what it keeps (encrypted at rest, say), for bytes
    /// kept outside it: a small file kept in its own database row ([`keep_files`]). A store
    /// that keeps bytes as they are returns them as they are.
    fn seal(&self, plain: &[u8]) -> io::Result<Vec<u8>> {
        Ok(plain.to_vec())
    }
    /// What [`BlobStore::seal`] made, opened again.
    fn unseal(&self, sealed: &[u8]) -> io::Result<Vec<u8>> {
        Ok(sealed.to_vec())
    }
    /// Makes `bytes` a new blob in memory, with no I/O, when this store holds small blobs there
    /// and has room; otherwise gives them back, to be written as usual on the blocking pool.
    /// Async code uses it to skip a thread hand-over for a small upload.
    fn hold(&self, bytes: Vec<u8>) -> Result<BlobId, Vec<u8>> {
        Err(bytes)
    }
    /// The bytes of blob `id` when they are in memory, to be read with no I/O.
    fn held(&self, _id: &BlobId) -> Option<bytes::Bytes> {
        None
    }
    /// Whether a new blob of up to `bytes` would be held in memory now, with no I/O. Only a
    /// hint: the room can be taken meanwhile, and the blob is then written as usual.
    fn has_room_for(&self, _bytes: u64) -> bool {
        false
    }
}

/// The largest file kept in its database row rather than as a blob of its own.
///
/// For a small document, the file a blob store keeps cost more than everything else the
/// integration point does to send it: created, encrypted, flushed and renamed on accept,
/// opened and decrypted to send, removed once sent, and on a busy file system each new file
/// costs more while recently removed ones are remembered. Sealed into the row that names it,
/// the file is written in the transaction that stores its message (no extra round trip), read
/// with the row, and goes with the row. The same size as the largest blob held in memory, so
/// every file small enough for a row is in memory when it is kept.
pub const INLINE_FILE: u64 = scratch::HELD_BLOB as u64;

/// Where a kept file's bytes are.
#[derive(Clone, Debug)]
pub enum KeptFile {
    /// A blob of its own, durable; [`Blob::persist`] it once the row naming it has committed.
    Blob(Blob),
    /// Sealed ([`BlobStore::seal`]) for the row itself.
    Inline {
        /// What the row holds.
        sealed: Vec<u8>,
        /// The upload it was sealed from, still readable (and in memory, as a rule) until its
        /// last handle goes: whoever sends the file soon reads it here rather than unsealing
        /// the row's copy.
        plain: Blob,
    },
}

/// Keeps the files a row is about to name: each small one ([`INLINE_FILE`]) sealed for the
/// row, each larger one made durable as [`keep_blob`] does. A small file is in memory as a rule
/// ([`read_all`]), and sealing it costs less than a hand-over to the blocking pool.
pub async fn keep_files(blobs: Vec<Blob>) -> io::Result<Vec<KeptFile>> {
    let mut kept = Vec::with_capacity(blobs.len());
    for blob in blobs {
        kept.push(if blob.size() <= INLINE_FILE {
            KeptFile::Inline {
                sealed: blob.store().seal(&read_all(&blob).await?)?,
                plain: blob,
            }
        } else {
            KeptFile::Blob(keep_blob(blob).await?)
        });
    }
    Ok(kept)
}

/// Makes `blob` durable ([`BlobStore::keep`]) on the blocking pool and returns it as kept: a
/// row must name the returned blob. The returned blob is temporary as the one it replaces, so
/// it is removed if the row never commits; [`Blob::persist`] it once the row has.
pub async fn keep_blob(blob: Blob) -> io::Result<Blob> {
    tokio::task::spawn_blocking(move || {
        let kept = blob.store().keep(blob.id())?;
        Ok(if &kept == blob.id() {
            blob
        } else {
            Blob::temporary(blob.store().clone(), kept, blob.size())
        })
    })
    .await
    .map_err(io::Error::other)?
}

/// A handle to a committed blob, cheap to clone.
///
/// A blob made while serving a plugin call (a zip, a download) is *temporary*: it is removed when
/// the last handle goes, unless the host keeps it with [`Blob::persist`]. That is how a plugin's
/// intermediate results never pile up on disk, whatever the call's outcome.
#[derive(Clone)]
pub struct Blob(Arc<Entry>);

struct Entry {
    store: Arc<dyn BlobStore>,
    id: BlobId,
    size: u64,
    temporary: AtomicBool,
}

impl Blob {
    /// A handle to a blob the host keeps (a stored document).
    pub fn kept(store: Arc<dyn BlobStore>, id: BlobId, size: u64) -> Self {
        Self::with_lifetime(store, id, size, false)
    }

    /// A handle to a blob removed when its last handle is dropped.
    pub fn temporary(store: Arc<dyn BlobStore>, id: BlobId, size: u64) -> Self {
        Self::with_lifetime(store, id, size, true)
    }

    fn with_lifetime(store: Arc<dyn BlobStore>, id: BlobId, size: u64, temporary: bool) -> Self {
        Self(Arc::new(Entry {
            store,
            id,
            size,
            temporary: AtomicBool::new(temporary),
        }))
    }

    /// Writes `bytes` as a new temporary blob.
    pub fn from_bytes(store: &Arc<dyn BlobStore>, bytes: &[u8]) -> io::Result<Self> {
        let mut writer = store.create()?;
        writer.write_all(bytes)?;
        let (id, size) = writer.commit()?;
        Ok(Self::temporary(store.clone(), id, size))
    }

    /// The blob's identity in its store.
    pub fn id(&self) -> &BlobId {
        &self.0.id
    }

    /// Its length in bytes.
    pub fn size(&self) -> u64 {
        self.0.size
    }

    /// The store it lives in.
    pub fn store(&self) -> &Arc<dyn BlobStore> {
        &self.0.store
    }

    /// Opens it for reading.
    pub fn open(&self) -> io::Result<Box<dyn BlobReader>> {
        self.0.store.open(&self.0.id)
    }

    /// Its bytes, when they are in memory ([`BlobStore::held`]).
    pub fn held(&self) -> Option<bytes::Bytes> {
        self.0.store.held(&self.0.id)
    }

    /// Keeps the blob after its last handle goes; the host then owns its removal.
    pub fn persist(&self) {
        self.0.temporary.store(false, Ordering::SeqCst);
    }

    /// Reads up to `length` bytes at `offset`; fewer at the end, none past it.
    pub fn read_at(&self, offset: u64, length: usize) -> io::Result<Vec<u8>> {
        if offset >= self.size() {
            return Ok(Vec::new());
        }
        let length = length.min((self.size() - offset) as usize);
        let mut reader = self.open()?;
        reader.seek(io::SeekFrom::Start(offset))?;
        let mut bytes = vec![0; length];
        reader.read_exact(&mut bytes)?;
        Ok(bytes)
    }

    /// A new temporary blob of the `length` bytes from `offset` (fewer at the end, none past
    /// it), copied in the host.
    pub fn slice(&self, offset: u64, length: u64) -> io::Result<Self> {
        let length = length.min(self.size().saturating_sub(offset));
        let sliced = self.copy_range(offset.min(self.size()), length, |reader| reader)?;
        if sliced.size() != length {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "blob {} ended after {} of {length} bytes",
                    self.id(),
                    sliced.size()
                ),
            ));
        }
        Ok(sliced)
    }

    /// A new temporary blob in the same store of what `through` makes of the `length` bytes
    /// from `offset` (a decoder, or the bytes as they are), streamed in chunks.
    pub fn copy_range(
        &self,
        offset: u64,
        length: u64,
        through: impl FnOnce(Box<dyn Read + Send>) -> Box<dyn Read + Send>,
    ) -> io::Result<Self> {
        let mut reader = self.open()?;
        reader.seek(io::SeekFrom::Start(offset))?;
        let mut converted = through(Box::new(reader.take(length)));
        let mut writer = self.store().create()?;
        io::copy(&mut converted, &mut writer)?;
        let (id, size) = writer.commit()?;
        Ok(Self::temporary(self.store().clone(), id, size))
    }
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blob")
            .field("id", &self.0.id)
            .field("size", &self.0.size)
            .finish()
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if self.temporary.load(Ordering::SeqCst)
            && let Err(error) = self.store.remove(&self.id)
        {
            tracing::warn!(blob = %self.id, %error, "could not remove a temporary blob");
        }
    }
}
