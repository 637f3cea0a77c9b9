//! From what the store keeps, or what the API had in hand when it stored it, to what a channel
//! is handed: the outgoing value with its documents as blob handles and the registry's record
//! in the contract's shape.

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

/// What the API had in hand when it stored a message and its files, which their rows hold
/// too: sending the message from these parses nothing and unseals nothing again.
#[derive(Clone, Debug)]
pub struct InHand {
    /// Each file's bytes, in the files' order: the blob its row names, or the upload its row's
    /// sealed copy was made from.
    pub contents: Vec<Blob>,
    /// The registry's record the message's row holds as JSON.
    pub record: ServiceRecord,
    /// The first sender's and receiver's identifiers, as its SBD names them
    /// ([`crate::sbd::parties`]).
    pub sender_and_receiver: (Option<String>, Option<String>),
}

/// The outgoing value for `message` with `files`, from what the caller has `in_hand` or else
/// from the rows. The bytes in hand are taken only as one blob of each file's size for each
/// file, in order, so that nothing can go out under another file's name: the rows are read
/// otherwise.
pub(crate) fn outgoing(
    message: &OutMessage,
    files: &[MessageFile],
    in_hand: Option<InHand>,
    blobs: &Arc<dyn BlobStore>,
) -> Result<OutgoingMessage, String> {
    let (record, (sender, receiver), mut contents) = match in_hand {
        Some(InHand {
            contents,
            record,
            sender_and_receiver,
        }) => {
            let each_file = contents.len() == files.len()
                && (contents.iter().zip(files))
                    .all(|(blob, file)| u64::try_from(file.size) == Ok(blob.size()));
            (
                record,
                sender_and_receiver,
                each_file.then(|| contents.into_iter()),
            )
        }
        None => {
            let record: ServiceRecord = serde_json::from_str(&message.service_record)
                .map_err(|error| format!("the stored service record is unreadable: {error}"))?;
            (record, stored_parties(&message.sbd)?, None)
        }
    };
    let party = |identifier: &str| Party {
        identifier: identifier.to_owned(),
        name: None,
    };
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
                let content = match contents.as_mut().and_then(Iterator::next) {
                    Some(content) => content,
                    None => file_blob(file, blobs).map_err(|error| {
                        format!("the file {} cannot be read: {error}", file.filename)
                    })?,
                };
                Ok(Document {
                    name: file.filename.clone(),
                    title: file.title.clone(),
                    mime_type: file.mime_type.clone(),
                    primary: file.primary_document,
                    content,
                })
            })
            .collect::<Result<_, String>>()?,
        service: wit_record(&record, &message.service_record),
        expires_at: message.expiry.and_then(|at| u64::try_from(at).ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blobs::FileBlobStore;

    fn message() -> OutMessage {
        OutMessage {
            message_id: "m".to_owned(),
            conversation_id: "c".to_owned(),
            process_identifier: "p".to_owned(),
            document_type: "d".to_owned(),
            sender_identifier: "0192:910075918".to_owned(),
            receiver_identifier: Some("0192:910076787".to_owned()),
            service_identifier: "DPO".to_owned(),
            channel: "loopback".to_owned(),
            sbd: "{}".to_owned(),
            service_record: "{}".to_owned(),
            expiry: None,
            queued: true,
            created: 1,
        }
    }

    fn file(ordinal: i64, name: &str, sealed: &[u8]) -> MessageFile {
        MessageFile {
            message_id: "m".to_owned(),
            ordinal,
            filename: name.to_owned(),
            title: None,
            mime_type: "application/pdf".to_owned(),
            primary_document: ordinal == 0,
            size: sealed.len() as i64,
            content: FileContent::Inline(sealed.to_vec()),
        }
    }

    fn documents(value: &OutgoingMessage) -> Vec<Vec<u8>> {
        value
            .documents
            .iter()
            .map(|document| {
                let size = document.content.size() as usize;
                document.content.read_at(0, size).unwrap()
            })
            .collect()
    }

    #[test]
    fn what_is_in_hand_is_sent_and_the_rows_read_only_for_what_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let blobs: Arc<dyn BlobStore> = Arc::new(FileBlobStore::open(dir.path()).unwrap());
        let files = [file(0, "a.pdf", b"row a"), file(1, "b.xml", b"row b")];
        let hand = |bytes: &[u8]| Blob::from_bytes(&blobs, bytes).unwrap();

        let record = ServiceRecord {
            process: "in hand".to_owned(),
            ..ServiceRecord::default()
        };
        let in_hand = |contents| InHand {
            contents,
            record: record.clone(),
            sender_and_receiver: (Some("0192:1".to_owned()), Some("0192:2".to_owned())),
        };

        let both = vec![hand(b"hand1"), hand(b"hand2")];
        let sent = outgoing(&message(), &files, Some(in_hand(both)), &blobs).unwrap();
        assert_eq!(documents(&sent), [b"hand1".to_vec(), b"hand2".to_vec()]);
        assert_eq!(sent.documents[1].name, "b.xml", "in the files' order");
        assert_eq!(sent.service.process, "in hand");
        assert_eq!(
            (sent.sender.identifier, sent.receiver.identifier),
            ("0192:1".to_owned(), "0192:2".to_owned())
        );

        let rows = [b"row a".to_vec(), b"row b".to_vec()];
        let too_few = vec![hand(b"hand1")];
        let sent = outgoing(&message(), &files, Some(in_hand(too_few)), &blobs).unwrap();
        assert_eq!(documents(&sent), rows, "one short: every file from its row");
        assert_eq!(sent.service.process, "in hand");
        let other_size = vec![hand(b"hand1"), hand(b"hand 2")];
        let sent = outgoing(&message(), &files, Some(in_hand(other_size)), &blobs).unwrap();
        assert_eq!(
            documents(&sent),
            rows,
            "one of another size: every file from its row"
        );
        let sent = outgoing(&message(), &files, None, &blobs).unwrap();
        assert_eq!(documents(&sent), rows);
        assert_eq!(sent.service.process, "", "the row's record");
        assert_eq!(
            (sent.sender.identifier, sent.receiver.identifier),
            ("0192:910075918".to_owned(), "0192:910076787".to_owned()),
            "the row's columns, the SBD naming none"
        );
    }
}
