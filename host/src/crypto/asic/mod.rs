//! ASiC-E containers with a CAdES signature, as the document package of DPO, DPE and DPH, or
//! with a XAdES one ([`xades`]), as DPI's.
//!
//! The container is a zip: `mimetype` first and stored (so the type shows at a fixed offset),
//! the documents, an OASIS `META-INF/manifest.xml`, the signed `META-INF/ASiCManifest.xml` that
//! lists every document with its SHA-256 digest, and `META-INF/signature.p7s`, a detached CMS
//! signature over that manifest made with the business certificate. Documents stream from and
//! into blobs (by handle) and are digested as they pass, so a container of any size costs the
//! same memory; only the manifest and signature, which are small, are held.

mod manifest;
mod read;
mod write;
mod xades;

use std::io;

pub use read::{SignedEntry, VerifiedAsic, verify};
pub use write::{AsicEntry, SignatureForm, build, build_signed};

/// The media type in `mimetype`.
pub const MIME_TYPE: &str = "application/vnd.etsi.asic-e+zip";
/// The signed manifest.
pub const ASIC_MANIFEST: &str = "META-INF/ASiCManifest.xml";
/// The signature over it.
pub const SIGNATURE: &str = "META-INF/signature.p7s";
/// The informative OASIS manifest.
pub const OASIS_MANIFEST: &str = "META-INF/manifest.xml";

/// Why a container could not be built or verified.
#[derive(Debug, thiserror::Error)]
pub enum AsicError {
    /// The entries or the container are malformed; the text says how.
    #[error("ASiC-E: {0}")]
    Invalid(String),
    /// The signature over the manifest does not verify.
    #[error("ASiC-E signature: {0}")]
    Signature(String),
    /// An entry's content differs from what the signed manifest says.
    #[error("ASiC-E entry {0:?} does not match the signed manifest: {1}")]
    Tampered(String, String),
    /// The signing key could not sign.
    #[error("ASiC-E: {0}")]
    Signing(#[from] crate::crypto::SignError),
    /// Reading or writing a blob failed.
    #[error("storage: {0}")]
    Io(io::Error),
}

impl From<io::Error> for AsicError {
    fn from(error: io::Error) -> Self {
        AsicError::Io(error)
    }
}

impl From<zip::result::ZipError> for AsicError {
    fn from(error: zip::result::ZipError) -> Self {
        match error {
            zip::result::ZipError::Io(error) if error.kind() != io::ErrorKind::InvalidData => {
                AsicError::Io(error)
            }
            other => AsicError::Invalid(format!("not a readable zip: {other}")),
        }
    }
}

#[cfg(test)]
mod tests;
