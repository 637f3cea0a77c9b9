//! The loopback reference channel.
//!
//! It speaks a deliberately small protocol to the project's loopback peer (the simulators'
//! `loopback_peer`), and exists to prove the whole path (host, egress policy, credentials,
//! blobs, archive, multipart streaming, statuses, receiving) without any real provider. It is
//! also the example a channel author copies: settings read once per call, documents passed by
//! handle, every provider outcome classified by the SDK.
//!
//! Protocol (all requests with HTTP Basic from the secret named by `credentials`):
//!
//! - send: `POST {endpoint}/messages`, `multipart/form-data` with an `envelope` JSON part and a
//!   `package` part (a stored zip of the documents, by name); `200`/`201` `{"reference"}`.
//!   The peer deduplicates on the message id, so a retried send returns the same reference.
//! - statuses: `GET {endpoint}/statuses?reference=R1&reference=R2…`, a JSON array of
//!   `{messageId, status, at, description?}`. The peer answers every status it has recorded
//!   for those references, and this plugin passes them all on; the host drops the ones it
//!   already registered.
//! - receive: `GET {endpoint}/inbox/{identifier}?max=N` lists `{reference, sbd}`; each package
//!   is downloaded by handle from `…/{reference}/package`; `DELETE …/{reference}` confirms.
//!
//! Settings: `endpoint` and `identifier` (required), `service` (default `LOOPBACK`),
//! `credentials` (default `loopback`), `max-message-size` (bytes, optional).

use eformidling_sdk::archive::{self, Entry, EntryContent};
use eformidling_sdk::failure::{self, expect_status};
use eformidling_sdk::http::{Content, RequestBuilder, form_data, form_field, form_file};
use eformidling_sdk::transport::{Capabilities, Description};
use eformidling_sdk::types::{Failure, Incoming, Outgoing, Pending, Sent, Status, StatusEvent};
use eformidling_sdk::url::encode_component;
use eformidling_sdk::{Guest, log, settings};
use serde::{Deserialize, Serialize};

/// The most a JSON answer of the peer may hold; lists of statuses and inbox entries stay far
/// below it, and the host caps any answer at 16 MiB anyway.
const MAX_ANSWER: u32 = 4 << 20;

struct Loopback;

/// The settings every call needs, read once per call.
struct Peer {
    endpoint: String,
    credentials: String,
}

impl Peer {
    fn from_settings() -> Result<Self, Failure> {
        Ok(Self {
            endpoint: settings::required("endpoint")?
                .trim_end_matches('/')
                .to_owned(),
            credentials: settings::or_default("credentials", "loopback"),
        })
    }

    fn inbox(&self) -> Result<String, Failure> {
        let identifier = settings::required("identifier")?;
        Ok(format!(
            "{}/inbox/{}",
            self.endpoint,
            encode_component(&identifier)
        ))
    }
}

/// The `envelope` part: what the peer needs to route and check a message.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    message_id: &'a str,
    conversation_id: &'a str,
    sender: &'a str,
    receiver: &'a str,
    process: &'a str,
    document_type: &'a str,
    sbd: &'a str,
    expires_at: Option<u64>,
    documents: Vec<EnvelopeDocument<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EnvelopeDocument<'a> {
    name: &'a str,
    title: Option<&'a str>,
    mime_type: &'a str,
    primary: bool,
}

#[derive(Deserialize)]
struct Accepted {
    reference: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PeerStatus {
    message_id: String,
    status: String,
    at: u64,
    description: Option<String>,
}

#[derive(Deserialize)]
struct Waiting {
    reference: String,
    sbd: String,
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8], what: &str) -> Result<T, Failure> {
    // The peer answered success but not in its protocol; every call here is safe to repeat
    // (send is deduplicated on the message id), so let the engine try again.
    serde_json::from_slice(body).map_err(|e| {
        Failure::Retry(format!(
            "the peer's {what} is not valid: {e}: {}",
            failure::excerpt(body)
        ))
    })
}

fn status_event(status: PeerStatus) -> StatusEvent {
    let (mapped, description) = match status.status.as_str() {
        "mottatt" => (Status::Mottatt, status.description),
        "levert" => (Status::Levert, status.description),
        "lest" => (Status::Lest, status.description),
        "feil" => (Status::Feil, status.description),
        "annet" => (Status::Annet, status.description),
        other => (
            Status::Annet,
            Some(match status.description {
                Some(d) => format!("{other}: {d}"),
                None => other.to_owned(),
            }),
        ),
    };
    StatusEvent {
        message_id: status.message_id,
        status: mapped,
        at: status.at,
        description,
    }
}

impl Guest for Loopback {
    fn describe() -> Description {
        let max_message_size = settings::parsed::<u64>("max-message-size").unwrap_or_else(|f| {
            log::error(&format!("{f:?}; describing no size limit"));
            None
        });
        Description {
            service: settings::or_default("service", "LOOPBACK"),
            name: "Loopback reference channel".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            capabilities: Capabilities::SEND | Capabilities::STATUSES | Capabilities::RECEIVE,
            max_message_size,
        }
    }

    fn send(message: Outgoing) -> Result<Sent, Failure> {
        let peer = Peer::from_settings()?;
        let limit = settings::parsed::<u64>("max-message-size")?;

        let entries: Vec<Entry<'_>> = message
            .documents
            .iter()
            .map(|document| Entry {
                name: document.name.clone(),
                content: EntryContent::Blob(&document.content),
                compress: false,
            })
            .collect();
        let package = archive::zip(&entries)?;
        if let Some(limit) = limit.filter(|&limit| package.size() > limit) {
            return Err(Failure::TooLarge(limit));
        }

        let envelope = Envelope {
            message_id: &message.message_id,
            conversation_id: &message.conversation_id,
            sender: &message.sender.identifier,
            receiver: &message.receiver.identifier,
            process: &message.process,
            document_type: &message.document_type,
            sbd: &message.sbd,
            expires_at: message.expires_at,
            documents: message
                .documents
                .iter()
                .map(|d| EnvelopeDocument {
                    name: &d.name,
                    title: d.title.as_deref(),
                    mime_type: &d.mime_type,
                    primary: d.primary,
                })
                .collect(),
        };
        let envelope = serde_json::to_vec(&envelope)
            .map_err(|e| Failure::Reject(format!("cannot write the envelope: {e}")))?;

        let response = RequestBuilder::post(format!("{}/messages", peer.endpoint))
            .header("accept", "application/json")
            .basic(&peer.credentials)
            .multipart(form_data(vec![
                form_field("envelope", "application/json", Content::Bytes(envelope)),
                form_file(
                    "package",
                    "package.zip",
                    "application/zip",
                    Content::Blob(&package),
                ),
            ]))
            .send(MAX_ANSWER)?;
        expect_status(&response, &[200, 201], limit)?;
        let accepted: Accepted = parse(&response.body, "answer to send")?;
        log::info(&format!(
            "message {} accepted by the peer as {}",
            message.message_id, accepted.reference
        ));
        Ok(Sent {
            reference: accepted.reference,
            statuses: Vec::new(),
        })
    }

    fn poll_statuses(pending: Vec<Pending>) -> Result<Vec<StatusEvent>, Failure> {
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let peer = Peer::from_settings()?;
        let query: Vec<String> = pending
            .iter()
            .map(|p| format!("reference={}", encode_component(&p.reference)))
            .collect();
        let response =
            RequestBuilder::get(format!("{}/statuses?{}", peer.endpoint, query.join("&")))
                .header("accept", "application/json")
                .basic(&peer.credentials)
                .send(MAX_ANSWER)?;
        expect_status(&response, &[200], None)?;
        let statuses: Vec<PeerStatus> = parse(&response.body, "status list")?;
        Ok(statuses.into_iter().map(status_event).collect())
    }

    fn poll_incoming(max: u32) -> Result<Vec<Incoming>, Failure> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let peer = Peer::from_settings()?;
        let inbox = peer.inbox()?;
        let response = RequestBuilder::get(format!("{inbox}?max={max}"))
            .header("accept", "application/json")
            .basic(&peer.credentials)
            .send(MAX_ANSWER)?;
        expect_status(&response, &[200], None)?;
        let waiting: Vec<Waiting> = parse(&response.body, "inbox list")?;

        let mut incoming = Vec::with_capacity(waiting.len());
        for message in waiting {
            let download = RequestBuilder::get(format!(
                "{inbox}/{}/package",
                encode_component(&message.reference)
            ))
            .basic(&peer.credentials)
            .fetch()?;
            if download.status != 200 {
                let start = download.body.read(0, 1024);
                return Err(failure::from_status(download.status, &start, None));
            }
            incoming.push(Incoming {
                reference: message.reference,
                sbd: message.sbd,
                package: Some(download.body),
            });
        }
        Ok(incoming)
    }

    fn confirm_incoming(reference: String) -> Result<(), Failure> {
        let peer = Peer::from_settings()?;
        let inbox = peer.inbox()?;
        let response = RequestBuilder::delete(format!("{inbox}/{}", encode_component(&reference)))
            .basic(&peer.credentials)
            .send(MAX_ANSWER)?;
        expect_status(&response, &[200, 204], None)?;
        log::info(&format!("incoming {reference} confirmed to the peer"));
        Ok(())
    }
}

eformidling_sdk::export!(Loopback);
