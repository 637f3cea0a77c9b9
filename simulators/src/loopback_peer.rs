//! The loopback peer: the provider side of the loopback reference channel.
//!
//! The loopback channel (`plugins/loopback`) exists to exercise the whole plugin path without a
//! real provider, and this is what it talks to. It behaves like a strict provider so that the
//! tests prove something: it checks HTTP Basic credentials, the multipart shape, the envelope
//! (UUIDs, required fields, a JSON SBD) and that the package is a readable zip holding exactly
//! the documents the envelope names. It streams packages to disk, hashing as they arrive,
//! because the point of the channel is that a large message never sits whole in memory, and
//! refuses one over its size limit. It deduplicates on the message id like a provider a sender
//! may retry against.
//!
//! Protocol (every request needs HTTP Basic; errors are JSON `{"error": "…"}`):
//!
//! | request | answer |
//! |---|---|
//! | `POST /messages`, multipart/form-data: `envelope` (JSON) and `package` (zip) | `201 {"reference"}`, or `200` with the first reference for a message id seen before |
//! | `GET /statuses?reference=R1&reference=R2…` | `200 [{messageId, status, at, description?}]`, every status recorded for those references |
//! | `GET /inbox/{identifier}?max=N` | `200 [{reference, sbd}]`, messages for that receiver not yet confirmed, oldest first |
//! | `GET /inbox/{identifier}/{reference}/package` | `200` the package, `application/zip` |
//! | `DELETE /inbox/{identifier}/{reference}` | `204`; records `levert`; repeating it is harmless |
//!
//! Statuses: `mottatt` when a message is accepted, `levert` when its receiver confirms it;
//! `lest`, `feil` and `annet` only when a test calls [`LoopbackPeer::mark`].

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path as UrlPath, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;
use uuid::Uuid;

use crate::serving::Server;

/// The package size limit when the configuration does not set one: 100 MiB.
pub const DEFAULT_MAX_PACKAGE_SIZE: u64 = 100 << 20;

/// The largest envelope part accepted; an envelope is metadata and an SBD.
const MAX_ENVELOPE: usize = 1 << 20;

/// The largest `max` an inbox listing accepts.
const MAX_LISTING: u32 = 1000;

/// How many inbox entries a listing returns when `max` is not given.
const DEFAULT_LISTING: u32 = 100;

/// How the peer is set up.
#[derive(Debug, Clone)]
pub struct LoopbackPeerConfig {
    /// The port on 127.0.0.1; 0 lets the system pick a free one.
    pub port: u16,
    /// The HTTP Basic username every request must carry.
    pub username: String,
    /// The HTTP Basic password every request must carry.
    pub password: String,
    /// The largest package accepted, in bytes; a larger one is refused with 413.
    pub max_package_size: u64,
    /// Where packages are stored; when none, a temporary directory removed when the peer stops.
    pub data_dir: Option<PathBuf>,
}

impl LoopbackPeerConfig {
    /// A peer on a free port with these credentials, the default size limit and a temporary
    /// data directory.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            port: 0,
            username: username.into(),
            password: password.into(),
            max_package_size: DEFAULT_MAX_PACKAGE_SIZE,
            data_dir: None,
        }
    }
}

/// A status the peer records, spelled as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerStatus {
    /// Accepted by the peer.
    Mottatt,
    /// Confirmed by the receiver.
    Levert,
    /// Opened by the receiver (set by a test).
    Lest,
    /// Failed at the receiver (set by a test).
    Feil,
    /// Anything else (set by a test).
    Annet,
}

/// A document as the envelope describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReceivedDocument {
    /// The file name, which is also its entry name in the package.
    pub name: String,
    /// The title, if given.
    pub title: Option<String>,
    /// The media type.
    pub mime_type: String,
    /// Whether it is the main document.
    pub primary: bool,
}

/// What the peer holds about one accepted message, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The message id from the envelope.
    pub message_id: String,
    /// The conversation id from the envelope.
    pub conversation_id: String,
    /// The reference the peer gave it.
    pub reference: String,
    /// The sender identifier from the envelope.
    pub sender: String,
    /// The receiver identifier from the envelope: the inbox it waits in.
    pub receiver: String,
    /// The process identifier from the envelope.
    pub process: String,
    /// The document type from the envelope.
    pub document_type: String,
    /// The SBD JSON from the envelope.
    pub sbd: String,
    /// The expiry from the envelope, milliseconds since the epoch.
    pub expires_at: Option<u64>,
    /// The documents the envelope names, in its order.
    pub documents: Vec<ReceivedDocument>,
    /// The package's entry names, in archive order.
    pub entries: Vec<String>,
    /// The SHA-256 of the package as received, lower-case hex.
    pub package_sha256: String,
    /// The package's size in bytes.
    pub package_size: u64,
    /// The statuses recorded so far, oldest first.
    pub statuses: Vec<PeerStatus>,
}

/// How many requests the peer refused, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refusals {
    /// 400: malformed multipart, envelope, package or query.
    pub bad_request: u64,
    /// 401: missing or wrong credentials.
    pub unauthorized: u64,
    /// 404: unknown path, reference or inbox entry.
    pub not_found: u64,
    /// 413: package over the size limit.
    pub too_large: u64,
    /// 503: refused by [`LoopbackPeer::fail_next`].
    pub unavailable: u64,
}

/// [`LoopbackPeer::mark`] was given a reference the peer never issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownReference(pub String);

impl fmt::Display for UnknownReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the loopback peer has no message with reference {}",
            self.0
        )
    }
}

impl std::error::Error for UnknownReference {}

/// A running loopback peer. Dropping it stops the server; [`LoopbackPeer::shutdown`] stops it
/// gracefully.
pub struct LoopbackPeer {
    server: Server,
    state: Arc<PeerState>,
}

impl LoopbackPeer {
    /// Binds 127.0.0.1 on the configured port and serves until stopped. Must be called inside
    /// a Tokio runtime.
    pub async fn start(config: LoopbackPeerConfig) -> io::Result<Self> {
        let (data_dir, temp_dir) = match config.data_dir {
            Some(dir) => (dir, None),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("loopback-peer-")
                    .tempdir()?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let packages = data_dir.join("packages");
        tokio::fs::create_dir_all(&packages).await?;

        let state = Arc::new(PeerState {
            username: config.username,
            password: config.password,
            max_package_size: config.max_package_size,
            packages,
            _temp_dir: temp_dir,
            fail_next: AtomicU64::new(0),
            refusals: Mutex::new(Refusals::default()),
            book: Mutex::new(Book::default()),
        });

        let server = Server::serve("loopback peer", config.port, router(state.clone())).await?;
        tracing::info!(data_dir = %data_dir.display(), "loopback peer keeps packages here");
        Ok(Self { server, state })
    }

    /// The base URL, `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The run-time fault rules (latency, errors, dropped connections) of this service; the
    /// same rules its `/_faults` endpoint sets.
    pub fn faults(&self) -> &crate::faults::Faults {
        self.server.faults()
    }

    /// The address the peer listens on.
    pub fn address(&self) -> SocketAddr {
        self.server.address()
    }

    /// How many messages were accepted so far: what a waiting test polls, without copying
    /// the messages under the lock the peer's own handlers take.
    pub fn received_count(&self) -> usize {
        self.state.book().messages.len()
    }

    /// Every message accepted so far, in the order accepted.
    pub fn received(&self) -> Vec<ReceivedMessage> {
        self.state
            .book()
            .messages
            .iter()
            .map(|m| ReceivedMessage {
                message_id: m.envelope.message_id.clone(),
                conversation_id: m.envelope.conversation_id.clone(),
                reference: m.reference.clone(),
                sender: m.envelope.sender.clone(),
                receiver: m.envelope.receiver.clone(),
                process: m.envelope.process.clone(),
                document_type: m.envelope.document_type.clone(),
                sbd: m.envelope.sbd.clone(),
                expires_at: m.envelope.expires_at,
                documents: m.envelope.documents.clone(),
                entries: m.entries.clone(),
                package_sha256: m.package_sha256.clone(),
                package_size: m.package_size,
                statuses: m.statuses.iter().map(|s| s.status).collect(),
            })
            .collect()
    }

    /// How many requests were refused so far, by reason.
    pub fn refusals(&self) -> Refusals {
        *lock(&self.state.refusals)
    }

    /// Answers the next `requests` requests, whatever they are, with 503 before checking them.
    pub fn fail_next(&self, requests: u64) {
        self.state.fail_next.store(requests, Ordering::SeqCst);
    }

    /// Records `status` now for the message with `reference`, as its receiver's side would.
    pub fn mark(
        &self,
        reference: &str,
        status: PeerStatus,
        description: Option<&str>,
    ) -> Result<(), UnknownReference> {
        let mut book = self.state.book();
        let message = book
            .by_reference_mut(reference)
            .ok_or_else(|| UnknownReference(reference.to_owned()))?;
        message.record(status, description.map(str::to_owned));
        Ok(())
    }

    /// Stops accepting connections and waits for requests in flight to finish.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

struct PeerState {
    username: String,
    password: String,
    max_package_size: u64,
    packages: PathBuf,
    /// Keeps the temporary data directory alive as long as the server can write to it.
    _temp_dir: Option<tempfile::TempDir>,
    fail_next: AtomicU64,
    refusals: Mutex<Refusals>,
    book: Mutex<Book>,
}

impl PeerState {
    fn book(&self) -> MutexGuard<'_, Book> {
        lock(&self.book)
    }
}

/// A poisoned lock only means a handler panicked; the data is still consistent, because no
/// update spans an await or a fallible step.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Default)]
struct Book {
    messages: Vec<Stored>,
    by_reference: HashMap<String, usize>,
    by_message_id: HashMap<String, usize>,
}

impl Book {
    fn by_reference_mut(&mut self, reference: &str) -> Option<&mut Stored> {
        let index = *self.by_reference.get(reference)?;
        self.messages.get_mut(index)
    }

    /// The message `reference` if it waits in (or was confirmed from) `identifier`'s inbox.
    fn in_inbox(&mut self, identifier: &str, reference: &str) -> Option<&mut Stored> {
        self.by_reference_mut(reference)
            .filter(|m| m.envelope.receiver == identifier)
    }
}

struct Stored {
    envelope: Envelope,
    reference: String,
    entries: Vec<String>,
    package: PathBuf,
    package_sha256: String,
    package_size: u64,
    statuses: Vec<StatusRecord>,
    delivered: bool,
}

impl Stored {
    fn record(&mut self, status: PeerStatus, description: Option<String>) {
        self.statuses.push(StatusRecord {
            status,
            at: now_ms(),
            description,
        });
    }
}

struct StatusRecord {
    status: PeerStatus,
    at: u64,
    description: Option<String>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn router(state: Arc<PeerState>) -> Router {
    // Layers run outermost last-added: count what is refused, then inject faults, then check
    // credentials, and only then route.
    Router::new()
        .route("/messages", post(accept))
        .route("/statuses", get(statuses))
        .route("/inbox/{identifier}", get(inbox))
        .route(
            "/inbox/{identifier}/{reference}",
            axum::routing::delete(confirm),
        )
        .route("/inbox/{identifier}/{reference}/package", get(package))
        .fallback(|| async { Refusal::not_found("no such resource") })
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(middleware::from_fn_with_state(state.clone(), inject_faults))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_refusals,
        ))
        // The package size limit is the peer's own, enforced while streaming.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// A refused request: its status and the reason, answered as JSON `{"error": …}`.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    fn internal(error: impl fmt::Display) -> Self {
        tracing::error!(%error, "loopback peer failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        if self.status.is_client_error() {
            tracing::warn!(status = %self.status, message = %self.message, "loopback peer refused a request");
        }
        let mut response =
            (self.status, axum::Json(json!({ "error": self.message }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"loopback-peer\""),
            );
        }
        response
    }
}

async fn count_refusals(
    State(state): State<Arc<PeerState>>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    let mut refusals = lock(&state.refusals);
    match response.status() {
        StatusCode::BAD_REQUEST => refusals.bad_request += 1,
        StatusCode::UNAUTHORIZED => refusals.unauthorized += 1,
        StatusCode::NOT_FOUND => refusals.not_found += 1,
        StatusCode::PAYLOAD_TOO_LARGE => refusals.too_large += 1,
        StatusCode::SERVICE_UNAVAILABLE => refusals.unavailable += 1,
        _ => {}
    }
    response
}

async fn inject_faults(
    State(state): State<Arc<PeerState>>,
    request: Request,
    next: Next,
) -> Response {
    let injected = state
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if injected {
        return Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable (injected fault)",
        )
        .into_response();
    }
    next.run(request).await
}

async fn authenticate(
    State(state): State<Arc<PeerState>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(basic_credentials);
    match presented {
        Some((username, password)) if username == state.username && password == state.password => {
            next.run(request).await
        }
        Some(_) => {
            Refusal::new(StatusCode::UNAUTHORIZED, "wrong username or password").into_response()
        }
        None => Refusal::new(StatusCode::UNAUTHORIZED, "HTTP Basic credentials required")
            .into_response(),
    }
}

/// The username and password of an `Authorization: Basic …` value.
fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(BASE64.decode(encoded.trim()).ok()?).ok()?;
    let (username, password) = decoded.split_once(':')?;
    Some((username.to_owned(), password.to_owned()))
}

/// The `envelope` part as the loopback channel writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Envelope {
    message_id: String,
    conversation_id: String,
    sender: String,
    receiver: String,
    process: String,
    document_type: String,
    sbd: String,
    expires_at: Option<u64>,
    documents: Vec<ReceivedDocument>,
}

impl Envelope {
    /// Every problem with the envelope, so one refusal names them all.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (field, value) in [
            ("messageId", &self.message_id),
            ("conversationId", &self.conversation_id),
        ] {
            if Uuid::parse_str(value).is_err() {
                problems.push(format!("{field} {value:?} is not a UUID"));
            }
        }
        for (field, value) in [
            ("sender", &self.sender),
            ("receiver", &self.receiver),
            ("process", &self.process),
            ("documentType", &self.document_type),
        ] {
            if value.trim().is_empty() {
                problems.push(format!("{field} is empty"));
            }
        }
        match serde_json::from_str::<serde_json::Value>(&self.sbd) {
            Ok(serde_json::Value::Object(_)) => {}
            Ok(_) => problems.push("sbd is not a JSON object".to_owned()),
            Err(error) => problems.push(format!("sbd is not JSON: {error}")),
        }
        if self.expires_at == Some(0) {
            problems.push("expiresAt is 0".to_owned());
        }
        for document in &self.documents {
            if !document.mime_type.contains('/') {
                problems.push(format!(
                    "document {:?} has no media type (mimeType {:?})",
                    document.name, document.mime_type
                ));
            }
        }
        if self.documents.iter().filter(|d| d.primary).count() > 1 {
            problems.push("more than one document is primary".to_owned());
        }
        let mut names: Vec<&str> = self.documents.iter().map(|d| d.name.as_str()).collect();
        if names.iter().any(|n| n.trim().is_empty()) {
            problems.push("a document has an empty name".to_owned());
        }
        names.sort_unstable();
        if names.windows(2).any(|pair| pair[0] == pair[1]) {
            problems.push("two documents have the same name".to_owned());
        }
        problems
    }
}

/// A package being received: a file in the packages directory that is removed again unless
/// the message is accepted.
struct Upload {
    path: PathBuf,
    sha256: String,
    size: u64,
    kept: bool,
}

impl Upload {
    /// Moves the package to its final name; from then on it belongs to the message.
    fn keep(mut self, path: &Path) -> io::Result<()> {
        std::fs::rename(&self.path, path)?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Streams the `package` part to disk, hashing it on the way, and refuses it as soon as it
/// passes the size limit.
async fn receive_package(field: &mut Field<'_>, state: &PeerState) -> Result<Upload, Refusal> {
    let mut upload = Upload {
        path: state.packages.join(format!("{}.part", Uuid::new_v4())),
        sha256: String::new(),
        size: 0,
        kept: false,
    };
    let mut file = tokio::fs::File::create(&upload.path)
        .await
        .map_err(Refusal::internal)?;
    let mut hasher = Sha256::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| {
        Refusal::bad_request(format!("the package part is broken: {}", e.body_text()))
    })? {
        upload.size += chunk.len() as u64;
        if upload.size > state.max_package_size {
            return Err(Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the package exceeds {} bytes", state.max_package_size),
            ));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(Refusal::internal)?;
    }
    file.flush().await.map_err(Refusal::internal)?;
    upload.sha256 = hex::encode(hasher.finalize());
    Ok(upload)
}

/// Reads the `envelope` part, refusing one larger than an envelope can reasonably be.
async fn receive_envelope(field: &mut Field<'_>) -> Result<Vec<u8>, Refusal> {
    let mut envelope = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| {
        Refusal::bad_request(format!("the envelope part is broken: {}", e.body_text()))
    })? {
        if envelope.len() + chunk.len() > MAX_ENVELOPE {
            return Err(Refusal::bad_request(format!(
                "the envelope exceeds {MAX_ENVELOPE} bytes"
            )));
        }
        envelope.extend_from_slice(&chunk);
    }
    Ok(envelope)
}

/// Whether a part's content type is `expected`, ignoring parameters and case.
fn has_content_type(field: &Field<'_>, expected: &str) -> bool {
    field
        .content_type()
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(expected))
}

/// The entry names of the zip at `path`, after reading every entry through (which checks each
/// entry's CRC); an error says why the package is unreadable.
fn zip_entries(path: &Path) -> Result<Vec<String>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open the package: {e}"))?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| format!("the package is not a readable zip: {e}"))?;
    let mut names = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| format!("package entry {index} is unreadable: {e}"))?;
        let name = entry
            .name()
            .map_err(|e| format!("package entry {index} has a bad name: {e}"))?
            .into_owned();
        io::copy(&mut entry, &mut io::sink())
            .map_err(|e| format!("package entry {name:?} is unreadable: {e}"))?;
        names.push(name);
    }
    Ok(names)
}

async fn accept(
    State(state): State<Arc<PeerState>>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, Refusal> {
    let mut multipart = multipart.map_err(|e| {
        Refusal::bad_request(format!("expected multipart/form-data: {}", e.body_text()))
    })?;
    let mut envelope = None;
    let mut package = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| Refusal::bad_request(format!("malformed multipart body: {}", e.body_text())))?
    {
        match field.name() {
            Some("envelope") if envelope.is_none() => {
                if !has_content_type(&field, "application/json") {
                    return Err(Refusal::bad_request(
                        "the envelope part must be application/json",
                    ));
                }
                envelope = Some(receive_envelope(&mut field).await?);
            }
            Some("package") if package.is_none() => {
                if !has_content_type(&field, "application/zip") {
                    return Err(Refusal::bad_request(
                        "the package part must be application/zip",
                    ));
                }
                package = Some(receive_package(&mut field, &state).await?);
            }
            Some(name @ ("envelope" | "package")) => {
                return Err(Refusal::bad_request(format!("more than one {name} part")));
            }
            Some(name) => return Err(Refusal::bad_request(format!("unexpected part {name:?}"))),
            None => return Err(Refusal::bad_request("a part has no name")),
        }
    }
    let envelope = envelope.ok_or_else(|| Refusal::bad_request("the envelope part is missing"))?;
    let package = package.ok_or_else(|| Refusal::bad_request("the package part is missing"))?;

    let envelope: Envelope = serde_json::from_slice(&envelope)
        .map_err(|e| Refusal::bad_request(format!("the envelope is not valid: {e}")))?;
    let problems = envelope.problems();
    if !problems.is_empty() {
        return Err(Refusal::bad_request(format!(
            "the envelope is not valid: {}",
            problems.join("; ")
        )));
    }

    let path = package.path.clone();
    let entries = tokio::task::spawn_blocking(move || zip_entries(&path))
        .await
        .map_err(Refusal::internal)?
        .map_err(Refusal::bad_request)?;
    let mut named: Vec<&str> = envelope.documents.iter().map(|d| d.name.as_str()).collect();
    let mut found: Vec<&str> = entries.iter().map(String::as_str).collect();
    named.sort_unstable();
    found.sort_unstable();
    if named != found {
        return Err(Refusal::bad_request(format!(
            "the package holds {found:?} but the envelope names {named:?}"
        )));
    }

    let mut book = state.book();
    if let Some(&index) = book.by_message_id.get(&envelope.message_id) {
        let reference = book.messages[index].reference.clone();
        tracing::info!(message_id = %envelope.message_id, %reference, "loopback peer saw a message again");
        return Ok((
            StatusCode::OK,
            axum::Json(json!({ "reference": reference })),
        )
            .into_response());
    }
    let reference = Uuid::new_v4().to_string();
    let stored_at = state.packages.join(format!("{reference}.zip"));
    let (package_sha256, package_size) = (package.sha256.clone(), package.size);
    package.keep(&stored_at).map_err(Refusal::internal)?;
    let mut message = Stored {
        envelope,
        reference: reference.clone(),
        entries,
        package: stored_at,
        package_sha256,
        package_size,
        statuses: Vec::new(),
        delivered: false,
    };
    message.record(PeerStatus::Mottatt, None);
    tracing::info!(
        message_id = %message.envelope.message_id,
        %reference,
        receiver = %message.envelope.receiver,
        size = package_size,
        "loopback peer accepted a message"
    );
    let index = book.messages.len();
    book.by_message_id
        .insert(message.envelope.message_id.clone(), index);
    book.by_reference.insert(reference.clone(), index);
    book.messages.push(message);
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "reference": reference })),
    )
        .into_response())
}

/// The query's pairs, with a JSON refusal for a malformed query string.
fn pairs(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Vec<(String, String)>, Refusal> {
    query
        .map(|Query(pairs)| pairs)
        .map_err(|e| Refusal::bad_request(format!("malformed query: {}", e.body_text())))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusOut<'a> {
    message_id: &'a str,
    status: PeerStatus,
    at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
}

async fn statuses(
    State(state): State<Arc<PeerState>>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, Refusal> {
    let mut references = Vec::new();
    for (key, value) in pairs(query)? {
        if key != "reference" {
            return Err(Refusal::bad_request(format!(
                "unknown query parameter {key:?}"
            )));
        }
        references.push(value);
    }
    if references.is_empty() {
        return Err(Refusal::bad_request("at least one reference is required"));
    }
    let book = state.book();
    let statuses: Vec<StatusOut<'_>> = references
        .iter()
        .filter_map(|reference| book.by_reference.get(reference))
        .flat_map(|&index| {
            let message = &book.messages[index];
            message.statuses.iter().map(|s| StatusOut {
                message_id: &message.envelope.message_id,
                status: s.status,
                at: s.at,
                description: s.description.as_deref(),
            })
        })
        .collect();
    Ok(axum::Json(statuses).into_response())
}

#[derive(Serialize)]
struct Waiting<'a> {
    reference: &'a str,
    sbd: &'a str,
}

async fn inbox(
    State(state): State<Arc<PeerState>>,
    UrlPath(identifier): UrlPath<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, Refusal> {
    let mut max = DEFAULT_LISTING;
    for (key, value) in pairs(query)? {
        match key.as_str() {
            "max" => {
                max = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LISTING).contains(n))
                    .ok_or_else(|| {
                        Refusal::bad_request(format!(
                            "max must be 1 to {MAX_LISTING}, not {value:?}"
                        ))
                    })?;
            }
            _ => {
                return Err(Refusal::bad_request(format!(
                    "unknown query parameter {key:?}"
                )));
            }
        }
    }
    let book = state.book();
    let waiting: Vec<Waiting<'_>> = book
        .messages
        .iter()
        .filter(|m| m.envelope.receiver == identifier && !m.delivered)
        .take(max as usize)
        .map(|m| Waiting {
            reference: &m.reference,
            sbd: &m.envelope.sbd,
        })
        .collect();
    Ok(axum::Json(waiting).into_response())
}

async fn package(
    State(state): State<Arc<PeerState>>,
    UrlPath((identifier, reference)): UrlPath<(String, String)>,
) -> Result<Response, Refusal> {
    let (path, size) = {
        let mut book = state.book();
        let message = book
            .in_inbox(&identifier, &reference)
            .filter(|m| !m.delivered)
            .ok_or_else(|| {
                Refusal::not_found(format!(
                    "no message {reference} waits in inbox {identifier}"
                ))
            })?;
        (message.package.clone(), message.package_size)
    };
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(Refusal::internal)?;
    Response::builder()
        .header(header::CONTENT_TYPE, "application/zip")
        .header(header::CONTENT_LENGTH, size)
        .body(Body::from_stream(ReaderStream::new(file)))
        .map_err(Refusal::internal)
}

async fn confirm(
    State(state): State<Arc<PeerState>>,
    UrlPath((identifier, reference)): UrlPath<(String, String)>,
) -> Result<StatusCode, Refusal> {
    let package = {
        let mut book = state.book();
        let message = book.in_inbox(&identifier, &reference).ok_or_else(|| {
            Refusal::not_found(format!("no message {reference} in inbox {identifier}"))
        })?;
        if message.delivered {
            return Ok(StatusCode::NO_CONTENT);
        }
        message.delivered = true;
        message.record(PeerStatus::Levert, None);
        tracing::info!(%reference, receiver = %identifier, "loopback peer delivered a message");
        message.package.clone()
    };
    // The receiver has it; like a real provider, the peer does not keep the bytes.
    if let Err(error) = tokio::fs::remove_file(&package).await {
        tracing::warn!(%error, path = %package.display(), "loopback peer could not remove a delivered package");
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_decoded() {
        let value = format!("Basic {}", BASE64.encode("user:pa:ss"));
        assert_eq!(
            basic_credentials(&value),
            Some(("user".into(), "pa:ss".into()))
        );
        let value = format!("basic {}", BASE64.encode("user:pw"));
        assert_eq!(
            basic_credentials(&value),
            Some(("user".into(), "pw".into()))
        );
        assert_eq!(basic_credentials("Bearer abc"), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
        assert_eq!(
            basic_credentials(&format!("Basic {}", BASE64.encode("nocolon"))),
            None
        );
    }
}
