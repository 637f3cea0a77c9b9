//! The DPI meldingsformidler: the "corner 2" REST API digital post to citizens goes through, and
//! KRR's print-certificate lookup the integration point makes before every DPI send.
//!
//! It checks what the real one checks, so a test proves the integration point's DPI client
//! right: a Maskinporten token with scope `digitalpostinnbygger:send`; a `forretningsmelding`
//! that is an RS256 JWS signed by a business certificate (in `x5c`) chained to the test CA,
//! whose payload is an innbyggerpost SBD (`standardBusinessDocument` wrapper, `digital`,
//! `utskrift` or `flyttet`, the standard and process its type requires, a UUID message id);
//! a `dokumentpakke` that is CMS EnvelopedData opening with a mailbox or print provider's key
//! and holding an ASiC-E with `manifest.xml` and `META-INF/signatures.xml`, and whose SHA-256
//! is the SBD's `dokumentpakkefingeravtrykk`. The package streams to disk. Each accepted
//! message gets the statuses OPPRETTET and SENDT and a signed `leveringskvittering`; a test adds
//! an `aapningskvittering` with [`Meldingsformidler::mark_opened`], a `feil` (and FEILET) with
//! [`Meldingsformidler::mark_failed`], or any other receipt with
//! [`Meldingsformidler::send_receipt`]. A message id seen before is answered 200 again and not
//! stored twice.
//!
//! The API lives under `/api` (the local environment's `meldingsformidler` base URL); every
//! call but the print certificate and the inspection list needs the bearer token. Refusals
//! are `application/problem+json` (`type`, `title`, `status`, `detail`).
//!
//! | request | answer |
//! |---|---|
//! | `POST /api/messages/out?kanal=`, multipart `forretningsmelding` (JWS) + `dokumentpakke` (CMS) | `200`; `400`, `401`, `403`, `413` problem |
//! | `GET /api/messages/out/{messageId}/statuses` | `200 [{status, timestamp, beskrivelse?}]` (`[]` for an unknown id) |
//! | `GET /api/messages/in?avsenderidentifikator=&kanal=&page_size=` | `200 [{forretningsmelding}]`, unread receipts, oldest first; a parameter left out does not filter |
//! | `POST /api/messages/in/{messageId}/read` | `200`; the receipt leaves the list; `404` for an unknown one |
//! | `GET /rest/v2/printSertifikat` | `200 {postkasseleverandoerAdresse, x509Sertifikat}` (PEM) |
//! | `GET /simulator/messages` | `200` what was accepted, JSON (no token; for people and tests) |

mod checks;
mod receipts;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path as UrlPath, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

pub use receipts::ReceiptKind;

use crate::fixture::Fixture;
use crate::maskinporten::TokenVerifier;
use crate::pki::TestPki;
use crate::serving::{Server, lock};
use crate::timestamp;
use checks::{check_forretningsmelding, open_package};
use receipts::ReceiptFor;

/// The scope every corner-2 call needs.
pub const SCOPE: &str = "digitalpostinnbygger:send";
/// The base path of the corner-2 API.
pub const API_BASE: &str = "/api";
/// The path of KRR's print certificate.
pub const PRINT_CERTIFICATE_PATH: &str = "/rest/v2/printSertifikat";
/// The package size limit when the configuration does not set one: 100 MiB.
pub const DEFAULT_MAX_PACKAGE_SIZE: u64 = 100 << 20;
/// The largest forretningsmelding accepted; it is an SBD and a token.
const MAX_FORRETNINGSMELDING: usize = 1 << 20;
/// The largest `page_size` a receipt listing accepts.
const MAX_PAGE_SIZE: usize = 1000;

/// A mailbox or print provider: the key its dokumentpakker are encrypted to.
#[derive(Clone)]
pub struct Provider {
    /// Its organisation number.
    pub orgnr: String,
    /// Its certificate, as the registry hands it to senders.
    pub certificate: X509,
    /// The private key to it.
    pub key: PKey<Private>,
}

/// The fixture's mailbox providers and its print provider, with the keys [`TestPki::issue`]
/// wrote for them (Virksert issues those certificates, so the registers, or a registry that
/// starts its own, must have started first).
pub fn providers_from_fixture(fixture: &Fixture, pki: &TestPki) -> anyhow::Result<Vec<Provider>> {
    let mut orgnrs: Vec<&str> = fixture
        .citizens
        .iter()
        .filter_map(|citizen| citizen.krr.mailbox.as_ref())
        .map(|mailbox| mailbox.provider.as_str())
        .chain([fixture.print_provider.as_str()])
        .collect();
    orgnrs.sort_unstable();
    orgnrs.dedup();
    orgnrs
        .into_iter()
        .map(|orgnr| {
            let (certificate, key) = pki.issued_identity(orgnr)?;
            Ok(Provider {
                orgnr: orgnr.to_owned(),
                certificate,
                key,
            })
        })
        .collect()
}

/// How the meldingsformidler is set up.
#[derive(Clone)]
pub struct MeldingsformidlerConfig {
    /// The port on 127.0.0.1; 0 lets the system pick a free one.
    pub port: u16,
    /// Checks the Maskinporten tokens presented.
    pub maskinporten: TokenVerifier,
    /// The CA senders' business certificates must chain to.
    pub ca: X509,
    /// The certificate receipts are signed with.
    pub receipt_certificate: X509,
    /// Its private key.
    pub receipt_key: PKey<Private>,
    /// The mailbox and print providers; a dokumentpakke must open with one of their keys.
    pub providers: Vec<Provider>,
    /// The organisation number of the print provider KRR names; one of `providers`.
    pub print_provider: String,
    /// The largest dokumentpakke accepted, in bytes.
    pub max_package_size: u64,
    /// Where packages are stored; when none, a temporary directory removed when it stops.
    pub data_dir: Option<PathBuf>,
}

/// A message the meldingsformidler accepted, for assertions.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DpiMessage {
    /// The SBD's message id.
    pub message_id: String,
    /// The SBD's conversation id.
    pub conversation_id: String,
    /// `digital`, `utskrift` or `flyttet`.
    pub message_type: String,
    /// The `kanal` query parameter it was sent with.
    pub kanal: Option<String>,
    /// `avsender.virksomhetsidentifikator.value`, `0192:<orgnr>`.
    pub sender: String,
    /// `avsender.avsenderidentifikator`, if given.
    pub avsenderidentifikator: Option<String>,
    /// The organisation number of the provider whose key opened the package.
    pub provider: String,
    /// The verified forretningsmelding payload.
    pub sbd: Value,
    /// The entry names of the decrypted ASiC-E.
    pub asic_entries: Vec<String>,
    /// The SHA-256 of the dokumentpakke as received, lower-case hex.
    pub dokumentpakke_sha256: String,
    /// Its size in bytes.
    pub dokumentpakke_size: u64,
    /// The corner-2 statuses so far, oldest first.
    pub statuses: Vec<String>,
    /// The receipts issued for it so far, oldest first.
    pub receipts: Vec<String>,
}

/// [`Meldingsformidler::mark_opened`] or [`Meldingsformidler::mark_failed`] was given a message
/// id it never accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownMessage(pub String);

impl fmt::Display for UnknownMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the meldingsformidler has no message {}", self.0)
    }
}

impl std::error::Error for UnknownMessage {}

/// A running meldingsformidler. Dropping it stops the server.
pub struct Meldingsformidler {
    server: Server,
    state: Arc<DpiState>,
}

impl Meldingsformidler {
    /// Binds 127.0.0.1 on the configured port and serves until stopped.
    pub async fn start(config: MeldingsformidlerConfig) -> io::Result<Self> {
        let (packages, temp_dir) = match &config.data_dir {
            Some(dir) => (dir.join("packages"), None),
            None => {
                let temp = tempfile::Builder::new().prefix("dpi-").tempdir()?;
                (temp.path().join("packages"), Some(temp))
            }
        };
        tokio::fs::create_dir_all(&packages).await?;
        let mut trust = X509StoreBuilder::new()?;
        trust.add_cert(config.ca.clone())?;
        let state = Arc::new(DpiState {
            trust: trust.build(),
            config,
            packages,
            _temp_dir: temp_dir,
            fail_next: Arc::new(AtomicU64::new(0)),
            book: Mutex::new(Book::default()),
        });
        let api = Router::new()
            .route("/messages/out", post(send))
            .route("/messages/out/{id}/statuses", get(statuses))
            .route("/messages/in", get(incoming))
            .route("/messages/in/{id}/read", post(read))
            .layer(middleware::from_fn_with_state(state.clone(), authenticate));
        let app = Router::new()
            .nest(API_BASE, api)
            .route(PRINT_CERTIFICATE_PATH, get(print_certificate))
            .route("/simulator/messages", get(inspection))
            .fallback(|| async { Problem::new(StatusCode::NOT_FOUND, "no such resource") })
            .layer(DefaultBodyLimit::disable())
            .with_state(state.clone());
        let server = Server::start(
            "DPI meldingsformidler",
            state.config.port,
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

    /// The corner-2 API's base URL (`difi.move.dpi.uri`).
    pub fn api_url(&self) -> String {
        format!("{}{API_BASE}", self.base_url())
    }

    /// KRR's print-certificate URL (`difi.move.dpi.krr-print-url`).
    pub fn print_certificate_url(&self) -> String {
        format!("{}{PRINT_CERTIFICATE_PATH}", self.base_url())
    }

    /// Every message accepted so far, in the order accepted.
    pub fn received(&self) -> Vec<DpiMessage> {
        lock(&self.state.book)
            .messages
            .iter()
            .map(|m| m.public.clone())
            .collect()
    }

    /// The receipts not yet confirmed with `/read`, as (message id, receipt kind), oldest
    /// first.
    pub fn unread_receipts(&self) -> Vec<(String, String)> {
        let book = lock(&self.state.book);
        book.receipts
            .iter()
            .filter(|receipt| !receipt.read)
            .map(|receipt| {
                let message = &book.messages[receipt.message].public;
                let kind = jose_kind(&receipt.jwt).unwrap_or_default();
                (message.message_id.clone(), kind)
            })
            .collect()
    }

    /// Sends an `aapningskvittering` for `message_id`, as the mailbox does when the citizen
    /// opens it.
    pub fn mark_opened(&self, message_id: &str) -> Result<(), UnknownMessage> {
        self.send_receipt(message_id, ReceiptKind::Aapningskvittering, None)
    }

    /// Records FEILET for `message_id` and sends a `feil` receipt saying `details`.
    pub fn mark_failed(&self, message_id: &str, details: &str) -> Result<(), UnknownMessage> {
        self.send_receipt(message_id, ReceiptKind::Feil, Some(details))
    }

    /// Sends a receipt of `kind` for `message_id`, with `details` where the kind has a text
    /// (`feil`: `detaljer`, `varslingfeiletkvittering`: `beskrivelse`); a `feil` also records
    /// FEILET.
    pub fn send_receipt(
        &self,
        message_id: &str,
        kind: ReceiptKind,
        details: Option<&str>,
    ) -> Result<(), UnknownMessage> {
        self.state.issue_receipt(message_id, kind, details)
    }

    /// Answers the next `requests` requests with 503 before checking them.
    pub fn fail_next(&self, requests: u64) {
        self.state.fail_next.store(requests, Ordering::SeqCst);
    }

    /// Stops accepting connections and waits for requests in flight.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

struct DpiState {
    config: MeldingsformidlerConfig,
    trust: X509Store,
    packages: PathBuf,
    /// Keeps the temporary data directory alive as long as the server can write to it.
    _temp_dir: Option<tempfile::TempDir>,
    fail_next: Arc<AtomicU64>,
    book: Mutex<Book>,
}

#[derive(Default)]
struct Book {
    messages: Vec<Stored>,
    by_message_id: HashMap<String, usize>,
    receipts: Vec<Receipt>,
}

struct Stored {
    public: DpiMessage,
    process: String,
    avsender: Value,
    statuses: Vec<StatusEntry>,
}

struct StatusEntry {
    status: &'static str,
    at: i64,
    description: Option<String>,
}

struct Receipt {
    receipt_id: String,
    /// The index of the message it answers.
    message: usize,
    jwt: String,
    read: bool,
}

impl DpiState {
    fn issue_receipt(
        &self,
        message_id: &str,
        kind: ReceiptKind,
        details: Option<&str>,
    ) -> Result<(), UnknownMessage> {
        let mut book = lock(&self.book);
        let index = *book
            .by_message_id
            .get(message_id)
            .ok_or_else(|| UnknownMessage(message_id.to_owned()))?;
        let receipt_id = Uuid::new_v4().to_string();
        let message = &book.messages[index];
        let provider = format!("0192:{}", message.public.provider);
        let receipt = ReceiptFor {
            kind,
            receipt_id: &receipt_id,
            conversation_id: &message.public.conversation_id,
            process: &message.process,
            avsender: &message.avsender,
            sender: &message.public.sender,
            provider: &provider,
            details,
        };
        let chain = [
            self.config.receipt_certificate.clone(),
            self.config.ca.clone(),
        ];
        let jwt = match receipts::signed(&receipt, &chain, &self.config.receipt_key) {
            Ok(jwt) => jwt,
            Err(error) => {
                // Signing with a key that signed before cannot fail but for a broken library.
                tracing::error!(%error, "the meldingsformidler could not sign a receipt");
                return Ok(());
            }
        };
        let message = &mut book.messages[index];
        message.public.receipts.push(kind.name().to_owned());
        if kind == ReceiptKind::Feil {
            message.statuses.push(StatusEntry {
                status: "FEILET",
                at: timestamp::now_millis(),
                description: details.map(str::to_owned),
            });
            message.public.statuses.push("FEILET".to_owned());
        }
        book.receipts.push(Receipt {
            receipt_id,
            message: index,
            jwt,
            read: false,
        });
        Ok(())
    }
}

/// The document type of a receipt JWT, read back for [`Meldingsformidler::unread_receipts`].
fn jose_kind(jwt: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()?,
    )
    .ok()?;
    claims["standardBusinessDocument"]["standardBusinessDocumentHeader"]["documentIdentification"]
        ["type"]
        .as_str()
        .map(str::to_owned)
}

/// A refusal, answered as `application/problem+json`.
#[derive(Debug)]
struct Problem {
    status: StatusCode,
    detail: String,
}

impl Problem {
    fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
        }
    }

    fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    fn internal(error: impl fmt::Display) -> Self {
        tracing::error!(%error, "the meldingsformidler failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        if self.status.is_client_error() {
            tracing::warn!(status = %self.status, detail = %self.detail, "the meldingsformidler refused a request");
        }
        let body = json!({
            "type": "about:blank",
            "title": self.status.canonical_reason().unwrap_or("error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"meldingsformidler\""),
            );
        }
        response
    }
}

async fn authenticate(
    State(state): State<Arc<DpiState>>,
    request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let Some(token) = token else {
        return Problem::new(
            StatusCode::UNAUTHORIZED,
            "a Maskinporten bearer token is required",
        )
        .into_response();
    };
    match state.config.maskinporten.verify(token.trim(), None) {
        Err(why) => Problem::new(StatusCode::UNAUTHORIZED, why).into_response(),
        Ok(claims) if !claims.scopes.iter().any(|scope| scope == SCOPE) => Problem::new(
            StatusCode::FORBIDDEN,
            format!("the token does not carry scope {SCOPE}"),
        )
        .into_response(),
        Ok(_) => next.run(request).await,
    }
}

fn query_pairs(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Vec<(String, String)>, Problem> {
    query
        .map(|Query(pairs)| pairs)
        .map_err(|e| Problem::bad_request(format!("malformed query: {}", e.body_text())))
}

/// A dokumentpakke on its way to disk; removed again unless the message is accepted.
struct Upload {
    path: PathBuf,
    sha256: Vec<u8>,
    size: u64,
    kept: bool,
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

async fn receive_package(field: &mut Field<'_>, state: &DpiState) -> Result<Upload, Problem> {
    let mut upload = Upload {
        path: state.packages.join(format!("{}.part", Uuid::new_v4())),
        sha256: Vec::new(),
        size: 0,
        kept: false,
    };
    let mut file = tokio::fs::File::create(&upload.path)
        .await
        .map_err(Problem::internal)?;
    let mut hasher = Sha256::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| {
        Problem::bad_request(format!(
            "the dokumentpakke part is broken: {}",
            e.body_text()
        ))
    })? {
        upload.size += chunk.len() as u64;
        if upload.size > state.config.max_package_size {
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the dokumentpakke exceeds {} bytes",
                    state.config.max_package_size
                ),
            ));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(Problem::internal)?;
    }
    file.flush().await.map_err(Problem::internal)?;
    upload.sha256 = hasher.finalize().to_vec();
    Ok(upload)
}

async fn receive_forretningsmelding(field: &mut Field<'_>) -> Result<String, Problem> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| {
        Problem::bad_request(format!(
            "the forretningsmelding part is broken: {}",
            e.body_text()
        ))
    })? {
        if bytes.len() + chunk.len() > MAX_FORRETNINGSMELDING {
            return Err(Problem::bad_request(format!(
                "the forretningsmelding exceeds {MAX_FORRETNINGSMELDING} bytes"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes)
        .map(|text| text.trim().to_owned())
        .map_err(|_| Problem::bad_request("the forretningsmelding is not UTF-8"))
}

async fn send(
    State(state): State<Arc<DpiState>>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, Problem> {
    let mut kanal = None;
    for (key, value) in query_pairs(query)? {
        match key.as_str() {
            "kanal" => kanal = Some(value),
            _ => {
                return Err(Problem::bad_request(format!(
                    "unknown query parameter {key:?}"
                )));
            }
        }
    }
    let mut multipart = multipart.map_err(|e| {
        Problem::bad_request(format!("expected multipart/form-data: {}", e.body_text()))
    })?;
    let mut forretningsmelding = None;
    let mut package = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| Problem::bad_request(format!("malformed multipart body: {}", e.body_text())))?
    {
        match field.name() {
            Some("forretningsmelding") if forretningsmelding.is_none() => {
                forretningsmelding = Some(receive_forretningsmelding(&mut field).await?);
            }
            Some("dokumentpakke") if package.is_none() => {
                package = Some(receive_package(&mut field, &state).await?);
            }
            Some(name @ ("forretningsmelding" | "dokumentpakke")) => {
                return Err(Problem::bad_request(format!("more than one {name} part")));
            }
            Some(name) => return Err(Problem::bad_request(format!("unexpected part {name:?}"))),
            None => return Err(Problem::bad_request("a part has no name")),
        }
    }
    let jws = forretningsmelding
        .ok_or_else(|| Problem::bad_request("the forretningsmelding part is missing"))?;
    let mut package =
        package.ok_or_else(|| Problem::bad_request("the dokumentpakke part is missing"))?;
    let message = check_forretningsmelding(&state.trust, &jws)
        .map_err(|why| Problem::bad_request(format!("forretningsmelding: {why}")))?;
    if message.fingerprint != package.sha256 {
        return Err(Problem::bad_request(
            "dokumentpakkefingeravtrykk.digestValue is not the SHA-256 of the dokumentpakke",
        ));
    }
    if lock(&state.book)
        .by_message_id
        .contains_key(&message.message_id)
    {
        tracing::info!(message_id = %message.message_id, "the meldingsformidler saw a message again");
        return Ok(StatusCode::OK.into_response());
    }
    let providers = state.config.providers.clone();
    let path = package.path.clone();
    let (provider, asic_entries) =
        tokio::task::spawn_blocking(move || open_package(&providers, &path))
            .await
            .map_err(Problem::internal)?
            .map_err(Problem::bad_request)?;
    let stored_at = state.packages.join(format!("{}.cms", message.message_id));
    std::fs::rename(&package.path, &stored_at).map_err(Problem::internal)?;
    package.kept = true;

    let now = timestamp::now_millis();
    let public = DpiMessage {
        message_id: message.message_id.clone(),
        conversation_id: message.conversation_id,
        message_type: message.message_type,
        kanal,
        sender: message.sender,
        avsenderidentifikator: message.avsenderidentifikator,
        provider,
        sbd: message.sbd,
        asic_entries,
        dokumentpakke_sha256: hex::encode(&package.sha256),
        dokumentpakke_size: package.size,
        statuses: vec!["OPPRETTET".into(), "SENDT".into()],
        receipts: Vec::new(),
    };
    {
        let mut book = lock(&state.book);
        if book.by_message_id.contains_key(&message.message_id) {
            return Ok(StatusCode::OK.into_response());
        }
        let index = book.messages.len();
        book.by_message_id.insert(message.message_id.clone(), index);
        book.messages.push(Stored {
            public,
            process: message.process,
            avsender: message.avsender,
            statuses: ["OPPRETTET", "SENDT"]
                .into_iter()
                .map(|status| StatusEntry {
                    status,
                    at: now,
                    description: None,
                })
                .collect(),
        });
    }
    tracing::info!(message_id = %message.message_id, "the meldingsformidler accepted a message");
    state
        .issue_receipt(&message.message_id, ReceiptKind::Leveringskvittering, None)
        .map_err(Problem::internal)?;
    Ok(StatusCode::OK.into_response())
}

async fn statuses(
    State(state): State<Arc<DpiState>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, Problem> {
    if Uuid::parse_str(&id).is_err() {
        return Err(Problem::bad_request(format!("{id:?} is not a UUID")));
    }
    let book = lock(&state.book);
    let statuses: Vec<Value> = book
        .by_message_id
        .get(&id)
        .map(|&index| {
            book.messages[index]
                .statuses
                .iter()
                .map(|s| {
                    let mut status =
                        json!({"status": s.status, "timestamp": timestamp::rfc3339(s.at)});
                    if let Some(description) = &s.description {
                        status["beskrivelse"] = json!(description);
                    }
                    status
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(axum::Json(statuses).into_response())
}

async fn incoming(
    State(state): State<Arc<DpiState>>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, Problem> {
    let (mut sender_id, mut kanal, mut page_size) = (None, None, 100);
    for (key, value) in query_pairs(query)? {
        match key.as_str() {
            "avsenderidentifikator" => sender_id = Some(value),
            "kanal" => kanal = Some(value),
            "page_size" => {
                page_size = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                    .ok_or_else(|| {
                        Problem::bad_request(format!(
                            "page_size must be 1 to {MAX_PAGE_SIZE}, not {value:?}"
                        ))
                    })?;
            }
            _ => {
                return Err(Problem::bad_request(format!(
                    "unknown query parameter {key:?}"
                )));
            }
        }
    }
    let book = lock(&state.book);
    let waiting: Vec<Value> = book
        .receipts
        .iter()
        .filter(|r| !r.read)
        .filter(|r| {
            let message = &book.messages[r.message].public;
            sender_id
                .as_ref()
                .is_none_or(|id| message.avsenderidentifikator.as_ref() == Some(id))
                && kanal
                    .as_ref()
                    .is_none_or(|k| message.kanal.as_ref() == Some(k))
        })
        .take(page_size)
        .map(|r| json!({"forretningsmelding": r.jwt}))
        .collect();
    Ok(axum::Json(waiting).into_response())
}

async fn read(
    State(state): State<Arc<DpiState>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, Problem> {
    let mut book = lock(&state.book);
    let receipt = book
        .receipts
        .iter_mut()
        .find(|r| r.receipt_id == id && !r.read)
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, format!("no unread message {id}")))?;
    receipt.read = true;
    Ok(StatusCode::OK.into_response())
}

async fn print_certificate(State(state): State<Arc<DpiState>>) -> Result<Response, Problem> {
    let provider = state
        .config
        .providers
        .iter()
        .find(|p| p.orgnr == state.config.print_provider)
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "no print provider is configured"))?;
    let pem = provider.certificate.to_pem().map_err(Problem::internal)?;
    Ok(axum::Json(json!({
        "postkasseleverandoerAdresse": provider.orgnr,
        "x509Sertifikat": String::from_utf8_lossy(&pem),
    }))
    .into_response())
}

async fn inspection(State(state): State<Arc<DpiState>>) -> Response {
    let book = lock(&state.book);
    let messages: Vec<&DpiMessage> = book.messages.iter().map(|m| &m.public).collect();
    axum::Json(messages).into_response()
}
