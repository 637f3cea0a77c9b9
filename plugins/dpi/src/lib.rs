//! The DPI channel: digital post to citizens through a meldingsformidler's corner-2 REST API.
//!
//! A message goes as one multipart `POST /messages/out`: the `forretningsmelding`, a JWS of the
//! innbyggerpost SBD ([`forretningsmelding`]) signed by the host with the Maskinporten token
//! written inside it, and the `dokumentpakke`, a XAdES ASiC-E (the SDP [`manifest`] and the
//! documents) CMS-encrypted to the certificate the registry gives: the citizen's mailbox
//! provider's for digital post, the print provider's for a reserved citizen. Everything is
//! composed by handle; the documents and the token never enter the plugin. Corner 2 keeps one
//! message per id, so a send repeated after a lost answer is harmless.
//!
//! Statuses come from two places ([`receipts`]): the message's own status list, and the
//! receipts the providers send back (`/messages/in`), each confirmed with `/read` once its
//! status is handed to the host.
//!
//! Settings: `meldingsformidler` (the API base URL), `kanal` (the message partition channel,
//! optional), `avsenderidentifikator` (to fetch only this sender's receipts, optional).

mod forretningsmelding;
mod manifest;
mod receipts;

use eformidling_sdk::crypto::{self, AsicEntry, KeyTransport};
use eformidling_sdk::failure::{self, expect_status};
use eformidling_sdk::http::{Content, RequestBuilder, form_data, form_file};
use eformidling_sdk::transport::{Capabilities, Description};
use eformidling_sdk::types::{Blob, Failure, Incoming, Outgoing, Pending, Sent, StatusEvent};
use eformidling_sdk::url::encode_component;
use eformidling_sdk::{Guest, log, settings};
use serde_json::Value;

use forretningsmelding::{Kind, NextMove, Parts};

/// The limit on a DPI message: 50 MB.
const MAX_MESSAGE_SIZE: u64 = 50_000_000;
/// The Maskinporten scope of every corner-2 call.
const SCOPE: &str = "digitalpostinnbygger:send";
/// The most a JSON answer may hold.
const MAX_ANSWER: u32 = 16 << 20;
/// Receipts fetched per call.
const PAGE_SIZE: u32 = 100;

struct Dpi;

fn base_url() -> Result<String, Failure> {
    Ok(settings::required("meldingsformidler")?
        .trim_end_matches('/')
        .to_owned())
}

fn authorised(request: RequestBuilder<'_>) -> RequestBuilder<'_> {
    request.credentials(eformidling_sdk::http::Credentials::Maskinporten(vec![
        SCOPE.to_owned(),
    ]))
}

/// The failure a corner-2 refusal means, with its problem `detail` as the reason.
fn refusal(status: u16, body: &[u8]) -> Failure {
    let detail = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|problem| problem["detail"].as_str().map(str::to_owned));
    match (
        failure::from_status(status, body, Some(MAX_MESSAGE_SIZE)),
        detail,
    ) {
        (Failure::Reject(_), Some(detail)) => {
            Failure::Reject(format!("meldingsformidler: HTTP {status}: {detail}"))
        }
        (other, _) => other,
    }
}

/// The dokumentpakke: the ASiC-E of the manifest and documents, encrypted to `certificate`.
fn dokumentpakke(
    message: &Outgoing,
    next_move: &NextMove,
    certificate: &str,
) -> Result<Blob, Failure> {
    let documents = manifest::ordered(&message.documents);
    if !documents.first().is_some_and(|d| d.primary) {
        return Err(Failure::Reject(
            "the message has no main document (hoveddokument)".into(),
        ));
    }
    let orgnr = message
        .sender
        .identifier
        .rsplit(':')
        .next()
        .unwrap_or(&message.sender.identifier);
    let mailbox = message.service.mailbox.as_ref();
    let recipient = match (next_move.kind, mailbox) {
        (Kind::Digital, Some(mailbox)) => Some(manifest::Recipient {
            person: &message.receiver.identifier,
            mailbox: &mailbox.address,
        }),
        _ => None,
    };
    let sender = manifest::Sender {
        orgnr,
        avsenderidentifikator: next_move.sender_id(),
        fakturareferanse: next_move.invoice_reference(),
    };
    let manifest = Blob::new(
        manifest::write(
            recipient.as_ref(),
            &sender,
            &documents,
            &next_move.language(),
        )
        .as_bytes(),
    );
    let mut entries = vec![AsicEntry {
        name: "manifest.xml".to_owned(),
        mime_type: "application/xml".to_owned(),
        content: &manifest,
    }];
    entries.extend(documents.iter().map(|document| AsicEntry {
        name: document.name.clone(),
        mime_type: document.mime_type.clone(),
        content: &document.content,
    }));
    let asic = crypto::build_asic_xades(&entries)?;
    Ok(crypto::cms_encrypt(
        &asic,
        certificate,
        KeyTransport::RsaOaepSha256,
    )?)
}

impl Guest for Dpi {
    fn describe() -> Description {
        Description {
            service: "DPI".to_owned(),
            name: "Digital post to citizens (corner 2)".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            capabilities: Capabilities::SEND | Capabilities::STATUSES,
            max_message_size: Some(MAX_MESSAGE_SIZE),
        }
    }

    fn send(message: Outgoing) -> Result<Sent, Failure> {
        let base = base_url()?;
        let total: u64 = message.documents.iter().map(|d| d.content.size()).sum();
        if total > MAX_MESSAGE_SIZE {
            return Err(Failure::TooLarge(MAX_MESSAGE_SIZE));
        }
        let next_move = NextMove::read(&message).map_err(Failure::Reject)?;
        let certificate = message.service.certificate.clone().ok_or_else(|| {
            Failure::Reject("the DPI service record carries no provider certificate".into())
        })?;
        let package = dokumentpakke(&message, &next_move, &certificate)?;
        let fingerprint = crypto::sha256(&package);
        let mailbox = message.service.mailbox.as_ref();
        let record = message
            .service
            .extra
            .iter()
            .find(|(name, _)| name == "record")
            .and_then(|(_, json)| serde_json::from_str(json).ok())
            .unwrap_or(Value::Null);
        let parts = Parts {
            next_move: &next_move,
            mailbox: mailbox.map(|m| m.address.as_str()),
            notify: (
                mailbox.and_then(|m| m.email.as_deref()),
                mailbox.and_then(|m| m.mobile.as_deref()),
            ),
            record,
            fingerprint: &fingerprint,
        };
        let payload = forretningsmelding::payload(&message, &parts).map_err(Failure::Reject)?;
        let jws = crypto::sign_jws_with_token(
            payload.to_string().as_bytes(),
            &[("typ".to_owned(), "\"JWT\"".to_owned())],
            &forretningsmelding::token_pointer(next_move.kind),
            &[SCOPE.to_owned()],
        )?;
        let url = match settings::parsed::<String>("kanal")? {
            Some(kanal) => format!(
                "{base}/messages/out?kanal={}",
                encode_component(&kanal.replace('.', "_"))
            ),
            None => format!("{base}/messages/out"),
        };
        let response = authorised(RequestBuilder::post(url))
            .multipart(form_data(vec![
                form_file(
                    "forretningsmelding",
                    "sbd.jwt",
                    "application/jwt",
                    Content::Blob(&jws),
                ),
                form_file(
                    "dokumentpakke",
                    "asic.cms",
                    "application/cms",
                    Content::Blob(&package),
                ),
            ]))
            .send(MAX_ANSWER)?;
        if !(200..300).contains(&response.status) {
            return Err(refusal(response.status, &response.body));
        }
        log::info(&format!(
            "message {} ({}) accepted by the meldingsformidler",
            message.message_id,
            next_move.kind.name()
        ));
        Ok(Sent {
            reference: message.conversation_id,
            statuses: Vec::new(),
        })
    }

    fn poll_statuses(pending: Vec<Pending>) -> Result<Vec<StatusEvent>, Failure> {
        let base = base_url()?;
        let mut events = Vec::new();
        for message in &pending {
            let response = authorised(RequestBuilder::get(format!(
                "{base}/messages/out/{}/statuses",
                encode_component(&message.message_id)
            )))
            .header("accept", "application/json")
            .send(MAX_ANSWER)?;
            expect_status(&response, &[200], None)?;
            let statuses: Vec<receipts::OutStatus> = serde_json::from_slice(&response.body)
                .map_err(|e| Failure::Retry(format!("the status list is not valid: {e}")))?;
            events.extend(
                statuses
                    .iter()
                    .filter_map(|status| receipts::from_out_status(&message.message_id, status)),
            );
        }

        let mut query = format!("page_size={PAGE_SIZE}");
        if let Some(kanal) = settings::parsed::<String>("kanal")? {
            query.push_str(&format!(
                "&kanal={}",
                encode_component(&kanal.replace('.', "_"))
            ));
        }
        if let Some(sender) = settings::parsed::<String>("avsenderidentifikator")? {
            query.push_str(&format!(
                "&avsenderidentifikator={}",
                encode_component(&sender)
            ));
        }
        let response = authorised(RequestBuilder::get(format!("{base}/messages/in?{query}")))
            .header("accept", "application/json")
            .send(MAX_ANSWER)?;
        expect_status(&response, &[200], None)?;
        let waiting: Vec<Value> = serde_json::from_slice(&response.body)
            .map_err(|e| Failure::Retry(format!("the receipt list is not valid: {e}")))?;
        for entry in waiting {
            let Some(jwt) = entry["forretningsmelding"].as_str() else {
                continue;
            };
            let receipt = match receipts::read(jwt) {
                Ok(receipt) => receipt,
                Err(why) => {
                    log::warn(&format!("a receipt could not be read: {why}"));
                    continue;
                }
            };
            // Another message's receipt (another sender, or one not due now) stays unread.
            let Some(message) = pending
                .iter()
                .find(|p| p.reference == receipt.conversation_id)
            else {
                continue;
            };
            events.extend(receipts::events(&message.message_id, &receipt));
            // Unconfirmed, it comes again and the host keeps each status once.
            let read = authorised(RequestBuilder::post(format!(
                "{base}/messages/in/{}/read",
                encode_component(&receipt.id)
            )))
            .send(64 * 1024);
            match read {
                Ok(read) if matches!(read.status, 200 | 204 | 404) => {}
                Ok(read) => log::warn(&format!(
                    "receipt {} was not confirmed: HTTP {}",
                    receipt.id, read.status
                )),
                Err(error) => log::warn(&format!(
                    "receipt {} was not confirmed: {error:?}",
                    receipt.id
                )),
            }
        }
        Ok(events)
    }

    fn poll_incoming(_max: u32) -> Result<Vec<Incoming>, Failure> {
        Ok(Vec::new())
    }

    fn confirm_incoming(_reference: String) -> Result<(), Failure> {
        Ok(())
    }
}

eformidling_sdk::export!(Dpi);
