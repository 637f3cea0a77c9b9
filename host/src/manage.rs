//! `/manage`: health, probes, metrics and build information, the active plugin set, and
//! reloading it.
//!
//! The paths and JSON shapes are Spring Boot actuator's, as the real integration point serves
//! them, so the load balancers, orchestrators and dashboards operators already point at it keep
//! working. Health, liveness and readiness are open (see `api::auth`); the rest sits behind the
//! API's HTTP Basic.
//!
//! - `/manage/health` is the operator's view: the plugins (each instantiated now), the database,
//!   and the queues (outbox, incoming, dead letters) as details.
//! - `/manage/health/liveness` answers whenever the process can run a request at all: restarting
//!   a process because its database is down fixes nothing.
//! - `/manage/health/readiness` answers 200 only while the database answers and a plugin set is
//!   loaded, so traffic goes elsewhere until then.
//! - `/manage/prometheus` is the text exposition format, written here by hand: the series are
//!   few, most are read from the database at scrape time (so they are right after a restart and
//!   across instances sharing PostgreSQL), and the rest are snapshots of counters the plugin
//!   runtime keeps anyway.
//!
//! Operators swap a channel by editing the plugin set and reloading, by this endpoint or SIGHUP;
//! both go through [`Reloader`], which re-reads the configuration file and hands the set to the
//! plugin host, where a set that fails to load is rejected and the old one keeps serving.
//! Secrets and endpoints outside the plugin set take effect at the next start.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::config::{Config, LoadOptions};
use crate::expiring::CacheCounters;
use crate::plugins::PluginHost;
use crate::store::{Dialect, Store, now_millis};

/// How long a health check waits for the database before calling it down.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(5);

/// Reloads the plugin set from the configuration.
pub struct Reloader {
    /// How the configuration was loaded at start; reloading reads the same files again.
    pub options: LoadOptions,
    /// The plugin host.
    pub plugins: Arc<PluginHost>,
}

impl Reloader {
    /// Re-reads the configuration and loads its plugin set; returns the new generation.
    pub async fn reload(&self) -> anyhow::Result<u64> {
        let config = Config::load(&self.options).await?;
        Ok(self.plugins.load(&config.plugin_set()).await?.generation())
    }
}

/// What the health, metrics and info endpoints read.
pub struct Monitor {
    store: Store,
    plugins: Arc<PluginHost>,
    profile: String,
    environment: String,
    organisation_number: String,
    caches: Vec<(&'static str, Arc<CacheCounters>)>,
}

impl Monitor {
    /// Monitors `store` and `plugins` of the service `config` describes.
    pub fn new(store: Store, plugins: Arc<PluginHost>, config: &Config) -> Self {
        Self {
            store,
            plugins,
            profile: config.profile.clone(),
            environment: config.settings.environment.name.clone(),
            organisation_number: config.settings.organisation.number.clone(),
            caches: Vec::new(),
        }
    }

    /// Also reports how the lookups of `caches` (tokens, registry answers) were answered.
    pub fn with_caches(mut self, caches: Vec<(&'static str, Arc<CacheCounters>)>) -> Self {
        self.caches = caches;
        self
    }
}

/// The plugin administration routes: the active set and reloading it.
pub fn router(reloader: Arc<Reloader>) -> Router {
    Router::new()
        .route("/manage/plugins", get(plugins))
        .route("/manage/plugins/reload", post(reload))
        .with_state(reloader)
}

/// The monitoring routes: health and its probes, Prometheus metrics and build information.
pub fn monitoring(monitor: Arc<Monitor>) -> Router {
    Router::new()
        .route("/manage/health", get(health))
        .route("/manage/health/liveness", get(liveness))
        .route("/manage/health/readiness", get(readiness))
        .route("/manage/prometheus", get(prometheus))
        .route("/manage/info", get(info))
        .with_state(monitor)
}

fn status(up: bool) -> &'static str {
    if up { "UP" } else { "DOWN" }
}

/// The actuator answer: 200 when UP, 503 when DOWN.
fn health_response(up: bool, components: serde_json::Map<String, Value>) -> Response {
    let code = if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({ "status": status(up), "components": components });
    (code, Json(body)).into_response()
}

/// The database component: UP when it answers a query within [`DATABASE_TIMEOUT`].
async fn database(store: &Store) -> (bool, Value) {
    let name = match store.dialect() {
        Dialect::Sqlite => "SQLite",
        Dialect::Postgres => "PostgreSQL",
    };
    let error = match tokio::time::timeout(DATABASE_TIMEOUT, store.ping()).await {
        Ok(Ok(())) => {
            return (
                true,
                json!({ "status": "UP", "details": { "database": name } }),
            );
        }
        Ok(Err(error)) => error.to_string(),
        Err(_) => format!("no answer within {} s", DATABASE_TIMEOUT.as_secs()),
    };
    (
        false,
        json!({ "status": "DOWN", "details": { "database": name, "error": error } }),
    )
}

/// The depths of the queues the integration point keeps.
struct Queues {
    outgoing: i64,
    oldest_outgoing_age_seconds: f64,
    incoming: i64,
    dead_letters: i64,
}

async fn queues(store: &Store) -> Result<Queues, crate::store::StoreError> {
    let (outgoing, oldest) = store.outbox_depth(now_millis()).await?;
    Ok(Queues {
        outgoing,
        oldest_outgoing_age_seconds: oldest.map_or(0.0, |age| age.max(0) as f64 / 1000.0),
        incoming: store.incoming_depth().await?,
        dead_letters: store.dead_letter_count().await?,
    })
}

/// UP when the database answers and every plugin of the active set can be instantiated now;
/// the queue depths are details.
async fn health(State(monitor): State<Arc<Monitor>>) -> Response {
    let set = monitor.plugins.current();
    let mut plugins = serde_json::Map::new();
    let mut plugins_up = true;
    for plugin in set.plugins() {
        let component = match plugin.check_instantiation().await {
            Ok(()) => json!({ "status": "UP" }),
            Err(error) => {
                plugins_up = false;
                json!({ "status": "DOWN", "details": { "error": error.to_string() } })
            }
        };
        plugins.insert(plugin.name().to_owned(), component);
    }
    let (database_up, database) = database(&monitor.store).await;
    let queue = if database_up {
        match tokio::time::timeout(DATABASE_TIMEOUT, queues(&monitor.store)).await {
            Ok(Ok(queues)) => json!({
                "status": "UP",
                "details": {
                    "outgoing": queues.outgoing,
                    "oldestOutgoingAgeSeconds": queues.oldest_outgoing_age_seconds,
                    "incoming": queues.incoming,
                    "deadLetters": queues.dead_letters,
                },
            }),
            Ok(Err(error)) => {
                json!({ "status": "UNKNOWN", "details": { "error": error.to_string() } })
            }
            Err(_) => json!({ "status": "UNKNOWN", "details": { "error": "no answer in time" } }),
        }
    } else {
        json!({ "status": "UNKNOWN", "details": { "error": "the database is down" } })
    };
    let mut components = serde_json::Map::new();
    components.insert(
        "plugins".into(),
        json!({
            "status": status(plugins_up),
            "details": { "generation": set.generation() },
            "components": plugins,
        }),
    );
    components.insert("db".into(), database);
    components.insert("nextMoveQueue".into(), queue);
    health_response(plugins_up && database_up, components)
}

/// Always UP: answering at all shows the runtime runs requests.
async fn liveness() -> Json<Value> {
    Json(json!({ "status": "UP" }))
}

/// UP when the database answers and a plugin set is loaded.
async fn readiness(State(monitor): State<Arc<Monitor>>) -> Response {
    let (database_up, database) = database(&monitor.store).await;
    let set = monitor.plugins.current();
    let loaded = set.generation() > 0;
    let mut components = serde_json::Map::new();
    components.insert("db".into(), database);
    components.insert(
        "plugins".into(),
        json!({
            "status": status(loaded),
            "details": { "generation": set.generation(), "plugins": set.plugins().count() },
        }),
    );
    health_response(database_up && loaded, components)
}

/// Name, version, environment, organisation and the plugin set.
async fn info(State(monitor): State<Arc<Monitor>>) -> Json<Value> {
    let set = monitor.plugins.current();
    Json(json!({
        "name": env!("CARGO_PKG_NAME"),
        "version": env!("CARGO_PKG_VERSION"),
        "profile": monitor.profile,
        "environment": monitor.environment,
        "organisationNumber": monitor.organisation_number,
        "plugins": {
            "generation": set.generation(),
            "set": set.plugins().map(|plugin| {
                let description = plugin.description();
                json!({
                    "name": plugin.name(),
                    "service": description.service,
                    "version": description.version,
                    "sha256": plugin.sha256(),
                })
            }).collect::<Vec<_>>(),
        },
    }))
}

/// The Prometheus text exposition format (version 0.0.4).
async fn prometheus(State(monitor): State<Arc<Monitor>>) -> Response {
    let mut out = Exposition::default();
    out.family(
        "integrasjonspunkt_info",
        "gauge",
        "Always 1; the labels say which build and environment this is.",
    );
    out.sample(
        "integrasjonspunkt_info",
        &[
            ("version", env!("CARGO_PKG_VERSION")),
            ("profile", &monitor.profile),
            ("organisation", &monitor.organisation_number),
        ],
        1.0,
    );
    database_metrics(&monitor.store, &mut out).await;
    plugin_metrics(&monitor.plugins, &mut out);
    cache_metrics(&monitor.caches, &mut out);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out.text,
    )
        .into_response()
}

/// The series read from the database; when it fails, only `integrasjonspunkt_database_up 0`.
async fn database_metrics(store: &Store, out: &mut Exposition) {
    let read = async {
        Ok::<_, crate::store::StoreError>((store.message_counts().await?, queues(store).await?))
    };
    let read = match tokio::time::timeout(DATABASE_TIMEOUT, read).await {
        Ok(read) => read.map_err(|error| error.to_string()),
        Err(_) => Err("no answer in time".to_owned()),
    };
    out.family(
        "integrasjonspunkt_database_up",
        "gauge",
        "1 when the database answered this scrape.",
    );
    let (counts, queues) = match read {
        Ok(read) => read,
        Err(error) => {
            tracing::warn!(%error, "metrics: the database did not answer");
            out.sample("integrasjonspunkt_database_up", &[], 0.0);
            return;
        }
    };
    out.sample("integrasjonspunkt_database_up", &[], 1.0);
    out.family(
        "integrasjonspunkt_messages",
        "gauge",
        "Conversations by direction, service, channel and latest status.",
    );
    for count in &counts {
        out.sample(
            "integrasjonspunkt_messages",
            &[
                ("direction", &count.direction),
                ("service", &count.service),
                ("channel", &count.channel),
                ("status", &count.status),
            ],
            count.count as f64,
        );
    }
    for (name, help, value) in [
        (
            "integrasjonspunkt_outbox_messages",
            "Messages waiting in the outbox to be sent.",
            queues.outgoing as f64,
        ),
        (
            "integrasjonspunkt_outbox_oldest_age_seconds",
            "Age of the oldest message in the outbox; 0 when it is empty.",
            queues.oldest_outgoing_age_seconds,
        ),
        (
            "integrasjonspunkt_incoming_messages",
            "Received messages waiting for the archive system.",
            queues.incoming as f64,
        ),
        (
            "integrasjonspunkt_dead_letters",
            "Messages given up on and kept as dead letters.",
            queues.dead_letters as f64,
        ),
    ] {
        out.family(name, "gauge", help);
        out.sample(name, &[], value);
    }
}

/// How token and registry lookups were answered: `hit` (a kept value), `shared` (a fetch another
/// lookup had started) or `fetch`. Many fetches next to few hits means nothing is reused.
fn cache_metrics(caches: &[(&'static str, Arc<CacheCounters>)], out: &mut Exposition) {
    let name = "integrasjonspunkt_cache_lookups_total";
    out.family(
        name,
        "counter",
        "Token and ServiceRegistry lookups by cache and how they were answered.",
    );
    for (cache, counters) in caches {
        let counts = counters.snapshot();
        for (outcome, count) in [
            ("hit", counts.hits),
            ("shared", counts.shared),
            ("fetch", counts.fetches),
        ] {
            out.sample(
                name,
                &[("cache", cache), ("outcome", outcome)],
                count as f64,
            );
        }
    }
}

/// The plugin runtime's counters: egress requests and calls into plugins.
fn plugin_metrics(plugins: &PluginHost, out: &mut Exposition) {
    let set = plugins.current();
    out.family(
        "integrasjonspunkt_plugin_set_generation",
        "gauge",
        "Which load of the plugin set is active; counts up with every accepted reload.",
    );
    out.sample(
        "integrasjonspunkt_plugin_set_generation",
        &[],
        set.generation() as f64,
    );

    let egress = plugins.services().egress.metrics().snapshot();
    out.family(
        "integrasjonspunkt_plugin_egress_requests_total",
        "counter",
        "HTTP requests of plugins by plugin, destination and outcome (2xx..5xx, denied, error).",
    );
    for ((plugin, destination, outcome), count) in &egress {
        out.sample(
            "integrasjonspunkt_plugin_egress_requests_total",
            &[
                ("plugin", plugin),
                ("destination", destination),
                ("outcome", outcome),
            ],
            count.requests as f64,
        );
    }
    out.family(
        "integrasjonspunkt_plugin_egress_seconds_total",
        "counter",
        "Time spent in HTTP requests of plugins.",
    );
    for ((plugin, destination, outcome), count) in &egress {
        out.sample(
            "integrasjonspunkt_plugin_egress_seconds_total",
            &[
                ("plugin", plugin),
                ("destination", destination),
                ("outcome", outcome),
            ],
            count.seconds,
        );
    }

    // Counted per loaded plugin, so a reload starts them over (a counter reset to Prometheus).
    let calls: Vec<_> = set
        .plugins()
        .map(|plugin| (plugin.name().to_owned(), plugin.call_metrics().snapshot()))
        .collect();
    out.family(
        "integrasjonspunkt_plugin_call_duration_seconds",
        "histogram",
        "Calls into plugins by plugin and operation, failed ones included.",
    );
    for (plugin, stats) in &calls {
        for stat in stats {
            let labels = [("plugin", plugin.as_str()), ("operation", stat.operation)];
            for (bound, count) in &stat.buckets {
                let le = bound.to_string();
                out.sample(
                    "integrasjonspunkt_plugin_call_duration_seconds_bucket",
                    &[labels[0], labels[1], ("le", &le)],
                    *count as f64,
                );
            }
            out.sample(
                "integrasjonspunkt_plugin_call_duration_seconds_bucket",
                &[labels[0], labels[1], ("le", "+Inf")],
                stat.calls as f64,
            );
            out.sample(
                "integrasjonspunkt_plugin_call_duration_seconds_sum",
                &labels,
                stat.seconds,
            );
            out.sample(
                "integrasjonspunkt_plugin_call_duration_seconds_count",
                &labels,
                stat.calls as f64,
            );
        }
    }
    out.family(
        "integrasjonspunkt_plugin_call_failures_total",
        "counter",
        "Calls into plugins that trapped, ran out of memory, timed out or could not start.",
    );
    for (plugin, stats) in &calls {
        for stat in stats {
            for (kind, count) in &stat.failures {
                out.sample(
                    "integrasjonspunkt_plugin_call_failures_total",
                    &[
                        ("plugin", plugin.as_str()),
                        ("operation", stat.operation),
                        ("kind", kind),
                    ],
                    *count as f64,
                );
            }
        }
    }
}

/// A Prometheus text exposition being written.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    /// Starts a metric family.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample with its labels, values escaped as the format requires.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (index, (label, value)) in labels.iter().enumerate() {
                if index > 0 {
                    self.text.push(',');
                }
                let value = value
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.text, "{label}=\"{value}\"");
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }
}

async fn plugins(State(reloader): State<Arc<Reloader>>) -> Json<Value> {
    let set = reloader.plugins.current();
    let plugins: Vec<_> = set
        .plugins()
        .map(|plugin| {
            let description = plugin.description();
            json!({
                "name": plugin.name(),
                "service": description.service,
                "description": description.name,
                "version": description.version,
                "maxMessageSize": description.max_message_size,
                "file": plugin.path().display().to_string(),
                "sha256": plugin.sha256(),
            })
        })
        .collect();
    Json(json!({ "generation": set.generation(), "plugins": plugins }))
}

async fn reload(State(reloader): State<Arc<Reloader>>) -> Response {
    match reloader.reload().await {
        Ok(generation) => Json(json!({ "generation": generation })).into_response(),
        Err(error) => {
            let message = format!("{error:#}");
            tracing::error!(%message, "plugin set rejected; the active set keeps serving");
            let body = json!({
                "error": "plugin set rejected",
                "message": message,
                "generation": reloader.plugins.current().generation(),
            });
            (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::blobs::FileBlobStore;
    use crate::plugins::egress::Egress;
    use crate::plugins::{HostServices, PluginEngine, PluginSetSpec};
    use crate::secrets::Secrets;
    use crate::store::{InMessage, NewConversation};
    use crate::tokens::NoTokenService;

    /// A monitor over an SQLite store and a plugin host with no set loaded yet.
    async fn monitor(dir: &std::path::Path) -> Arc<Monitor> {
        let url = format!("sqlite://{}", dir.join("store.db").display());
        let store = Store::open(&url).await.unwrap();
        let services = Arc::new(HostServices {
            egress: Egress::new(Arc::new(Secrets::new()), Arc::new(NoTokenService)).unwrap(),
            blobs: Arc::new(FileBlobStore::open(dir.join("blobs")).unwrap()),
            certificate: None,
        });
        let plugins = Arc::new(
            PluginHost::new(
                PluginEngine::new().unwrap(),
                &dir.join("compiled"),
                services,
            )
            .unwrap(),
        );
        Arc::new(Monitor {
            store,
            plugins,
            profile: "staging".into(),
            environment: "staging".into(),
            organisation_number: "910075918".into(),
            caches: Vec::new(),
        })
    }

    async fn load_empty_set(monitor: &Monitor, dir: &std::path::Path) {
        let spec = PluginSetSpec {
            base_dir: dir.to_path_buf(),
            plugins: BTreeMap::new(),
        };
        monitor.plugins.load(&spec).await.unwrap();
    }

    async fn answer(response: Response) -> (u16, String) {
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    async fn json_answer(response: Response) -> (u16, Value) {
        let (status, body) = answer(response).await;
        (status, serde_json::from_str(&body).unwrap())
    }

    async fn store_incoming(store: &Store, message_id: &str) {
        let message = InMessage {
            message_id: message_id.into(),
            conversation_id: format!("c-{message_id}"),
            process_identifier: None,
            document_type: None,
            sender_identifier: None,
            receiver_identifier: None,
            service_identifier: "DPO".into(),
            channel: "dpo".into(),
            sbd: "{}".into(),
            package_blob: None,
            lock_until: None,
            last_updated: now_millis(),
        };
        let conversation = NewConversation {
            conversation_id: message.conversation_id.clone(),
            message_id: message_id.into(),
            service_identifier: Some("DPO".into()),
            channel: Some("dpo".into()),
            ..NewConversation::default()
        };
        assert!(store.store_incoming(&message, &conversation).await.unwrap());
    }

    #[tokio::test]
    async fn readiness_waits_for_a_plugin_set_and_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let monitor = monitor(dir.path()).await;
        let (status, body) = json_answer(readiness(State(monitor.clone())).await).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["status"], "DOWN");
        assert_eq!(body["components"]["db"]["status"], "UP");
        assert_eq!(body["components"]["plugins"]["status"], "DOWN");

        load_empty_set(&monitor, dir.path()).await;
        let (status, body) = json_answer(readiness(State(monitor.clone())).await).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "UP");

        monitor.store.close().await;
        let (status, body) = json_answer(readiness(State(monitor.clone())).await).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["components"]["db"]["status"], "DOWN");
        assert!(body["components"]["db"]["details"]["error"].is_string());
        let (status, body) = json_answer(liveness().await.into_response()).await;
        assert_eq!((status, body), (200, json!({ "status": "UP" })));
    }

    #[tokio::test]
    async fn health_reports_the_database_and_the_queue_depths() {
        let dir = tempfile::tempdir().unwrap();
        let monitor = monitor(dir.path()).await;
        load_empty_set(&monitor, dir.path()).await;
        store_incoming(&monitor.store, "m1").await;
        store_incoming(&monitor.store, "m2").await;
        let (status, body) = json_answer(health(State(monitor.clone())).await).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "UP");
        assert_eq!(body["components"]["db"]["details"]["database"], "SQLite");
        assert_eq!(body["components"]["plugins"]["details"]["generation"], 1);
        let queue = &body["components"]["nextMoveQueue"];
        assert_eq!(queue["status"], "UP", "{queue}");
        assert_eq!(queue["details"]["incoming"], 2);
        assert_eq!(queue["details"]["outgoing"], 0);
        assert_eq!(queue["details"]["oldestOutgoingAgeSeconds"], 0.0);
        assert_eq!(queue["details"]["deadLetters"], 0);

        monitor.store.close().await;
        let (status, body) = json_answer(health(State(monitor.clone())).await).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["status"], "DOWN");
        assert_eq!(body["components"]["nextMoveQueue"]["status"], "UNKNOWN");
    }

    #[tokio::test]
    async fn prometheus_counts_cache_lookups_by_how_they_were_answered() {
        let dir = tempfile::tempdir().unwrap();
        let cache = crate::expiring::ExpiringCache::<&str, u8, String>::new();
        for _ in 0..3 {
            let fetched = cache
                .get_or_fetch(&"scope", || {
                    Box::pin(async {
                        Ok((7, tokio::time::Instant::now() + Duration::from_secs(60)))
                    })
                })
                .await;
            assert_eq!(fetched, Ok(7));
        }
        let monitor = Monitor {
            caches: vec![("maskinporten_token", cache.counters())],
            ..Arc::into_inner(monitor(dir.path()).await).unwrap()
        };
        let (status, text) = answer(prometheus(State(Arc::new(monitor))).await).await;
        assert_eq!(status, 200);
        for line in [
            "# TYPE integrasjonspunkt_cache_lookups_total counter",
            "integrasjonspunkt_cache_lookups_total{cache=\"maskinporten_token\",outcome=\"hit\"} 2",
            "integrasjonspunkt_cache_lookups_total{cache=\"maskinporten_token\",outcome=\"shared\"} 0",
            "integrasjonspunkt_cache_lookups_total{cache=\"maskinporten_token\",outcome=\"fetch\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing from\n{text}"
            );
        }
    }

    #[tokio::test]
    async fn prometheus_counts_messages_by_status_and_the_queues() {
        let dir = tempfile::tempdir().unwrap();
        let monitor = monitor(dir.path()).await;
        load_empty_set(&monitor, dir.path()).await;
        store_incoming(&monitor.store, "m1").await;
        let (status, text) = answer(prometheus(State(monitor.clone())).await).await;
        assert_eq!(status, 200);
        for line in [
            "integrasjonspunkt_database_up 1",
            "integrasjonspunkt_messages{direction=\"INCOMING\",service=\"DPO\",channel=\"dpo\",status=\"INNKOMMENDE_MOTTATT\"} 1",
            "integrasjonspunkt_incoming_messages 1",
            "integrasjonspunkt_outbox_messages 0",
            "integrasjonspunkt_dead_letters 0",
            "integrasjonspunkt_plugin_set_generation 1",
            "# TYPE integrasjonspunkt_plugin_call_duration_seconds histogram",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing from\n{text}"
            );
        }
        // Every sample line is `name{labels} value` with a number for the value.
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }

        monitor.store.close().await;
        let (status, text) = answer(prometheus(State(monitor.clone())).await).await;
        assert_eq!(status, 200);
        assert!(
            text.lines().any(|l| l == "integrasjonspunkt_database_up 0"),
            "{text}"
        );
        assert!(!text.contains("integrasjonspunkt_messages{"), "{text}");
    }

    #[tokio::test]
    async fn info_names_the_build_the_environment_and_the_plugin_set() {
        let dir = tempfile::tempdir().unwrap();
        let monitor = monitor(dir.path()).await;
        load_empty_set(&monitor, dir.path()).await;
        let Json(body) = info(State(monitor.clone())).await;
        assert_eq!(body["name"], "integrasjonspunkt");
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(body["profile"], "staging");
        assert_eq!(body["environment"], "staging");
        assert_eq!(body["organisationNumber"], "910075918");
        assert_eq!(body["plugins"], json!({ "generation": 1, "set": [] }));
        monitor.store.close().await;
    }

    #[test]
    fn the_exposition_escapes_label_values_and_help() {
        let mut out = Exposition::default();
        out.family("m", "gauge", "a\\b\nc");
        out.sample("m", &[], 1.0);
        out.sample("m", &[("a", "x\"y"), ("b", "p\\q\nr")], 2.5);
        assert_eq!(
            out.text,
            "# HELP m a\\\\b\\nc\n# TYPE m gauge\nm 1\nm{a=\"x\\\"y\",b=\"p\\\\q\\nr\"} 2.5\n"
        );
    }
}
