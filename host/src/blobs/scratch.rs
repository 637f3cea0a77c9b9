//! Small blobs held in memory until something must keep them.
//!
//! Most blobs live for less than one plugin call: a zip of a message's documents, a CMS
//! envelope, a slice, a download that is parsed and dropped. Written to the durable store, each
//! of them costs a file created, encrypted, renamed and removed (or, on PostgreSQL, rows
//! inserted and deleted), and for small messages that file system work was most of what sending
//! one cost. This store keeps a blob of up to [`HELD_BLOB`] bytes in memory instead, within a
//! process-wide [`HELD_TOTAL`], and hands larger ones, and any once the total is reached, to the
//! durable store as they are written, so memory stays bounded whatever the traffic.
//!
//! A blob a row is about to refer to goes through [`BlobStore::keep`]: a held one is then
//! written to the durable store under a new identity, which the row records. Memory is never a
//! place a row points at, so a restart loses nothing that was accepted.

use std::collections::HashMap;
use std::io::{self, Cursor, Write};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::{BlobId, BlobReader, BlobStore, BlobWriter};

/// The largest blob held in memory.
pub const HELD_BLOB: usize = 256 * 1024;
/// The most bytes held at once; beyond it, new blobs go to the durable store.
pub const HELD_TOTAL: usize = 32 * 1024 * 1024;

/// Identities of held blobs start so; the durable stores' never do (they are UUIDs).
const HELD_PREFIX: &str = "held-";

/// Blobs in memory in front of a durable store.
#[derive(Debug)]
pub struct ScratchBlobStore {
    durable: Arc<dyn BlobStore>,
    held: Arc<Held>,
}

#[derive(Debug, Default)]
struct Held {
    blobs: Mutex<HeldBlobs>,
}

#[derive(Debug, Default)]
struct HeldBlobs {
    by_id: HashMap<BlobId, Bytes>,
    total: usize,
    /// The number of the last blob held: a held blob's identity only has to be unique in this
    /// process, and counting costs none of the system calls a random UUID does.
    last: u64,
}

impl HeldBlobs {
    fn has_room_for(&self, bytes: u64) -> bool {
        (self.total as u64).saturating_add(bytes) <= HELD_TOTAL as u64
    }
}

impl Held {
    fn get(&self, id: &BlobId) -> Option<Bytes> {
        self.lock().by_id.get(id).cloned()
    }

    /// Holds `bytes` when the total allows, returning its identity.
    fn hold(&self, bytes: Vec<u8>) -> Result<BlobId, Vec<u8>> {
        let mut held = self.lock();
        if !held.has_room_for(bytes.len() as u64) {
            return Err(bytes);
        }
        held.last += 1;
        let id = BlobId::new(format!("{HELD_PREFIX}{}", held.last));
        held.total += bytes.len();
        held.by_id.insert(id.clone(), Bytes::from(bytes));
        Ok(id)
    }

    fn has_room_for(&self, bytes: u64) -> bool {
        self.lock().has_room_for(bytes)
    }

    fn release(&self, id: &BlobId) {
        let mut held = self.lock();
        if let Some(bytes) = held.by_id.remove(id) {
            held.total -= bytes.len();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HeldBlobs> {
        self.blobs.lock().expect("the held blobs")
    }
}

impl ScratchBlobStore {
    /// Holds small blobs in memory in front of `durable`.
    pub fn new(durable: Arc<dyn BlobStore>) -> Self {
        Self {
            durable,
            held: Arc::default(),
        }
    }

    /// How many bytes are held in memory now.
    #[cfg(test)]
    fn held_bytes(&self) -> usize {
        self.held.lock().total
    }

    fn is_held(id: &BlobId) -> bool {
        id.as_str().starts_with(HELD_PREFIX)
    }
}

impl BlobStore for ScratchBlobStore {
    fn create(&self) -> io::Result<Box<dyn BlobWriter>> {
        Ok(Box::new(ScratchWriter {
            durable: self.durable.clone(),
            held: self.held.clone(),
            target: Target::Memory(Vec::new()),
        }))
    }

    fn open(&self, id: &BlobId) -> io::Result<Box<dyn BlobReader>> {
        if !Self::is_held(id) {
            return self.durable.open(id);
        }
        match self.held.get(id) {
            Some(bytes) => Ok(Box::new(Cursor::new(bytes))),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no blob {id} is held"),
            )),
        }
    }

    fn remove(&self, id: &BlobId) -> io::Result<()> {
        if Self::is_held(id) {
            self.held.release(id);
            Ok(())
        } else {
            self.durable.remove(id)
        }
    }

    fn keep(&self, id: &BlobId) -> io::Result<BlobId> {
        if !Self::is_held(id) {
            return self.durable.keep(id);
        }
        let bytes = self.held.get(id).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("no blob {id} is held"))
        })?;
        let mut writer = self.durable.create()?;
        writer.write_all(&bytes)?;
        let (kept, _) = writer.commit()?;
        if let Err(error) = self.durable.keep(&kept) {
            let _ = self.durable.remove(&kept);
            return Err(error);
        }
        Ok(kept)
    }

    fn seal(&self, plain: &[u8]) -> io::Result<Vec<u8>> {
        self.durable.seal(plain)
    }

    fn unseal(&self, sealed: &[u8]) -> io::Result<Vec<u8>> {
        self.durable.unseal(sealed)
    }

    fn hold(&self, bytes: Vec<u8>) -> Result<BlobId, Vec<u8>> {
        if bytes.len() > HELD_BLOB {
            return Err(bytes);
        }
        self.held.hold(bytes)
    }

    fn held(&self, id: &BlobId) -> Option<Bytes> {
        if Self::is_held(id) {
            self.held.get(id)
        } else {
            None
        }
    }

    fn has_room_for(&self, bytes: u64) -> bool {
        bytes <= HELD_BLOB as u64 && self.held.has_room_for(bytes)
    }
}

/// Writes into memory until the blob outgrows [`HELD_BLOB`], then into the durable store.
struct ScratchWriter {
    durable: Arc<dyn BlobStore>,
    held: Arc<Held>,
    target: Target,
}

enum Target {
    Memory(Vec<u8>),
    Durable(Box<dyn BlobWriter>),
}

impl ScratchWriter {
    /// Moves what is written so far to a writer of the durable store.
    fn spill(&mut self) -> io::Result<&mut Box<dyn BlobWriter>> {
        if let Target::Memory(buffer) = &mut self.target {
            let mut writer = self.durable.create()?;
            writer.write_all(buffer)?;
            self.target = Target::Durable(writer);
        }
        match &mut self.target {
            Target::Durable(writer) => Ok(writer),
            Target::Memory(_) => unreachable!("spilled just above"),
        }
    }
}

impl Write for ScratchWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.target {
            Target::Memory(buffer) if buffer.len() + buf.len() <= HELD_BLOB => {
                buffer.extend_from_slice(buf);
                Ok(buf.len())
            }
            _ => self.spill()?.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.target {
            Target::Memory(_) => Ok(()),
            Target::Durable(writer) => writer.flush(),
        }
    }
}

impl BlobWriter for ScratchWriter {
    fn commit(self: Box<Self>) -> io::Result<(BlobId, u64)> {
        let Self {
            durable,
            held,
            target,
        } = *self;
        match target {
            Target::Durable(writer) => writer.commit(),
            Target::Memory(buffer) => {
                let size = buffer.len() as u64;
                match held.hold(buffer) {
                    Ok(id) => Ok((id, size)),
                    // The total is reached: this one goes where large ones go.
                    Err(buffer) => {
                        let mut writer = durable.create()?;
                        writer.write_all(&buffer)?;
                        writer.commit()
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blobs::{Blob, FileBlobStore};

    fn files_in(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn a_small_blob_stays_in_memory_until_kept_and_a_large_one_goes_to_disk() {
        let dir = tempfile::tempdir().unwrap();
        let durable: Arc<dyn BlobStore> = Arc::new(FileBlobStore::open(dir.path()).unwrap());
        let scratch = Arc::new(ScratchBlobStore::new(durable.clone()));
        let store: Arc<dyn BlobStore> = scratch.clone();

        let small = Blob::from_bytes(&store, b"a zip of small documents").unwrap();
        assert_eq!(files_in(dir.path()), 0, "nothing written to disk");
        assert_eq!(scratch.held_bytes(), 24);
        assert_eq!(small.read_at(2, 3).unwrap(), b"zip");

        // Kept: written to the durable store under a new identity, readable from both.
        let kept = store.keep(small.id()).unwrap();
        assert_ne!(&kept, small.id());
        assert_eq!(files_in(dir.path()), 1);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut durable.open(&kept).unwrap(), &mut text).unwrap();
        assert_eq!(text, "a zip of small documents");
        drop(small);
        assert_eq!(
            scratch.held_bytes(),
            0,
            "the held copy goes with its handle"
        );
        assert!(store.open(&kept).is_ok(), "the kept one stays");

        // One byte over the limit: straight to the durable store, nothing held.
        let large = Blob::from_bytes(&store, &vec![7; HELD_BLOB + 1]).unwrap();
        assert_eq!(scratch.held_bytes(), 0);
        assert_eq!(files_in(dir.path()), 2);
        assert_eq!(
            store.keep(large.id()).unwrap(),
            *large.id(),
            "kept where it is"
        );
        assert_eq!(large.read_at(HELD_BLOB as u64, 5).unwrap(), [7]);
        drop(large);
        assert_eq!(files_in(dir.path()), 1, "a temporary large blob is removed");
    }

    #[test]
    fn the_total_held_is_bounded_and_an_abandoned_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let durable: Arc<dyn BlobStore> = Arc::new(FileBlobStore::open(dir.path()).unwrap());
        let scratch = Arc::new(ScratchBlobStore::new(durable));
        let store: Arc<dyn BlobStore> = scratch.clone();
        let fits = HELD_TOTAL / HELD_BLOB;
        let held: Vec<Blob> = (0..fits)
            .map(|_| Blob::from_bytes(&store, &vec![1; HELD_BLOB]).unwrap())
            .collect();
        assert_eq!(scratch.held_bytes(), HELD_TOTAL);
        assert_eq!(files_in(dir.path()), 0);
        let over = Blob::from_bytes(&store, b"one more").unwrap();
        assert_eq!(files_in(dir.path()), 1, "past the total, blobs go to disk");
        assert_eq!(over.read_at(0, 8).unwrap(), b"one more");
        drop(held);
        assert_eq!(scratch.held_bytes(), 0);

        let mut abandoned = store.create().unwrap();
        abandoned.write_all(&vec![2; HELD_BLOB * 2]).unwrap();
        drop(abandoned);
        drop(over);
        assert_eq!(
            files_in(dir.path()),
            0,
            "a spilled write never committed is gone"
        );
        let missing = store.open(&BlobId::new("held-unknown")).err().unwrap();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn a_small_file_is_kept_for_its_row_and_a_large_one_as_a_blob() {
        use crate::blobs::{INLINE_FILE, KeptFile, keep_files, read_all};
        let dir = tempfile::tempdir().unwrap();
        let durable: Arc<dyn BlobStore> = Arc::new(FileBlobStore::open(dir.path()).unwrap());
        let store: Arc<dyn BlobStore> = Arc::new(ScratchBlobStore::new(durable));
        let small = Blob::from_bytes(&store, &vec![5; INLINE_FILE as usize]).unwrap();
        let large = Blob::from_bytes(&store, &vec![6; INLINE_FILE as usize + 1]).unwrap();
        let large_id = large.id().clone();

        let kept = keep_files(vec![small, large]).await.unwrap();
        match &kept[..] {
            [KeptFile::Inline { sealed, plain }, KeptFile::Blob(blob)] => {
                assert!(store.unseal(sealed).unwrap() == vec![5; INLINE_FILE as usize]);
                assert!(read_all(plain).await.unwrap() == vec![5; INLINE_FILE as usize]);
                assert_eq!(blob.id(), &large_id, "a spilled blob is kept where it is");
                blob.persist();
            }
            other => panic!("expected one inline file and one blob, got {other:?}"),
        }
        drop(kept);
        assert_eq!(files_in(dir.path()), 1, "a file for the large one only");
    }

    #[tokio::test]
    async fn a_small_upload_is_held_with_no_io_and_a_large_one_written() {
        use futures::stream;
        let dir = tempfile::tempdir().unwrap();
        let durable: Arc<dyn BlobStore> = Arc::new(FileBlobStore::open(dir.path()).unwrap());
        let store: Arc<dyn BlobStore> = Arc::new(ScratchBlobStore::new(durable));
        let pieces = |piece: &'static [u8], count: usize| {
            stream::iter((0..count).map(move |_| Ok::<_, io::Error>(Bytes::from_static(piece))))
        };

        let small = crate::blobs::write_stream(store.clone(), pieces(b"abc", 3), None)
            .await
            .unwrap();
        assert_eq!(small.held().as_deref(), Some(&b"abcabcabc"[..]));
        assert_eq!(files_in(dir.path()), 0);

        static KIB: [u8; 1024] = [9; 1024];
        let large = crate::blobs::write_stream(store.clone(), pieces(&KIB, 300), None)
            .await
            .unwrap();
        assert_eq!(large.size(), 300 * 1024);
        assert!(large.held().is_none(), "over the limit: written, not held");
        assert_eq!(files_in(dir.path()), 1);

        let refused = store.hold(vec![0; HELD_BLOB + 1]).unwrap_err();
        assert_eq!(refused.len(), HELD_BLOB + 1, "the bytes come back");
    }

    #[test]
    fn room_is_reported_as_holding_would_find_it() {
        let dir = tempfile::tempdir().unwrap();
        let durable: Arc<dyn BlobStore> = Arc::new(FileBlobStore::open(dir.path()).unwrap());
        let store = ScratchBlobStore::new(durable);
        assert!(store.has_room_for(HELD_BLOB as u64));
        assert!(
            !store.has_room_for(HELD_BLOB as u64 + 1),
            "too large to hold at all"
        );
        let filling: Vec<BlobId> = (0..HELD_TOTAL / HELD_BLOB)
            .map(|_| store.hold(vec![0; HELD_BLOB]).unwrap())
            .collect();
        assert!(!store.has_room_for(1), "the total is reached");
        assert!(store.hold(vec![0]).is_err(), "and holding agrees");
        store.remove(&filling[0]).unwrap();
        assert!(
            store.has_room_for(HELD_BLOB as u64),
            "room again once one goes"
        );
    }
}
