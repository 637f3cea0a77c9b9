//! The engine: everything that happens after the API has answered.
//!
//! It owns time and retries (DESIGN: plugins classify failures, the engine decides): the outbox
//! worker sends, the status and inbound pollers ask each channel what is new, the lifetime sweep
//! ends what ran out, the unlocker frees stale peeks, the webhook deliverer pushes events, and
//! the retention sweep removes what is no longer needed. Each loop is a task that stops when the
//! shutdown token is cancelled; a send in flight gets a deadline to finish, and whatever it does
//! not finish stays in the outbox for the next start.

mod convert;
mod handoff;
mod inbound;
mod leader;
mod lifetime;
mod outbox;
mod send_writes;
pub(crate) mod status_messages;
mod statuses;
mod webhooks;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::blobs::BlobStore;
use crate::plugins::PluginHost;
use crate::store::{ReceiptStatus, StatusEffects, Store};

pub use convert::InHand;
pub(crate) use convert::file_blob;
pub use handoff::Handoff;
pub use leader::Leadership;
pub use send_writes::{Accepted, SendWrite, SendWriter, SendWrites, persist_named_blobs};

/// When the statuses of each (channel, message id) were last asked for.
type PollTimes = HashMap<(String, String), crate::store::Millis>;

/// How the engine runs.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    /// Sends at once.
    pub concurrency: usize,
    /// The first retry delay.
    pub retry_initial: Duration,
    /// The longest retry delay.
    pub retry_max_interval: Duration,
    /// Give up this long after a message entered the outbox.
    pub retry_give_up_after: Duration,
    /// Between status polls of a channel.
    pub status_interval: Duration,
    /// Between inbound polls of a channel.
    pub incoming_interval: Duration,
    /// Between lifetime sweeps.
    pub lifetime_interval: Duration,
    /// Channels (service identifiers) whose statuses go on the status queue.
    pub status_queue_includes: Vec<String>,
    /// How long a claim on an outbox row lasts.
    pub claim_lease: Duration,
    /// How long sends in flight may finish at shutdown.
    pub shutdown_grace: Duration,
    /// Webhook push timeout.
    pub webhook_timeout: Duration,
    /// Days finished conversations are kept, by what they hold.
    pub retention: Retention,
    /// Lifetime of a received message per channel, hours (when its SBD gives none).
    pub lifetime_hours: BTreeMap<String, u64>,
}

/// How long finished conversations and dead letters are kept.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// Finished conversations and their statuses.
    pub conversations: Duration,
    /// Dead letters.
    pub dead_letters: Duration,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            concurrency: crate::config::settings::Outbox::default().concurrency,
            retry_initial: Duration::from_secs(20),
            retry_max_interval: Duration::from_secs(3600),
            retry_give_up_after: Duration::from_secs(100 * 3600),
            status_interval: Duration::from_secs(60),
            incoming_interval: Duration::from_secs(15),
            lifetime_interval: Duration::from_secs(30),
            status_queue_includes: Vec::new(),
            claim_lease: Duration::from_secs(15 * 60),
            shutdown_grace: Duration::from_secs(30),
            webhook_timeout: Duration::from_secs(10),
            retention: Retention {
                conversations: Duration::from_secs(365 * 24 * 3600),
                dead_letters: Duration::from_secs(30 * 24 * 3600),
            },
            lifetime_hours: BTreeMap::new(),
        }
    }
}

/// What the engine's tasks share.
pub struct Engine {
    pub(crate) store: Store,
    pub(crate) blobs: Arc<dyn BlobStore>,
    pub(crate) plugins: Arc<PluginHost>,
    pub(crate) settings: EngineSettings,
    pub(crate) handoff: Arc<Handoff>,
    /// Where completed sends are recorded, with the messages the API accepts.
    pub(crate) writes: SendWriter,
    pub(crate) leadership: Leadership,
    pub(crate) worker: String,
    pub(crate) http: reqwest::Client,
    /// When each conversation's statuses were last asked for (by channel and message id), for
    /// the polling back-off.
    pub(crate) polled: std::sync::Mutex<PollTimes>,
}

impl Engine {
    /// An engine over `store`; the API wakes the outbox worker and hands it the messages it
    /// accepts through `handoff`, and `writes` records the sends with what the API accepts.
    pub fn new(
        store: Store,
        blobs: Arc<dyn BlobStore>,
        plugins: Arc<PluginHost>,
        settings: EngineSettings,
        handoff: Arc<Handoff>,
        writes: SendWriter,
    ) -> Arc<Self> {
        let worker = format!(
            "{}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple(),
            crate::store::now_millis()
        );
        let http = reqwest::Client::builder()
            .timeout(settings.webhook_timeout)
            .build()
            .unwrap_or_default();
        Arc::new(Self {
            leadership: Leadership::new(store.clone()),
            store,
            blobs,
            plugins,
            settings,
            handoff,
            writes,
            worker,
            http,
            polled: Default::default(),
        })
    }

    /// Runs every loop until `shutdown` is cancelled, then waits for the outbox worker, which
    /// gives its sends in flight the grace period, and as long for any poll or push in flight
    /// (a provider that never answers would otherwise hold the stop until the plugin's
    /// timeout). One cut off is repeated after the next start: an incoming message is confirmed
    /// to its provider only once stored, and recognised by its id when it comes again;
    /// statuses and webhook events stay due, and status messages leased by the round are
    /// leased again at once after a restart on SQLite, and after their lease on PostgreSQL.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        if self.store.dialect() == crate::store::Dialect::Sqlite {
            // One instance per SQLite file: claims left by a killed or stopped predecessor
            // are void.
            match self.store.release_all_claims().await {
                Ok(0) => {}
                Ok(released) => {
                    tracing::info!(released, "outbox claims of a previous run released")
                }
                Err(error) => tracing::error!(%error, "outbox claims could not be released"),
            }
        }
        let outbox = outbox::run(self.clone(), shutdown.clone());
        let mut tasks = JoinSet::new();
        tasks.spawn(statuses::run(self.clone(), shutdown.clone()));
        tasks.spawn(status_messages::run(self.clone(), shutdown.clone()));
        tasks.spawn(inbound::run(self.clone(), shutdown.clone()));
        tasks.spawn(lifetime::run(self.clone(), shutdown.clone()));
        tasks.spawn(webhooks::run(self.clone(), shutdown.clone()));
        let pollers = async {
            let all_ended = async { while tasks.join_next().await.is_some() {} };
            let grace_over = async {
                shutdown.cancelled().await;
                tokio::time::sleep(self.settings.shutdown_grace).await;
            };
            tokio::select! {
                () = all_ended => {}
                () = grace_over => {
                    tracing::warn!(
                        left = tasks.len(),
                        "polls still in flight at the end of the shutdown grace; they run again after the next start"
                    );
                    tasks.abort_all();
                }
            }
        };
        tokio::join!(outbox, pollers);
    }

    /// Registers a status with the effects the channel rules give it.
    pub(crate) async fn register(
        &self,
        message_id: &str,
        direction: crate::store::Direction,
        service: Option<&str>,
        update: &crate::store::StatusUpdate,
    ) {
        let effects = StatusEffects {
            starts_polling: false,
            queue: self.queues(service),
        };
        if let Err(error) = self
            .store
            .register_status(message_id, direction, update, effects)
            .await
        {
            tracing::error!(%message_id, status = %update.status, %error, "a status could not be registered");
        }
    }

    /// Whether statuses of `service` go on the status queue.
    pub(crate) fn queues(&self, service: Option<&str>) -> bool {
        service.is_some_and(|service| {
            self.settings
                .status_queue_includes
                .iter()
                .any(|included| included.eq_ignore_ascii_case(service))
        })
    }

    /// The effects of a status of a message on plugin `channel` that needs no polling.
    pub(crate) fn channel_effects(&self, channel: &str) -> StatusEffects {
        let service = self
            .plugins
            .plugin(channel)
            .map(|plugin| plugin.description().service.clone());
        StatusEffects {
            starts_polling: false,
            queue: self.queues(service.as_deref()),
        }
    }

    /// Removes blobs no row refers to any more.
    pub(crate) async fn remove_blobs(&self, blobs: Vec<String>) {
        if blobs.is_empty() {
            return;
        }
        let store = self.blobs.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for id in blobs {
                if let Err(error) = store.remove(&crate::blobs::BlobId::new(id.clone())) {
                    tracing::warn!(blob = %id, %error, "a file could not be removed");
                }
            }
        })
        .await;
    }
}

/// Waits `interval` or until shutdown; false when shutting down.
pub(crate) async fn pause(interval: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(interval) => true,
    }
}

/// The registered status a channel's status means.
pub(crate) fn receipt_status(status: crate::plugins::bindings::Status) -> ReceiptStatus {
    use crate::plugins::bindings::Status;
    match status {
        Status::Sendt => ReceiptStatus::Sendt,
        Status::Mottatt => ReceiptStatus::Mottatt,
        Status::Levert => ReceiptStatus::Levert,
        Status::Lest => ReceiptStatus::Lest,
        Status::Feil => ReceiptStatus::Feil,
        Status::Annet => ReceiptStatus::Annet,
    }
}
