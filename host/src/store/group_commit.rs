//! Writes of many callers in one transaction (group commit).
//!
//! Accepting a message and completing its send each write the same few rows for every
//! message. One transaction each, they queue for SQLite's one writer with a round trip per
//! statement, and that writer, not the CPU, is what bounds the pipeline. So one task takes every
//! request that arrived while it wrote the previous batch and writes them together (one
//! statement per kind of row on PostgreSQL; on SQLite the whole transaction in one job on the
//! send path's own thread). A lone request waits for nobody; under load the
//! writer's time per message falls as the batches grow. A caller learns its own outcome only
//! once the batch is committed, so an answer still means the row is stored.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::StoreError;

/// The most requests one transaction writes; their parameters stay well within every
/// database's limit per statement.
const MOST_PER_BATCH: usize = 64;

/// A kind of write that can be done for many requests at once.
pub trait BatchWrite: Send + Sync + 'static {
    /// One caller's request.
    type Item: Send + Sync + 'static;
    /// What one caller learns when its request is written.
    type Output: Send + 'static;

    /// Writes `items` in one transaction: for each, in order, its outcome; `Err` when the
    /// whole transaction failed and nothing was written.
    fn write<'a>(
        &'a self,
        items: &'a [Self::Item],
    ) -> impl Future<Output = Result<Vec<Result<Self::Output, StoreError>>, StoreError>> + Send + 'a;
}

/// A request waiting to be written, and whoever waits for it.
type Pending<W> = (
    <W as BatchWrite>::Item,
    oneshot::Sender<Result<<W as BatchWrite>::Output, StoreError>>,
);

/// The way to a writing task; the task ends once the last handle is dropped and the requests
/// already handed over are written.
pub struct GroupCommit<W: BatchWrite> {
    pending: mpsc::UnboundedSender<Pending<W>>,
}

impl<W: BatchWrite> Clone for GroupCommit<W> {
    fn clone(&self) -> Self {
        Self {
            pending: self.pending.clone(),
        }
    }
}

impl<W: BatchWrite> GroupCommit<W> {
    /// Starts the task that writes through `writer`.
    pub fn start(writer: W) -> (Self, JoinHandle<()>) {
        let (pending, waiting) = mpsc::unbounded_channel();
        (
            Self { pending },
            tokio::spawn(write_batches(writer, waiting)),
        )
    }

    /// Writes `item` with whatever requests arrive meanwhile; its outcome.
    pub async fn write(&self, item: W::Item) -> Result<W::Output, StoreError> {
        let (written, outcome) = oneshot::channel();
        self.pending
            .send((item, written))
            .map_err(|_| StoreError::Conflict("the store is closing".to_owned()))?;
        outcome.await.unwrap_or_else(|_| Err(abandoned()))
    }
}

/// What a write learns when it was given up before it was done.
pub fn abandoned() -> StoreError {
    StoreError::Conflict("the write was abandoned unfinished".to_owned())
}

/// What a request learns when its batch was written but gave it no outcome, which a
/// [`BatchWrite`] keeping its contract never does.
pub fn no_outcome() -> StoreError {
    StoreError::Conflict("the write had no outcome".to_owned())
}

async fn write_batches<W: BatchWrite>(writer: W, mut waiting: mpsc::UnboundedReceiver<Pending<W>>) {
    let mut batch = Vec::with_capacity(MOST_PER_BATCH);
    while waiting.recv_many(&mut batch, MOST_PER_BATCH).await > 0 {
        let (items, answers): (Vec<W::Item>, Vec<_>) = batch.drain(..).unzip();
        let outcomes = match writer.write(&items).await {
            Ok(outcomes) => outcomes,
            // One request the database refuses must not fail the others: each alone.
            Err(_) if items.len() > 1 => {
                let mut outcomes = Vec::with_capacity(items.len());
                for item in &items {
                    outcomes.push(match writer.write(std::slice::from_ref(item)).await {
                        Ok(mut alone) => alone.pop().unwrap_or_else(|| Err(no_outcome())),
                        Err(error) => Err(error),
                    });
                }
                outcomes
            }
            Err(error) => vec![Err(error)],
        };
        for (answer, outcome) in answers.into_iter().zip(outcomes) {
            let _ = answer.send(outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Doubles numbers, refusing a batch that holds a negative one as a database would a
    /// statement with one bad row; it keeps the size of every batch it was given.
    #[derive(Default)]
    struct Doubling {
        batches: Mutex<Vec<usize>>,
    }

    impl BatchWrite for std::sync::Arc<Doubling> {
        type Item = i64;
        type Output = i64;

        async fn write(&self, items: &[i64]) -> Result<Vec<Result<i64, StoreError>>, StoreError> {
            self.batches.lock().unwrap().push(items.len());
            if items.iter().any(|n| *n < 0) {
                return Err(StoreError::Conflict("a negative number".to_owned()));
            }
            Ok(items.iter().map(|n| Ok(n * 2)).collect())
        }
    }

    #[tokio::test]
    async fn requests_that_wait_together_are_written_together_each_with_its_own_outcome() {
        let doubling = std::sync::Arc::new(Doubling::default());
        let (writes, task) = GroupCommit::start(doubling.clone());
        let outcomes = futures::future::join_all([1, 2, -3, 4, 5, 6].map(|n| {
            let writes = writes.clone();
            async move { writes.write(n).await }
        }))
        .await;
        let outcomes: Vec<Result<i64, String>> = outcomes
            .into_iter()
            .map(|outcome| outcome.map_err(|error| error.to_string()))
            .collect();
        assert_eq!(
            outcomes,
            [
                Ok(2),
                Ok(4),
                Err("a negative number".to_owned()),
                Ok(8),
                Ok(10),
                Ok(12)
            ],
            "the refused request fails alone"
        );
        drop(writes);
        task.await.expect("the task ends once its handles are gone");
        let batches = doubling.batches.lock().unwrap().clone();
        assert_eq!(
            batches,
            [6, 1, 1, 1, 1, 1, 1],
            "the six that queued together in one batch; once it was refused, each alone"
        );
    }
}
