//! CMS EnvelopedData (RFC 5652), streaming both ways.
//!
//! Document packages are encrypted to the receiver's certificate: a random AES-256-CBC key
//! encrypts the content and is itself wrapped with the recipient's RSA key (RSAES-OAEP with
//! SHA-256 for DPO and DPI, PKCS#1 v1.5 for DPE and some DPF set-ups). No crate streams this, and
//! a package may be gigabytes, so the framing is written and read here with memory independent of
//! size; OpenSSL does the RSA and AES.
//!
//! Writing uses definite lengths: the blob's length is known before the first byte, so every
//! length is computed up front and the output is plain DER, which every CMS reader accepts (some
//! strict or non-streaming readers refuse BER) and costs no chunk framing. Reading accepts DER
//! and BER alike, including the indefinite lengths and chunked OCTET STRINGs that streaming
//! writers (`openssl cms -stream`, BouncyCastle's streaming generators) produce.

mod decrypt;
mod encrypt;

use std::io;
use std::sync::Arc;

use openssl::x509::X509Ref;

pub use decrypt::Decryptor;
pub(in crate::crypto) use decrypt::{ContentKey, open};
pub use encrypt::encrypt;
pub(in crate::crypto) use encrypt::recipient_info;

use super::BusinessCertificate;
use super::der::DerError;
use crate::blobs::{Blob, BlobStore};

/// How the content-encryption key is wrapped for the recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTransport {
    /// RSAES-OAEP with SHA-256 and MGF1-SHA-256.
    RsaOaepSha256,
    /// RSA PKCS#1 v1.5 (`rsaEncryption`).
    RsaPkcs1v15,
}

/// Why a CMS operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CmsError {
    /// The input is not CMS EnvelopedData we can open; the text says why.
    #[error("CMS: {0}")]
    Invalid(String),
    /// The recipient certificate cannot receive encrypted content.
    #[error("recipient certificate: {0}")]
    Recipient(String),
    /// Reading or writing a blob failed.
    #[error("storage: {0}")]
    Io(io::Error),
}

impl From<io::Error> for CmsError {
    /// Malformed input surfaces from the stream readers as `InvalidData`.
    fn from(error: io::Error) -> Self {
        if error.kind() == io::ErrorKind::InvalidData {
            CmsError::Invalid(error.to_string())
        } else {
            CmsError::Io(error)
        }
    }
}

impl From<DerError> for CmsError {
    fn from(error: DerError) -> Self {
        CmsError::Invalid(error.0)
    }
}

impl From<getrandom::Error> for CmsError {
    fn from(error: getrandom::Error) -> Self {
        CmsError::Invalid(format!("no random bytes: {error}"))
    }
}

impl From<openssl::error::ErrorStack> for CmsError {
    fn from(error: openssl::error::ErrorStack) -> Self {
        CmsError::Invalid(format!("OpenSSL: {error}"))
    }
}

/// Encrypts `content` to `recipient` into a new temporary blob.
pub fn encrypt_blob(
    store: &Arc<dyn BlobStore>,
    content: &Blob,
    recipient: &X509Ref,
    transport: KeyTransport,
) -> Result<Blob, CmsError> {
    let mut writer = store.create()?;
    encrypt(
        &mut content.open()?,
        content.size(),
        recipient,
        transport,
        &mut writer,
    )?;
    let (id, size) = writer.commit()?;
    Ok(Blob::temporary(store.clone(), id, size))
}

/// Decrypts the EnvelopedData in `enveloped`, addressed to `certificate`, into a new temporary
/// blob; nothing is left behind if it fails.
pub fn decrypt_blob(
    store: &Arc<dyn BlobStore>,
    enveloped: &Blob,
    certificate: &BusinessCertificate,
) -> Result<Blob, CmsError> {
    let mut decryptor = Decryptor::new(io::BufReader::new(enveloped.open()?), certificate)?;
    let mut writer = store.create()?;
    io::copy(&mut decryptor, &mut writer)?;
    let (id, size) = writer.commit()?;
    Ok(Blob::temporary(store.clone(), id, size))
}

#[cfg(test)]
mod tests;
