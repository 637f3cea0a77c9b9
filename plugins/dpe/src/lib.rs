//! DPE: eInnsyn's messages (innsynskrav, publisering, receipts) over Azure Service Bus's REST
//! API, as the integration point sends and receives them (reference §9).
//!
//! - send: the documents as a CAdES-signed ASiC-E, CMS-encrypted to the receiver's certificate
//!   with RSA PKCS#1 v1.5 key transport, in the JSON `{"sbd": …, "asic": "…"}` (the package
//!   base64-encoded twice by the host as it streams), posted to the receiver's queue with
//!   `BrokerProperties: {}`. Status messages and eInnsyn receipts carry no package and are
//!   routed by mode (see `queues`).
//! - receive: peek-lock `POST {queue}/messages/head` on this organisation's queue; the body is
//!   downloaded by the host and only its SBD is read here; `confirm-incoming` deletes the
//!   message with its lock token. A message whose lock lapses comes again.
//! - statuses arrive as status messages from the receiver, so none are polled.
//!
//! Every request is signed by the host with a SAS from the shared-access-key secret.
//!
//! Settings: `service-bus` (the namespace's base URL, which the environment's
//! `[endpoints.channels.dpe]` passes) and `identifier` (this organisation, e.g.
//! `0192:910075918`) are required; `mode` (`innsyn`, the default, `data` or `meeting`),
//! `credentials` (default `dpe`), `receipt-queue` (a queue suffix for receipts),
//! `max-message-size` (default 2 MB).

mod payload;
mod queues;

use eformidling_sdk::asic;
use eformidling_sdk::compose::Composer;
use eformidling_sdk::crypto::KeyTransport;
use eformidling_sdk::failure;
use eformidling_sdk::http::{Credentials, RequestBuilder};
use eformidling_sdk::transport::{Capabilities, Description};
use eformidling_sdk::types::{Blob, Failure, Incoming, Outgoing, Pending, Sent, StatusEvent};
use eformidling_sdk::url::encode_component;
use eformidling_sdk::xml::escape;
use eformidling_sdk::{Guest, log, settings};
use serde_json::Value;

/// DPE's limit: 2 MB of documents (decimal), as the integration point's.
const MAX_MESSAGE_SIZE: u64 = 2_000_000;
/// The most a Service Bus answer to a send or delete holds (an error document).
const MAX_ANSWER: u32 = 64 * 1024;

struct Dpe;

/// The settings every call needs.
struct Bus {
    endpoint: String,
    secret: String,
    mode: String,
}

impl Bus {
    fn from_settings() -> Result<Self, Failure> {
        let mode = settings::or_default("mode", "innsyn");
        Ok(Self {
            endpoint: settings::required("service-bus")?
                .trim_end_matches('/')
                .to_owned(),
            secret: settings::or_default("credentials", "dpe"),
            mode: queues::mode(&mode)?.to_owned(),
        })
    }

    fn credentials(&self) -> Credentials {
        Credentials::ServiceBusSas(self.secret.clone())
    }

    /// This organisation's queue.
    fn own_queue(&self) -> Result<String, Failure> {
        let identifier = settings::required("identifier")?;
        Ok(queues::name(queues::orgnr(&identifier), &self.mode))
    }
}

fn limit() -> Result<u64, Failure> {
    Ok(settings::parsed("max-message-size")?.unwrap_or(MAX_MESSAGE_SIZE))
}

/// The business manifest of the ASiC: receiver, sender and main document.
fn manifest(message: &Outgoing) -> String {
    let party = |identifier: &str| {
        format!(
            "<organisasjon authority=\"iso6523-actorid-upis\">9908:{}</organisasjon>",
            queues::orgnr(identifier)
        )
    };
    let primary = message
        .documents
        .iter()
        .find(|d| d.primary)
        .or(message.documents.first())
        .map(|d| {
            format!(
                "<hoveddokument href=\"{}\" mime=\"{}\"><tittel lang=\"no\">Hoveddokument</tittel></hoveddokument>",
                escape(&d.name),
                escape(&d.mime_type)
            )
        })
        .unwrap_or_default();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
         <manifest xmlns=\"http://begrep.difi.no/sdp/schema_v10\"><mottaker>{}</mottaker>\
         <avsender>{}</avsender>{primary}</manifest>",
        party(&message.receiver.identifier),
        party(&message.sender.identifier),
    )
}

/// The encrypted package of the message's documents.
fn package(message: &Outgoing) -> Result<Blob, Failure> {
    let certificate = message.service.certificate.as_deref().ok_or_else(|| {
        Failure::Reject(format!(
            "the registry's DPE record for {} has no certificate to encrypt to",
            message.receiver.identifier
        ))
    })?;
    asic::sealed(
        message,
        &manifest(message),
        certificate,
        KeyTransport::RsaPkcs1v15,
    )
}

/// The failure of an unexpected answer to a send: the bus's own size refusal is permanent and
/// quoted (the host has already held the message to DPE's limit, so it is the bus's reason).
fn send_failure(status: u16, body: &[u8], limit: u64) -> Failure {
    match status {
        413 => Failure::Reject(format!("HTTP 413: {}", failure::excerpt(body))),
        _ => failure::from_status(status, body, Some(limit)),
    }
}

/// The lock a received message is held by, as `confirm-incoming` gets it back.
fn reference(message_id: &str, lock_token: &str) -> String {
    format!("{message_id}/{lock_token}")
}

impl Guest for Dpe {
    fn describe() -> Description {
        let max_message_size = limit().unwrap_or_else(|f| {
            log::error(&format!("{f:?}; describing DPE's own limit"));
            MAX_MESSAGE_SIZE
        });
        Description {
            service: "DPE".to_owned(),
            name: "DPE: eInnsyn over Azure Service Bus".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            capabilities: Capabilities::SEND | Capabilities::RECEIVE,
            max_message_size: Some(max_message_size),
        }
    }

    fn send(message: Outgoing) -> Result<Sent, Failure> {
        let bus = Bus::from_settings()?;
        let limit = limit()?;
        let size: u64 = message.documents.iter().map(|d| d.content.size()).sum();
        if size > limit {
            return Err(Failure::TooLarge(limit));
        }
        let sbd: Value = serde_json::from_str(&message.sbd)
            .map_err(|e| Failure::Reject(format!("the SBD is not JSON: {e}")))?;
        let receipt_queue = settings::parsed::<String>("receipt-queue")?;
        let queue = queues::target(&message, &sbd, &bus.mode, receipt_queue.as_deref())?;
        let package = if message.documents.is_empty() {
            None
        } else {
            Some(package(&message)?)
        };
        let mut body = Composer::new();
        payload::write(&mut body, &sbd, package.as_ref());
        let response = RequestBuilder::post(format!("{}/{queue}/messages", bus.endpoint))
            .header("BrokerProperties", "{}")
            .credentials(bus.credentials())
            .composed("application/json", body.finish())
            .send(MAX_ANSWER)?;
        if !matches!(response.status, 200 | 201) {
            return Err(send_failure(response.status, &response.body, limit));
        }
        log::info(&format!(
            "message {} put on queue {queue}",
            message.message_id
        ));
        Ok(Sent {
            reference: message.message_id,
            statuses: Vec::new(),
        })
    }

    fn poll_statuses(_pending: Vec<Pending>) -> Result<Vec<StatusEvent>, Failure> {
        Ok(Vec::new())
    }

    fn poll_incoming(max: u32) -> Result<Vec<Incoming>, Failure> {
        let bus = Bus::from_settings()?;
        let queue = bus.own_queue()?;
        let mut incoming = Vec::new();
        while incoming.len() < max as usize {
            let download = RequestBuilder::post(format!("{}/{queue}/messages/head", bus.endpoint))
                .credentials(bus.credentials())
                .fetch()?;
            match download.status {
                200 | 201 => {}
                204 => break,
                status => {
                    let start = download.body.read(0, 1024);
                    return Err(failure::from_status(status, &start, None));
                }
            }
            let properties: Value = download
                .headers
                .iter()
                .find(|(name, _)| name == "brokerproperties")
                .and_then(|(_, value)| serde_json::from_str(value).ok())
                .ok_or_else(|| {
                    Failure::Retry("a peeked message has no readable BrokerProperties".into())
                })?;
            let field = |name: &str| {
                properties[name].as_str().map(str::to_owned).ok_or_else(|| {
                    Failure::Retry(format!("a peeked message's BrokerProperties lack {name}"))
                })
            };
            let (message_id, lock_token) = (field("MessageId")?, field("LockToken")?);
            let received = payload::read(&download.body).map_err(|why| {
                // It stays locked, comes back and is refused again; the log says why.
                log::error(&format!(
                    "message {message_id} on {queue} is unreadable: {why}"
                ));
                Failure::Retry(format!(
                    "message {message_id} on {queue} is unreadable: {why}"
                ))
            })?;
            incoming.push(Incoming {
                reference: reference(&message_id, &lock_token),
                sbd: received.sbd.to_string(),
                package: received.package,
            });
        }
        Ok(incoming)
    }

    fn confirm_incoming(reference: String) -> Result<(), Failure> {
        let bus = Bus::from_settings()?;
        let queue = bus.own_queue()?;
        let (message_id, lock_token) = reference.rsplit_once('/').ok_or_else(|| {
            Failure::Reject(format!("{reference:?} is not a DPE message reference"))
        })?;
        let response = RequestBuilder::delete(format!(
            "{}/{queue}/messages/{}/{}",
            bus.endpoint,
            encode_component(message_id),
            encode_component(lock_token)
        ))
        .credentials(bus.credentials())
        .send(MAX_ANSWER)?;
        match response.status {
            200 | 204 => Ok(()),
            404 => Err(Failure::Retry(format!(
                "the lock on {message_id} lapsed before it was deleted; it comes again: {}",
                failure::excerpt(&response.body)
            ))),
            status => Err(failure::from_status(status, &response.body, None)),
        }
    }
}

eformidling_sdk::export!(Dpe);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_size_refusal_of_the_bus_is_permanent_and_quoted() {
        let body = b"<Error><Code>413</Code><Detail>The message is larger than the 4 bytes the queue accepts.</Detail></Error>";
        match send_failure(413, body, 2_000_000) {
            Failure::Reject(text) => assert!(text.contains("larger than the 4 bytes"), "{text}"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(send_failure(503, b"", 1), Failure::Retry(_)));
        assert!(matches!(
            send_failure(401, b"", 1),
            Failure::Unauthorized(_)
        ));
    }

    #[test]
    fn a_reference_splits_back_at_the_lock_token() {
        let reference = reference("a/b", "0f1e");
        assert_eq!(reference.rsplit_once('/'), Some(("a/b", "0f1e")));
    }
}
