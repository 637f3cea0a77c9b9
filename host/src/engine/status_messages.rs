//! Status messages back to the sender: MOTTATT when a message is stored, LEVERT when the
//! archive system has taken it.
//!
//! The real integration point does this for the channels in `difi.move.nextmove.status-services`
//! (by default DPO and DPE), where the provider reports nothing itself: the receiving side sends
//! a `status` SBD about the original message (same message id, sender and receiver swapped)
//! over the same channel, and the sender's inbound poller registers it. The store queues each
//! one with the change it reports; this worker sends them through the channel's plugin, retried
//! with the outbox's back-off and given up on at its give-up time.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::outbox::backoff;
use super::{Engine, pause};
use crate::plugins::OutgoingMessage;
use crate::plugins::bindings::{Failure, Party, ServiceRecord};
use crate::sbd::Sbd;
use crate::store::{Millis, ReceiptStatus, StatusReply, StatusReplyEntry, now_millis};
use crate::timefmt;

/// The channels (service identifiers) whose receivers send status messages back: the real
/// integration point's default `status-services`.
pub const STATUS_SERVICES: [&str; 2] = ["DPO", "DPE"];
/// The document type of a status message.
pub const STATUS_DOCUMENT_TYPE: &str = "urn:no:difi:eformidling:xsd::status";
/// How often the worker looks for due status messages.
const INTERVAL: Duration = Duration::from_secs(1);
/// Status messages claimed at once.
const BATCH: i64 = 20;

/// The status message `status` about the received message whose SBD is `received`, when its
/// channel (service `service`, plugin `channel`) carries status messages back; none otherwise,
/// and none for a status message (statuses are not acknowledged).
pub fn reply(
    received: &str,
    service: &str,
    channel: &str,
    status: ReceiptStatus,
    now: Millis,
) -> Option<StatusReply> {
    if !STATUS_SERVICES
        .iter()
        .any(|s| s.eq_ignore_ascii_case(service))
    {
        return None;
    }
    let sbd: Value = serde_json::from_str(received).ok()?;
    let mut header = sbd.get("standardBusinessDocumentHeader")?.clone();
    if header["documentIdentification"]["type"] == "status" {
        return None;
    }
    let message_id = header["documentIdentification"]["instanceIdentifier"]
        .as_str()?
        .to_owned();
    let sender = header.get("sender").cloned().unwrap_or(Value::Null);
    let receiver = header.get("receiver").cloned().unwrap_or(Value::Null);
    header["sender"] = receiver;
    header["receiver"] = sender;
    let identification = &mut header["documentIdentification"];
    identification["standard"] = json!(STATUS_DOCUMENT_TYPE);
    identification["type"] = json!("status");
    identification["typeVersion"] = json!("2.0");
    identification["creationDateAndTime"] = json!(timefmt::format_millis(now));
    let status_sbd = json!({
        "standardBusinessDocumentHeader": header,
        "status": {"status": status.to_string(), "tidspunkt": timefmt::format_millis(now)},
    });
    Some(StatusReply {
        message_id,
        status: status.to_string(),
        channel: channel.to_owned(),
        sbd: status_sbd.to_string(),
    })
}

pub(super) async fn run(engine: Arc<Engine>, shutdown: CancellationToken) {
    while pause(INTERVAL, &shutdown).await {
        round(&engine).await;
    }
}

/// Sends every due status message once.
async fn round(engine: &Engine) {
    let now = now_millis();
    let lease = now + engine.settings.claim_lease.as_millis() as Millis;
    let entries = match engine
        .store
        .claim_status_replies(&engine.worker, now, lease, BATCH)
        .await
    {
        Ok(entries) => entries,
        Err(error) => {
            tracing::error!(%error, "the status messages could not be read");
            return;
        }
    };
    for entry in entries {
        send(engine, entry).await;
    }
}

async fn send(engine: &Engine, entry: StatusReplyEntry) {
    let reply = &entry.reply;
    let outcome = match engine.plugins.plugin(&reply.channel) {
        None => Err(format!("the channel {} is not loaded", reply.channel)),
        Some(plugin) => match outgoing(reply, &plugin.description().service) {
            Err(reason) => {
                give_up(engine, &entry, &reason).await;
                return;
            }
            Ok(message) => match plugin.send(&message).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(Failure::Retry(reason) | Failure::Unauthorized(reason))) => Err(reason),
                Ok(Err(refused)) => {
                    give_up(engine, &entry, &format!("{refused:?}")).await;
                    return;
                }
                Err(error) => Err(error.to_string()),
            },
        },
    };
    match outcome {
        Ok(()) => {
            tracing::info!(message_id = %reply.message_id, status = %reply.status, "status message sent");
            remove(engine, &entry).await;
        }
        Err(reason) => {
            let now = now_millis();
            let delay = backoff(
                engine.settings.retry_initial,
                engine.settings.retry_max_interval,
                entry.attempts,
            );
            let next = now + delay.as_millis() as Millis;
            let give_up_at =
                entry.created + engine.settings.retry_give_up_after.as_millis() as Millis;
            if next > give_up_at {
                give_up(engine, &entry, &reason).await;
                return;
            }
            tracing::warn!(message_id = %reply.message_id, status = %reply.status, %reason, "sending a status message failed; will retry");
            if let Err(error) = engine
                .store
                .reschedule_status_reply(entry.id, next, &reason)
                .await
            {
                tracing::error!(%error, "a status message's retry could not be scheduled");
            }
        }
    }
}

async fn give_up(engine: &Engine, entry: &StatusReplyEntry, reason: &str) {
    tracing::error!(message_id = %entry.reply.message_id, status = %entry.reply.status, %reason, "a status message is given up on");
    remove(engine, entry).await;
}

async fn remove(engine: &Engine, entry: &StatusReplyEntry) {
    if let Err(error) = engine.store.remove_status_reply(entry.id).await {
        tracing::error!(%error, "a status message could not be removed");
    }
}

/// The value a channel is handed for a status message: no documents, and a record naming only
/// the channel's service and the process.
fn outgoing(reply: &StatusReply, service: &str) -> Result<OutgoingMessage, String> {
    let sbd = Sbd::from_stored(&reply.sbd).map_err(|e| format!("{e:?}"))?;
    let party = |identifier: &str| Party {
        identifier: identifier.to_owned(),
        name: None,
    };
    Ok(OutgoingMessage {
        message_id: sbd.message_id.clone(),
        conversation_id: sbd.conversation_id.clone(),
        sender: party(&sbd.sender),
        receiver: party(sbd.receiver.as_deref().unwrap_or_default()),
        process: sbd.process.clone(),
        document_type: STATUS_DOCUMENT_TYPE.to_owned(),
        sbd: reply.sbd.clone(),
        documents: Vec::new(),
        service: ServiceRecord {
            service: service.to_owned(),
            process: sbd.process.clone(),
            document_types: vec![STATUS_DOCUMENT_TYPE.to_owned()],
            endpoint_url: None,
            certificate: None,
            security_level: None,
            service_code: None,
            service_edition: None,
            altinn_resource: None,
            mailbox: None,
            reserved: false,
            extra: Vec::new(),
        },
        expires_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECEIVED: &str = r#"{"standardBusinessDocumentHeader":{"headerVersion":"1.0",
        "sender":[{"identifier":{"value":"0192:910075918","authority":"iso6523-actorid-upis"}}],
        "receiver":[{"identifier":{"value":"0192:910076787","authority":"iso6523-actorid-upis"}}],
        "documentIdentification":{"standard":"urn:no:difi:arkivmelding:xsd::arkivmelding",
        "typeVersion":"2.0","instanceIdentifier":"0b6f4e5c-6d0f-4d0a-9a9e-0c1b2d3e4f50",
        "type":"arkivmelding","creationDateAndTime":"2024-01-01T00:00:00Z"},
        "businessScope":{"scope":[{"type":"ConversationId",
        "instanceIdentifier":"1b6f4e5c-6d0f-4d0a-9a9e-0c1b2d3e4f51",
        "identifier":"urn:no:difi:profile:arkivmelding:administrasjon:ver1.0"}]}},
        "arkivmelding":{"hoveddokument":"a.pdf"}}"#;

    #[test]
    fn a_status_message_is_about_the_original_and_goes_back_to_its_sender() {
        let reply = reply(RECEIVED, "DPO", "dpo", ReceiptStatus::Mottatt, 0).unwrap();
        assert_eq!(reply.message_id, "0b6f4e5c-6d0f-4d0a-9a9e-0c1b2d3e4f50");
        assert_eq!(reply.status, "MOTTATT");
        assert_eq!(reply.channel, "dpo");
        let sbd = Sbd::from_stored(&reply.sbd).unwrap();
        assert_eq!(sbd.message_type, "status");
        assert_eq!(sbd.standard, STATUS_DOCUMENT_TYPE);
        assert_eq!(sbd.message_id, reply.message_id);
        assert_eq!(sbd.conversation_id, "1b6f4e5c-6d0f-4d0a-9a9e-0c1b2d3e4f51");
        assert_eq!(sbd.sender, "0192:910076787");
        assert_eq!(sbd.receiver.as_deref(), Some("0192:910075918"));
        assert_eq!(sbd.business_message().unwrap()["status"], "MOTTATT");
        let message = outgoing(&reply, "DPO").unwrap();
        assert!(message.documents.is_empty());
        assert_eq!(message.receiver.identifier, "0192:910075918");
        assert_eq!(message.service.service, "DPO");
    }

    #[test]
    fn only_status_services_reply_and_status_messages_get_no_reply() {
        assert!(reply(RECEIVED, "DPV", "dpv", ReceiptStatus::Mottatt, 0).is_none());
        assert!(reply(RECEIVED, "dpe", "dpe", ReceiptStatus::Levert, 0).is_some());
        let status = reply(RECEIVED, "DPO", "dpo", ReceiptStatus::Mottatt, 0).unwrap();
        assert!(reply(&status.sbd, "DPO", "dpo", ReceiptStatus::Mottatt, 0).is_none());
    }
}
