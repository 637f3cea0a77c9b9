//! The outbox worker: claims due messages, hands each to its channel, and records the outcome.
//!
//! Outcomes follow the real integration point: success registers SENDT (and whatever the
//! provider already implied); `retry` and sandbox failures (trap, timeout, memory) try again
//! after 20 s, 60 s, 180 s … up to an hour between attempts, until the give-up time turns the
//! message into a dead letter with FEIL; `reject` and `too-large` register FEIL at once.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::convert::outgoing;
use super::handoff::{Handoff, ReadyMessage};
use super::send_writes::SendWrite;
use super::{Engine, receipt_status};
use crate::plugins::bindings::{Capabilities, Failure};
use crate::store::{
    CompletedSend, Millis, OutboxEntry, ReceiptStatus, StatusUpdate, Store, StoreError, now_millis,
};

/// How often the worker looks for due messages when nobody wakes it.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// The retry delay before attempt `attempts + 1`: initial × 3^attempts, at most `max`.
pub(crate) fn backoff(initial: Duration, max: Duration, attempts: i64) -> Duration {
    let factor = 3u32.saturating_pow(u32::try_from(attempts).unwrap_or(u32::MAX).min(20));
    initial.saturating_mul(factor).min(max)
}

pub(super) async fn run(engine: Arc<Engine>, shutdown: CancellationToken) {
    // One instance per SQLite database: its claims are its own, held here instead of leased
    // in the store (a lease is a write, and SQLite has one writer).
    let own_claims =
        (engine.store.dialect() == crate::store::Dialect::Sqlite).then(OwnClaims::default);
    let concurrency = engine.settings.concurrency.max(1);
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut in_flight = JoinSet::new();
    // Claimed ahead and read, waiting for a permit: entries are claimed and their messages
    // read in batches, at most two queries for up to `concurrency` sends instead of two per
    // send.
    let mut waiting: VecDeque<Claimed> = VecDeque::new();
    // Whether the store may hold due entries not claimed yet: set every IDLE_POLL (retries
    // fall due unannounced) and by a wake-up from the API (with own claims, only when the
    // handoff says the store holds what it does not), cleared by a claim that comes back short.
    let mut may_have_more = true;
    let mut last_claim = Instant::now();
    loop {
        while in_flight.try_join_next().is_some() {}
        if last_claim.elapsed() >= IDLE_POLL {
            may_have_more = true;
        }
        if let Some(claims) = &own_claims {
            may_have_more |= engine.handoff.take_store_only();
            if waiting.len() <= concurrency / 2 {
                let wanted = concurrency - waiting.len();
                let from_store = may_have_more;
                if from_store {
                    last_claim = Instant::now();
                }
                match claim_own(&engine.store, &engine.handoff, claims, wanted, from_store).await {
                    Ok((claimed, store_has_more)) => {
                        may_have_more = store_has_more;
                        waiting.extend(claimed);
                    }
                    Err(error) => tracing::error!(%error, "the outbox could not be read"),
                }
            }
        } else if may_have_more && waiting.len() <= concurrency / 2 {
            let wanted = concurrency - waiting.len();
            last_claim = Instant::now();
            match claim_leased(&engine, wanted).await {
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
            // A worker with its own claims looks at the handoff at the top, and at the store
            // when the handoff says so.
            _ = engine.handoff.woken(), if own_claims.is_some() || !may_have_more => {
                may_have_more |= own_claims.is_none();
            }
            _ = in_flight.join_next(), if !in_flight.is_empty() => {}
            _ = tokio::time::sleep(IDLE_POLL) => {}
        }
    }
    // What was claimed but not started is due again at once, for the next start or another
    // instance, instead of when its lease runs out; own claims end with this process.
    let unstarted: Vec<&str> = waiting
        .iter()
        .map(|claimed| claimed.entry.message_id.as_str())
        .collect();
    if own_claims.is_none()
        && let Err(error) = engine
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
    /// The claim, when it is this process's own; it ends once the attempt's outcome is
    /// recorded, or a lease later when it could not be ([`OwnClaim::keep_for`]).
    own: Option<OwnClaim>,
}

/// The messages a worker that is its database's one instance has claimed: in memory, for the
/// store holds no lease of theirs. Every entry due in the store and not here is free.
#[derive(Clone, Default)]
struct OwnClaims(Arc<std::sync::Mutex<HashSet<String>>>);

impl OwnClaims {
    fn ids(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn holds(&self, message_id: &str) -> bool {
        self.ids().contains(message_id)
    }

    /// Claims `message_id`, which no claim held may already have.
    fn claim(&self, message_id: &str) -> OwnClaim {
        self.ids().insert(message_id.to_owned());
        OwnClaim {
            claims: self.clone(),
            message_id: message_id.to_owned(),
        }
    }
}

/// One of [`OwnClaims`], released when dropped.
struct OwnClaim {
    claims: OwnClaims,
    message_id: String,
}

impl OwnClaim {
    /// Keeps the claim for `lease`, as a lease in the store would be kept: the attempt's
    /// outcome could not be recorded, so its entry is still due as it was, and claiming it
    /// again at once would repeat, every round, what the provider may have taken already.
    fn keep_for(self, lease: Duration) {
        tokio::spawn(async move {
            tokio::time::sleep(lease).await;
            drop(self);
        });
    }
}

impl Drop for OwnClaim {
    fn drop(&mut self) {
        self.claims.ids().remove(&self.message_id);
    }
}

/// A claimed message and its files; `None` when the message was deleted meanwhile, or why
/// they could not be read.
type ReadForSending = Result<Option<ReadyMessage>, String>;

/// Claims up to `wanted` due entries in the store, each for the claim lease, and reads their
/// messages, one query each for them all.
async fn claim_leased(engine: &Engine, wanted: usize) -> Result<Vec<Claimed>, StoreError> {
    let now = now_millis();
    let lease = now + engine.settings.claim_lease.as_millis() as Millis;
    let entries = engine
        .store
        .claim_outbox(&engine.worker, now, lease, wanted as i64)
        .await?;
    Ok(read_claimed(&engine.store, &engine.handoff, entries, || None).await)
}

/// Claims up to `wanted` messages for a worker whose claims are its own: when `from_store`,
/// first the due entries, soonest due first (what the handoff holds of them comes from there),
/// then those handed over, oldest first, without a query. Also tells whether the store may
/// have due entries it did not give (false when it was not read).
///
/// The store is read while its writer is held, so every message committed by then has been
/// handed over (see [`super::handoff`]): one the store gives is taken out of the handoff if it
/// is there, and none can arrive there after it was read.
async fn claim_own(
    store: &Store,
    handoff: &Handoff,
    claims: &OwnClaims,
    wanted: usize,
    from_store: bool,
) -> Result<(Vec<Claimed>, bool), StoreError> {
    let mut claimed = Vec::new();
    let mut store_has_more = false;
    if from_store {
        // Due entries claimed already are among the first: read past them.
        let limit = wanted + claims.ids().len();
        let mut taken = 0;
        let (entries, full) = store
            .due_outbox(now_millis(), limit, |entry| {
                let free = taken < wanted && !claims.holds(&entry.message_id);
                taken += usize::from(free);
                free.then(|| (claims.claim(&entry.message_id), entry))
            })
            .await?;
        store_has_more = full;
        let (own, entries): (Vec<OwnClaim>, Vec<OutboxEntry>) = entries.into_iter().unzip();
        let mut own = own.into_iter();
        claimed = read_claimed(store, handoff, entries, || own.next()).await;
    }
    let left = wanted - claimed.len();
    claimed.extend(
        handoff
            .take_oldest(left, |id| claims.holds(id))
            .into_iter()
            .map(|ready| {
                let stored = &ready.message;
                Claimed {
                    // Handed over at its accept: it has had no attempt.
                    entry: OutboxEntry {
                        message_id: stored.message_id.clone(),
                        channel: stored.channel.clone(),
                        attempts: 0,
                        created: stored.created,
                    },
                    own: Some(claims.claim(&stored.message_id)),
                    message: Ok(Some(ready)),
                }
            }),
    );
    Ok((claimed, store_has_more))
}

/// The messages of claimed `entries`, with the claim `own` gives each in turn.
async fn read_claimed(
    store: &Store,
    handoff: &Handoff,
    entries: Vec<OutboxEntry>,
    mut own: impl FnMut() -> Option<OwnClaim>,
) -> Vec<Claimed> {
    // What this process accepted a moment ago is handed over as stored; the rest is read
    // (no query at all when nothing is left).
    let mut ready = handoff.take(&entries);
    let unread: Vec<&str> = entries
        .iter()
        .map(|entry| entry.message_id.as_str())
        .filter(|id| !ready.contains_key(*id))
        .collect();
    let mut read = store
        .out_messages_with_files(&unread)
        .await
        .map_err(|error| format!("the store failed: {error}"));
    entries
        .into_iter()
        .map(|entry| Claimed {
            own: own(),
            message: match ready.remove(&entry.message_id) {
                Some(message) => Ok(Some(message)),
                None => read
                    .as_mut()
                    .map(|found| found.remove(&entry.message_id).map(ReadyMessage::from))
                    .map_err(|reason| reason.clone()),
            },
            entry,
        })
        .collect()
}

/// One attempt at sending `claimed`, holding one of the worker's `permit`s while the channel
/// has it.
async fn send(engine: &Engine, claimed: Claimed, permit: OwnedSemaphorePermit) {
    let Claimed {
        entry,
        message,
        own,
    } = claimed;
    let message_id = entry.message_id.clone();
    let outcome = attempt(engine, &entry, message, permit).await;
    let recorded = match outcome {
        Attempt::Sent => true,
        Attempt::Retry(reason) => retry(engine, &entry, own.is_none(), &reason).await,
        Attempt::Fail(reason) => {
            tracing::warn!(%message_id, %reason, "the channel refused the message for good");
            let ended = engine
                .store
                .dead_letter(&message_id, &reason, engine.channel_effects(&entry.channel))
                .await;
            record_end(engine, &message_id, ended, "a failed message").await
        }
        Attempt::Expired => {
            let reason = "Levetiden for meldingen er utgått. Må sendes på nytt";
            let ended = engine
                .store
                .finish_unsent(
                    &message_id,
                    ReceiptStatus::LevetidUtlopt,
                    reason,
                    engine.channel_effects(&entry.channel),
                )
                .await;
            record_end(engine, &message_id, ended, "an expired message").await
        }
    };
    // An own claim ends here, with the outcome recorded; one whose outcome is not is kept as
    // long as a lease would be.
    if let Some(claim) = own
        && !recorded
    {
        claim.keep_for(engine.settings.claim_lease);
    }
}

/// Whether a message's end (`what`: a dead letter, an expiry) was recorded; once it is, the
/// blobs it leaves are removed.
async fn record_end(
    engine: &Engine,
    message_id: &str,
    ended: Result<Vec<String>, StoreError>,
    what: &str,
) -> bool {
    match ended {
        Ok(blobs) => {
            engine.remove_blobs(blobs).await;
            true
        }
        Err(error) => {
            tracing::error!(%message_id, %error, "{what} could not be recorded");
            false
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

/// Schedules the next attempt at `entry`, or gives up on it; whether that was recorded. A
/// `leased` entry is this worker's by its lease in the store, any other by its own claim.
async fn retry(engine: &Engine, entry: &OutboxEntry, leased: bool, reason: &str) -> bool {
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
        let ended = engine
            .store
            .dead_letter(
                &entry.message_id,
                &reason,
                engine.channel_effects(&entry.channel),
            )
            .await;
        return record_end(engine, &entry.message_id, ended, "a dead letter").await;
    }
    tracing::warn!(message_id = %entry.message_id, attempt = entry.attempts + 1, retry_in_s = delay.as_secs(), %reason, "sending failed; will retry");
    let worker = leased.then_some(engine.worker.as_str());
    match engine
        .store
        .reschedule(&entry.message_id, worker, next, reason)
        .await
    {
        Ok(true) => true,
        Ok(false) => {
            tracing::warn!(message_id = %entry.message_id, "the retry was not recorded: the entry is gone or leased to another worker");
            false
        }
        Err(error) => {
            tracing::error!(message_id = %entry.message_id, %error, "a retry could not be scheduled");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::handoff::tests::message;
    use crate::store::{NewConversation, QueuedMessage};

    /// `message_id` queued for sending, as `store` keeps it.
    async fn queued(store: &Store, message_id: &str) -> ReadyMessage {
        let message = message(message_id, now_millis()).message;
        let queued = QueuedMessage {
            conversation: NewConversation {
                conversation_id: message.conversation_id.clone(),
                message_id: message_id.to_owned(),
                sender: None,
                sender_identifier: None,
                receiver: None,
                receiver_identifier: None,
                process_identifier: None,
                document_identifier: None,
                service_identifier: Some(message.service_identifier.clone()),
                channel: Some(message.channel.clone()),
                expiry: None,
            },
            message,
            files: Vec::new(),
            reference: None,
            title: None,
        };
        let (stored, _) = store.accept_and_complete(&[&queued], &[]).await.unwrap();
        stored.into_iter().next().unwrap().unwrap();
        queued.as_stored().into()
    }

    fn ids(claimed: &[Claimed]) -> Vec<&str> {
        claimed
            .iter()
            .map(|c| c.entry.message_id.as_str())
            .collect()
    }

    #[tokio::test]
    async fn own_claims_take_the_store_then_the_handoff_and_never_one_twice() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ip.db").display());
        let store = Store::open(&url).await.unwrap();
        let handoff = Handoff::default();
        let claims = OwnClaims::default();
        // Due one after the other; `a` is in the store alone.
        let mut stored = Vec::new();
        for id in ["a", "b", "c"] {
            stored.push(queued(&store, id).await);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        handoff.hand_over(stored[1..].iter().cloned());

        let (first, more) = claim_own(&store, &handoff, &claims, 2, true).await.unwrap();
        assert_eq!(
            ids(&first),
            ["a", "b"],
            "the soonest due, from the store first"
        );
        assert!(more, "the read came back full");
        assert_eq!(
            first[0].message.as_ref().unwrap().as_ref().unwrap().message,
            stored[0].message
        );
        let (second, more) = claim_own(&store, &handoff, &claims, 5, false)
            .await
            .unwrap();
        assert_eq!(
            ids(&second),
            ["c"],
            "handed over, b taken out of the handoff already"
        );
        assert!(!more, "the store was not read");
        let (none, more) = claim_own(&store, &handoff, &claims, 5, true).await.unwrap();
        assert!(none.is_empty(), "all claimed: {:?}", ids(&none));
        assert!(!more, "the store had no more");

        // Handed over late, it is claimed already: dropped, not sent again.
        handoff.hand_over([stored[0].clone()]);
        let (none, _) = claim_own(&store, &handoff, &claims, 5, true).await.unwrap();
        assert!(none.is_empty(), "{:?}", ids(&none));
        assert!(handoff.take_oldest(5, |_| false).is_empty(), "dropped");

        // A claim ends with its attempt; the entries, not sent, are due again.
        drop(first);
        let (again, _) = claim_own(&store, &handoff, &claims, 5, true).await.unwrap();
        assert_eq!(ids(&again), ["a", "b"]);
        // The store holds no lease of any of them.
        let now = now_millis();
        let leased = store
            .claim_outbox("another", now, now + 1000, 5)
            .await
            .unwrap();
        assert_eq!(leased.len(), 3);
        store.close().await;
    }

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
