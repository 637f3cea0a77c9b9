//! From the API to the outbox worker of the same process: a wake-up when a message is queued,
//! and the whole messages it has just stored, so that sending them does not read back what was
//! written a moment ago.
//!
//! The store stays the one truth. A message is handed over only once its rows are committed,
//! exactly as they were written, and the worker still claims it in the store before it sends;
//! the handoff only spares the read that follows the claim. What the worker claims and finds
//! here it takes out; what it does not find (another instance accepted it, this process
//! restarted, or it fell out) it reads from the store as before. It holds at most
//! [`READY_MESSAGES`]; beyond that the oldest fall out, so a message that is never claimed here
//! (deleted before its send, or claimed by another instance) costs nothing lasting.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use tokio::sync::Notify;

use crate::store::{MessageFile, OutMessage};

/// The most messages held ready. A message is claimed within moments of its accept unless the
/// outbox has a backlog, and then the store has it.
pub const READY_MESSAGES: usize = 256;

/// A message with its files, as the store holds it.
pub type ReadyMessage = (OutMessage, Vec<MessageFile>);

/// The shared way from the API to the outbox worker.
#[derive(Default)]
pub struct Handoff {
    wake: Notify,
    ready: Mutex<Ready>,
}

#[derive(Default)]
struct Ready {
    by_id: HashMap<String, ReadyMessage>,
    /// Message ids oldest first; an id taken out stays until it reaches the front or the
    /// queue is compacted.
    order: VecDeque<String>,
}

impl Handoff {
    /// Tells the worker that the outbox has a new entry.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Waits for [`Handoff::wake`].
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Hands over messages whose rows have just been committed, exactly as written.
    pub fn hand_over(&self, messages: impl IntoIterator<Item = ReadyMessage>) {
        let mut ready = self
            .ready
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Ready { by_id, order } = &mut *ready;
        for message in messages {
            while by_id.len() >= READY_MESSAGES {
                match order.pop_front() {
                    Some(oldest) => by_id.remove(&oldest),
                    None => break,
                };
            }
            order.push_back(message.0.message_id.clone());
            by_id.insert(message.0.message_id.clone(), message);
        }
        if order.len() > 2 * READY_MESSAGES {
            order.retain(|id| by_id.contains_key(id));
        }
    }

    /// Takes out those of `message_ids` that are held: the rest must be read from the store.
    pub fn take(&self, message_ids: &[&str]) -> HashMap<String, ReadyMessage> {
        let mut ready = self
            .ready
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Ready { by_id, order } = &mut *ready;
        let taken: HashMap<String, ReadyMessage> = message_ids
            .iter()
            .filter_map(|id| by_id.remove_entry(*id))
            .collect();
        while order.front().is_some_and(|id| !by_id.contains_key(id)) {
            order.pop_front();
        }
        taken
    }

    /// How many messages are held, for tests.
    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        let ready = self.ready.lock().unwrap();
        (ready.by_id.len(), ready.order.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str) -> ReadyMessage {
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
            created: 0,
        };
        (message, Vec::new())
    }

    #[test]
    fn a_message_is_taken_out_once_and_only_if_it_was_handed_over() {
        let handoff = Handoff::default();
        handoff.hand_over([message("a"), message("b")]);
        let taken = handoff.take(&["b", "x"]);
        assert_eq!(taken.keys().collect::<Vec<_>>(), ["b"]);
        assert_eq!(taken["b"], message("b"));
        assert!(handoff.take(&["b"]).is_empty(), "taken out once");
        assert_eq!(handoff.take(&["a"]).len(), 1);
        assert_eq!(handoff.held(), (0, 0), "nothing left behind");
    }

    #[test]
    fn the_oldest_fall_out_and_ids_taken_out_of_order_do_not_pile_up() {
        let handoff = Handoff::default();
        let ids: Vec<String> = (0..READY_MESSAGES + 10).map(|n| n.to_string()).collect();
        handoff.hand_over(ids.iter().map(|id| message(id)));
        assert_eq!(handoff.held(), (READY_MESSAGES, READY_MESSAGES));
        assert!(
            handoff.take(&["0", "9"]).is_empty(),
            "the ten oldest fell out"
        );
        assert_eq!(handoff.take(&["10"]).len(), 1);
        // One message is never taken (deleted before its send); everything after it is taken
        // out as it comes, for many times the bound.
        handoff.hand_over([message("stuck")]);
        for n in 0..10 * READY_MESSAGES {
            let id = format!("m{n}");
            handoff.hand_over([message(&id)]);
            assert_eq!(handoff.take(&[id.as_str()]).len(), 1);
        }
        let (held, order) = handoff.held();
        assert!(held <= READY_MESSAGES, "{held} held");
        assert!(order <= 2 * READY_MESSAGES + 1, "{order} ids queued");
    }
}
