//! The package most channels send: a channel's `manifest.xml` and the message's documents in an
//! ASiC-E, CMS-encrypted to the receiver's certificate. Building the container and encrypting it
//! are host imports, so no document byte enters the plugin; only the manifest and the key
//! transport differ between channels.

use crate::crypto::{self, AsicEntry, KeyTransport};
use crate::types::{Blob, Failure, Outgoing};

/// `manifest` as `manifest.xml`, then the documents of `message` in their order, in an ASiC-E
/// encrypted to `certificate` (PEM) with `transport`.
pub fn sealed(
    message: &Outgoing,
    manifest: &str,
    certificate: &str,
    transport: KeyTransport,
) -> Result<Blob, Failure> {
    let manifest = Blob::new(manifest.as_bytes());
    let mut entries = vec![AsicEntry {
        name: "manifest.xml".to_owned(),
        mime_type: "application/xml".to_owned(),
        content: &manifest,
    }];
    entries.extend(message.documents.iter().map(|document| AsicEntry {
        name: document.name.clone(),
        mime_type: document.mime_type.clone(),
        content: &document.content,
    }));
    let container = crypto::build_asic(&entries)?;
    Ok(crypto::cms_encrypt(&container, certificate, transport)?)
}
