//! The Next Move REST API, drop-in compatible with the real integration point: the same paths,
//! methods, JSON field names, status codes and error body, so archive systems work unchanged.
//!
//! Handlers only validate, store and answer; nothing is sent inside a request. Sending is the
//! engine's, which the API wakes when a message enters the outbox.

mod arkivmelding;
mod auth;
mod capabilities;
mod conversations;
mod error;
mod messages_in;
mod messages_out;
mod openapi;
mod page;
mod query;
mod render;
mod statuses;
mod subscriptions;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{delete, get, post};

pub use auth::{Users, hash_password};
pub use error::{ApiError, FieldError};

use crate::blobs::BlobStore;
use crate::crypto::BusinessCertificate;
use crate::engine::{Handoff, SendWriter};
use crate::plugins::PluginHost;
use crate::registry::ServiceRegistry;
use crate::store::Store;

/// What the API needs to know beyond its collaborators.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    /// This organisation's number.
    pub organisation_number: String,
    /// A message's lifetime per channel plugin name, hours; 24 when not given.
    pub lifetime_hours: BTreeMap<String, u64>,
    /// How long a peek locks a message.
    pub lock_timeout: Duration,
    /// Channels (service identifiers) whose statuses go on the status queue.
    pub status_queue_includes: Vec<String>,
    /// The largest file of a multipart send.
    pub multipart_file_limit: u64,
    /// The largest upload when the channel sets no limit.
    pub default_upload_limit: u64,
    /// The largest request body of JSON endpoints.
    pub max_json_bytes: usize,
    /// Webhook ping timeouts.
    pub webhook_timeout: Duration,
}

impl ApiSettings {
    /// The defaults of the real integration point for `organisation_number`.
    pub fn new(organisation_number: impl Into<String>) -> Self {
        Self {
            organisation_number: organisation_number.into(),
            lifetime_hours: BTreeMap::new(),
            lock_timeout: Duration::from_secs(5 * 60),
            status_queue_includes: Vec::new(),
            multipart_file_limit: 5 * 1024 * 1024,
            default_upload_limit: 1 << 30,
            max_json_bytes: 10 << 20,
            webhook_timeout: Duration::from_secs(10),
        }
    }
}

/// Everything a handler may use.
pub struct ApiState {
    /// Persistence.
    pub store: Store,
    /// Where files live.
    pub blobs: Arc<dyn BlobStore>,
    /// Receiver lookups.
    pub registry: Arc<ServiceRegistry>,
    /// The loaded channels.
    pub plugins: Arc<PluginHost>,
    /// The organisation's certificate, to open received packages.
    pub certificate: Option<BusinessCertificate>,
    /// Wakes the outbox worker when a message enters the outbox, and hands it the messages
    /// stored whole.
    pub handoff: Arc<Handoff>,
    /// HTTP Basic users.
    pub users: Users,
    /// Settings.
    pub settings: ApiSettings,
    /// For webhook pings.
    pub http: reqwest::Client,
    /// Where whole messages (multipart sends) are stored, together with each other and with
    /// the outbox worker's completed sends.
    pub writes: SendWriter,
}

/// The API's routes, with HTTP Basic and the real error body over them and over `extra`
/// (`/manage`).
pub fn router(state: Arc<ApiState>, extra: Router) -> Router {
    Router::new()
        .route(
            "/api/capabilities/{receiver}",
            get(capabilities::capabilities),
        )
        .route(
            "/servicerecord/{identifier}",
            get(capabilities::service_record),
        )
        .route(
            "/api/messages/out",
            post(messages_out::create).get(messages_out::list),
        )
        .route("/api/messages/out/multipart", post(messages_out::multipart))
        .route(
            "/api/messages/out/{message_id}",
            get(messages_out::get)
                .put(messages_out::upload)
                .post(messages_out::send)
                .delete(messages_out::remove),
        )
        .route("/api/messages/in", get(messages_in::list))
        .route("/api/messages/in/peek", get(messages_in::peek))
        .route("/api/messages/in/pop/{message_id}", get(messages_in::pop))
        .route("/api/messages/in/{message_id}", delete(messages_in::remove))
        .route("/api/conversations", get(conversations::list))
        .route("/api/conversations/queue", get(conversations::queue))
        .route(
            "/api/conversations/messageId/{message_id}",
            get(conversations::by_message_id).delete(conversations::remove_by_message_id),
        )
        .route(
            "/api/conversations/{id}",
            get(conversations::get).delete(conversations::remove),
        )
        .route("/api/statuses", get(statuses::list))
        .route("/api/statuses/peek", get(statuses::peek))
        .route(
            "/api/statuses/{id}",
            get(statuses::by_message_id).delete(statuses::remove),
        )
        .route(
            "/api/subscriptions",
            get(subscriptions::list)
                .post(subscriptions::create)
                .delete(subscriptions::remove_all),
        )
        .route(
            "/api/subscriptions/{id}",
            get(subscriptions::get)
                .put(subscriptions::update)
                .delete(subscriptions::remove),
        )
        .route("/api-docs", get(openapi::document))
        .route("/v3/api-docs", get(openapi::document))
        // Uploads stream without a cap here; the upload handler enforces the channel's limit.
        .layer(DefaultBodyLimit::disable())
        .with_state(state.clone())
        .merge(extra)
        .layer(middleware::from_fn_with_state(state, auth::require_user))
        .layer(middleware::from_fn(error::add_path))
}
