//! The DPO channel over Altinn 2's broker service ("formidlingstjenesten").
//!
//! DPO carries messages from one integration point to another: the sender initiates a file
//! at the broker (`InitiateBrokerServiceBasic`) and uploads an `sbd.zip` to it as an MTOM
//! attachment (`UploadFileStreamedBasic`); the receiver lists the files waiting for it
//! (`GetAvailableFilesBasic`), downloads each (`DownloadFileStreamedBasic`) and confirms it
//! once stored (`ConfirmDownloadedBasic`). The broker reports no statuses: the receiving
//! integration point sends MOTTATT and LEVERT back as status messages over this same channel,
//! which the sender's poller receives like any message.
//!
//! Settings: `broker-basic` and `broker-streamed` (the two endpoint URLs, required),
//! `reportee` (this organisation's number, required to receive), `credentials` (the
//! username/password secret of the Altinn 2 end-user system, default `dpo`), `service-code`
//! and `service-edition` (default 4192 and 270815), `message-channel` (receive only files
//! whose sender's reference is this channel), `max-message-size` (bytes, default the real
//! integration point's 1 GB).

mod mtom;
mod package;
mod soap;

use eformidling_sdk::http::{Content, Multipart, Part, RequestBuilder, Response};
use eformidling_sdk::transport::{Capabilities, Description};
use eformidling_sdk::types::{Failure, Incoming, Outgoing, Pending, Sent, StatusEvent};
use eformidling_sdk::{Guest, log, settings, xml};

use package::{Addressing, FILE_NAME};
use soap::{BASIC, STREAMED, Service, System};

/// DPO's message size limit in the real integration point: 1 GB, decimal.
const MAX_MESSAGE_SIZE: u64 = 1_000_000_000;
/// The most a SOAP answer may hold; a listing of the broker's 100 newest files stays far below.
const MAX_ANSWER: u32 = 4 << 20;
/// The Content-ID of the envelope part of an upload.
const ENVELOPE_ID: &str = "envelope@integrasjonspunkt";
/// The Content-ID of the file part of an upload.
const ATTACHMENT_ID: &str = "sbd.zip@integrasjonspunkt";

struct Dpo;

/// The settings every call needs, read once per call.
struct Broker {
    basic: String,
    streamed: String,
    credentials: String,
    service_code: String,
    service_edition: String,
}

impl Broker {
    fn from_settings() -> Result<Self, Failure> {
        Ok(Self {
            basic: settings::required("broker-basic")?,
            streamed: settings::required("broker-streamed")?,
            credentials: settings::or_default("credentials", "dpo"),
            service_code: settings::or_default("service-code", "4192"),
            service_edition: settings::or_default("service-edition", "270815"),
        })
    }

    fn system<'a>(&'a self, reportee: &'a str) -> System<'a> {
        System {
            secret: &self.credentials,
            reportee,
        }
    }

    fn service(&self) -> Service<'_> {
        Service {
            code: &self.service_code,
            edition: &self.service_edition,
        }
    }

    /// Posts a SOAP envelope to the basic endpoint.
    fn call_basic(&self, operation: &str, envelope: Vec<u8>) -> Result<Response, Failure> {
        let response = RequestBuilder::post(&self.basic)
            .header("soapaction", soap::action(BASIC, operation))
            .bytes("text/xml; charset=utf-8", envelope)
            .send(MAX_ANSWER)?;
        expect_ok(response, None)
    }
}

/// The response when it is HTTP 200, else its classification.
fn expect_ok(response: Response, size_limit: Option<u64>) -> Result<Response, Failure> {
    if response.status == 200 {
        Ok(response)
    } else {
        Err(soap::refusal(response.status, &response.body, size_limit))
    }
}

/// The organisation number in an SBD identifier (`0192:987654321` or a bare number).
fn org_number(identifier: &str) -> &str {
    identifier
        .split_once(':')
        .map_or(identifier, |(_, number)| number)
}

fn max_message_size() -> Result<u64, Failure> {
    Ok(settings::parsed::<u64>("max-message-size")?.unwrap_or(MAX_MESSAGE_SIZE))
}

/// Whether a received file is this integration point's to take: with a message channel
/// configured only files under that sender's reference; otherwise none whose reference looks
/// like another integration point's channel (short, of letters, digits, `-` and `_`).
fn ours(senders_reference: &str, message_channel: Option<&str>) -> bool {
    match message_channel {
        Some(channel) => senders_reference == channel,
        None => {
            senders_reference.len() > 25
                || !senders_reference
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        }
    }
}

impl Guest for Dpo {
    fn describe() -> Description {
        let max_message_size = max_message_size().unwrap_or_else(|f| {
            log::error(&format!("{f:?}; describing DPO's own limit"));
            MAX_MESSAGE_SIZE
        });
        Description {
            service: "DPO".to_owned(),
            name: "DPO over the Altinn 2 broker service".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            capabilities: Capabilities::SEND | Capabilities::RECEIVE,
            max_message_size: Some(max_message_size),
        }
    }

    fn send(message: Outgoing) -> Result<Sent, Failure> {
        let broker = Broker::from_settings()?;
        let limit = max_message_size()?;
        let sender = org_number(&message.sender.identifier).to_owned();
        let receiver = org_number(&message.receiver.identifier).to_owned();
        let service = Service {
            code: message
                .service
                .service_code
                .as_deref()
                .unwrap_or(&broker.service_code),
            edition: message
                .service
                .service_edition
                .as_deref()
                .unwrap_or(&broker.service_edition),
        };
        let system = broker.system(&sender);
        let senders_reference = message.message_id.clone();

        let package = package::build(
            &message,
            &Addressing {
                service: Service {
                    code: service.code,
                    edition: service.edition,
                },
                sender: &sender,
                receiver: &receiver,
                senders_reference: &senders_reference,
            },
        )?;
        if package.size() > limit {
            return Err(Failure::TooLarge(limit));
        }

        let initiated = broker.call_basic(
            "InitiateBrokerServiceBasic",
            soap::initiate(&system, &service, &senders_reference, FILE_NAME, &receiver),
        )?;
        let answer = String::from_utf8_lossy(&initiated.body);
        let reference = xml::first_text(&answer, "InitiateBrokerServiceBasicResult")
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                Failure::Retry(format!(
                    "the broker's answer to the initiation has no file reference: {}",
                    eformidling_sdk::failure::excerpt(&initiated.body)
                ))
            })?;

        let envelope = soap::upload(&system, &reference, FILE_NAME, ATTACHMENT_ID);
        let uploaded = RequestBuilder::post(&broker.streamed)
            .header(
                "soapaction",
                soap::action(STREAMED, "UploadFileStreamedBasic"),
            )
            .multipart(Multipart {
                subtype: "related".to_owned(),
                parameters: vec![
                    ("type".to_owned(), "application/xop+xml".to_owned()),
                    ("start".to_owned(), format!("<{ENVELOPE_ID}>")),
                    ("start-info".to_owned(), "text/xml".to_owned()),
                ],
                parts: vec![
                    Part {
                        headers: vec![
                            (
                                "content-type".to_owned(),
                                "application/xop+xml; charset=utf-8; type=\"text/xml\"".to_owned(),
                            ),
                            ("content-transfer-encoding".to_owned(), "binary".to_owned()),
                            ("content-id".to_owned(), format!("<{ENVELOPE_ID}>")),
                        ],
                        content: Content::Bytes(envelope),
                    },
                    Part {
                        headers: vec![
                            (
                                "content-type".to_owned(),
                                "application/octet-stream".to_owned(),
                            ),
                            ("content-transfer-encoding".to_owned(), "binary".to_owned()),
                            ("content-id".to_owned(), format!("<{ATTACHMENT_ID}>")),
                        ],
                        content: Content::Blob(&package),
                    },
                ],
            })
            .send(MAX_ANSWER)?;
        let uploaded = expect_ok(uploaded, Some(limit))?;
        let receipt = String::from_utf8_lossy(&uploaded.body);
        let status = xml::first_text(&receipt, "ReceiptStatusCode").unwrap_or_default();
        if status != "OK" {
            return Err(Failure::Reject(format!(
                "the broker's receipt for file {reference} is {status:?}: {}",
                xml::first_text(&receipt, "ReceiptText").unwrap_or_default()
            )));
        }
        log::info(&format!(
            "message {} uploaded to the broker as file {reference} for {receiver}",
            message.message_id
        ));
        Ok(Sent {
            reference,
            statuses: Vec::new(),
        })
    }

    fn poll_statuses(_: Vec<Pending>) -> Result<Vec<StatusEvent>, Failure> {
        // The broker reports nothing; statuses come back as status messages.
        Ok(Vec::new())
    }

    fn poll_incoming(max: u32) -> Result<Vec<Incoming>, Failure> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let broker = Broker::from_settings()?;
        let reportee = settings::required("reportee")?;
        let message_channel = settings::parsed::<String>("message-channel")?;
        let system = broker.system(&reportee);
        let listing = broker.call_basic(
            "GetAvailableFilesBasic",
            soap::available_files(&system, &broker.service()),
        )?;
        let available = soap::parse_available(&String::from_utf8_lossy(&listing.body));

        let mut incoming = Vec::new();
        for file in available
            .into_iter()
            .filter(|f| ours(&f.senders_reference, message_channel.as_deref()))
            .take(max as usize)
        {
            match download(&broker, &system, &file.reference) {
                Ok(message) => incoming.push(message),
                // One file that cannot be taken now must not hold back the others; it stays
                // at the broker and is tried again next round.
                Err(failure) => log::warn(&format!(
                    "file {} could not be taken from the broker: {failure:?}",
                    file.reference
                )),
            }
        }
        Ok(incoming)
    }

    fn confirm_incoming(reference: String) -> Result<(), Failure> {
        let broker = Broker::from_settings()?;
        let reportee = settings::required("reportee")?;
        broker.call_basic(
            "ConfirmDownloadedBasic",
            soap::file_operation(
                &broker.system(&reportee),
                "ConfirmDownloadedBasic",
                &reference,
            ),
        )?;
        log::info(&format!("file {reference} confirmed to the broker"));
        Ok(())
    }
}

/// Downloads file `reference` into a blob and opens its `sbd.zip`.
fn download(broker: &Broker, system: &System, reference: &str) -> Result<Incoming, Failure> {
    let answer = RequestBuilder::post(&broker.streamed)
        .header(
            "soapaction",
            soap::action(STREAMED, "DownloadFileStreamedBasic"),
        )
        .bytes(
            "text/xml; charset=utf-8",
            soap::file_operation(system, "DownloadFileStreamedBasic", reference),
        )
        .fetch()?;
    if answer.status != 200 {
        let head = answer.body.read(0, 64 * 1024);
        return Err(soap::refusal(answer.status, &head, None));
    }
    let content_type = answer
        .headers
        .iter()
        .find(|(name, _)| name == "content-type")
        .map(|(_, value)| value.as_str())
        .unwrap_or_default();
    let package = mtom::attachment(&answer.body, content_type)?;
    let opened = package::open(&package)?;
    Ok(Incoming {
        reference: reference.to_owned(),
        sbd: opened.sbd,
        package: opened.asic,
    })
}

eformidling_sdk::export!(Dpo);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organisation_numbers_lose_their_scheme() {
        assert_eq!(org_number("0192:910075918"), "910075918");
        assert_eq!(org_number("910075918"), "910075918");
    }

    #[test]
    fn files_under_another_channel_are_left_alone() {
        let uuid = "0b6f4e5c-6d0f-4d0a-9a9e-0c1b2d3e4f50";
        assert!(ours(uuid, None));
        assert!(!ours("other_channel-1", None));
        assert!(ours("mine", Some("mine")));
        assert!(!ours(uuid, Some("mine")));
    }
}
