//! Verifying a container: the signature over the manifest, then every document against the
//! manifest's digest, streaming each entry through the hash.
//!
//! What is checked: `mimetype` is the first entry, stored, with the ASiC-E type; the CMS
//! signature verifies over `ASiCManifest.xml` (message digest, signed attributes, including the
//! ESS signing-certificate binding, with the signer certificate carried in the `.p7s`); with a
//! trust store the signer's chain must also build to one of its anchors (OpenSSL's S/MIME
//! signing purpose; a store whose parameters set another purpose overrides it); every entry the
//! manifest references exists and has the digest it states; and every other document-area entry
//! is refused, as it would be unsigned. Revocation is not checked.

use std::collections::HashSet;
use std::io::{self, Read};

use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::hash::Hasher;
use openssl::x509::X509;
use openssl::x509::store::X509StoreRef;
use zip::{CompressionMethod, ZipArchive};

use super::manifest::{self, Manifest};
use super::{ASIC_MANIFEST, AsicError, MIME_TYPE};
use crate::blobs::Blob;
use crate::crypto::cades;

/// The most a manifest or signature file may hold; both are small.
const SMALL_ENTRY_CAP: u64 = 4 << 20;

/// One document the signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEntry {
    /// Its name in the container.
    pub name: String,
    /// The media type the manifest gives it.
    pub mime_type: String,
    /// Its length.
    pub size: u64,
}

/// A container whose signature and documents checked out.
#[derive(Debug)]
pub struct VerifiedAsic {
    /// The certificate that signed the manifest.
    pub signer: X509,
    /// The signed documents, in manifest order.
    pub entries: Vec<SignedEntry>,
}

/// Verifies the ASiC-E container in `blob`; with `trust`, the signer's chain must build to it.
pub fn verify(blob: &Blob, trust: Option<&X509StoreRef>) -> Result<VerifiedAsic, AsicError> {
    let mut archive = ZipArchive::new(io::BufReader::new(blob.open()?))?;
    check_mimetype(&mut archive)?;
    let manifest_bytes = small_entry(&mut archive, ASIC_MANIFEST)?;
    let manifest_text = std::str::from_utf8(&manifest_bytes)
        .map_err(|_| AsicError::Invalid(format!("{ASIC_MANIFEST} is not UTF-8")))?;
    let Manifest {
        signature,
        references,
    } = manifest::parse(manifest_text)?;
    let signature = signature
        .ok_or_else(|| AsicError::Invalid(format!("{ASIC_MANIFEST} has no SigReference")))?;
    if !signature.starts_with("META-INF/") {
        return Err(AsicError::Invalid(format!(
            "the signature {signature:?} is not under META-INF/"
        )));
    }
    let signature_bytes = small_entry(&mut archive, &signature)?;
    let signer = verify_signature(&signature_bytes, &manifest_bytes, trust)?;

    let mut covered = HashSet::new();
    let mut entries = Vec::with_capacity(references.len());
    for reference in references {
        if !covered.insert(reference.name.clone()) {
            return Err(AsicError::Invalid(format!(
                "the manifest lists {:?} twice",
                reference.name
            )));
        }
        let tampered = |reason: String| AsicError::Tampered(reference.name.clone(), reason);
        let mut file = match archive.by_name(&reference.name) {
            Ok(file) => file,
            Err(zip::result::ZipError::FileNotFound) => {
                return Err(tampered("it is missing from the container".into()));
            }
            Err(error) => return Err(error.into()),
        };
        let mut hasher = Hasher::new(reference.digest.message_digest())
            .map_err(|error| AsicError::Invalid(error.to_string()))?;
        let size = io::copy(&mut file, &mut hasher).map_err(|error| match error.kind() {
            io::ErrorKind::InvalidData => tampered(error.to_string()),
            _ => AsicError::Io(error),
        })?;
        let digest = hasher
            .finish()
            .map_err(|error| AsicError::Invalid(error.to_string()))?;
        if *digest != *reference.value {
            return Err(tampered("its digest differs".into()));
        }
        entries.push(SignedEntry {
            name: reference.name,
            mime_type: reference.mime_type,
            size,
        });
    }
    let names = archive
        .file_names()
        .map(|name| name.map(|name| name.into_owned()))
        .collect::<Result<Vec<_>, _>>()?;
    let unsigned = |name: &&String| {
        name.as_str() != "mimetype"
            && !name.starts_with("META-INF/")
            && !name.ends_with('/')
            && !covered.contains(name.as_str())
    };
    if let Some(unsigned) = names.iter().find(unsigned) {
        return Err(AsicError::Invalid(format!(
            "entry {unsigned:?} is not covered by the signature"
        )));
    }
    Ok(VerifiedAsic { signer, entries })
}

fn check_mimetype<R: Read + io::Seek>(archive: &mut ZipArchive<R>) -> Result<(), AsicError> {
    let not_asic = |reason: &str| AsicError::Invalid(format!("not an ASiC-E container: {reason}"));
    if archive.is_empty() {
        return Err(not_asic("the zip is empty"));
    }
    let mut first = archive.by_index(0)?;
    if first.name()? != "mimetype" {
        return Err(not_asic("the first entry is not mimetype"));
    }
    if first.compression() != CompressionMethod::Stored {
        return Err(not_asic("mimetype is compressed"));
    }
    let mut content = String::new();
    (&mut first)
        .take(256)
        .read_to_string(&mut content)
        .map_err(|_| not_asic("mimetype is not text"))?;
    if content != MIME_TYPE {
        return Err(not_asic(&format!("mimetype is {content:?}")));
    }
    Ok(())
}

fn small_entry<R: Read + io::Seek>(
    archive: &mut ZipArchive<R>,
    name: &str,
) -> Result<Vec<u8>, AsicError> {
    let file = match archive.by_name(name) {
        Ok(file) => file,
        Err(zip::result::ZipError::FileNotFound) => {
            return Err(AsicError::Invalid(format!("{name} is missing")));
        }
        Err(error) => return Err(error.into()),
    };
    let mut bytes = Vec::new();
    file.take(SMALL_ENTRY_CAP + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| AsicError::Invalid(format!("{name}: {error}")))?;
    if bytes.len() as u64 > SMALL_ENTRY_CAP {
        return Err(AsicError::Invalid(format!(
            "{name} is larger than {SMALL_ENTRY_CAP} bytes"
        )));
    }
    Ok(bytes)
}

/// Verifies the detached CMS signature over the manifest; returns the signer's certificate.
fn verify_signature(
    signature: &[u8],
    manifest: &[u8],
    trust: Option<&X509StoreRef>,
) -> Result<X509, AsicError> {
    let failed = |reason: String| AsicError::Signature(reason);
    let mut cms = CmsContentInfo::from_der(signature)
        .map_err(|_| failed("the signature file is not CMS".into()))?;
    let flags = match trust {
        Some(_) => CMSOptions::BINARY,
        None => CMSOptions::BINARY | CMSOptions::NO_SIGNER_CERT_VERIFY,
    };
    cms.verify(None, trust, Some(manifest), None, flags)
        .map_err(|error| failed(format!("does not verify over the manifest: {error}")))?;
    cades::signer_certificate(signature)
        .map_err(|error| failed(error.to_string()))?
        .ok_or_else(|| failed("the signer's certificate is not in the signature".into()))
}
