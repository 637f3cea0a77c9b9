//! The configuration service (Konfigurasjonstjeneste), speaking the Spring Cloud Config protocol.
//!
//! The host layers this service's answer over the environment file at start, so the tests need
//! a service whose answer they choose and which tells them what was asked. It answers Spring
//! Cloud Config's environment JSON for the (application, profile) pairs a test has set, 404 for
//! any other, and records every request.
//!
//! | request | answer |
//! |---|---|
//! | `GET /{application}/{profile}[/{label}]` | `200 {name, profiles, label, version, state, propertySources: [{name, source}]}`, or `404` |

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::serving::{Server, lock, record};

/// How many requests are kept for inspection.
const KEPT: usize = 1000;

/// One property source: a name and a flat map of dotted keys.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertySource {
    /// Its name, e.g. `classpath:/config/integrasjonspunkt-staging.properties`.
    pub name: String,
    /// Dotted keys and their values.
    pub source: Map<String, Value>,
}

impl PropertySource {
    /// A source named `name` holding `properties`.
    pub fn new<'a>(
        name: impl Into<String>,
        properties: impl IntoIterator<Item = (&'a str, Value)>,
    ) -> Self {
        Self {
            name: name.into(),
            source: properties
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value))
                .collect(),
        }
    }
}

/// A request the service received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigRequest {
    /// The application asked for.
    pub application: String,
    /// The profile asked for.
    pub profile: String,
    /// The label, if the path carried one.
    pub label: Option<String>,
    /// The status answered.
    pub status: u16,
}

/// How the service is set up.
#[derive(Debug, Clone, Default)]
pub struct ConfigServiceConfig {
    /// The port on 127.0.0.1; 0 lets the system pick a free one.
    pub port: u16,
    /// The answers it starts with, by (application, profile); highest priority source first.
    pub environments: Vec<(String, String, Vec<PropertySource>)>,
}

/// A running configuration service. Dropping it stops the server.
pub struct ConfigService {
    server: Server,
    state: Arc<ConfigState>,
}

type Environments = HashMap<(String, String), Vec<PropertySource>>;

impl ConfigService {
    /// Binds 127.0.0.1 on the configured port and serves until stopped.
    pub async fn start(config: ConfigServiceConfig) -> io::Result<Self> {
        let environments = config
            .environments
            .into_iter()
            .map(|(application, profile, sources)| ((application, profile), sources))
            .collect();
        let state = Arc::new(ConfigState {
            environments: Mutex::new(environments),
            requests: Mutex::new(VecDeque::new()),
            fail_next: Arc::new(AtomicU64::new(0)),
        });
        let app = Router::new()
            .route("/{application}/{profile}", get(environment))
            .route("/{application}/{profile}/{label}", get(labelled))
            .with_state(state.clone());
        let server = Server::start(
            "configuration service",
            config.port,
            app,
            state.fail_next.clone(),
        )
        .await?;
        Ok(Self { server, state })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The run-time fault rules (latency, errors, dropped connections) of this service; the
    /// same rules its `/_faults` endpoint sets.
    pub fn faults(&self) -> &crate::faults::Faults {
        self.server.faults()
    }

    /// Answers `sources` (highest priority first) for `application` and `profile` from now on.
    pub fn set(&self, application: &str, profile: &str, sources: Vec<PropertySource>) {
        lock(&self.state.environments).insert((application.into(), profile.into()), sources);
    }

    /// The requests received so far (the last thousand), oldest first.
    pub fn requests(&self) -> Vec<ConfigRequest> {
        lock(&self.state.requests).iter().cloned().collect()
    }

    /// Answers the next `requests` requests with 503.
    pub fn fail_next(&self, requests: u64) {
        self.state.fail_next.store(requests, Ordering::SeqCst);
    }

    /// Stops accepting connections and waits for requests in flight.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

struct ConfigState {
    environments: Mutex<Environments>,
    requests: Mutex<VecDeque<ConfigRequest>>,
    fail_next: Arc<AtomicU64>,
}

async fn environment(
    State(state): State<Arc<ConfigState>>,
    Path((application, profile)): Path<(String, String)>,
) -> Response {
    answer(&state, application, profile, None)
}

async fn labelled(
    State(state): State<Arc<ConfigState>>,
    Path((application, profile, label)): Path<(String, String, String)>,
) -> Response {
    answer(&state, application, profile, Some(label))
}

fn answer(
    state: &ConfigState,
    application: String,
    profile: String,
    label: Option<String>,
) -> Response {
    let sources = lock(&state.environments)
        .get(&(application.clone(), profile.clone()))
        .cloned();
    let response = match &sources {
        Some(sources) => axum::Json(json!({
            "name": application,
            "profiles": profile.split(',').collect::<Vec<_>>(),
            "label": label,
            "version": null,
            "state": null,
            "propertySources": sources.iter().map(|s| json!({
                "name": s.name,
                "source": s.source,
            })).collect::<Vec<_>>(),
        }))
        .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({
                "status": 404,
                "error": "Not Found",
                "message": format!("no configuration for {application}/{profile}"),
            })),
        )
            .into_response(),
    };
    record(
        &state.requests,
        KEPT,
        ConfigRequest {
            application,
            profile,
            label,
            status: response.status().as_u16(),
        },
    );
    response
}
