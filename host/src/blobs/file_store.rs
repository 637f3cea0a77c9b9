//! The embedded blob store: one file per blob under the data directory.
//!
//! A blob is written to a `.partial` file and renamed when committed, so a crash mid-write never
//! leaves a half blob under a real identifier; stale partial files are swept at start. Only the
//! blobs a row refers to are flushed to disk ([`BlobStore::keep`]), not a plugin's scratch.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{BlobId, BlobReader, BlobStore, BlobWriter};

/// Blobs as files in one directory.
#[derive(Debug)]
pub struct FileBlobStore {
    dir: PathBuf,
}

impl FileBlobStore {
    /// Opens (creating it if needed) the store in `dir` and removes partial writes a previous
    /// process left behind.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|ext| ext == "partial") {
                fs::remove_file(&path)?;
            }
        }
        Ok(Self { dir })
    }

    /// The directory holding the blobs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, id: &BlobId) -> io::Result<PathBuf> {
        let valid = !id.as_str().is_empty()
            && id
                .as_str()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !valid {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a blob identifier: {id:?}"),
            ));
        }
        Ok(self.dir.join(id.as_str()))
    }
}

impl BlobStore for FileBlobStore {
    fn create(&self) -> io::Result<Box<dyn BlobWriter>> {
        let id = BlobId::new(uuid::Uuid::new_v4().to_string());
        let final_path = self.path_of(&id)?;
        let partial_path = final_path.with_extension("partial");
        let file = File::create_new(&partial_path)?;
        Ok(Box::new(FileBlobWriter {
            id,
            final_path,
            partial_path,
            file: Some(BufWriter::with_capacity(64 * 1024, file)),
            written: 0,
        }))
    }

    fn open(&self, id: &BlobId) -> io::Result<Box<dyn BlobReader>> {
        Ok(Box::new(File::open(self.path_of(id)?)?))
    }

    fn remove(&self, id: &BlobId) -> io::Result<()> {
        match fs::remove_file(self.path_of(id)?) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn keep(&self, id: &BlobId) -> io::Result<BlobId> {
        File::open(self.path_of(id)?)?.sync_data()?;
        Ok(id.clone())
    }
}

struct FileBlobWriter {
    id: BlobId,
    final_path: PathBuf,
    partial_path: PathBuf,
    file: Option<BufWriter<File>>,
    written: u64,
}

impl Write for FileBlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("blob already committed"))?;
        let n = file.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

impl BlobWriter for FileBlobWriter {
    fn commit(mut self: Box<Self>) -> io::Result<(BlobId, u64)> {
        let file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("blob already committed"))?;
        file.into_inner().map_err(|error| error.into_error())?;
        fs::rename(&self.partial_path, &self.final_path)?;
        Ok((self.id.clone(), self.written))
    }
}

impl Drop for FileBlobWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.partial_path);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::sync::Arc;

    use super::*;
    use crate::blobs::Blob;

    #[test]
    fn a_blob_exists_only_once_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileBlobStore::open(dir.path()).unwrap();
        let mut writer = store.create().unwrap();
        writer.write_all(b"half").unwrap();
        drop(writer);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "an abandoned write leaves nothing"
        );

        let mut writer = store.create().unwrap();
        writer.write_all(b"whole").unwrap();
        let (id, size) = writer.commit().unwrap();
        assert_eq!(size, 5);
        let mut text = String::new();
        store.open(&id).unwrap().read_to_string(&mut text).unwrap();
        assert_eq!(text, "whole");
    }

    #[test]
    fn partial_files_are_swept_at_open_and_ids_cannot_escape() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("left-over.partial"), b"x").unwrap();
        let store = FileBlobStore::open(dir.path()).unwrap();
        assert!(!dir.path().join("left-over.partial").exists());
        let error = store.open(&BlobId::new("../etc/passwd")).err().unwrap();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_temporary_blob_goes_with_its_last_handle_unless_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn BlobStore> = Arc::new(FileBlobStore::open(dir.path()).unwrap());
        let blob = Blob::from_bytes(&store, b"0123456789").unwrap();
        assert_eq!(blob.read_at(8, 100).unwrap(), b"89");
        assert!(blob.read_at(10, 1).unwrap().is_empty());
        let copy = blob.clone();
        drop(blob);
        assert!(copy.open().is_ok(), "a second handle keeps it");
        let id = copy.id().clone();
        drop(copy);
        assert!(store.open(&id).is_err(), "removed with the last handle");

        let kept = Blob::from_bytes(&store, b"keep").unwrap();
        let sliced = kept.slice(1, 2).unwrap();
        assert_eq!(sliced.read_at(0, 10).unwrap(), b"ee");
        assert_eq!(kept.slice(2, 100).unwrap().read_at(0, 10).unwrap(), b"ep");
        assert_eq!(kept.slice(9, 1).unwrap().size(), 0, "nothing past the end");
        kept.persist();
        let id = kept.id().clone();
        drop(kept);
        assert!(store.open(&id).is_ok());
    }
}
