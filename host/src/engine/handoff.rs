//! From the API to the outbox worker of the same process: a wake-up when a message is queued,
//! and the whole messages it has just stored, so that sending them does not read back what was
//! written a moment ago, nor unseal the small files its rows hold: the uploads they were sealed
//! from come along.
//!
//! The store stays the one truth. A message is handed over only once its rows are committed,
//! exactly as they were written (on SQLite before the writer is let go, so that whatever reads
//! the outbox while holding the writer never finds a message in the store and not yet here).
//!
//! How the worker uses it depends on where its claims are:
//! - On PostgreSQL, where a claim is a lease in the store, the worker still claims each message
//!   there before it sends; the handoff only spares the read that follows the claim. A message
//!   taken out must match its claimed outbox entry (the time it entered the outbox and its
//!   channel), so one whose id was freed and taken again by a later message is never sent in
//!   its place.
//! - On SQLite, whose one instance keeps its claims in memory, the worker takes the messages
//!   held here oldest first, without a query, and reads the store only when told that it holds
//!   what is not here ([`Handoff::take_store_only`]: queued without a hand-over, fallen out,
//!   too large to hold, or left by an earlier run). A message deleted before it is sent is
//!   forgotten here first (by the API and the lifetime sweep), since nothing taken from here
//!   is looked up in the store: it is not sent after its delete, nor in place of a later
//!   message given its id.
//!
//! What the worker does not find here (another instance accepted it, on PostgreSQL a claim
//! came between its commit and its hand-over, this process restarted, it fell out, it was too
//! large to hold) it reads from the store as before. The handoff holds at most
//! [`READY_MESSAGES`] messages and [`READY_BYTES`]; beyond that the oldest fall out, so a
//! message that is never claimed here (claimed by another instance, or ended by the lifetime
//! sweep) stays only until newer ones push it out.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

use super::convert::InHand;
use crate::store::{FileContent, MessageFile, OutMessage, OutboxEntry};

/// The most messages held ready. A message is claimed within moments of its accept unless the
/// outbox has a backlog, and then the store has it.
pub const READY_MESSAGES: usize = 256;

/// The most bytes held ready (SBDs, service records and files kept in their rows, and what
/// the API had in hand of them); a message of more than a sixteenth of it is held without
/// what was in hand, or, larger still, not at all.
pub const READY_BYTES: usize = 4 << 20;

/// A message with its files, as the store holds it, and what the API had in hand of it.
#[derive(Clone, Debug)]
pub struct ReadyMessage {
    /// The message's row.
    pub message: OutMessage,
    /// Its files' rows, in their order.
    pub files: Vec<MessageFile>,
    /// What the API had in hand when it handed the message over: its files' bytes (a small
    /// file's row holds it sealed, and the upload it was sealed from is still in memory), its
    /// registry record and its parties. `None` when read from the store.
    pub in_hand: Option<InHand>,
}

impl From<(OutMessage, Vec<MessageFile>)> for ReadyMessage {
    /// A message read from the store.
    fn from((message, files): (OutMessage, Vec<MessageFile>)) -> Self {
        Self {
            message,
            files,
            in_hand: None,
        }
    }
}

/// The shared way from the API to the outbox worker.
pub struct Handoff {
    wake: Notify,
    ready: Mutex<Ready>,
    /// Whether the outbox may have an entry of this process's that is not held here: queued
    /// without a hand-over, or pushed out or left out of it. Set at the start, for what an
    /// earlier run left.
    store_only: AtomicBool,
}

impl Default for Handoff {
    fn default() -> Self {
        Self {
            wake: Notify::new(),
            ready: Mutex::default(),
            store_only: AtomicBool::new(true),
        }
    }
}

#[derive(Default)]
struct Ready {
    by_id: HashMap<String, ReadyMessage>,
    /// Message ids oldest first; an id taken out stays until it reaches the front or the
    /// queue is compacted.
    order: VecDeque<String>,
    /// The bytes of the messages in `by_id`.
    bytes: usize,
}

impl Ready {
    fn remove(&mut self, message_id: &str) -> Option<ReadyMessage> {
        let message = self.by_id.remove(message_id)?;
        self.bytes -= bytes_of(&message);
        Some(message)
    }

    /// Drops ids of messages no longer held from the front of the queue.
    fn trim(&mut self) {
        while self
            .order
            .front()
            .is_some_and(|id| !self.by_id.contains_key(id))
        {
            self.order.pop_front();
        }
    }
}

/// The bytes a held message keeps in memory: its rows, and what it has in hand (the record
/// again, and the uploads of the files its rows hold; a larger file's blob is on disk).
fn bytes_of(ready: &ReadyMessage) -> usize {
    let rows: usize = ready
        .files
        .iter()
        .map(|file| match &file.content {
            FileContent::Inline(sealed) => sealed.len(),
            FileContent::Blob(id) => id.len(),
        })
        .sum();
    let in_hand = ready.in_hand.as_ref().map_or(0, |in_hand| {
        let uploads: usize = in_hand
            .contents
            .iter()
            .zip(&ready.files)
            .map(|(blob, file)| match file.content {
                FileContent::Inline(_) => usize::try_from(blob.size()).unwrap_or(usize::MAX),
                FileContent::Blob(_) => 0,
            })
            .sum();
        ready.message.service_record.len() + uploads
    });
    ready.message.sbd.len() + ready.message.service_record.len() + rows + in_hand
}

impl Handoff {
    /// The messages held; a panic elsewhere while holding them leaves them consistent, since
    /// every change is made whole under the lock.
    fn ready(&self) -> std::sync::MutexGuard<'_, Ready> {
        self.ready
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Tells the worker that the outbox has a new entry, handed over.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Tells the worker that the outbox has a new entry that only the store holds.
    pub fn wake_for_store(&self) {
        self.store_only.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Whether the outbox may have entries that only the store holds, since this was last
    /// asked.
    pub fn take_store_only(&self) -> bool {
        self.store_only.swap(false, Ordering::AcqRel)
    }

    /// Waits for [`Handoff::wake`] or [`Handoff::wake_for_store`].
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Hands over messages whose rows have just been committed, exactly as written.
    pub fn hand_over(&self, messages: impl IntoIterator<Item = ReadyMessage>) {
        let mut ready = self.ready();
        for mut message in messages {
            let mut bytes = bytes_of(&message);
            if bytes > READY_BYTES / 16 && message.in_hand.is_some() {
                message.in_hand = None;
                bytes = bytes_of(&message);
            }
            if bytes > READY_BYTES / 16 {
                self.store_only.store(true, Ordering::Release);
                continue;
            }
            while ready.by_id.len() >= READY_MESSAGES || ready.bytes + bytes > READY_BYTES {
                let Some(oldest) = ready.order.pop_front() else {
                    break;
                };
                if ready.remove(&oldest).is_some() {
                    self.store_only.store(true, Ordering::Release);
                }
            }
            let id = message.message.message_id.clone();
            ready.order.push_back(id.clone());
            ready.bytes += bytes;
            if let Some(replaced) = ready.by_id.insert(id, message) {
                ready.bytes -= bytes_of(&replaced);
            }
        }
        if ready.order.len() > 2 * READY_MESSAGES {
            let Ready { by_id, order, .. } = &mut *ready;
            order.retain(|id| by_id.contains_key(id));
        }
    }

    /// Takes out the messages of `claimed` entries that are held and match their entry; the
    /// rest must be read from the store.
    pub fn take(&self, claimed: &[OutboxEntry]) -> HashMap<String, ReadyMessage> {
        let mut ready = self.ready();
        let taken = claimed
            .iter()
            .filter_map(|entry| {
                let message = ready.remove(&entry.message_id)?;
                let stored = &message.message;
                (stored.created == entry.created && stored.channel == entry.channel)
                    .then(|| (entry.message_id.clone(), message))
            })
            .collect();
        ready.trim();
        taken
    }

    /// Takes out up to `wanted` of the messages held, oldest first, for a worker whose claims
    /// are its own (one instance per database); one that `claimed` already has is dropped.
    pub fn take_oldest(&self, wanted: usize, claimed: impl Fn(&str) -> bool) -> Vec<ReadyMessage> {
        let mut ready = self.ready();
        let mut taken = Vec::new();
        while taken.len() < wanted {
            let Some(id) = ready.order.pop_front() else {
                break;
            };
            if let Some(message) = ready.remove(&id)
                && !claimed(&id)
            {
                taken.push(message);
            }
        }
        taken
    }

    /// Drops `message_id`, deleted before it was sent.
    pub fn forget(&self, message_id: &str) {
        let mut ready = self.ready();
        ready.remove(message_id);
        ready.trim();
    }

    /// How many messages are held, for tests.
    #[cfg(test)]
    fn held(&self) -> (usize, usize, usize) {
        let ready = self.ready();
        (ready.by_id.len(), ready.order.len(), ready.bytes)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A message with no files, on the loopback channel, created at `created`.
    pub(in crate::engine) fn message(id: &str, created: i64) -> ReadyMessage {
        let message = OutMessage {
            message_id: id.to_owned(),
            conversation_id: "c".to_owned(),
            process_identifier: "p".to_owned(),
            document_type: "d".to_owned(),
            sender_identifier: "s".to_owned(),
            receiver_identifier: None,
            service_identifier: "DPO".to_owned(),
            channel: "loopback".to_owned(),
            sbd: "{}".to_owned(),
            service_record: "{}".to_owned(),
            expiry: None,
            queued: true,
            created,
        };
        (message, Vec::new()).into()
    }

    /// A file of `bytes` its row holds.
    fn inline_file(message_id: &str, bytes: usize) -> MessageFile {
        MessageFile {
            message_id: message_id.to_owned(),
            ordinal: 0,
            filename: "a.pdf".to_owned(),
            title: None,
            mime_type: "application/pdf".to_owned(),
            primary_document: true,
            size: bytes as i64,
            content: FileContent::Inline(vec![0; bytes]),
        }
    }

    fn claimed(id: &str, created: i64) -> OutboxEntry {
        OutboxEntry {
            message_id: id.to_owned(),
            channel: "loopback".to_owned(),
            attempts: 0,
            created,
        }
    }

    #[test]
    fn a_message_is_taken_out_once_and_only_if_it_was_handed_over() {
        let handoff = Handoff::default();
        handoff.hand_over([message("a", 1), message("b", 1)]);
        let taken = handoff.take(&[claimed("b", 1), claimed("x", 1)]);
        assert_eq!(taken.keys().collect::<Vec<_>>(), ["b"]);
        assert_eq!(taken["b"].message, message("b", 1).message);
        assert!(
            handoff.take(&[claimed("b", 1)]).is_empty(),
            "taken out once"
        );
        assert_eq!(handoff.take(&[claimed("a", 1)]).len(), 1);
        assert_eq!(handoff.held(), (0, 0, 0), "nothing left behind");
    }

    #[test]
    fn the_oldest_are_taken_first_and_one_claimed_already_is_dropped() {
        let handoff = Handoff::default();
        handoff.hand_over(["a", "b", "c", "d"].map(|id| message(id, 1)));
        let ids = |taken: Vec<ReadyMessage>| -> Vec<String> {
            taken.into_iter().map(|m| m.message.message_id).collect()
        };
        assert_eq!(ids(handoff.take_oldest(2, |_| false)), ["a", "b"]);
        assert_eq!(
            ids(handoff.take_oldest(5, |id| id == "c")),
            ["d"],
            "c was claimed already"
        );
        assert_eq!(handoff.held(), (0, 0, 0), "nothing left behind");
    }

    #[test]
    fn the_store_is_named_for_what_is_queued_without_a_hand_over_or_pushed_out() {
        let handoff = Handoff::default();
        assert!(
            handoff.take_store_only(),
            "at the start, for an earlier run's"
        );
        assert!(!handoff.take_store_only(), "told once");
        handoff.hand_over([message("a", 1)]);
        handoff.wake();
        assert!(!handoff.take_store_only(), "handed over");
        handoff.wake_for_store();
        assert!(handoff.take_store_only(), "queued without a hand-over");
        handoff.hand_over((0..READY_MESSAGES).map(|n| message(&n.to_string(), 1)));
        assert!(handoff.take_store_only(), "a pushed out");
        let large = ReadyMessage::from((
            message("large", 1).message,
            vec![inline_file("large", READY_BYTES / 16 + 1)],
        ));
        handoff.hand_over([large]);
        assert!(handoff.take_store_only(), "too large to hold");
    }

    #[test]
    fn a_message_whose_id_was_taken_again_is_not_sent_in_the_new_ones_place() {
        let handoff = Handoff::default();
        handoff.hand_over([message("a", 1), message("b", 1)]);
        // `a` was deleted and its id used again by a message queued later; `b`'s channel changed.
        let mut other_channel = claimed("b", 1);
        other_channel.channel = "dpo".to_owned();
        assert!(handoff.take(&[claimed("a", 2), other_channel]).is_empty());
        assert_eq!(handoff.held(), (0, 0, 0), "the stale ones are dropped");
        handoff.hand_over([message("c", 1)]);
        handoff.forget("c");
        assert!(handoff.take(&[claimed("c", 1)]).is_empty(), "forgotten");
    }

    #[test]
    fn the_oldest_fall_out_and_ids_taken_out_of_order_do_not_pile_up() {
        let handoff = Handoff::default();
        let ids: Vec<String> = (0..READY_MESSAGES + 10).map(|n| n.to_string()).collect();
        handoff.hand_over(ids.iter().map(|id| message(id, 1)));
        assert_eq!(handoff.held().0, READY_MESSAGES);
        assert_eq!(handoff.held().1, READY_MESSAGES);
        assert!(
            handoff.take(&[claimed("0", 1), claimed("9", 1)]).is_empty(),
            "the ten oldest fell out"
        );
        assert_eq!(handoff.take(&[claimed("10", 1)]).len(), 1);
        // One message is never taken (claimed elsewhere); everything after it is taken out as
        // it comes, for many times the bound.
        handoff.hand_over([message("stuck", 1)]);
        for n in 0..10 * READY_MESSAGES {
            let id = format!("m{n}");
            handoff.hand_over([message(&id, 1)]);
            assert_eq!(handoff.take(&[claimed(&id, 1)]).len(), 1);
        }
        let (held, order, _) = handoff.held();
        assert!(held <= READY_MESSAGES, "{held} held");
        assert!(order <= 2 * READY_MESSAGES + 1, "{order} ids queued");
    }

    #[test]
    fn the_bytes_held_are_bounded_and_a_large_message_is_left_to_the_store() {
        let handoff = Handoff::default();
        let with_file = |id: &str, bytes: usize| {
            ReadyMessage::from((message(id, 1).message, vec![inline_file(id, bytes)]))
        };
        handoff.hand_over([with_file("large", READY_BYTES / 16 + 1)]);
        assert_eq!(handoff.held(), (0, 0, 0), "too large to hold");
        let each = READY_BYTES / 16;
        handoff.hand_over((0..20).map(|n| with_file(&n.to_string(), each - 4)));
        let (held, _, bytes) = handoff.held();
        assert!(bytes <= READY_BYTES, "{bytes} bytes held");
        assert_eq!(held, 16, "the four oldest fell out");
        assert!(handoff.take(&[claimed("3", 1)]).is_empty());
        assert_eq!(handoff.take(&[claimed("4", 1)]).len(), 1);
        assert_eq!(
            handoff.held().2,
            bytes - each,
            "what is taken out is no longer counted"
        );
    }

    #[test]
    fn the_uploads_in_hand_count_toward_the_bytes_held() {
        use crate::blobs::{Blob, BlobStore, FileBlobStore};
        use crate::registry::ServiceRecord;
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let blobs: Arc<dyn BlobStore> = Arc::new(FileBlobStore::open(dir.path()).unwrap());
        // A row holding `bytes` sealed, and the upload of as many bytes in hand.
        let in_hand = |id: &str, bytes: usize| ReadyMessage {
            message: message(id, 1).message,
            files: vec![inline_file(id, bytes)],
            in_hand: Some(InHand {
                contents: vec![Blob::from_bytes(&blobs, &vec![1; bytes]).unwrap()],
                record: ServiceRecord::default(),
                sender_and_receiver: (None, None),
            }),
        };
        let each = READY_BYTES / 16;
        let handoff = Handoff::default();
        handoff.hand_over([in_hand("large", each / 2 + 1)]);
        let large = handoff.take(&[claimed("large", 1)]);
        assert!(
            large["large"].in_hand.is_none(),
            "too large to hold with its upload, held without"
        );
        assert_eq!(handoff.held(), (0, 0, 0));
        handoff.hand_over((0..20).map(|n| in_hand(&n.to_string(), each / 2 - 4)));
        let (held, _, bytes) = handoff.held();
        assert!(bytes <= READY_BYTES, "{bytes} bytes held");
        assert_eq!(held, 16, "the four oldest fell out");
        let taken = handoff.take(&[claimed("19", 1)]);
        let in_hand = taken["19"].in_hand.as_ref().unwrap();
        assert_eq!(
            in_hand.contents[0].read_at(0, 2).unwrap(),
            [1, 1],
            "handed over as uploaded"
        );
    }
}
