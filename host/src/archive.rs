//! Zip archives composed and opened by blob handle.
//!
//! Channels package documents as zips (`sbd.zip`, ASiC-E containers, SvarUt payloads). Doing it in
//! the host keeps document bytes out of guest memory and streams them: writing goes through a
//! non-seeking zip writer into a new blob, reading extracts one entry into a new blob, so memory
//! does not grow with size. These functions block; callers run them on the blocking pool.

use std::collections::HashSet;
use std::io::{self, Write};
use std::sync::Arc;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::blobs::{Blob, BlobStore};

/// Why an archive operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The input is not a readable zip, or an entry name is unsafe.
    #[error("{0}")]
    Invalid(String),
    /// The archive has no entry of that name.
    #[error("no entry named {0:?}")]
    NotFound(String),
    /// The blob store failed.
    #[error("storage: {0}")]
    Io(#[from] io::Error),
}

/// Where an entry's bytes come from.
pub enum EntrySource {
    /// Small content carried in the call.
    Bytes(Vec<u8>),
    /// A host-held blob.
    Blob(Blob),
}

impl EntrySource {
    /// The content's length in bytes.
    pub fn size(&self) -> u64 {
        match self {
            Self::Bytes(bytes) => bytes.len() as u64,
            Self::Blob(blob) => blob.size(),
        }
    }

    /// The blob, when the content is one.
    pub fn blob(&self) -> Option<&Blob> {
        match self {
            Self::Bytes(_) => None,
            Self::Blob(blob) => Some(blob),
        }
    }
}

/// One entry to write.
pub struct NewEntry {
    /// Its name inside the archive.
    pub name: String,
    /// Its content.
    pub source: EntrySource,
    /// Deflate it (else stored).
    pub compress: bool,
}

/// An entry of an existing archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// Its name.
    pub name: String,
    /// Its uncompressed length.
    pub size: u64,
}

/// Checks an entry name is a relative path that stays inside the archive.
pub fn check_entry_name(name: &str) -> Result<(), ArchiveError> {
    let unsafe_name = name.is_empty()
        || name.starts_with('/')
        || name.contains('\\')
        || name.contains('\0')
        || name
            .split('/')
            .any(|segment| segment == ".." || segment.is_empty());
    if unsafe_name {
        return Err(ArchiveError::Invalid(format!("unsafe entry name {name:?}")));
    }
    Ok(())
}

/// Writes the entries, in order, into a new temporary blob.
pub fn zip(store: &Arc<dyn BlobStore>, entries: Vec<NewEntry>) -> Result<Blob, ArchiveError> {
    let mut names = HashSet::new();
    for entry in &entries {
        check_entry_name(&entry.name)?;
        if !names.insert(entry.name.as_str()) {
            return Err(ArchiveError::Invalid(format!(
                "duplicate entry name {:?}",
                entry.name
            )));
        }
    }
    let mut zip = ZipWriter::new_stream(store.create()?);
    for entry in entries {
        let size = entry.source.size();
        let method = if entry.compress {
            CompressionMethod::Deflated
        } else {
            CompressionMethod::Stored
        };
        let options = SimpleFileOptions::default()
            .compression_method(method)
            .large_file(size >= u64::from(u32::MAX));
        zip.start_file(entry.name.as_str(), options)
            .map_err(zip_error)?;
        match entry.source {
            EntrySource::Bytes(bytes) => zip.write_all(&bytes)?,
            EntrySource::Blob(blob) => {
                io::copy(&mut blob.open()?, &mut zip)?;
            }
        }
    }
    let writer = zip.finish().map_err(zip_error)?.into_inner();
    let (id, size) = writer.commit()?;
    Ok(Blob::temporary(store.clone(), id, size))
}

/// The entries of the archive in `blob`.
pub fn list(blob: &Blob) -> Result<Vec<EntryInfo>, ArchiveError> {
    let mut archive = ZipArchive::new(blob.open()?).map_err(zip_error)?;
    (0..archive.len())
        .map(|index| {
            let file = archive.by_index_raw(index).map_err(zip_error)?;
            Ok(EntryInfo {
                name: file.name().map_err(zip_error)?.into_owned(),
                size: file.size(),
            })
        })
        .collect()
}

/// Extracts the entry `name` of the archive in `blob` into a new temporary blob.
pub fn open(store: &Arc<dyn BlobStore>, blob: &Blob, name: &str) -> Result<Blob, ArchiveError> {
    let mut archive = ZipArchive::new(blob.open()?).map_err(zip_error)?;
    let mut file = match archive.by_name(name) {
        Ok(file) => file,
        Err(zip::result::ZipError::FileNotFound) => {
            return Err(ArchiveError::NotFound(name.to_owned()));
        }
        Err(error) => return Err(zip_error(error)),
    };
    let mut writer = store.create()?;
    io::copy(&mut file, &mut writer).map_err(|error| match error.kind() {
        io::ErrorKind::InvalidData => ArchiveError::Invalid(format!("entry {name:?}: {error}")),
        _ => ArchiveError::Io(error),
    })?;
    let (id, size) = writer.commit()?;
    Ok(Blob::temporary(store.clone(), id, size))
}

fn zip_error(error: zip::result::ZipError) -> ArchiveError {
    match error {
        zip::result::ZipError::Io(error) => ArchiveError::Io(error),
        other => ArchiveError::Invalid(format!("not a readable zip archive: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blobs::FileBlobStore;

    fn store() -> (tempfile::TempDir, Arc<dyn BlobStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FileBlobStore::open(dir.path()).unwrap());
        (dir, store)
    }

    #[test]
    fn entries_written_from_bytes_and_blobs_read_back() {
        let (_dir, store) = store();
        let document = Blob::from_bytes(&store, &vec![7u8; 300_000]).unwrap();
        let archive = zip(
            &store,
            vec![
                NewEntry {
                    name: "mimetype".into(),
                    source: EntrySource::Bytes(b"application/vnd.etsi.asic-e+zip".to_vec()),
                    compress: false,
                },
                NewEntry {
                    name: "docs/main.pdf".into(),
                    source: EntrySource::Blob(document),
                    compress: true,
                },
            ],
        )
        .unwrap();
        let entries = list(&archive).unwrap();
        assert_eq!(
            entries,
            vec![
                EntryInfo {
                    name: "mimetype".into(),
                    size: 31
                },
                EntryInfo {
                    name: "docs/main.pdf".into(),
                    size: 300_000
                },
            ]
        );
        assert!(archive.size() < 300_000, "the document was deflated");
        let opened = open(&store, &archive, "docs/main.pdf").unwrap();
        assert_eq!(opened.size(), 300_000);
        assert_eq!(opened.read_at(299_999, 10).unwrap(), vec![7]);
        assert!(matches!(
            open(&store, &archive, "absent"),
            Err(ArchiveError::NotFound(_))
        ));
    }

    #[test]
    fn unsafe_or_duplicate_names_and_non_zips_are_refused() {
        let (_dir, store) = store();
        for name in ["/etc/passwd", "../up", "a/../b", "", "a\\b", "a//b"] {
            let entry = NewEntry {
                name: name.into(),
                source: EntrySource::Bytes(vec![]),
                compress: false,
            };
            assert!(
                matches!(zip(&store, vec![entry]), Err(ArchiveError::Invalid(_))),
                "{name}"
            );
        }
        let twice = || NewEntry {
            name: "same".into(),
            source: EntrySource::Bytes(vec![]),
            compress: false,
        };
        assert!(matches!(
            zip(&store, vec![twice(), twice()]),
            Err(ArchiveError::Invalid(_))
        ));
        let not_zip = Blob::from_bytes(&store, b"plain text").unwrap();
        assert!(matches!(list(&not_zip), Err(ArchiveError::Invalid(_))));
    }
}
