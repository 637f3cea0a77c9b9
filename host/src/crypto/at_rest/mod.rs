//! Encryption at rest: a blob store that keeps every blob as CMS EnvelopedData to the
//! organisation's own certificate, so stored documents are unreadable without its key, and an
//! operator can still open one with standard tools (`openssl cms -decrypt`).
//!
//! Writers do not know their length in advance, so the content is written with BER indefinite
//! lengths as a series of OCTET STRING chunks. The chunks are all [`CHUNK`] bytes except the
//! last, which holds 16 to [`CHUNK`] bytes and ends with the padding; that fixed layout is what
//! makes the stored form seekable. Readers need `Seek` (blob reads at an offset, zip reading),
//! and CBC allows it: any block decrypts from itself and the ciphertext block before it, and a
//! chunk's place in the file follows from its index. Memory per reader or writer is one chunk.

mod reader;

use std::fmt;
use std::io::{self, Write};
use std::sync::Arc;

use openssl::symm::{Cipher, Crypter, Mode};

use super::BusinessCertificate;
use super::cms::{CmsError, KeyTransport, recipient_info};
use super::der::{self, oid, tag};
use crate::blobs::{BlobId, BlobReader, BlobStore, BlobWriter};
use reader::DecryptingReader;

/// The ciphertext bytes in every chunk but the last; a multiple of the AES block.
const CHUNK: usize = 64 * 1024;
/// The header of a full chunk: OCTET STRING of [`CHUNK`] bytes.
const FULL_CHUNK_HEADER: [u8; 5] = [tag::OCTET_STRING, 0x83, 0x01, 0x00, 0x00];
/// End-of-contents for the five indefinite-length levels.
const TRAILER: [u8; 10] = [0; 10];

/// A [`BlobStore`] that encrypts what it stores with the business certificate.
pub struct EncryptedBlobStore {
    inner: Arc<dyn BlobStore>,
    certificate: BusinessCertificate,
}

impl EncryptedBlobStore {
    /// Encrypts into `inner` for `certificate`, which also decrypts.
    pub fn new(inner: Arc<dyn BlobStore>, certificate: BusinessCertificate) -> Self {
        Self { inner, certificate }
    }
}

impl fmt::Debug for EncryptedBlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedBlobStore")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl BlobStore for EncryptedBlobStore {
    fn create(&self) -> io::Result<Box<dyn BlobWriter>> {
        let writer =
            EncryptingWriter::start(self.inner.create()?, &self.certificate).map_err(io_error)?;
        Ok(Box::new(writer))
    }

    fn open(&self, id: &BlobId) -> io::Result<Box<dyn BlobReader>> {
        let reader =
            DecryptingReader::open(self.inner.open(id)?, &self.certificate).map_err(|error| {
                match io_error(error) {
                    error if error.kind() == io::ErrorKind::InvalidData => io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("stored blob {id} cannot be decrypted: {error}"),
                    ),
                    error => error,
                }
            })?;
        Ok(Box::new(reader))
    }

    fn remove(&self, id: &BlobId) -> io::Result<()> {
        self.inner.remove(id)
    }

    fn keep(&self, id: &BlobId) -> io::Result<BlobId> {
        self.inner.keep(id)
    }
}

fn io_error(error: CmsError) -> io::Error {
    match error {
        CmsError::Io(error) => error,
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}

/// Encrypts as it is written; the plaintext length is known only at commit.
struct EncryptingWriter {
    inner: Box<dyn BlobWriter>,
    crypter: Crypter,
    pending: Vec<u8>,
    scratch: Vec<u8>,
    plain_length: u64,
}

impl EncryptingWriter {
    fn start(
        mut inner: Box<dyn BlobWriter>,
        certificate: &BusinessCertificate,
    ) -> Result<Self, CmsError> {
        let mut key = [0; 32];
        let mut iv = [0; 16];
        openssl::rand::rand_bytes(&mut key)?;
        openssl::rand::rand_bytes(&mut iv)?;
        let recipient =
            recipient_info(certificate.certificate(), KeyTransport::RsaOaepSha256, &key)?;
        let recipient_infos = der::tlv(tag::SET, &recipient);
        // Reading this blob back in this process then needs no RSA private-key operation.
        certificate.content_keys().remember(&recipient_infos, &key);
        let algorithm = der::constructed(
            tag::SEQUENCE,
            &[
                &der::tlv(tag::OID, oid::AES256_CBC),
                &der::tlv(tag::OCTET_STRING, &iv),
            ],
        );
        let indefinite = |tag: u8| [tag, 0x80];
        let header = [
            &indefinite(tag::SEQUENCE)[..],
            &der::tlv(tag::OID, oid::ENVELOPED_DATA),
            &indefinite(tag::context_constructed(0)),
            &indefinite(tag::SEQUENCE),
            &der::tlv(tag::INTEGER, &[0]),
            &recipient_infos,
            &indefinite(tag::SEQUENCE),
            &der::tlv(tag::OID, oid::DATA),
            &algorithm,
            &indefinite(tag::context_constructed(0)),
        ]
        .concat();
        inner.write_all(&header)?;
        Ok(Self {
            inner,
            crypter: Crypter::new(Cipher::aes_256_cbc(), Mode::Encrypt, &key, Some(&iv))?,
            pending: Vec::with_capacity(2 * CHUNK),
            scratch: vec![0; CHUNK + 16],
            plain_length: 0,
        })
    }

    /// Writes full chunks while more than one chunk is pending, so the last stays 16..=CHUNK.
    fn write_full_chunks(&mut self) -> io::Result<()> {
        while self.pending.len() > CHUNK {
            self.inner.write_all(&FULL_CHUNK_HEADER)?;
            self.inner.write_all(&self.pending[..CHUNK])?;
            self.pending.drain(..CHUNK);
        }
        Ok(())
    }
}

impl Write for EncryptingWriter {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        let take = buffer.len().min(CHUNK);
        let produced = self
            .crypter
            .update(&buffer[..take], &mut self.scratch)
            .map_err(io::Error::other)?;
        self.pending.extend_from_slice(&self.scratch[..produced]);
        self.plain_length += take as u64;
        self.write_full_chunks()?;
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl BlobWriter for EncryptingWriter {
    fn commit(mut self: Box<Self>) -> io::Result<(BlobId, u64)> {
        let produced = self
            .crypter
            .finalize(&mut self.scratch)
            .map_err(io::Error::other)?;
        let this = &mut *self;
        this.pending.extend_from_slice(&this.scratch[..produced]);
        this.write_full_chunks()?;
        this.inner
            .write_all(&der::header(tag::OCTET_STRING, this.pending.len() as u64))?;
        this.inner.write_all(&this.pending)?;
        this.inner.write_all(&TRAILER)?;
        let plain_length = self.plain_length;
        let (id, _) = self.inner.commit()?;
        Ok((id, plain_length))
    }
}

#[cfg(test)]
mod tests;
