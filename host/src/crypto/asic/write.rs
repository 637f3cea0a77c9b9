//! Building a container: each document is copied from its blob into the zip and digested on the
//! way, then the manifest is written and signed.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::SystemTime;

use openssl::hash::{Hasher, MessageDigest};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::manifest::{self, Digest, Reference};
use super::xades;
use super::{ASIC_MANIFEST, AsicError, MIME_TYPE, OASIS_MANIFEST, SIGNATURE};
use crate::archive::check_entry_name;
use crate::blobs::{Blob, BlobStore};
use crate::crypto::{BusinessCertificate, cades};

/// One document to put in a container.
pub struct AsicEntry {
    /// Its name inside the container.
    pub name: String,
    /// Its media type, written to the manifests.
    pub mime_type: String,
    /// Its bytes.
    pub content: Blob,
}

/// How a container is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureForm {
    /// `META-INF/ASiCManifest.xml` and a CAdES `META-INF/signature.p7s` (DPO, DPE, DPH).
    Cades,
    /// XAdES `META-INF/signatures.xml` (DPI).
    Xades,
}

/// Builds a CAdES-signed ASiC-E container of `entries`, in order, into a new temporary blob.
pub fn build(
    store: &Arc<dyn BlobStore>,
    certificate: &BusinessCertificate,
    entries: Vec<AsicEntry>,
) -> Result<Blob, AsicError> {
    build_signed(store, certificate, entries, SignatureForm::Cades)
}

/// Builds an ASiC-E container of `entries`, in order, signed in `form`, into a new temporary
/// blob.
pub fn build_signed(
    store: &Arc<dyn BlobStore>,
    certificate: &BusinessCertificate,
    entries: Vec<AsicEntry>,
    form: SignatureForm,
) -> Result<Blob, AsicError> {
    check(&entries)?;
    let mut zip = ZipWriter::new_stream(store.create()?);
    let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    let deflated = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    zip.start_file("mimetype", stored)?;
    zip.write_all(MIME_TYPE.as_bytes())?;

    let mut references = Vec::with_capacity(entries.len());
    for entry in &entries {
        let size = entry.content.size();
        zip.start_file(
            entry.name.as_str(),
            deflated.large_file(size >= u64::from(u32::MAX)),
        )?;
        let mut hashing = HashingReader {
            inner: entry.content.open()?,
            hasher: Hasher::new(MessageDigest::sha256()).map_err(io::Error::other)?,
            count: 0,
        };
        io::copy(&mut hashing, &mut zip)?;
        if hashing.count != size {
            return Err(AsicError::Io(io::Error::other(format!(
                "entry {:?} was {size} bytes long but {} were read",
                entry.name, hashing.count
            ))));
        }
        references.push(Reference {
            name: entry.name.clone(),
            mime_type: entry.mime_type.clone(),
            digest: Digest::Sha256,
            value: hashing.hasher.finish().map_err(io::Error::other)?.to_vec(),
        });
    }

    let types: Vec<(&str, &str)> = entries
        .iter()
        .map(|entry| (entry.name.as_str(), entry.mime_type.as_str()))
        .collect();
    zip.start_file(OASIS_MANIFEST, deflated)?;
    zip.write_all(manifest::write_oasis(&types).as_bytes())?;
    match form {
        SignatureForm::Cades => {
            let asic_manifest = manifest::write(SIGNATURE, &references);
            zip.start_file(ASIC_MANIFEST, deflated)?;
            zip.write_all(asic_manifest.as_bytes())?;
            let signature =
                cades::sign_detached(certificate, asic_manifest.as_bytes(), SystemTime::now())?;
            zip.start_file(SIGNATURE, deflated)?;
            zip.write_all(&signature)?;
        }
        SignatureForm::Xades => {
            let now = crate::timefmt::format_millis(crate::store::now_millis());
            let signatures = xades::write(certificate, &references, &now)?;
            zip.start_file(xades::SIGNATURES, deflated)?;
            zip.write_all(signatures.as_bytes())?;
        }
    }

    let (id, size) = zip.finish()?.into_inner().commit()?;
    Ok(Blob::temporary(store.clone(), id, size))
}

/// Entry names must be safe, unique and outside what the container itself uses.
fn check(entries: &[AsicEntry]) -> Result<(), AsicError> {
    let mut names = HashSet::new();
    for entry in entries {
        check_entry_name(&entry.name).map_err(|error| AsicError::Invalid(error.to_string()))?;
        if entry.name == "mimetype" || entry.name.starts_with("META-INF/") {
            return Err(AsicError::Invalid(format!(
                "entry name {:?} is reserved for the container",
                entry.name
            )));
        }
        if !names.insert(entry.name.as_str()) {
            return Err(AsicError::Invalid(format!(
                "duplicate entry name {:?}",
                entry.name
            )));
        }
        if entry.mime_type.is_empty() || entry.mime_type.chars().any(char::is_control) {
            return Err(AsicError::Invalid(format!(
                "entry {:?} has no usable media type",
                entry.name
            )));
        }
    }
    Ok(())
}

/// Digests what passes through it.
pub(super) struct HashingReader<R> {
    pub inner: R,
    pub hasher: Hasher,
    pub count: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.hasher
            .update(&buffer[..read])
            .map_err(io::Error::other)?;
        self.count += read as u64;
        Ok(read)
    }
}
