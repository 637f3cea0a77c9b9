//! The DPF channel: KS FIKS SvarUt for sending, SvarInn for receiving.
//!
//! Sending is `sendForsendelseMedId` on ForsendelsesServiceV9 (SOAP 1.2, MTOM, HTTP Basic with
//! the organisation's SvarUt account); SvarUt guarantees delivery once it has the forsendelse,
//! so, as the real integration point does, a successful send already means LEVERT, and status
//! polling (`retrieveForsendelseStatuser`) only adds LEST. SvarUt stores a forsendelse id once,
//! so a send repeated after a lost answer is harmless.
//!
//! Receiving polls SvarInn (`hentNyeForsendelser`), turns each forsendelse into an arkivmelding
//! message ([`svarinn`]), confirms it with `kvitterMottak` once the host has stored it, and
//! reports `mottakFeilet` (permanent) for one it can never take.
//!
//! Settings: `forsendelseservice` and `svarinn` (the endpoints), `credentials` (the SvarUt
//! account secret, default `svarut`), `svarinn-credentials` (default `svarinn`), `process` (of
//! received messages, default the arkivmelding administrasjon process).

mod forsendelse;
mod soap;
mod svarinn;

use std::collections::HashMap;

use eformidling_sdk::crypto::{self, KeyTransport};
use eformidling_sdk::failure::{self, expect_status};
use eformidling_sdk::http::RequestBuilder;
use eformidling_sdk::transport::{Capabilities, Description};
use eformidling_sdk::types::{Failure, Incoming, Outgoing, Pending, Sent, Status, StatusEvent};
use eformidling_sdk::url::encode_component;
use eformidling_sdk::{Guest, log, settings, time, xml};

use forsendelse::{ARKIVMELDING_FILE, Arkivmelding, DeclaredDocument};
use soap::{Attachment, SERVICE_NS};
use svarinn::Refusal;

/// SvarUt's limit on a forsendelse: 1 GB.
const MAX_MESSAGE_SIZE: u64 = 1_000_000_000;
/// The process received forsendelser are filed under unless configured.
const DEFAULT_PROCESS: &str = "urn:no:difi:profile:arkivmelding:administrasjon:ver1.0";
/// The most of an `arkivmelding.xml` read for its metadata.
const MAX_ARKIVMELDING: u64 = 16 << 20;
/// The most a SvarInn listing may hold.
const MAX_LISTING: u32 = 16 << 20;

struct Dpf;

fn sending_account() -> String {
    settings::or_default("credentials", "svarut")
}

fn receiving_account() -> String {
    settings::or_default("svarinn-credentials", "svarinn")
}

fn svarinn_url() -> Result<String, Failure> {
    Ok(settings::required("svarinn")?
        .trim_end_matches('/')
        .to_owned())
}

/// The text of the message's `arkivmelding.xml`, if it has one.
fn arkivmelding_text(message: &Outgoing) -> Result<Option<String>, Failure> {
    let Some(document) = message
        .documents
        .iter()
        .find(|d| d.name == ARKIVMELDING_FILE)
    else {
        return Ok(None);
    };
    let size = document.content.size();
    if size > MAX_ARKIVMELDING {
        return Err(Failure::Reject(format!(
            "{ARKIVMELDING_FILE} is larger than {MAX_ARKIVMELDING} bytes"
        )));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    while (bytes.len() as u64) < size {
        let chunk = document.content.read(bytes.len() as u64, 1 << 20);
        if chunk.is_empty() {
            break;
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| Failure::Reject(format!("{ARKIVMELDING_FILE} is not UTF-8")))
}

/// Tells SvarInn that forsendelse `id` can never be taken, and why.
fn report_failed(base: &str, id: &str, reason: &str) {
    let body = serde_json::json!({"feilmelding": reason, "permanent": true}).to_string();
    let outcome = RequestBuilder::post(format!(
        "{base}/mottakFeilet/forsendelse/{}",
        encode_component(id)
    ))
    .basic(receiving_account())
    .bytes("application/json", body.into_bytes())
    .send(64 * 1024);
    match outcome {
        Ok(response) if response.status == 200 => log::warn(&format!(
            "forsendelse {id} reported as not receivable: {reason}"
        )),
        Ok(response) => log::error(&format!(
            "SvarInn answered {} to mottakFeilet for {id}: {}",
            response.status,
            failure::excerpt(&response.body)
        )),
        Err(error) => log::error(&format!("mottakFeilet for {id} failed: {error:?}")),
    }
}

/// Downloads forsendelse `listed` and makes the incoming message of it.
fn take(listed: &svarinn::Forsendelse, process: &str) -> Result<Incoming, Refusal> {
    let sbd = listed.sbd(process)?;
    let download = RequestBuilder::get(&listed.download_url)
        .basic(receiving_account())
        .fetch()
        .map_err(|e| Refusal::Temporary(e.into()))?;
    if download.status != 200 {
        let start = download.body.read(0, 1024);
        return Err(Refusal::from(failure::from_status(
            download.status,
            &start,
            None,
        )));
    }
    let package = listed.package(&download.body)?;
    Ok(Incoming {
        reference: listed.id.clone(),
        sbd,
        package: Some(package),
    })
}

impl Guest for Dpf {
    fn describe() -> Description {
        Description {
            service: "DPF".to_owned(),
            name: "KS FIKS SvarUt and SvarInn".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            capabilities: Capabilities::SEND | Capabilities::STATUSES | Capabilities::RECEIVE,
            max_message_size: Some(MAX_MESSAGE_SIZE),
        }
    }

    fn send(message: Outgoing) -> Result<Sent, Failure> {
        let endpoint = settings::required("forsendelseservice")?;
        let total: u64 = message.documents.iter().map(|d| d.content.size()).sum();
        if total > MAX_MESSAGE_SIZE {
            return Err(Failure::TooLarge(MAX_MESSAGE_SIZE));
        }
        let certificate = message.service.certificate.clone().ok_or_else(|| {
            Failure::Reject("the DPF service record carries no SvarUt certificate".into())
        })?;
        let arkivmelding = arkivmelding_text(&message)?
            .map(|text| Arkivmelding::read(&text))
            .unwrap_or_default();
        let documents =
            forsendelse::documents_to_send(&message, &arkivmelding).map_err(Failure::Reject)?;
        if documents.is_empty() {
            return Err(Failure::Reject(
                "the message has no document for SvarUt".into(),
            ));
        }
        let id = forsendelse::forsendelse_id(&message);
        let mut declared = Vec::with_capacity(documents.len());
        let mut attachments = Vec::with_capacity(documents.len());
        for (index, document) in documents.into_iter().enumerate() {
            let content_id = format!("dokument-{index}-{id}@eformidling.integrasjonspunkt");
            let encrypted =
                crypto::cms_encrypt(&document.content, &certificate, KeyTransport::RsaOaepSha256)?;
            declared.push(DeclaredDocument {
                content_id: content_id.clone(),
                document,
            });
            attachments.push(Attachment {
                content_id,
                content: encrypted,
            });
        }
        let operation = forsendelse::operation(&message, &id, &arkivmelding, &declared);
        let answer = soap::call(&endpoint, &sending_account(), &operation, &attachments)?;
        match xml::first_text(&answer, "return") {
            Some(returned) if returned == id => {}
            other => {
                return Err(Failure::Retry(format!(
                    "SvarUt answered sendForsendelseMedId with {other:?}, not the id {id}"
                )));
            }
        }
        log::info(&format!(
            "message {} accepted by SvarUt as forsendelse {id}",
            message.message_id
        ));
        Ok(Sent {
            reference: id,
            statuses: vec![StatusEvent {
                message_id: message.message_id,
                status: Status::Levert,
                at: time::now_millis(),
                description: None,
            }],
        })
    }

    fn poll_statuses(pending: Vec<Pending>) -> Result<Vec<StatusEvent>, Failure> {
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let endpoint = settings::required("forsendelseservice")?;
        let by_reference: HashMap<&str, &str> = pending
            .iter()
            .map(|p| (p.reference.as_str(), p.message_id.as_str()))
            .collect();
        let ids: String = pending
            .iter()
            .map(|p| {
                format!(
                    "<forsendelseider>{}</forsendelseider>",
                    xml::escape(&p.reference)
                )
            })
            .collect();
        let operation = format!(
            "<ns2:retrieveForsendelseStatuser xmlns:ns2=\"{SERVICE_NS}\">{ids}</ns2:retrieveForsendelseStatuser>"
        );
        let answer = soap::call(&endpoint, &sending_account(), &operation, &[])?;
        let events = xml::contents(&answer, "return")
            .into_iter()
            .filter_map(|entry| {
                let status = xml::first_text(entry, "forsendelseStatus")?;
                let id = xml::first_text(entry, "forsendelsesid")?;
                let message_id = by_reference.get(id.as_str())?;
                // As the real integration point: LEVERT came with the send; only LEST is news.
                (status == "LEST").then(|| StatusEvent {
                    message_id: (*message_id).to_owned(),
                    status: Status::Lest,
                    at: xml::first_text(entry, "sisteStatusEndring")
                        .and_then(|at| time::parse_rfc3339(&at))
                        .unwrap_or_else(time::now_millis),
                    description: None,
                })
            })
            .collect();
        Ok(events)
    }

    fn poll_incoming(max: u32) -> Result<Vec<Incoming>, Failure> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let base = svarinn_url()?;
        let process = settings::or_default("process", DEFAULT_PROCESS);
        let response = RequestBuilder::get(format!("{base}/mottaker/hentNyeForsendelser"))
            .header("accept", "application/json")
            .basic(receiving_account())
            .send(MAX_LISTING)?;
        expect_status(&response, &[200], None)?;
        let listing: Vec<serde_json::Value> =
            serde_json::from_slice(&response.body).map_err(|e| {
                Failure::Retry(format!(
                    "SvarInn's listing is not a JSON array: {e}: {}",
                    failure::excerpt(&response.body)
                ))
            })?;
        let mut incoming = Vec::new();
        for entry in listing.into_iter().take(max as usize) {
            let id = entry["id"].as_str().unwrap_or_default().to_owned();
            let listed: svarinn::Forsendelse = match serde_json::from_value(entry) {
                Ok(listed) => listed,
                Err(error) if !id.is_empty() => {
                    report_failed(&base, &id, &format!("the listing is not readable: {error}"));
                    continue;
                }
                Err(error) => {
                    log::error(&format!("SvarInn listed a forsendelse without id: {error}"));
                    continue;
                }
            };
            match take(&listed, &process) {
                Ok(message) => incoming.push(message),
                Err(Refusal::Permanent(reason)) => report_failed(&base, &listed.id, &reason),
                Err(Refusal::Temporary(failure)) => log::warn(&format!(
                    "forsendelse {} could not be taken now: {failure:?}",
                    listed.id
                )),
            }
        }
        Ok(incoming)
    }

    fn confirm_incoming(reference: String) -> Result<(), Failure> {
        let base = svarinn_url()?;
        let response = RequestBuilder::post(format!(
            "{base}/kvitterMottak/forsendelse/{}",
            encode_component(&reference)
        ))
        .basic(receiving_account())
        .send(64 * 1024)?;
        expect_status(&response, &[200, 204], None)?;
        log::info(&format!("forsendelse {reference} confirmed to SvarInn"));
        Ok(())
    }
}

eformidling_sdk::export!(Dpf);
