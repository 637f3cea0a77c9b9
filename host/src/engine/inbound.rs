//! The inbound poller: takes new messages from each channel that receives, stores each durably,
//! and only then confirms it to the provider.
//!
//! A message stored but not confirmed (a crash in between) comes again and is recognised by its
//! message id; a message confirmed is always stored first. So nothing is lost and the archive
//! system sees each message once. A `status` message from the receiving side is not stored as a
//! message: its status is registered on the original outgoing message.

use std::sync::Arc;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{Engine, pause, status_messages};
use crate::plugins::bindings::Capabilities;
use crate::plugins::{IncomingMessage, Plugin};
use crate::sbd::{Sbd, primary_identifier};
use crate::store::{
    Direction, InMessage, NewConversation, ReceiptStatus, StatusUpdate, now_millis,
};

/// Messages taken per call.
const BATCH: u32 = 50;

pub(super) async fn run(engine: Arc<Engine>, shutdown: CancellationToken) {
    while pause(engine.settings.incoming_interval, &shutdown).await {
        round(&engine).await;
    }
}

/// One round over every channel that receives; returns how many messages were stored.
pub async fn round(engine: &Engine) -> usize {
    let mut stored = 0;
    let set = engine.plugins.current();
    for plugin in set.plugins() {
        if !plugin
            .description()
            .capabilities
            .contains(Capabilities::RECEIVE)
        {
            continue;
        }
        let Some(lead) = engine
            .leadership
            .try_lead(&format!("incoming:{}", plugin.name()))
            .await
        else {
            continue;
        };
        loop {
            let messages = match plugin.poll_incoming(BATCH).await {
                Ok(Ok(messages)) => messages,
                Ok(Err(failure)) => {
                    tracing::warn!(channel = plugin.name(), ?failure, "receiving failed");
                    break;
                }
                Err(error) => {
                    tracing::warn!(channel = plugin.name(), %error, "receiving failed");
                    break;
                }
            };
            let full = messages.len() as u32 >= BATCH;
            for message in messages {
                if take(engine, plugin, message).await {
                    stored += 1;
                }
            }
            if !full {
                break;
            }
        }
        lead.release().await;
    }
    stored
}

/// Stores one message and confirms it; true when it was new.
async fn take(engine: &Engine, plugin: &Plugin, incoming: IncomingMessage) -> bool {
    let reference = incoming.reference.clone();
    let stored = match store(engine, plugin, incoming).await {
        Ok(stored) => stored,
        Err(reason) => {
            // Not confirmed: the provider keeps it and it comes again.
            tracing::error!(channel = plugin.name(), %reference, %reason, "a received message could not be stored");
            return false;
        }
    };
    match plugin.confirm_incoming(&reference).await {
        Ok(Ok(())) => {}
        Ok(Err(failure)) => {
            tracing::warn!(channel = plugin.name(), %reference, ?failure, "confirming a received message failed; it will come again and be recognised")
        }
        Err(error) => {
            tracing::warn!(channel = plugin.name(), %reference, %error, "confirming a received message failed; it will come again and be recognised")
        }
    }
    stored
}

async fn store(
    engine: &Engine,
    plugin: &Plugin,
    incoming: IncomingMessage,
) -> Result<bool, String> {
    let sbd = Sbd::from_stored(&incoming.sbd).map_err(|e| format!("{e:?}"))?;
    let service = plugin.description().service.clone();
    if sbd.message_type == "status" {
        let status = sbd
            .business_message()
            .and_then(|m| m.get("status"))
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<ReceiptStatus>().ok())
            .ok_or("a status message without a known status")?;
        engine
            .register(
                &sbd.message_id,
                Direction::Outgoing,
                Some(&service),
                &StatusUpdate::new(status),
            )
            .await;
        return Ok(false);
    }
    let now = now_millis();
    if sbd.expires_at.is_some_and(|at| at <= now) {
        tracing::warn!(message_id = %sbd.message_id, "a received message's lifetime is over; dropped");
        return Ok(false);
    }
    let package = match incoming.package.clone() {
        // Durable before the row that names it commits, and so before the provider is told.
        Some(package) => {
            let kept = crate::blobs::keep_blob(package)
                .await
                .map_err(|e| format!("the package could not be kept: {e}"))?;
            kept.persist();
            Some(kept)
        }
        None => None,
    };
    let receiver = sbd.receiver.clone();
    let message = InMessage {
        message_id: sbd.message_id.clone(),
        conversation_id: sbd.conversation_id.clone(),
        process_identifier: Some(sbd.process.clone()),
        document_type: Some(sbd.standard.clone()),
        sender_identifier: Some(primary_identifier(&sbd.sender)),
        receiver_identifier: receiver.as_deref().map(primary_identifier),
        service_identifier: service.clone(),
        channel: plugin.name().to_owned(),
        sbd: incoming.sbd.clone(),
        package_blob: package.as_ref().map(|b| b.id().as_str().to_owned()),
        lock_until: None,
        last_updated: now,
    };
    let conversation = NewConversation {
        conversation_id: sbd.conversation_id.clone(),
        message_id: sbd.message_id.clone(),
        sender: Some(sbd.sender.clone()),
        sender_identifier: Some(primary_identifier(&sbd.sender)),
        receiver: receiver.clone(),
        receiver_identifier: receiver.as_deref().map(primary_identifier),
        process_identifier: Some(sbd.process.clone()),
        document_identifier: Some(sbd.standard.clone()),
        service_identifier: Some(service),
        channel: Some(plugin.name().to_owned()),
        expiry: sbd.expires_at,
    };
    let reply = status_messages::reply(
        &incoming.sbd,
        &message.service_identifier,
        plugin.name(),
        ReceiptStatus::Mottatt,
        now,
    );
    match engine
        .store
        .store_incoming_replying(&message, &conversation, reply.as_ref())
        .await
    {
        Ok(true) => Ok(true),
        Ok(false) => {
            // Seen before: the package just downloaded is a copy; drop it.
            if let Some(package) = package {
                engine
                    .remove_blobs(vec![package.id().as_str().to_owned()])
                    .await;
            }
            Ok(false)
        }
        Err(error) => {
            if let Some(package) = package {
                engine
                    .remove_blobs(vec![package.id().as_str().to_owned()])
                    .await;
            }
            Err(error.to_string())
        }
    }
}
