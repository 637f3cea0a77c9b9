//! Values fetched at most once at a time per key and kept until they expire.
//!
//! Tokens and registry answers are slow to fetch and shared by many concurrent callers. When one
//! is missing or expired, a hundred callers must cause one fetch, not a hundred: the first caller
//! starts it, later callers await the same fetch (single flight), and all of them get its result,
//! an error included, so a provider outage costs one retry sequence rather than one per caller.
//! Only successes are kept. The fetch is a shared future driven by whichever caller polls it, so a
//! caller that gives up does not strand the others.
//!
//! Every lookup is counted by how it was answered ([`CacheCounters`]), so an operator can see on
//! `/manage/prometheus` whether tokens and registry answers are reused or fetched each time.
//!
//! Time is tokio's clock, so tests can move it forward instead of sleeping.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};
use tokio::time::Instant;

/// A fetch's result: the value and the instant it stops being fresh.
pub type Fetched<V, E> = Result<(V, Instant), E>;

type Flight<V, E> = Shared<BoxFuture<'static, Fetched<V, E>>>;

enum Slot<V, E> {
    Ready { value: V, until: Instant },
    Fetching(Flight<V, E>),
}

/// How a cache's lookups were answered since it was made.
#[derive(Debug, Default)]
pub struct CacheCounters {
    hits: AtomicU64,
    shared: AtomicU64,
    fetches: AtomicU64,
}

/// A snapshot of [`CacheCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheCounts {
    /// Answered from a value kept and still fresh.
    pub hits: u64,
    /// Answered by a fetch another caller had started.
    pub shared: u64,
    /// Answered by a fetch this lookup started.
    pub fetches: u64,
}

impl CacheCounters {
    /// The counts so far.
    pub fn snapshot(&self) -> CacheCounts {
        CacheCounts {
            hits: self.hits.load(Ordering::Relaxed),
            shared: self.shared.load(Ordering::Relaxed),
            fetches: self.fetches.load(Ordering::Relaxed),
        }
    }

    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A map of values that expire, each fetched by a single flight.
pub struct ExpiringCache<K, V, E> {
    slots: Mutex<HashMap<K, Slot<V, E>>>,
    counters: Arc<CacheCounters>,
}

impl<K, V, E> Default for ExpiringCache<K, V, E> {
    fn default() -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            counters: Arc::default(),
        }
    }
}

impl<K, V, E> ExpiringCache<K, V, E>
where
    K: Eq + Hash + Clone,
    V: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// `key`'s value: the kept one while it is fresh, else the result of the fetch already in
    /// flight for `key`, else the result of `fetch()`, which is only called in that last case.
    pub async fn get_or_fetch<F>(&self, key: &K, fetch: F) -> Result<V, E>
    where
        F: FnOnce() -> BoxFuture<'static, Fetched<V, E>>,
    {
        let flight = {
            let mut slots = self.lock();
            match slots.get(key) {
                Some(Slot::Ready { value, until }) if Instant::now() < *until => {
                    CacheCounters::count(&self.counters.hits);
                    return Ok(value.clone());
                }
                Some(Slot::Fetching(flight)) => {
                    CacheCounters::count(&self.counters.shared);
                    flight.clone()
                }
                _ => {
                    CacheCounters::count(&self.counters.fetches);
                    // A miss is rare (once per key and lifetime), so it may afford to forget
                    // every value that has expired, which bounds the map by what is in use.
                    let now = Instant::now();
                    slots.retain(|_, slot| match slot {
                        Slot::Ready { until, .. } => now < *until,
                        Slot::Fetching(_) => true,
                    });
                    let flight = fetch().shared();
                    slots.insert(key.clone(), Slot::Fetching(flight.clone()));
                    flight
                }
            }
        };
        let result = flight.clone().await;
        let mut slots = self.lock();
        if matches!(slots.get(key), Some(Slot::Fetching(current)) if current.ptr_eq(&flight)) {
            match &result {
                Ok((value, until)) => {
                    let (value, until) = (value.clone(), *until);
                    slots.insert(key.clone(), Slot::Ready { value, until });
                }
                Err(_) => {
                    slots.remove(key);
                }
            }
        }
        result.map(|(value, _)| value)
    }

    /// Forgets `key`'s kept value if `stale` judges it so; a fetch in flight is left alone. Lets a
    /// caller that found a value wanting (a key set without the key it needs) force one refetch,
    /// while concurrent callers that found the same value do not force one each.
    pub fn evict_if(&self, key: &K, stale: impl FnOnce(&V) -> bool) {
        let mut slots = self.lock();
        if matches!(slots.get(key), Some(Slot::Ready { value, .. }) if stale(value)) {
            slots.remove(key);
        }
    }

    /// How its lookups were answered, counted as they happen.
    pub fn counters(&self) -> Arc<CacheCounters> {
        self.counters.clone()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Slot<V, E>>> {
        // The map is consistent between statements, so a panic elsewhere cannot poison it.
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use tokio::sync::Notify;

    use super::*;

    type Cache = ExpiringCache<&'static str, usize, String>;

    /// A fetch that counts itself, waits for `gate`, and answers `answer(n)` for the n-th fetch.
    fn counting_fetch(
        count: &Arc<AtomicUsize>,
        gate: &Arc<Notify>,
        answer: fn(usize) -> Result<usize, String>,
    ) -> impl FnOnce() -> BoxFuture<'static, Fetched<usize, String>> + use<> {
        let (count, gate) = (count.clone(), gate.clone());
        move || {
            Box::pin(async move {
                let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                gate.notified().await;
                answer(n).map(|value| (value, Instant::now() + Duration::from_secs(60)))
            })
        }
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch() {
        let cache = Arc::new(Cache::new());
        let count = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Notify::new());
        let callers: Vec<_> = (0..50)
            .map(|_| {
                let (cache, fetch) = (cache.clone(), counting_fetch(&count, &gate, Ok));
                tokio::spawn(async move { cache.get_or_fetch(&"k", fetch).await })
            })
            .collect();
        while count.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // Let every caller reach the flight before it lands.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        gate.notify_waiters();
        for caller in callers {
            assert_eq!(caller.await.unwrap(), Ok(1));
        }
        assert_eq!(count.load(Ordering::SeqCst), 1);
        let again = counting_fetch(&count, &gate, Ok);
        assert_eq!(cache.get_or_fetch(&"k", again).await, Ok(1), "kept");
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert_eq!(
            cache.counters().snapshot(),
            CacheCounts {
                hits: 1,
                shared: 49,
                fetches: 1
            },
            "one lookup fetched, the other 49 waited for it, the last found it kept"
        );
    }

    #[tokio::test]
    async fn an_error_reaches_every_waiter_and_is_not_kept() {
        let cache = Arc::new(Cache::new());
        let count = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Notify::new());
        let fail = |n: usize| Err(format!("failure {n}"));
        let first = {
            let (cache, fetch) = (cache.clone(), counting_fetch(&count, &gate, fail));
            tokio::spawn(async move { cache.get_or_fetch(&"k", fetch).await })
        };
        while count.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let second = {
            let (cache, fetch) = (cache.clone(), counting_fetch(&count, &gate, fail));
            tokio::spawn(async move { cache.get_or_fetch(&"k", fetch).await })
        };
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        gate.notify_waiters();
        assert_eq!(first.await.unwrap(), Err("failure 1".into()));
        assert_eq!(second.await.unwrap(), Err("failure 1".into()));
        gate.notify_one();
        let third = cache.get_or_fetch(&"k", counting_fetch(&count, &gate, Ok));
        assert_eq!(third.await, Ok(2), "the error was not kept");
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_value_is_fetched_again_and_other_keys_are_separate() {
        let cache = Cache::new();
        let count = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Notify::new());
        gate.notify_one();
        assert_eq!(
            cache
                .get_or_fetch(&"k", counting_fetch(&count, &gate, Ok))
                .await,
            Ok(1)
        );
        gate.notify_one();
        assert_eq!(
            cache
                .get_or_fetch(&"j", counting_fetch(&count, &gate, Ok))
                .await,
            Ok(2)
        );
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(
            cache
                .get_or_fetch(&"k", counting_fetch(&count, &gate, Ok))
                .await,
            Ok(1)
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        gate.notify_one();
        assert_eq!(
            cache
                .get_or_fetch(&"k", counting_fetch(&count, &gate, Ok))
                .await,
            Ok(3)
        );
        assert_eq!(
            cache.lock().len(),
            1,
            "the expired value of j was forgotten on the miss"
        );
    }

    #[tokio::test]
    async fn a_caller_that_gives_up_does_not_strand_the_next() {
        let cache = Cache::new();
        let count = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Notify::new());
        let abandoned = cache.get_or_fetch(&"k", counting_fetch(&count, &gate, Ok));
        assert!(
            tokio::time::timeout(Duration::from_millis(1), abandoned)
                .await
                .is_err()
        );
        gate.notify_one();
        let next = cache.get_or_fetch(&"k", counting_fetch(&count, &gate, Ok));
        assert_eq!(next.await, Ok(1), "the same flight, resumed");
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn evict_if_forgets_only_a_value_judged_stale() {
        let cache = Cache::new();
        let count = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Notify::new());
        gate.notify_one();
        assert_eq!(
            cache
                .get_or_fetch(&"k", counting_fetch(&count, &gate, Ok))
                .await,
            Ok(1)
        );
        cache.evict_if(&"k", |value| *value == 7);
        assert_eq!(
            cache
                .get_or_fetch(&"k", counting_fetch(&count, &gate, Ok))
                .await,
            Ok(1)
        );
        cache.evict_if(&"k", |value| *value == 1);
        gate.notify_one();
        assert_eq!(
            cache
                .get_or_fetch(&"k", counting_fetch(&count, &gate, Ok))
                .await,
            Ok(2)
        );
    }
}
