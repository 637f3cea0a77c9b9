//! DPE's Azure Service Bus: the REST subset the integration point uses to send eInnsyn
//! messages and to receive them by peek-lock (reference §9).
//!
//! A queue that took any message and any token would hide the mistakes DPE is prone to: a
//! signature over the wrong URI, an expiry in milliseconds, a message left undeleted that comes
//! back. So every request carries a shared access signature checked as Service Bus checks it
//! (HMAC-SHA256 with the policy's key over the URL-encoded resource URI, a newline and the
//! expiry; the key name known; not expired; the resource covering the request), queues exist
//! only under DPE's names (`nextbestqueue{orgnr}{innsyn|data|meeting}`), a locked message is
//! invisible until its lock expires and then comes back with its delivery count raised, and a
//! message above the size bound is refused. Refusals carry Service Bus's XML error body.
//!
//! | request | answer |
//! |---|---|
//! | `POST /{queue}/messages`, optional `BrokerProperties` JSON header | `201`; `400` bad properties, `413` too large |
//! | `POST /{queue}/messages/head` | `201` the body, `BrokerProperties` and `Location` headers; `204` when none is visible |
//! | `DELETE /{queue}/messages/{messageId}/{lockToken}` | `200`; `404` unknown message or lock (expired ones included) |
//! | `GET /_queues` | inspection: every queue with its messages, no SAS needed |
//!
//! Every request but inspection answers `401` without a valid SAS and `404` for a queue name
//! DPE does not use.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::Sha256;

use crate::fixture::{ServiceBusKey, valid_orgnr};
use crate::serving::{Server, lock};

/// The largest message body accepted. The integration point limits DPE uploads to 2 MB of
/// documents; its JSON payload carries the ASiC base64-encoded twice (reference §9), which
/// makes 2 MB of documents about 3.6 MB on the wire, so the bound leaves room for that.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// How long a peek-lock holds a message (Service Bus's default lock duration).
pub const DEFAULT_LOCK_DURATION: Duration = Duration::from_secs(30);

/// Deliveries after which a message goes to the dead-letter queue (Service Bus's default
/// `MaxDeliveryCount`).
pub const MAX_DELIVERY_COUNT: u32 = 10;

/// The queue modes DPE uses as queue name suffixes.
pub const QUEUE_MODES: [&str; 3] = ["innsyn", "data", "meeting"];

/// How the Service Bus is set up.
#[derive(Debug, Clone)]
pub struct ServiceBusConfig {
    /// The port on 127.0.0.1; 0 lets the system pick a free one.
    pub port: u16,
    /// The shared access policy every request must be signed with.
    pub policy: ServiceBusKey,
    /// How long a peek-lock hides a message.
    pub lock_duration: Duration,
    /// The largest message body accepted, in bytes.
    pub max_message_size: usize,
}

impl ServiceBusConfig {
    /// A bus on a free port accepting signatures of `policy`, with Service Bus's defaults.
    pub fn new(policy: ServiceBusKey) -> Self {
        Self {
            port: 0,
            policy,
            lock_duration: DEFAULT_LOCK_DURATION,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        }
    }
}

/// A message in a queue, for inspection.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedMessage {
    /// `MessageId`: the sender's, or one the bus made.
    pub message_id: String,
    /// `SequenceNumber`, from 1 per queue.
    pub sequence_number: u64,
    /// How many times it was handed out by peek-lock.
    pub delivery_count: u32,
    /// Whether a lock hides it now.
    pub locked: bool,
    /// The `BrokerProperties` the sender set.
    pub properties: Map<String, Value>,
    /// The body.
    #[serde(serialize_with = "body_text")]
    pub body: Bytes,
}

/// A running Service Bus. Dropping it stops the server.
pub struct ServiceBus {
    server: Server,
    state: Arc<BusState>,
}

struct BusState {
    config: ServiceBusConfig,
    queues: Mutex<HashMap<String, Queue>>,
    refused: AtomicU64,
    fail_next: Arc<AtomicU64>,
}

#[derive(Default)]
struct Queue {
    messages: VecDeque<Stored>,
    dead_letters: Vec<Stored>,
    last_sequence: u64,
}

struct Stored {
    message: QueuedMessage,
    content_type: Option<HeaderValue>,
    enqueued: SystemTime,
    lock: Option<Lock>,
}

struct Lock {
    token: String,
    until: Instant,
}

impl ServiceBus {
    /// Binds 127.0.0.1 on the configured port and serves until stopped.
    pub async fn start(config: ServiceBusConfig) -> io::Result<Self> {
        let state = Arc::new(BusState {
            config,
            queues: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
            fail_next: Arc::new(AtomicU64::new(0)),
        });
        let app = Router::new()
            .route("/{queue}/messages", post(send))
            .route("/{queue}/messages/head", post(peek_lock))
            .route(
                "/{queue}/messages/{message_id}/{lock_token}",
                delete(complete),
            )
            .route("/_queues", get(inspect))
            .fallback(|| async { azure_error(StatusCode::NOT_FOUND, "No such resource.") })
            // The size bound is checked by the handler, which answers in Service Bus's format.
            .layer(DefaultBodyLimit::disable())
            .with_state(state.clone());
        let server = Server::start(
            "service bus",
            state.config.port,
            app,
            state.fail_next.clone(),
        )
        .await?;
        Ok(Self { server, state })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash: the namespace address.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The run-time fault rules of this service; the same rules its `/_faults` endpoint sets.
    pub fn faults(&self) -> &crate::faults::Faults {
        self.server.faults()
    }

    /// The messages in `queue` (case-insensitive), locked ones included, in order.
    pub fn messages(&self, queue: &str) -> Vec<QueuedMessage> {
        let now = Instant::now();
        lock(&self.state.queues)
            .get(&queue.to_ascii_lowercase())
            .map(|queue| queue.messages.iter().map(|s| s.snapshot(now)).collect())
            .unwrap_or_default()
    }

    /// The messages of `queue` that reached [`MAX_DELIVERY_COUNT`] deliveries.
    pub fn dead_letters(&self, queue: &str) -> Vec<QueuedMessage> {
        let now = Instant::now();
        lock(&self.state.queues)
            .get(&queue.to_ascii_lowercase())
            .map(|queue| queue.dead_letters.iter().map(|s| s.snapshot(now)).collect())
            .unwrap_or_default()
    }

    /// How many requests were refused for their signature.
    pub fn refused(&self) -> u64 {
        self.state.refused.load(Ordering::SeqCst)
    }

    /// Answers the next `requests` requests, whatever they are, with 503.
    pub fn fail_next(&self, requests: u64) {
        self.state.fail_next.store(requests, Ordering::SeqCst);
    }

    /// Stops accepting connections and waits for requests in flight.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

impl Stored {
    fn locked(&self, now: Instant) -> bool {
        self.lock.as_ref().is_some_and(|lock| lock.until > now)
    }

    fn snapshot(&self, now: Instant) -> QueuedMessage {
        QueuedMessage {
            locked: self.locked(now),
            ..self.message.clone()
        }
    }
}

/// Why a request's shared access signature is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SasRefusal {
    /// No `SharedAccessSignature` authorization.
    Missing,
    /// Not `sr=…&sig=…&se=…&skn=…`.
    Malformed(String),
    /// `skn` names no policy of the namespace.
    UnknownKeyName(String),
    /// The signature does not verify with the policy's key.
    InvalidSignature,
    /// `se` has passed.
    Expired(u64),
    /// `sr` does not cover the requested resource.
    WrongAudience {
        /// The resource signed, without its scheme.
        signed: String,
        /// The resource requested, host and path.
        requested: String,
    },
}

impl std::fmt::Display for SasRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing => write!(
                f,
                "MissingToken: The authorization header was not provided."
            ),
            Self::Malformed(why) => write!(f, "MalformedToken: {why}."),
            Self::UnknownKeyName(name) => write!(
                f,
                "InvalidSignature: The token has an invalid signature; no shared access policy {name:?}."
            ),
            Self::InvalidSignature => {
                write!(f, "InvalidSignature: The token has an invalid signature.")
            }
            Self::Expired(expiry) => write!(f, "ExpiredToken: The token is expired (se={expiry})."),
            Self::WrongAudience { signed, requested } => write!(
                f,
                "InvalidAudience: The token audience {signed} does not cover {requested}."
            ),
        }
    }
}

/// Checks `authorization` as Service Bus does for a request to `requested` (host and path, no
/// scheme) at `now` (seconds since the epoch), with the namespace's one `policy`.
pub fn verify_sas(
    authorization: Option<&str>,
    requested: &str,
    policy: &ServiceBusKey,
    now: u64,
) -> Result<(), SasRefusal> {
    let token = authorization
        .and_then(|value| value.strip_prefix("SharedAccessSignature "))
        .ok_or(SasRefusal::Missing)?;
    let mut fields = HashMap::new();
    for pair in token.trim().split('&') {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| SasRefusal::Malformed(format!("{pair:?} is not name=value")))?;
        fields.insert(name, value);
    }
    let field = |name: &str| {
        fields
            .get(name)
            .copied()
            .ok_or_else(|| SasRefusal::Malformed(format!("no {name}")))
    };
    let (resource, signature, expiry, key_name) =
        (field("sr")?, field("sig")?, field("se")?, field("skn")?);
    if key_name != policy.key_name {
        return Err(SasRefusal::UnknownKeyName(key_name.to_owned()));
    }
    let signature = urlencoding::decode(signature)
        .ok()
        .and_then(|text| STANDARD.decode(text.as_bytes()).ok())
        .ok_or_else(|| SasRefusal::Malformed("sig is not URL-encoded base64".to_owned()))?;
    // The string signed holds `sr` URL-encoded, as the token carries it.
    let mut mac = Hmac::<Sha256>::new_from_slice(policy.key.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(format!("{resource}\n{expiry}").as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| SasRefusal::InvalidSignature)?;
    let expiry: u64 = expiry
        .parse()
        .map_err(|_| SasRefusal::Malformed(format!("se {expiry:?} is not seconds")))?;
    if expiry <= now {
        return Err(SasRefusal::Expired(expiry));
    }
    let signed = urlencoding::decode(resource)
        .map_err(|_| SasRefusal::Malformed("sr is not URL-encoded".to_owned()))?;
    let signed = without_scheme(&signed)
        .trim_end_matches('/')
        .to_ascii_lowercase();
    let requested = requested.to_ascii_lowercase();
    let covered = requested == signed
        || requested
            .strip_prefix(&signed)
            .is_some_and(|rest| rest.starts_with('/'));
    if !covered {
        return Err(SasRefusal::WrongAudience { signed, requested });
    }
    Ok(())
}

fn without_scheme(uri: &str) -> &str {
    uri.split_once("://").map_or(uri, |(_, rest)| rest)
}

/// Whether `name` is a queue DPE uses: `nextbestqueue`, an organisation number, a mode.
pub fn is_dpe_queue(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let Some(rest) = name.strip_prefix("nextbestqueue") else {
        return false;
    };
    let (orgnr, mode) = rest.split_at(rest.len().min(9));
    valid_orgnr(orgnr) && QUEUE_MODES.contains(&mode)
}

impl BusState {
    /// The queue's key when the request is signed and the queue is DPE's; else the refusal.
    fn admit(&self, queue: &str, headers: &HeaderMap, path: &str) -> Result<String, Refusal> {
        let host = headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let requested = format!("{host}{path}");
        if let Err(refusal) = verify_sas(authorization, &requested, &self.config.policy, now) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            tracing::warn!(%refusal, %requested, "service bus refused a signature");
            return Err(Refusal(StatusCode::UNAUTHORIZED, refusal.to_string()));
        }
        if !is_dpe_queue(queue) {
            return Err(Refusal(
                StatusCode::NOT_FOUND,
                format!("The messaging entity 'sb://{host}/{queue}' could not be found."),
            ));
        }
        Ok(queue.to_ascii_lowercase())
    }
}

/// A request refused before its queue is touched: the status and the error detail.
struct Refusal(StatusCode, String);

/// `POST /{queue}/messages`.
async fn send(
    State(state): State<Arc<BusState>>,
    Path(queue): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = format!("/{queue}/messages");
    let queue = match state.admit(&queue, &headers, &path) {
        Ok(queue) => queue,
        Err(Refusal(status, detail)) => return azure_error(status, &detail),
    };
    let limit = state.config.max_message_size;
    let Ok(body) = axum::body::to_bytes(body, limit).await else {
        return azure_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("The message is larger than the {limit} bytes the queue accepts."),
        );
    };
    let properties = match headers.get("BrokerProperties") {
        None => Map::new(),
        Some(value) => match serde_json::from_slice::<Value>(value.as_bytes()) {
            Ok(Value::Object(properties)) => properties,
            _ => {
                return azure_error(
                    StatusCode::BAD_REQUEST,
                    "The BrokerProperties header is not a JSON object.",
                );
            }
        },
    };
    let message_id = properties
        .get("MessageId")
        .and_then(Value::as_str)
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned);
    let mut queues = lock(&state.queues);
    let queue = queues.entry(queue).or_default();
    queue.last_sequence += 1;
    queue.messages.push_back(Stored {
        message: QueuedMessage {
            message_id,
            sequence_number: queue.last_sequence,
            delivery_count: 0,
            locked: false,
            properties,
            body,
        },
        content_type: headers.get(header::CONTENT_TYPE).cloned(),
        enqueued: SystemTime::now(),
        lock: None,
    });
    StatusCode::CREATED.into_response()
}

/// `POST /{queue}/messages/head`: the first visible message, locked.
async fn peek_lock(
    State(state): State<Arc<BusState>>,
    Path(queue_name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/{queue_name}/messages/head");
    let queue = match state.admit(&queue_name, &headers, &path) {
        Ok(queue) => queue,
        Err(Refusal(status, detail)) => return azure_error(status, &detail),
    };
    let now = Instant::now();
    let mut queues = lock(&state.queues);
    let Some(queue) = queues.get_mut(&queue) else {
        return StatusCode::NO_CONTENT.into_response();
    };
    // A message handed out as often as allowed and not completed is dead-lettered.
    let (exhausted, kept): (Vec<_>, Vec<_>) = queue.messages.drain(..).partition(|stored| {
        !stored.locked(now) && stored.message.delivery_count >= MAX_DELIVERY_COUNT
    });
    queue.messages = kept.into();
    queue.dead_letters.extend(exhausted);
    let Some(stored) = queue.messages.iter_mut().find(|stored| !stored.locked(now)) else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let token = uuid::Uuid::new_v4().to_string();
    let until = now + state.config.lock_duration;
    stored.lock = Some(Lock {
        token: token.clone(),
        until,
    });
    stored.message.delivery_count += 1;
    let locked_until = SystemTime::now() + state.config.lock_duration;
    let message = &stored.message;
    let broker_properties = json!({
        "DeliveryCount": message.delivery_count,
        "EnqueuedSequenceNumber": 0,
        "EnqueuedTimeUtc": httpdate::fmt_http_date(stored.enqueued),
        "LockToken": token,
        "LockedUntilUtc": httpdate::fmt_http_date(locked_until),
        "MessageId": message.message_id,
        "SequenceNumber": message.sequence_number,
        "State": "Active",
    });
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let location = format!(
        "http://{host}/{queue_name}/messages/{}/{token}",
        urlencoding::encode(&message.message_id)
    );
    let mut response = (StatusCode::CREATED, message.body.clone()).into_response();
    let response_headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&broker_properties.to_string()) {
        response_headers.insert("BrokerProperties", value);
    }
    if let Ok(value) = HeaderValue::from_str(&location) {
        response_headers.insert(header::LOCATION, value);
    }
    if let Some(content_type) = &stored.content_type {
        response_headers.insert(header::CONTENT_TYPE, content_type.clone());
    }
    response
}

/// `DELETE /{queue}/messages/{messageId}/{lockToken}`: completes a locked message.
async fn complete(
    State(state): State<Arc<BusState>>,
    Path((queue_name, message_id, lock_token)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/{queue_name}/messages/{message_id}/{lock_token}");
    let queue = match state.admit(&queue_name, &headers, &path) {
        Ok(queue) => queue,
        Err(Refusal(status, detail)) => return azure_error(status, &detail),
    };
    let now = Instant::now();
    let mut queues = lock(&state.queues);
    let position = queues.get(&queue).and_then(|queue| {
        queue.messages.iter().position(|stored| {
            stored.message.message_id == message_id
                && stored.locked(now)
                && stored
                    .lock
                    .as_ref()
                    .is_some_and(|lock| lock.token.eq_ignore_ascii_case(&lock_token))
        })
    });
    match (queues.get_mut(&queue), position) {
        (Some(queue), Some(position)) => {
            queue.messages.remove(position);
            StatusCode::OK.into_response()
        }
        _ => azure_error(
            StatusCode::NOT_FOUND,
            &format!(
                "No message with MessageId {message_id} holds the lock {lock_token}; the lock \
                 may have expired."
            ),
        ),
    }
}

/// `GET /_queues`: every queue's messages, for a test or a developer.
async fn inspect(State(state): State<Arc<BusState>>) -> Response {
    let now = Instant::now();
    let queues: BTreeMap<String, Vec<QueuedMessage>> = lock(&state.queues)
        .iter()
        .map(|(name, queue)| {
            let messages = queue.messages.iter().map(|s| s.snapshot(now)).collect();
            (name.clone(), messages)
        })
        .collect();
    axum::Json(queues).into_response()
}

/// Service Bus's error body: `<Error><Code>…</Code><Detail>…</Detail></Error>`.
fn azure_error(status: StatusCode, detail: &str) -> Response {
    let detail = detail
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let tracking = uuid::Uuid::new_v4();
    let body = format!(
        "<Error><Code>{}</Code><Detail>{detail} TrackingId:{tracking}, SystemTracker:simulated, \
         Timestamp:{}</Detail></Error>",
        status.as_u16(),
        httpdate::fmt_http_date(SystemTime::now()),
    );
    (
        status,
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Bodies show as text when they are UTF-8 (DPE's are JSON), else as base64.
fn body_text<S: serde::Serializer>(body: &Bytes, serializer: S) -> Result<S::Ok, S::Error> {
    match std::str::from_utf8(body) {
        Ok(text) => serializer.serialize_str(text),
        Err(_) => serializer.serialize_str(&format!("base64:{}", STANDARD.encode(body))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dpe_queue_names_exist() {
        assert!(is_dpe_queue("nextbestqueue910075918innsyn"));
        assert!(is_dpe_queue("NextBestQueue910075918data"));
        assert!(is_dpe_queue("nextbestqueue910075918meeting"));
        assert!(!is_dpe_queue("nextbestqueue910075919innsyn"));
        assert!(!is_dpe_queue("nextbestqueue910075918journal"));
        assert!(!is_dpe_queue("testqueue"));
        assert!(!is_dpe_queue("nextbestqueue9100"));
    }
}
