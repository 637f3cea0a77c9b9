//! The send path's writes, accepted messages and completed sends, in one transaction per batch.
//!
//! Both are written for every message, and both touch the same pages: the newest
//! conversations, statuses and outbox rows. Written as separate batches they would take
//! SQLite's one writing connection in turn, each with its own BEGIN, COMMIT and WAL pages; one
//! writer for both pays those once and writes the shared pages once.

use std::sync::Arc;

use super::convert::InHand;
use super::handoff::{Handoff, ReadyMessage};
use crate::blobs::Blob;
use crate::store::{
    BatchWrite, CompletedSend, FileContent, GroupCommit, MessageFile, OutMessage, QueuedMessage,
    Store, StoreError, no_outcome,
};

/// A whole message a multipart send brings, with the blobs of its files.
pub struct Accepted {
    /// The message.
    pub(crate) queued: QueuedMessage,
    /// What the API has in hand of it, handed over with the message; the blobs its files'
    /// rows name are among it, kept once its rows are committed.
    pub(crate) in_hand: InHand,
}

/// One write of the send path.
pub enum SendWrite {
    /// A message the API accepted; its outcome has no blobs.
    Accept(Box<Accepted>),
    /// A send the provider accepted; its outcome is the blobs to remove.
    Complete(CompletedSend),
}

/// Keeps the blobs that `files`' committed rows name, of `contents` (each file's bytes, in
/// their order); the uploads a row's sealed copy was made from stay temporary.
pub fn persist_named_blobs(files: &[MessageFile], contents: &[Blob]) {
    for (file, blob) in files.iter().zip(contents) {
        if matches!(file.content, FileContent::Blob(_)) {
            blob.persist();
        }
    }
}

/// The writer both the API and the outbox worker hand their writes to.
pub type SendWriter = GroupCommit<SendWrites>;

/// Accepted messages and completed sends stored together (see [`GroupCommit`]). Each accepted
/// message's blobs are kept once its rows are committed, whether or not its caller still waits,
/// and the message, as stored and with what the API had in hand of it, is handed to the
/// outbox worker, which is woken once a batch.
pub struct SendWrites {
    /// Where they are stored.
    pub store: Store,
    /// Where the stored messages are handed over.
    pub handoff: Arc<Handoff>,
}

impl BatchWrite for SendWrites {
    type Item = SendWrite;
    type Output = Vec<String>;

    async fn write(
        &self,
        writes: &[SendWrite],
    ) -> Result<Vec<Result<Vec<String>, StoreError>>, StoreError> {
        let mut accepted = Vec::new();
        let mut completed = Vec::new();
        for write in writes {
            match write {
                SendWrite::Accept(one) => accepted.push(&**one),
                SendWrite::Complete(send) => completed.push(send),
            }
        }
        let queued: Vec<&QueuedMessage> = accepted.iter().map(|one| &one.queued).collect();
        // Each message as it will be stored, handed over once it is (on SQLite before the
        // writer is let go, so the worker's next claim finds it here and not only in the
        // store), its blobs kept first.
        let ready: Vec<(OutMessage, Vec<MessageFile>, InHand)> = accepted
            .iter()
            .map(|one| {
                let (message, files) = one.queued.as_stored();
                (message, files, one.in_hand.clone())
            })
            .collect();
        let handoff = self.handoff.clone();
        let hand_over = move |stored: &[Result<(), StoreError>]| {
            let handed_over: Vec<ReadyMessage> = ready
                .into_iter()
                .zip(stored)
                .filter(|(_, outcome)| outcome.is_ok())
                .map(|((message, files, in_hand), _)| {
                    persist_named_blobs(&files, &in_hand.contents);
                    ReadyMessage {
                        message,
                        files,
                        in_hand: Some(in_hand),
                    }
                })
                .collect();
            if !handed_over.is_empty() {
                handoff.hand_over(handed_over);
                handoff.wake();
            }
        };
        let (stored, recorded) = self
            .store
            .accept_and_complete_then(&queued, &completed, hand_over)
            .await?;
        let mut stored = stored.into_iter();
        let mut recorded = recorded.into_iter();
        let missing = || Err(no_outcome());
        Ok(writes
            .iter()
            .map(|write| match write {
                SendWrite::Accept(_) => stored
                    .next()
                    .map_or_else(missing, |outcome| outcome.map(|()| Vec::new())),
                SendWrite::Complete(_) => recorded.next().unwrap_or_else(missing),
            })
            .collect())
    }
}
