//! The example channel of the plugin author guide (`docs/plugin-guide.md`), which walks through
//! this file from top to bottom; the guide quotes it, and a test checks that it still does.
//!
//! It is small on purpose: one provider, two requests, no receiving. It speaks the sending half
//! of the simulators' loopback peer (`simulators/src/loopback_peer.rs`), so it can be tested end
//! to end without any real provider:
//!
//! - send: `POST {endpoint}/messages`, `multipart/form-data` with an `envelope` JSON part that
//!   carries the SBD and a `package` part, a zip of the documents; `201 {"reference"}` (`200` for
//!   a message id the provider has seen before).
//! - statuses: `GET {endpoint}/statuses?reference=R1&reference=R2…`, a JSON array of
//!   `{messageId, status, at, description?}`.
//!
//! Both requests carry HTTP Basic from the secret the `credentials` setting names; the host
//! attaches it, the plugin never sees it. Settings: `endpoint` (the host passes the environment's
//! `[endpoints.channels.NAME]` entries as settings), `credentials` (a secret name) and `service`
//! (the registry service identifier the channel carries, default `EXAMPLE`).

use eformidling_sdk::archive::{self, Entry, EntryContent};
use eformidling_sdk::failure::{self, expect_status};
use eformidling_sdk::http::{Content, RequestBuilder, form_data, form_field, form_file};
use eformidling_sdk::transport::{Capabilities, Description};
use eformidling_sdk::types::{Failure, Incoming, Outgoing, Pending, Sent, Status, StatusEvent};
use eformidling_sdk::url::encode_component;
use eformidling_sdk::{Guest, log, settings};
use serde::{Deserialize, Serialize};

/// The largest answer read into memory. The provider answers with small JSON documents; the
/// host refuses a longer body with `too-large`, which the SDK turns into a `reject`.
const MAX_ANSWER: u32 = 1 << 20;

/// The channel. It holds no state: the host makes a fresh instance for every call.
struct Example;

/// What every call needs from the settings, read again at every call so that a reload with new
/// settings takes effect at once.
struct Provider {
    endpoint: String,
    credentials: String,
}

impl Provider {
    fn from_settings() -> Result<Self, Failure> {
        Ok(Self {
            endpoint: settings::required("endpoint")?
                .trim_end_matches('/')
                .to_owned(),
            credentials: settings::required("credentials")?,
        })
    }
}

/// The `envelope` part: the SBD, and what the provider checks the package against.
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
    documents: Vec<Document<'a>>,
}

/// One document as the envelope names it; its bytes are the package entry of the same name.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    name: &'a str,
    title: Option<&'a str>,
    mime_type: &'a str,
    primary: bool,
}

impl<'a> Envelope<'a> {
    fn of(message: &'a Outgoing) -> Self {
        Self {
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
                .map(|document| Document {
                    name: &document.name,
                    title: document.title.as_deref(),
                    mime_type: &document.mime_type,
                    primary: document.primary,
                })
                .collect(),
        }
    }
}

/// The provider's answer to a send.
#[derive(Deserialize)]
struct Accepted {
    reference: String,
}

/// One status in the provider's answer to a status query.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProviderStatus {
    message_id: String,
    status: String,
    at: u64,
    description: Option<String>,
}

/// Reads a JSON answer. A provider that says "success" in a shape it does not document is
/// having a bad moment, and both requests are safe to repeat (the provider recognises a message
/// id it has seen), so the engine may try again later.
fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Failure> {
    serde_json::from_slice(body).map_err(|e| {
        Failure::Retry(format!(
            "the provider's answer is not valid: {e}: {}",
            failure::excerpt(body)
        ))
    })
}

/// The status query for the pending messages: one `reference` parameter each, encoded.
fn statuses_url(endpoint: &str, pending: &[Pending]) -> String {
    let query: Vec<String> = pending
        .iter()
        .map(|p| format!("reference={}", encode_component(&p.reference)))
        .collect();
    format!("{endpoint}/statuses?{}", query.join("&"))
}

/// The integration point's status for the provider's word; a word it does not know becomes
/// `annet` with the word kept in the description.
fn status_event(status: ProviderStatus) -> StatusEvent {
    let known = match status.status.as_str() {
        "mottatt" => Some(Status::Mottatt),
        "levert" => Some(Status::Levert),
        "lest" => Some(Status::Lest),
        "feil" => Some(Status::Feil),
        _ => None,
    };
    let (status_value, description) = match known {
        Some(known) => (known, status.description),
        None => (
            Status::Annet,
            Some(match status.description {
                Some(description) => format!("{}: {description}", status.status),
                None => status.status,
            }),
        ),
    };
    StatusEvent {
        message_id: status.message_id,
        status: status_value,
        at: status.at,
        description,
    }
}

impl Guest for Example {
    fn describe() -> Description {
        Description {
            service: settings::or_default("service", "EXAMPLE"),
            name: "Example channel".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            capabilities: Capabilities::SEND | Capabilities::STATUSES,
            max_message_size: None,
        }
    }

    fn send(message: Outgoing) -> Result<Sent, Failure> {
        let provider = Provider::from_settings()?;

        // The documents stay in the host: the zip is built from handles, into a new handle.
        let entries: Vec<Entry<'_>> = message
            .documents
            .iter()
            .map(|document| Entry {
                name: document.name.clone(),
                content: EntryContent::Blob(&document.content),
                compress: true,
            })
            .collect();
        let package = archive::zip(&entries)?;

        let envelope = serde_json::to_vec(&Envelope::of(&message))
            .map_err(|e| Failure::Reject(format!("cannot write the envelope: {e}")))?;

        let response = RequestBuilder::post(format!("{}/messages", provider.endpoint))
            .header("accept", "application/json")
            .basic(&provider.credentials)
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
        expect_status(&response, &[200, 201], None)?;
        let accepted: Accepted = parse(&response.body)?;

        log::info(&format!(
            "message {} accepted as {}",
            message.message_id, accepted.reference
        ));
        Ok(Sent {
            reference: accepted.reference,
            statuses: Vec::new(),
        })
    }

    fn poll_statuses(pending: Vec<Pending>) -> Result<Vec<StatusEvent>, Failure> {
        let provider = Provider::from_settings()?;
        let response = RequestBuilder::get(statuses_url(&provider.endpoint, &pending))
            .header("accept", "application/json")
            .basic(&provider.credentials)
            .send(MAX_ANSWER)?;
        expect_status(&response, &[200], None)?;
        let statuses: Vec<ProviderStatus> = parse(&response.body)?;
        Ok(statuses.into_iter().map(status_event).collect())
    }

    // `describe` does not claim `RECEIVE`, so the host never calls these two.
    fn poll_incoming(_max: u32) -> Result<Vec<Incoming>, Failure> {
        Ok(Vec::new())
    }

    fn confirm_incoming(reference: String) -> Result<(), Failure> {
        Err(Failure::Reject(format!(
            "this channel receives nothing, so {reference} is not its to confirm"
        )))
    }
}

eformidling_sdk::export!(Example);

#[cfg(test)]
mod tests {
    use super::*;

    fn reported(status: &str, description: Option<&str>) -> StatusEvent {
        status_event(ProviderStatus {
            message_id: "m1".to_owned(),
            status: status.to_owned(),
            at: 7,
            description: description.map(str::to_owned),
        })
    }

    #[test]
    fn known_statuses_map_to_the_vocabulary() {
        let event = reported("levert", Some("opened the inbox"));
        assert_eq!(event.status, Status::Levert);
        assert_eq!(event.message_id, "m1");
        assert_eq!(event.at, 7);
        assert_eq!(event.description.as_deref(), Some("opened the inbox"));
        assert_eq!(reported("mottatt", None).status, Status::Mottatt);
        assert_eq!(reported("feil", None).status, Status::Feil);
    }

    #[test]
    fn an_unknown_status_is_annet_and_keeps_the_word() {
        let event = reported("arkivert", None);
        assert_eq!(event.status, Status::Annet);
        assert_eq!(event.description.as_deref(), Some("arkivert"));
        let event = reported("arkivert", Some("in the archive"));
        assert_eq!(
            event.description.as_deref(),
            Some("arkivert: in the archive")
        );
    }

    #[test]
    fn the_status_query_names_every_reference_encoded() {
        let pending = |reference: &str| Pending {
            message_id: "m".to_owned(),
            reference: reference.to_owned(),
            sent_at: 0,
        };
        assert_eq!(
            statuses_url("http://peer", &[pending("r1"), pending("a&b")]),
            "http://peer/statuses?reference=r1&reference=a%26b"
        );
    }

    #[test]
    fn an_undocumented_answer_is_retried() {
        let Err(failure) = parse::<Accepted>(b"<html>maintenance</html>") else {
            panic!("an HTML page parsed as an answer");
        };
        assert!(
            matches!(&failure, Failure::Retry(text) if text.ends_with("<html>maintenance</html>")),
            "{failure:?}"
        );
    }
}
