//! From what the store keeps to what a channel is handed: the outgoing value with its documents
//! as blob handles and the registry's record in the contract's shape.

use std::io;
use std::sync::Arc;

use crate::blobs::{Blob, BlobId, BlobStore};
use crate::plugins::bindings::{Mailbox, Party, ServiceRecord as WitRecord};
use crate::plugins::{Document, OutgoingMessage};
use crate::registry::ServiceRecord;
use crate::sbd::stored_parties;
use crate::store::{FileContent, MessageFile, OutMessage};

/// The registry's record as the contract carries it; `json` is the record as JSON, which the
/// contract carries too.
fn wit_record(record: &ServiceRecord, json: &str) -> WitRecord {
    let mailbox = match (&record.postkasse_adresse, &record.orgnr_postkasse) {
        (Some(address), Some(provider)) => Some(Mailbox {
            address: address.clone(),
            provider: provider.clone(),
            notifiable: record.kan_varsles,
            email: record.epost_adresse.clone(),
            mobile: record.mobilnummer.clone(),
        }),
        _ => None,
    };
    let mut extra = Vec::new();
    if let Some(organisation) = &record.organisation_number {
        extra.push(("organisationNumber".to_owned(), organisation.clone()));
    }
    if let Some(language) = &record.spraak {
        extra.push(("spraak".to_owned(), language.clone()));
    }
    if let Some(her_id) = &record.her_id {
        extra.push(("herId".to_owned(), her_id.clone()));
    }
    extra.push(("record".to_owned(), json.to_owned()));
    WitRecord {
        service: record.service.identifier.clone(),
        process: record.process.clone(),
        document_types: record.document_types.clone(),
        endpoint_url: record.service.endpoint_url.clone(),
        certificate: record.certificate_pem(),
        security_level: record
            .service
            .security_level
            .and_then(|level| u32::try_from(level).ok()),
        service_code: record.service.service_code.clone(),
        service_edition: record.service.service_edition_code.clone(),
        altinn_resource: record.service.resource.clone(),
        mailbox,
        reserved: record.fysisk_post,
        extra,
    }
}

/// The bytes of an outgoing file as a blob: its own, or a temporary one of what its row holds.
pub(crate) fn file_blob(file: &MessageFile, blobs: &Arc<dyn BlobStore>) -> io::Result<Blob> {
    match &file.content {
        FileContent::Blob(id) => Ok(Blob::kept(
            blobs.clone(),
            BlobId::new(id.clone()),
            file.size.max(0) as u64,
        )),
        FileContent::Inline(sealed) => Blob::from_bytes(blobs, &blobs.unseal(sealed)?),
    }
}

/// The outgoing value for `message` with `files`.
pub(crate) fn outgoing(
    message: &OutMessage,
    files: &[MessageFile],
    blobs: &Arc<dyn BlobStore>,
) -> Result<OutgoingMessage, String> {
    let record: ServiceRecord = serde_json::from_str(&message.service_record)
        .map_err(|error| format!("the stored service record is unreadable: {error}"))?;
    let party = |identifier: &str| Party {
        identifier: identifier.to_owned(),
        name: None,
    };
    let (sender, receiver) = stored_parties(&message.sbd)?;
    let sender = sender.unwrap_or_else(|| message.sender_identifier.clone());
    let receiver = receiver
        .or_else(|| message.receiver_identifier.clone())
        .unwrap_or_default();
    Ok(OutgoingMessage {
        message_id: message.message_id.clone(),
        conversation_id: message.conversation_id.clone(),
        sender: party(&sender),
        receiver: party(&receiver),
        process: message.process_identifier.clone(),
        document_type: message.document_type.clone(),
        sbd: message.sbd.clone(),
        documents: files
            .iter()
            .map(|file| {
                Ok(Document {
                    name: file.filename.clone(),
                    title: file.title.clone(),
                    mime_type: file.mime_type.clone(),
                    primary: file.primary_document,
                    content: file_blob(file, blobs).map_err(|error| {
                        format!("the file {} cannot be read: {error}", file.filename)
                    })?,
                })
            })
            .collect::<Result<_, String>>()?,
        service: wit_record(&record, &message.service_record),
        expires_at: message.expiry.and_then(|at| u64::try_from(at).ok()),
    })
}
