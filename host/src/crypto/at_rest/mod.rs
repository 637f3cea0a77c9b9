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
use std::io::{self, Read as _, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openssl::cipher_ctx::CipherCtx;
use openssl::symm::{Cipher, Mode};

use super::BusinessCertificate;
use super::aes_cbc;
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

/// How many blobs one content key encrypts before a new one is made.
const KEY_USES: u32 = 1024;
/// How long one content key encrypts new blobs at most.
const KEY_LIFETIME: Duration = Duration::from_secs(600);

/// A [`BlobStore`] that encrypts what it stores with the business certificate.
pub struct EncryptedBlobStore {
    inner: Arc<dyn BlobStore>,
    certificate: BusinessCertificate,
    sealing: Mutex<Option<SealingKey>>,
}

/// The content key new blobs are encrypted under, with the RecipientInfos that wrap it.
///
/// Wrapping a key to the certificate is an RSA operation, which costs more than encrypting a
/// small file, and paying it for every blob was most of what keeping a small document cost.
/// A key therefore serves [`KEY_USES`] blobs or [`KEY_LIFETIME`], whichever ends first. Each
/// blob still has its own random IV, so no two share a key stream, and each is still a
/// complete EnvelopedData that `openssl cms -decrypt` opens on its own; reading back blobs of
/// one key after a restart also unwraps it once instead of once per blob.
#[derive(Clone)]
struct SealingKey {
    key: [u8; 32],
    recipient_infos: Vec<u8>,
    uses: u32,
    made: Instant,
}

impl EncryptedBlobStore {
    /// Encrypts into `inner` for `certificate`, which also decrypts.
    pub fn new(inner: Arc<dyn BlobStore>, certificate: BusinessCertificate) -> Self {
        Self {
            inner,
            certificate,
            sealing: Mutex::default(),
        }
    }

    /// A reader decrypting `stored`, which an error calls `what` when it cannot be decrypted.
    fn decrypting<R: io::Read + io::Seek>(
        &self,
        stored: R,
        what: &str,
    ) -> io::Result<DecryptingReader<R>> {
        DecryptingReader::open(stored, &self.certificate).map_err(|error| match io_error(error) {
            error if error.kind() == io::ErrorKind::InvalidData => io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{what} cannot be decrypted: {error}"),
            ),
            error => error,
        })
    }

    /// The key for one more blob: the current one, or a new one when it has served its share.
    fn sealing_key(&self) -> Result<SealingKey, CmsError> {
        let mut current = self.sealing.lock().expect("the sealing key");
        if let Some(key) = current.as_mut()
            && key.uses < KEY_USES
            && key.made.elapsed() < KEY_LIFETIME
        {
            key.uses += 1;
            return Ok(key.clone());
        }
        let mut key = [0; 32];
        crate::crypto::random(&mut key)?;
        let recipient = recipient_info(
            self.certificate.certificate(),
            KeyTransport::RsaOaepSha256,
            &key,
        )?;
        let recipient_infos = der::tlv(tag::SET, &recipient);
        // Reading these blobs back in this process then needs no RSA private-key operation.
        self.certificate
            .content_keys()
            .remember(&recipient_infos, &key);
        let fresh = SealingKey {
            key,
            recipient_infos,
            uses: 1,
            made: Instant::now(),
        };
        *current = Some(fresh.clone());
        Ok(fresh)
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
        let key = self.sealing_key().map_err(io_error)?;
        let writer =
            EncryptingWriter::start(self.inner.create()?, &key, CHUNK).map_err(io_error)?;
        Ok(Box::new(writer))
    }

    fn open(&self, id: &BlobId) -> io::Result<Box<dyn BlobReader>> {
        let reader = self.decrypting(self.inner.open(id)?, &format!("stored blob {id}"))?;
        Ok(Box::new(reader))
    }

    fn remove(&self, id: &BlobId) -> io::Result<()> {
        self.inner.remove(id)
    }

    fn keep(&self, id: &BlobId) -> io::Result<BlobId> {
        self.inner.keep(id)
    }

    /// The same EnvelopedData a stored blob is, in memory: what a row holds can be opened
    /// like a stored file.
    fn seal(&self, plain: &[u8]) -> io::Result<Vec<u8>> {
        let key = self.sealing_key().map_err(io_error)?;
        let mut writer =
            EncryptingWriter::start(Vec::new(), &key, plain.len()).map_err(io_error)?;
        writer.write_all(plain)?;
        Ok(writer.finish()?.0)
    }

    fn unseal(&self, sealed: &[u8]) -> io::Result<Vec<u8>> {
        let mut reader = self.decrypting(io::Cursor::new(sealed), "sealed bytes")?;
        let mut plain = Vec::new();
        reader.read_to_end(&mut plain)?;
        Ok(plain)
    }
}

fn io_error(error: CmsError) -> io::Error {
    match error {
        CmsError::Io(error) => error,
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}

/// Encrypts into `inner` as it is written; the plaintext length is known only at the end.
struct EncryptingWriter<W> {
    inner: W,
    crypter: CipherCtx,
    pending: Vec<u8>,
    scratch: Vec<u8>,
    plain_length: u64,
}

impl<W: Write> EncryptingWriter<W> {
    /// Starts the EnvelopedData in `inner` under `key`; `expected` plaintext bytes (at most
    /// [`CHUNK`] are buffered) size the buffers, so sealing a small file does not allocate a
    /// chunk's worth.
    fn start(mut inner: W, key: &SealingKey, expected: usize) -> Result<Self, CmsError> {
        let mut iv = [0; 16];
        crate::crypto::random(&mut iv)?;
        let recipient_infos = &key.recipient_infos;
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
            recipient_infos.as_slice(),
            &indefinite(tag::SEQUENCE),
            &der::tlv(tag::OID, oid::DATA),
            &algorithm,
            &indefinite(tag::context_constructed(0)),
        ]
        .concat();
        inner.write_all(&header)?;
        Ok(Self {
            inner,
            crypter: aes_cbc::context(Cipher::aes_256_cbc(), Mode::Encrypt, &key.key, &iv)?,
            pending: Vec::with_capacity(expected.min(CHUNK) * 2 + 16),
            scratch: vec![0; expected.clamp(16, CHUNK) + 16],
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

impl<W: Write> Write for EncryptingWriter<W> {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        let take = buffer.len().min(self.scratch.len() - 16);
        let produced = self
            .crypter
            .cipher_update(&buffer[..take], Some(&mut self.scratch))
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

impl<W: Write> EncryptingWriter<W> {
    /// Writes the last chunk and the end-of-contents; returns `inner` and the plaintext length.
    fn finish(mut self) -> io::Result<(W, u64)> {
        let produced = self
            .crypter
            .cipher_final(&mut self.scratch)
            .map_err(io::Error::other)?;
        self.pending.extend_from_slice(&self.scratch[..produced]);
        self.write_full_chunks()?;
        self.inner
            .write_all(&der::header(tag::OCTET_STRING, self.pending.len() as u64))?;
        self.inner.write_all(&self.pending)?;
        self.inner.write_all(&TRAILER)?;
        Ok((self.inner, self.plain_length))
    }
}

impl BlobWriter for EncryptingWriter<Box<dyn BlobWriter>> {
    fn commit(self: Box<Self>) -> io::Result<(BlobId, u64)> {
        let (inner, plain_length) = self.finish()?;
        let (id, _) = inner.commit()?;
        Ok((id, plain_length))
    }
}

#[cfg(test)]
mod tests;
