//! The status poller: asks each channel that reports statuses about its pollable messages.
//!
//! As the real integration point does, a conversation is asked about less often as it ages: the
//! interval grows linearly from the polling interval (every minute by default) when it is new to
//! an hour at 30 days since its last change, so a provider is not asked every minute about
//! thousands of month-old messages. A conversation stops being pollable when its status says
//! nothing more will come.

use std::collections::HashMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Engine, pause, receipt_status};
use crate::plugins::bindings::{Capabilities, Pending};
use crate::store::{StatusEffects, StatusUpdate, now_millis};

/// Pollable conversations read per round, as the real one pages them.
const PAGE: i64 = 2000;
/// Conversations asked about per call.
const BATCH: usize = 200;
/// The longest interval between polls of one conversation.
const MAX_INTERVAL_MS: i64 = 60 * 60 * 1000;
/// The age at which the longest interval is reached.
const BACKOFF_THRESHOLD_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// The interval between polls of a conversation last changed `age` ago: from `base` at age 0
/// up to an hour at 30 days, linearly.
pub(crate) fn poll_interval(base: i64, age: i64) -> i64 {
    let base = base.min(MAX_INTERVAL_MS);
    let age = age.clamp(0, BACKOFF_THRESHOLD_MS);
    base + (MAX_INTERVAL_MS - base) * age / BACKOFF_THRESHOLD_MS
}

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
        let now = now_millis();
        let base = engine.settings.status_interval.as_millis() as i64;
        let pollable = match engine.store.pollable(plugin.name(), PAGE).await {
            Ok(pollable) => {
                let channel = plugin.name();
                let mut polled = engine.polled.lock().expect("the poll times");
                // Forget conversations no longer pollable, so the map stays as small as the work.
                let current: std::collections::HashSet<&str> =
                    pollable.iter().map(|c| c.message_id.as_str()).collect();
                polled.retain(|(owner, id), _| owner != channel || current.contains(id.as_str()));
                let due: Vec<_> = pollable
                    .iter()
                    .filter(|conversation| {
                        let interval = poll_interval(base, now - conversation.last_update);
                        polled
                            .get(&(channel.to_owned(), conversation.message_id.clone()))
                            .is_none_or(|last| now - last >= interval)
                    })
                    .take(BATCH)
                    .cloned()
                    .collect();
                for conversation in &due {
                    polled.insert((channel.to_owned(), conversation.message_id.clone()), now);
                }
                due
            }
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
                let services: HashMap<&str, Option<&str>> = pollable
                    .iter()
                    .map(|c| (c.message_id.as_str(), c.service_identifier.as_deref()))
                    .collect();
                let updates: Vec<_> = events
                    .into_iter()
                    .map(|event| {
                        let service = services.get(event.message_id.as_str()).copied().flatten();
                        let effects = StatusEffects {
                            starts_polling: false,
                            queue: engine.queues(service),
                        };
                        let update = StatusUpdate {
                            status: receipt_status(event.status),
                            description: event.description,
                            raw_receipt: None,
                            at: i64::try_from(event.at).ok(),
                        };
                        (event.message_id, update, effects)
                    })
                    .collect();
                if let Err(error) = engine.store.register_outgoing_statuses(&updates).await {
                    tracing::error!(channel = plugin.name(), %error, "polled statuses could not be registered");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_grows_from_the_base_to_an_hour_at_thirty_days() {
        let minute = 60_000;
        assert_eq!(poll_interval(minute, 0), minute);
        assert_eq!(
            poll_interval(minute, BACKOFF_THRESHOLD_MS / 2),
            minute + 59 * minute / 2
        );
        assert_eq!(poll_interval(minute, BACKOFF_THRESHOLD_MS), 60 * minute);
        assert_eq!(
            poll_interval(minute, 10 * BACKOFF_THRESHOLD_MS),
            60 * minute
        );
    }
}
