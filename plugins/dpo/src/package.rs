//! The `sbd.zip` a DPO message travels in, as the Altinn 2 integration points lay it out.
//!
//! The zip holds `manifest.xml` (the broker manifest) and `recipients.xml` (the recipient
//! list), `sbd.json` (the Standard Business Document) and, when the message has documents,
//! `asic.zip`: a CAdES-signed ASiC-E of the documents CMS-encrypted to the receiver's
//! certificate. A status message has no documents and so no `asic.zip`. Every document and the
//! container stay host-held blobs; only the small XML and JSON are built here.

use eformidling_sdk::archive::{self, Entry, EntryContent};
use eformidling_sdk::asic;
use eformidling_sdk::crypto::KeyTransport;
use eformidling_sdk::types::{Blob, Failure, Outgoing};

use crate::soap::{self, BROKER_DATA_NS, Service};
use eformidling_sdk::xml::escape;

/// The name of the file uploaded to the broker.
pub const FILE_NAME: &str = "sbd.zip";
/// The entry holding the SBD.
pub const SBD_ENTRY: &str = "sbd.json";
/// The entry holding the encrypted documents.
pub const ASIC_ENTRY: &str = "asic.zip";
/// The namespace of the business manifest inside the ASiC-E.
const BUSINESS_MANIFEST_NS: &str = "http://begrep.difi.no/sdp/schema_v10";
/// The largest `sbd.json` read from a received package.
const MAX_SBD: u64 = 4 << 20;
/// The most one blob read carries.
const READ_CHUNK: u32 = 1 << 20;

/// Who sends to whom, and under which reference.
pub struct Addressing<'a> {
    /// The broker service the file belongs to.
    pub service: Service<'a>,
    /// The sending organisation number.
    pub sender: &'a str,
    /// The receiving organisation number.
    pub receiver: &'a str,
    /// The sender's reference of the file.
    pub senders_reference: &'a str,
}

/// The `sbd.zip` of `message`.
pub fn build(message: &Outgoing, addressing: &Addressing) -> Result<Blob, Failure> {
    let manifest = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <BrokerServiceManifest xmlns=\"{BROKER_DATA_NS}\">{}</BrokerServiceManifest>",
        soap::manifest(
            &addressing.service,
            addressing.sender,
            addressing.senders_reference,
            FILE_NAME
        )
    );
    let recipients = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <BrokerServiceRecipientList xmlns=\"{BROKER_DATA_NS}\">{}</BrokerServiceRecipientList>",
        soap::recipients(addressing.receiver)
    );
    let asic = encrypted_asic(message)?;
    let mut entries = vec![
        Entry {
            name: "manifest.xml".to_owned(),
            content: EntryContent::Bytes(manifest.into_bytes()),
            compress: true,
        },
        Entry {
            name: "recipients.xml".to_owned(),
            content: EntryContent::Bytes(recipients.into_bytes()),
            compress: true,
        },
        Entry {
            name: SBD_ENTRY.to_owned(),
            content: EntryContent::Bytes(message.sbd.clone().into_bytes()),
            compress: true,
        },
    ];
    if let Some(asic) = &asic {
        entries.push(Entry {
            name: ASIC_ENTRY.to_owned(),
            content: EntryContent::Blob(asic),
            compress: false,
        });
    }
    Ok(archive::zip(&entries)?)
}

/// The documents as a CAdES-signed ASiC-E encrypted to the receiver; none without documents.
fn encrypted_asic(message: &Outgoing) -> Result<Option<Blob>, Failure> {
    if message.documents.is_empty() {
        return Ok(None);
    }
    let certificate = message.service.certificate.as_deref().ok_or_else(|| {
        Failure::Reject(format!(
            "the service record of {} has no certificate to encrypt to",
            message.receiver.identifier
        ))
    })?;
    Ok(Some(asic::sealed(
        message,
        &business_manifest(message),
        certificate,
        KeyTransport::RsaOaepSha256,
    )?))
}

/// The business manifest of the ASiC-E: receiver, sender and main document.
fn business_manifest(message: &Outgoing) -> String {
    let primary = message
        .documents
        .iter()
        .find(|d| d.primary)
        .or_else(|| message.documents.first())
        .map(|d| {
            format!(
                "<hoveddokument href=\"{}\" mime=\"{}\"><tittel lang=\"no\">Hoveddokument</tittel></hoveddokument>",
                escape(&d.name),
                escape(&d.mime_type)
            )
        })
        .unwrap_or_default();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><manifest xmlns=\"{BUSINESS_MANIFEST_NS}\">\
         <mottaker><organisasjon authority=\"iso6523-actorid-upis\">{}</organisasjon></mottaker>\
         <avsender><organisasjon authority=\"iso6523-actorid-upis\">{}</organisasjon></avsender>\
         {primary}</manifest>",
        escape(&message.receiver.identifier),
        escape(&message.sender.identifier),
    )
}

/// What a received `sbd.zip` holds: the SBD and the encrypted documents, if any.
pub struct Opened {
    /// The SBD JSON.
    pub sbd: String,
    /// The encrypted ASiC-E.
    pub asic: Option<Blob>,
}

/// Opens a received `sbd.zip`.
pub fn open(package: &Blob) -> Result<Opened, Failure> {
    let entries = archive::entries(package)?;
    let sbd_entry = entries
        .iter()
        .find(|e| e.name == SBD_ENTRY)
        .ok_or_else(|| Failure::Reject(format!("the package has no {SBD_ENTRY}")))?;
    if sbd_entry.size > MAX_SBD {
        return Err(Failure::Reject(format!(
            "the package's {SBD_ENTRY} is {} bytes, more than the {MAX_SBD} allowed",
            sbd_entry.size
        )));
    }
    let sbd = read_all(&archive::open(package, SBD_ENTRY)?);
    let sbd = String::from_utf8(sbd)
        .map_err(|_| Failure::Reject(format!("the package's {SBD_ENTRY} is not UTF-8")))?;
    let asic = entries
        .iter()
        .any(|e| e.name == ASIC_ENTRY)
        .then(|| archive::open(package, ASIC_ENTRY))
        .transpose()?;
    Ok(Opened { sbd, asic })
}

/// Every byte of a small blob.
fn read_all(blob: &Blob) -> Vec<u8> {
    let mut bytes = Vec::new();
    loop {
        let chunk = blob.read(bytes.len() as u64, READ_CHUNK);
        if chunk.is_empty() {
            return bytes;
        }
        bytes.extend_from_slice(&chunk);
    }
}
