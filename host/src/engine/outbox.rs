//! The outbox worker: claims due messages, hands each to its channel, and records the outcome.
//!
//! Outcomes follow the real integration point: success registers SENDT (and whatever the
//! provider already implied); `retry` and sandbox failures (trap, timeout, memory) try again
//! after 20 s, 60 s, 180 s … up to an hour between attempts, until the give-up time turns the
//! message into a dead letter with FEIL; `reject` and `too-large` register FEIL at once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::convert::outgoing;
use super::handoff::ReadyMessage;
use super::send_writes::SendWrite;
use super::{Engine, receipt_status};
use crate::plugins::bindings::{Capabilities, Failure};
use crate::store::{
    CompletedSend, Millis, OutboxEntry, ReceiptStatus, StatusUpdate, StoreError, now_millis,
};

/// How often the worker looks for due messages when nobody wakes it.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// The retry delay before attempt `attempts + 1`: initial × 3^attempts, at most `max`.
pub(crate) fn backoff(initial: Duration, max: Duration, attempts: i64) -> Duration {
    let factor = 3u32.saturating_pow(u32::try_from(attempts).unwrap_or(u32::MAX).min(20));
    initial.saturating_mul(factor).min(max)
}

pub(super) async fn run(engine: Arc<Engine>, shutdown: CancellationToken) {
    let concurrency = engine.settings.concurrency.max(1);
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut in_flight = JoinSet::new();
    // Claimed ahead and read, waiting for a permit: entries are claimed and their messages
    // read in batches, two queries for up to `concurrency` sends instead of two per send
    // (the claim is a write, and SQLite has one writer).
    let mut waiting: VecDeque<Claimed> = VecDeque::new();
    // Whether the outbox may hold due entries not claimed yet: set by a wake-up from the API
    // and every IDLE_POLL (retries fall due unannounced), cleared by a claim that comes back
    // short.
    let mut may_have_more = true;
    let mut last_claim = Instant::now();
    loop {
        while in_flight.try_join_next().is_some() {}
        if last_claim.elapsed() >= IDLE_POLL {
            may_have_more = true;
        }
        if may_have_more && waiting.len() <= concurrency / 2 {
            let wanted = concurrency - waiting.len();
            last_claim = Instant::now();
            match claim(&engine, wanted).await {
                Ok(claimed) => {
                    may_have_more = claimed.len() == wanted;
                    waiting.extend(claimed);
                }
                Err(error) => tracing::error!(%error, "the outbox could not be read"),
            }
        }
        while let Some(claimed) = waiting.pop_front() {
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                waiting.push_front(claimed);
                break;
            };
            let engine = engine.clone();
            in_flight.spawn(async move { send(&engine, claimed, permit).await });
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            // A send gives its permit back when its channel answers, before its task ends;
            // the permit is taken again at the top, for the next claimed entry.
            _ = permits.acquire(), if !waiting.is_empty() => {}
            _ = engine.handoff.woken(), if !may_have_more => may_have_more = true,
            _ = in_flight.join_next(), if !in_flight.is_empty() => {}
            _ = tokio::time::sleep(IDLE_POLL) => {}
        }
    }
    // What was claimed but not started is due again at once, for the next start or another
    // instance, instead of when its lease runs out.
    let unstarted: Vec<&str> = waiting
        .iter()
        .map(|claimed| claimed.entry.message_id.as_str())
        .collect();
    if let Err(error) = engine
        .store
        .release_claims_on(&engine.worker, &unstarted)
        .await
    {
        tracing::warn!(%error, "claims on unstarted sends could not be released; their leases will run out");
    }
    let grace = engine.settings.shutdown_grace;
    let finished = tokio::time::timeout(grace, async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            left = in_flight.len(),
            "sends still in flight at the end of the shutdown grace; they stay in the outbox"
        );
        in_flight.abort_all();
    }
}

/// A claimed outbox entry with what sending it needs, read when it was claimed.
struct Claimed {
    entry: OutboxEntry,
    message: ReadForSending,
}

/// A claimed message and its files; `None` when the message was deleted meanwhile, or why
/// they could not be read.
type ReadForSending = Result<Option<ReadyMessage>, String>;

/// Claims up to `wanted` due entries and reads their messages, one query each for them all.
async fn claim(engine: &Engine, wanted: usize) -> Result<Vec<Claimed>, StoreError> {
    let now = now_millis();
    let lease = now + engine.settings.claim_lease.as_millis() as Millis;
    let entries = engine
        .store
        .claim_outbox(&engine.worker, now, lease, wanted as i64)
        .await?;
    // What this process accepted a moment ago is handed over as stored; the rest is read
    // (no query at all when nothing is left).
    let mut ready = engine.handoff.take(&entries);
    let unread: Vec<&str> = entries
        .iter()
        .map(|entry| entry.message_id.as_str())
        .filter(|id| !ready.contains_key(*id))
        .collect();
    let mut read = engine
        .store
        .out_messages_with_files(&unread)
        .await
        .map_err(|error| format!("the store failed: {error}"));
    Ok(entries
        .into_iter()
        .map(|entry| Claimed {
            message: match ready.remove(&entry.message_id) {
                Some(message) => Ok(Some(message)),
                None => read
                    .as_mut()
                    .map(|found| found.remove(&entry.message_id).map(ReadyMessage::from))
                    .map_err(|reason| reason.clone()),
            },
            entry,
        })
        .collect())
}

/// One attempt at sending `claimed`, holding one of the worker's `permit`s while the channel
/// has it.
async fn send(engine: &Engine, claimed: Claimed, permit: OwnedSemaphorePermit) {
    let Claimed { entry, message } = claimed;
    let message_id = entry.message_id.clone();
    let outcome = attempt(engine, &entry, message, permit).await;
    match outcome {
        Attempt::Sent => {}
        Attempt::Retry(reason) => retry(engine, &entry, &reason).await,
        Attempt::Fail(reason) => {
            tracing::warn!(%message_id, %reason, "the channel refused the message for good");
            match engine
                .store
                .dead_letter(&message_id, &reason, engine.channel_effects(&entry.channel))
                .await
            {
                Ok(blobs) => engine.remove_blobs(blobs).await,
                Err(error) => {
                    tracing::error!(%message_id, %error, "a failed message could not be recorded")
                }
            }
        }
        Attempt::Expired => {
            let reason = "Levetiden for meldingen er utgått. Må sendes på nytt";
            match engine
                .store
                .finish_unsent(
                    &message_id,
                    ReceiptStatus::LevetidUtlopt,
                    reason,
                    engine.channel_effects(&entry.channel),
                )
                .await
            {
                Ok(blobs) => engine.remove_blobs(blobs).await,
                Err(error) => {
                    tracing::error!(%message_id, %error, "an expired message could not be recorded")
                }
            }
        }
    }
}

enum Attempt {
    Sent,
    Retry(String),
    Fail(String),
    Expired,
}

/// The permit goes back as soon as the channel has answered: recording the outcome is the
/// database's work, and the next send need not wait for it (a completion waits for the
/// writer's next batch).
async fn attempt(
    engine: &Engine,
    entry: &OutboxEntry,
    message: ReadForSending,
    permit: OwnedSemaphorePermit,
) -> Attempt {
    let ReadyMessage {
        message,
        files,
        in_hand,
    } = match message {
        Ok(Some(found)) => found,
        Ok(None) => return Attempt::Sent, // deleted meanwhile; nothing to send
        Err(reason) => return Attempt::Retry(reason),
    };
    if message.expiry.is_some_and(|expiry| expiry <= now_millis()) {
        return Attempt::Expired;
    }
    let Some(plugin) = engine.plugins.plugin(&entry.channel) else {
        return Attempt::Retry(format!("the channel {} is not loaded", entry.channel));
    };
    let value = match outgoing(&message, &files, in_hand, &engine.blobs) {
        Ok(value) => value,
        Err(reason) => return Attempt::Fail(reason),
    };
    let span =
        tracing::info_span!("send", message_id = %message.message_id, channel = %entry.channel);
    let _enter = span.enter();
    let answer = plugin.send(&value).await;
    drop(permit);
    match answer {
        Ok(Ok(sent)) => {
            let polls = plugin
                .description()
                .capabilities
                .contains(Capabilities::STATUSES);
            let statuses: Vec<StatusUpdate> = sent
                .statuses
                .iter()
                .map(|event| StatusUpdate {
                    status: receipt_status(event.status),
                    description: event.description.clone(),
                    raw_receipt: None,
                    at: i64::try_from(event.at).ok(),
                })
                .collect();
            let completed = CompletedSend {
                message_id: message.message_id.clone(),
                reference: sent.reference.clone(),
                statuses,
                polls_statuses: polls,
                queue: engine.queues(Some(&message.service_identifier)),
            };
            match engine.writes.write(SendWrite::Complete(completed)).await {
                Ok(blobs) => {
                    engine.remove_blobs(blobs).await;
                    tracing::info!(reference = %sent.reference, "sent");
                    Attempt::Sent
                }
                Err(error) => Attempt::Retry(format!("the store failed after sending: {error}")),
            }
        }
        Ok(Err(Failure::Retry(reason))) => Attempt::Retry(reason),
        Ok(Err(Failure::Unauthorized(reason))) => {
            tracing::error!(%reason, "the provider refused this organisation's credentials");
            Attempt::Retry(format!("unauthorized: {reason}"))
        }
        Ok(Err(Failure::Reject(reason))) => Attempt::Fail(reason),
        // A provider that answers 413 without saying its limit gives 0.
        Ok(Err(Failure::TooLarge(0))) => {
            Attempt::Fail("The message is larger than the channel's provider accepts".to_owned())
        }
        Ok(Err(Failure::TooLarge(limit))) => Attempt::Fail(format!(
            "The message is larger than the channel's limit of {limit} bytes"
        )),
        Err(error) => Attempt::Retry(error.to_string()),
    }
}

async fn retry(engine: &Engine, entry: &OutboxEntry, reason: &str) {
    let now = now_millis();
    let give_up_at = entry.created + engine.settings.retry_give_up_after.as_millis() as Millis;
    let delay = backoff(
        engine.settings.retry_initial,
        engine.settings.retry_max_interval,
        entry.attempts,
    );
    let next = now + delay.as_millis() as Millis;
    if next > give_up_at {
        let reason = format!(
            "Delivery failed after {} attempts - moved to dead letters: {reason}",
            entry.attempts + 1
        );
        tracing::warn!(message_id = %entry.message_id, %reason, "giving up");
        match engine
            .store
            .dead_letter(
                &entry.message_id,
                &reason,
                engine.channel_effects(&entry.channel),
            )
            .await
        {
            Ok(blobs) => engine.remove_blobs(blobs).await,
            Err(error) => {
                tracing::error!(message_id = %entry.message_id, %error, "a dead letter could not be recorded")
            }
        }
        return;
    }
    tracing::warn!(message_id = %entry.message_id, attempt = entry.attempts + 1, retry_in_s = delay.as_secs(), %reason, "sending failed; will retry");
    if let Err(error) = engine
        .store
        .reschedule(&entry.message_id, &engine.worker, next, reason)
        .await
    {
        tracing::error!(message_id = %entry.message_id, %error, "a retry could not be scheduled");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_triples_from_twenty_seconds_up_to_an_hour() {
        let delays: Vec<u64> = (0..6)
            .map(|attempts| {
                backoff(Duration::from_secs(20), Duration::from_secs(3600), attempts).as_secs()
            })
            .collect();
        assert_eq!(delays, [20, 60, 180, 540, 1620, 3600]);
    }
}
