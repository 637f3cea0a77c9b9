//! DPV: correspondence to an organisation's or a person's Altinn inbox, over Altinn 2's
//! correspondence agency (`CorrespondenceAgencyExternal.svc`, SOAP 1.2), as the v2/v3
//! integration point sends it (reference §6.2).
//!
//! - send: `InsertCorrespondenceV2` with the documents as base64 attachments the host streams
//!   in, the notification and the due date; the agency deduplicates on the message id (the
//!   `ExternalShipmentReference`), so a retried send creates nothing new. A SOAP fault that is
//!   the sender's (`Sender` code) fails the message for good with Altinn's reason.
//! - statuses: `GetCorrespondenceStatusHistory` by the message ids: `Created` → LEVERT,
//!   `Read` → LEST.
//! - DPV has no receiving side.
//!
//! Settings: `correspondence` (the service URL, required; the environment's
//! `[endpoints.channels.dpv]` passes it), `credentials` (the username/password
//! secret of the organisation's Altinn end-user system, default `dpv`), `max-message-size`
//! (default 30 MB), `days-to-reply` (default 7; `0` sends no due date), `allow-forwarding`
//! (default true), `notify-email` and `notify-sms` (default true), `notification-text`,
//! `sensitive-notification-text`.

mod envelope;
mod history;
mod insert;
mod xml;

use eformidling_sdk::compose::Composer;
use eformidling_sdk::http::RequestBuilder;
use eformidling_sdk::transport::{Capabilities, Description};
use eformidling_sdk::types::{Failure, Incoming, Outgoing, Pending, Sent, StatusEvent};
use eformidling_sdk::{Guest, log, settings};

/// DPV's limit: 30 MB of documents (decimal), as the integration point's DPV upload limit.
const MAX_MESSAGE_SIZE: u64 = 30_000_000;
/// The most an answer of the agency may hold; receipts and status lists are small.
const MAX_ANSWER: u32 = 4 << 20;
const ACTIONS: &str = "http://www.altinn.no/services/ServiceEngine/Correspondence/2009/10/ICorrespondenceAgencyExternal/";
const DEFAULT_NOTIFICATION: &str =
    "$reporterName$ har sendt deg en melding i Altinn. Logg inn på Altinn for å lese den.";
const DEFAULT_SENSITIVE_NOTIFICATION: &str = "$reporterName$ har sendt deg en taushetsbelagt melding i Altinn. Logg inn på Altinn for å lese den.";

struct Dpv;

/// The settings every call needs.
struct Agency {
    endpoint: String,
    secret: String,
}

impl Agency {
    fn from_settings() -> Result<Self, Failure> {
        Ok(Self {
            endpoint: settings::required("correspondence")?,
            secret: settings::or_default("credentials", "dpv"),
        })
    }

    /// Calls `operation` with `body` in an envelope; the answer's texts.
    fn call(&self, operation: &str, body: Composer<'_>) -> Result<xml::Texts, Failure> {
        let action = format!("{ACTIONS}{operation}");
        let mut envelope = Composer::new();
        envelope.text(&envelope::open(&action, &self.endpoint, &self.secret));
        let mut segments = envelope.finish();
        segments.extend(body.finish());
        let mut close = Composer::new();
        close.text(envelope::CLOSE);
        segments.extend(close.finish());
        let response = RequestBuilder::post(&self.endpoint)
            .composed(&envelope::content_type(&action), segments)
            .send(MAX_ANSWER)?;
        envelope::answer(&response, Some(limit()?))
    }
}

fn limit() -> Result<u64, Failure> {
    Ok(settings::parsed("max-message-size")?.unwrap_or(MAX_MESSAGE_SIZE))
}

fn flag(key: &str) -> Result<bool, Failure> {
    Ok(settings::parsed(key)?.unwrap_or(true))
}

fn options() -> Result<insert::Options, Failure> {
    let days: u64 = settings::parsed("days-to-reply")?.unwrap_or(7);
    Ok(insert::Options {
        days_to_reply: (days > 0).then_some(days),
        allow_forwarding: flag("allow-forwarding")?,
        notification_text: settings::or_default("notification-text", DEFAULT_NOTIFICATION),
        sensitive_notification_text: settings::or_default(
            "sensitive-notification-text",
            DEFAULT_SENSITIVE_NOTIFICATION,
        ),
        notify_email: flag("notify-email")?,
        notify_sms: flag("notify-sms")?,
    })
}

impl Guest for Dpv {
    fn describe() -> Description {
        let max_message_size = limit().unwrap_or_else(|f| {
            log::error(&format!("{f:?}; describing DPV's own limit"));
            MAX_MESSAGE_SIZE
        });
        Description {
            service: "DPV".to_owned(),
            name: "DPV: Altinn correspondence (Altinn 2 correspondence agency)".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            capabilities: Capabilities::SEND | Capabilities::STATUSES,
            max_message_size: Some(max_message_size),
        }
    }

    fn send(message: Outgoing) -> Result<Sent, Failure> {
        let agency = Agency::from_settings()?;
        let size: u64 = message.documents.iter().map(|d| d.content.size()).sum();
        let limit = limit()?;
        if size > limit {
            return Err(Failure::TooLarge(limit));
        }
        let mut body = Composer::new();
        insert::write(&mut body, &message, &agency.secret, &options()?)?;
        let answer = agency.call("InsertCorrespondenceV2", body)?;
        let status = answer
            .first(&["InsertCorrespondenceV2Result", "ReceiptStatusCode"])
            .unwrap_or("no receipt status");
        if status != "OK" {
            let text = answer
                .first(&["InsertCorrespondenceV2Result", "ReceiptText"])
                .unwrap_or_default();
            return Err(Failure::Reject(format!(
                "Altinn did not save the correspondence: {status} {text}"
            )));
        }
        log::info(&format!(
            "message {} saved in Altinn as receipt {}",
            message.message_id,
            answer
                .first(&["InsertCorrespondenceV2Result", "ReceiptId"])
                .unwrap_or("?")
        ));
        Ok(Sent {
            reference: message.message_id,
            statuses: Vec::new(),
        })
    }

    fn poll_statuses(pending: Vec<Pending>) -> Result<Vec<StatusEvent>, Failure> {
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let agency = Agency::from_settings()?;
        let mut body = Composer::new();
        body.text(&history::request(&pending));
        let answer = agency.call("GetCorrespondenceStatusHistory", body)?;
        history::events(&answer, &pending)
    }

    fn poll_incoming(_max: u32) -> Result<Vec<Incoming>, Failure> {
        Ok(Vec::new())
    }

    fn confirm_incoming(reference: String) -> Result<(), Failure> {
        Err(Failure::Reject(format!(
            "DPV receives nothing, so there is no incoming {reference} to confirm"
        )))
    }
}

eformidling_sdk::export!(Dpv);
