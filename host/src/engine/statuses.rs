//! The status poller: asks each channel that reports statuses about its pollable messages.
//!
//! The real integration point polls each conversation less often as it ages (every minute when
//! new, up to hourly after 30 days). Here a round asks about the conversations least recently
//! changed first, a page at a time, and a conversation stops being pollable when its status
//! says nothing more will come.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Engine, pause, receipt_status};
use crate::plugins::bindings::{Capabilities, Pending};
use crate::store::{Direction, StatusUpdate};

/// Conversations asked about per call.
const PAGE: i64 = 200;

pub(super) async fn run(engine: Arc<Engine>, shutdown: CancellationToken) {
    while pause(engine.settings.status_interval, &shutdown).await {
        round(&engine).await;
    }
}

/// One round over every channel that reports statuses.
pub async fn round(engine: &Engine) {
    let set = engine.plugins.current();
    for plugin in set.plugins() {
        if !plugin
            .description()
            .capabilities
            .contains(Capabilities::STATUSES)
        {
            continue;
        }
        let Some(lead) = engine
            .leadership
            .try_lead(&format!("statuses:{}", plugin.name()))
            .await
        else {
            continue;
        };
        let pollable = match engine.store.pollable(plugin.name(), PAGE).await {
            Ok(pollable) => pollable,
            Err(error) => {
                tracing::error!(%error, "pollable conversations could not be read");
                lead.release().await;
                continue;
            }
        };
        if pollable.is_empty() {
            lead.release().await;
            continue;
        }
        let pending: Vec<Pending> = pollable
            .iter()
            .filter_map(|conversation| {
                Some(Pending {
                    message_id: conversation.message_id.clone(),
                    reference: conversation.external_system_reference.clone()?,
                    sent_at: u64::try_from(conversation.last_update).unwrap_or_default(),
                })
            })
            .collect();
        match plugin.poll_statuses(&pending).await {
            Ok(Ok(events)) => {
                for event in events {
                    let service = pollable
                        .iter()
                        .find(|c| c.message_id == event.message_id)
                        .and_then(|c| c.service_identifier.clone());
                    let update = StatusUpdate {
                        status: receipt_status(event.status),
                        description: event.description.clone(),
                        raw_receipt: None,
                        at: i64::try_from(event.at).ok(),
                    };
                    engine
                        .register(
                            &event.message_id,
                            Direction::Outgoing,
                            service.as_deref(),
                            &update,
                        )
                        .await;
                }
            }
            Ok(Err(failure)) => {
                tracing::warn!(channel = plugin.name(), ?failure, "status polling failed")
            }
            Err(error) => tracing::warn!(channel = plugin.name(), %error, "status polling failed"),
        }
        lead.release().await;
    }
}
