//! The ServiceRegistry (adressetjeneste): who a receiver is and which channel reaches it.
//!
//! It answers the integration point's lookups by asking the registers over HTTP
//! ([`sources`], [`crate::registers`]) and deriving records from their answers ([`records`]),
//! signs its answers the way the real registry does ([`signing`]) and, like the real one, serves
//! nobody without a Maskinporten token: every path but `/jwk` needs a bearer token the
//! configured [`TokenVerifier`] accepts, from a consumer `0192:<orgnr>`; citizens' records need
//! a DPI scope and the SAS key the DPE scope. KRR is asked with the caller's token, as the real
//! registry does. Given no register URLs, it starts the registers itself from its fixture;
//! their Virksert issues a business certificate from the shared [`TestPki`] to every
//! organisation, written as the keystores the local environment's integration points load, so
//! the certificate an integration point holds and the one `/virksert` answers are the same (the
//! integration point compares their serial numbers at start). A register that fails makes the
//! lookup answer 503. A DPF record carries SvarUt's certificate, as the real registry's does:
//! senders encrypt every DPF document to SvarUt, not to the receiving organisation.
//!
//! | request | answer |
//! |---|---|
//! | `GET /identifier/{id}[/process/{urn}]?securityLevel=&conversationId=&print=` | `{infoRecord, serviceRecords}` |
//! | `GET /info/{id}` | `{infoRecord}` |
//! | `GET /virksert/{orgnr}` | the organisation's certificate, PEM |
//! | `GET /sastoken` | the Service Bus shared access key (scope `eformidling:dpe`) |
//! | `GET /jwk` | the JWK set of the signing key, no token needed |
//!
//! With `Accept: application/jose` an answer is a compact JWS of the same text; otherwise JSON
//! (PEM and the key as plain text). Refusals are `{"error_code", "error_description"}` with
//! 400, 401, 403 or 404.

mod records;
mod signing;
mod sources;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json};
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::X509;
use serde_json::json;

use crate::fixture::{Fixture, valid_orgnr};
use crate::pki::TestPki;
use crate::processes;
use crate::registers::{RegisterPorts, RegisterUrls, Registers, RegistersConfig};
use crate::serving::Server;
use records::{Entity, Facts, Options};
use signing::PayloadSigner;
use sources::{SourceError, Sources};

/// The organisation number the registry's signing certificate names (the real registry's
/// operator, Digdir).
pub const REGISTRY_ORGNR: &str = "991825827";

/// How many requests inspection keeps; older ones are dropped, so memory stays bounded.
const SEEN_LIMIT: usize = 10_000;

/// Scopes that allow looking citizens up (the real registry's DPI scopes).
const DPI_SCOPES: [&str; 2] = ["eformidling:dpi", "move/dpi.read"];

/// The scope `/sastoken` requires.
const DPE_SCOPE: &str = "eformidling:dpe";

/// What the registry needs from a verified Maskinporten access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// The `consumer` organisation, `0192:<orgnr>`.
    pub consumer: String,
    /// The token's scopes.
    pub scopes: Vec<String>,
}

/// Checks bearer tokens. The registry trusts only tokens of its Maskinporten; the seam lets a
/// test, or the Maskinporten simulator, be that issuer.
pub trait TokenVerifier: Send + Sync {
    /// The claims of `token` if it is valid (signature, issuer, expiry), else why not.
    fn verify(&self, token: &str) -> Result<TokenClaims, String>;
}

/// How the registry is set up.
#[derive(Clone)]
pub struct RegistryConfig {
    /// The port on 127.0.0.1; 0 lets the system pick a free one.
    pub port: u16,
    /// The organisations and citizens the registers it starts know (unused when `sources`
    /// names registers running elsewhere).
    pub fixture: Fixture,
    /// Who decides whether a bearer token is valid.
    pub verifier: Arc<dyn TokenVerifier>,
    /// The password of the keystores written for the fixture's organisations.
    pub keystore_password: String,
    /// The Service Bus shared access key `/sastoken` gives DPE.
    pub sas_key: String,
    /// Where the registers answer; none starts them in-process from `fixture` (on free ports),
    /// owned by the registry.
    pub sources: Option<RegisterUrls>,
    /// SvarUt's certificate, which DPF records carry (the one the SvarUt simulator decrypts
    /// with); none issues it from the PKI at start ([`TestPki::issue_svarut`]), so a SvarUt
    /// simulator started afterwards takes its key with [`TestPki::issued_identity`] of
    /// [`crate::pki::SVARUT_ORGNR`].
    pub svarut_certificate: Option<X509>,
}

impl RegistryConfig {
    /// A registry on a free port for `fixture`, trusting `verifier`'s tokens.
    pub fn new(
        fixture: Fixture,
        verifier: Arc<dyn TokenVerifier>,
        keystore_password: impl Into<String>,
        sas_key: impl Into<String>,
    ) -> Self {
        Self {
            port: 0,
            fixture,
            verifier,
            keystore_password: keystore_password.into(),
            sas_key: sas_key.into(),
            sources: None,
            svarut_certificate: None,
        }
    }
}

/// A request the registry received, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// The path, e.g. `/identifier/910075918`.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// The `Accept` header, if any.
    pub accept: Option<String>,
    /// The consumer of an accepted token.
    pub consumer: Option<String>,
    /// The status answered.
    pub status: u16,
}

/// A running registry. Dropping it stops the server; [`ServiceRegistry::shutdown`] stops it
/// gracefully.
pub struct ServiceRegistry {
    server: Server,
    state: Arc<RegistryState>,
    registers: Option<Registers>,
    svarut_certificate: X509,
}

struct RegistryState {
    sources: Sources,
    signer: PayloadSigner,
    forgery: Mutex<Forgery>,
    verifier: Arc<dyn TokenVerifier>,
    sas_key: String,
    /// SvarUt's certificate, PEM, for DPF records.
    svarut_pem: String,
    fail_next: AtomicU64,
    seen: Mutex<VecDeque<SeenRequest>>,
}

impl ServiceRegistry {
    /// Issues its signing certificate from `pki` (and, when it starts the registers itself,
    /// theirs; when not given SvarUt's, that too), binds 127.0.0.1 on the configured port and serves until stopped. Must be called
    /// inside a Tokio runtime.
    pub async fn start(config: RegistryConfig, pki: &TestPki) -> anyhow::Result<Self> {
        let password = config.keystore_password.as_str();
        let in_process = config.sources.is_none().then(|| RegistersConfig {
            ports: RegisterPorts::default(),
            fixture: config.fixture.clone(),
            verifier: config.verifier.clone(),
            keystore_password: password.to_owned(),
        });
        // Key generation dominates start-up, so the certificates are issued side by side.
        let (signing, svarut, issued) = std::thread::scope(|scope| {
            let signing = scope.spawn(|| {
                pki.issue(
                    REGISTRY_ORGNR,
                    "Simulated ServiceRegistry",
                    -1,
                    365,
                    password,
                )
                .context("issuing the registry's signing certificate")
            });
            let svarut = scope.spawn(|| match &config.svarut_certificate {
                Some(certificate) => Ok(certificate.clone()),
                None => pki
                    .issue_svarut(password)
                    .map(|issued| issued.certificate)
                    .context("issuing SvarUt's certificate"),
            });
            let issued = in_process
                .as_ref()
                .map(|registers| Registers::issue(registers, pki))
                .transpose();
            (joined(signing), joined(svarut), issued)
        });
        let signing = signing?;
        let svarut_certificate = svarut?;
        let signer = PayloadSigner::new(signing.key, &[signing.certificate, pki.ca().clone()])?;
        let (registers, urls) = match (in_process, issued?) {
            (Some(registers), Some(certificates)) => {
                let registers = Registers::serve(registers, certificates).await?;
                let urls = registers.urls();
                (Some(registers), urls)
            }
            _ => (None, config.sources.context("no register URLs")?),
        };
        let state = Arc::new(RegistryState {
            sources: Sources::new(urls)?,
            signer,
            forgery: Mutex::new(Forgery::default()),
            verifier: config.verifier,
            sas_key: config.sas_key,
            svarut_pem: String::from_utf8(svarut_certificate.to_pem()?)?,
            fail_next: AtomicU64::new(0),
            seen: Mutex::new(VecDeque::new()),
        });
        let server = Server::serve("service registry", config.port, router(state.clone()))
            .await
            .with_context(|| format!("binding 127.0.0.1:{}", config.port))?;
        Ok(Self {
            server,
            state,
            registers,
            svarut_certificate,
        })
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

    /// The address the registry listens on.
    pub fn address(&self) -> SocketAddr {
        self.server.address()
    }

    /// The business certificate issued to `orgnr` at start by the registers this registry
    /// started; none when it was given the URLs of registers running elsewhere (ask their
    /// [`Registers::certificate`]).
    pub fn certificate(&self, orgnr: &str) -> Option<&X509> {
        self.registers.as_ref()?.certificate(orgnr)
    }

    /// SvarUt's certificate, the one DPF records carry.
    pub fn svarut_certificate(&self) -> &X509 {
        &self.svarut_certificate
    }

    /// The registers this registry started, when it was given no URLs: for their faults and
    /// the requests they received.
    pub fn registers(&self) -> Option<&Registers> {
        self.registers.as_ref()
    }

    /// The requests received so far (the latest ones, up to a bound), oldest first.
    pub fn requests(&self) -> Vec<SeenRequest> {
        lock(&self.state.seen).iter().cloned().collect()
    }

    /// Answers the next `requests` requests, whatever they are, with 503 before checking them.
    pub fn fail_next(&self, requests: u64) {
        self.state.fail_next.store(requests, Ordering::SeqCst);
    }

    /// Signs the next `answers` signed answers with a key that is not the registry's while the
    /// header still names the registry's key: a forgery a client must refuse.
    pub fn forge_next(&self, answers: u64) -> Result<(), openssl::error::ErrorStack> {
        let key = PKey::from_rsa(Rsa::generate(2048)?)?;
        *lock(&self.state.forgery) = Forgery {
            remaining: answers,
            key: Some(key),
        };
        Ok(())
    }

    /// Stops accepting connections and waits for requests in flight to finish, then stops the
    /// registers it started.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
        if let Some(registers) = self.registers {
            registers.shutdown().await;
        }
    }
}

/// What a scoped thread returned; its panic, if it panicked, continues here.
fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Answers still to be signed with a key that is not the registry's, and that key (made only
/// when asked for, as key generation is slow).
#[derive(Default)]
struct Forgery {
    remaining: u64,
    key: Option<PKey<Private>>,
}

/// A poisoned lock only means a handler panicked; the list is still consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn router(state: Arc<RegistryState>) -> Router {
    // Layers run outermost last-added: record every request, then inject faults, then (for all
    // but /jwk) check the token, and only then answer.
    Router::new()
        .route("/identifier/{id}", get(identifier))
        .route(
            "/identifier/{id}/process/{process}",
            get(identifier_process),
        )
        .route("/info/{id}", get(info))
        .route("/virksert/{id}", get(virksert))
        .route("/sastoken", get(sas_token))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .route("/jwk", get(jwk))
        .fallback(|| async { Refusal::not_found("no such resource") })
        .layer(middleware::from_fn_with_state(state.clone(), inject_faults))
        .layer(middleware::from_fn_with_state(state.clone(), record))
        .with_state(state)
}

/// A refused request, answered with the registry's error body.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    code: &'static str,
    description: String,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
        }
    }

    fn not_found(description: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", description)
    }

    fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "service registry failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal error",
        )
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        tracing::warn!(status = %self.status, description = %self.description, "service registry refused a request");
        let body = json!({ "error_code": self.code, "error_description": self.description });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        response
    }
}

async fn record(State(state): State<Arc<RegistryState>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let response = next.run(request).await;
    let consumer = response
        .extensions()
        .get::<TokenClaims>()
        .map(|claims| claims.consumer.clone());
    let mut seen = lock(&state.seen);
    if seen.len() == SEEN_LIMIT {
        seen.pop_front();
    }
    seen.push_back(SeenRequest {
        path,
        query,
        accept,
        consumer,
        status: response.status().as_u16(),
    });
    response
}

async fn inject_faults(
    State(state): State<Arc<RegistryState>>,
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
            "unavailable",
            "unavailable (injected fault)",
        )
        .into_response();
    }
    next.run(request).await
}

async fn authenticate(
    State(state): State<Arc<RegistryState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    let Some(token) = token else {
        return Refusal::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a Maskinporten bearer token is required",
        )
        .into_response();
    };
    let claims = match state.verifier.verify(token) {
        Ok(claims) => claims,
        Err(reason) => {
            return Refusal::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                format!("the bearer token was refused: {reason}"),
            )
            .into_response();
        }
    };
    let orgnr = claims.consumer.strip_prefix("0192:").unwrap_or_default();
    if !valid_orgnr(orgnr) {
        return Refusal::new(
            StatusCode::FORBIDDEN,
            "access_denied",
            format!(
                "the token's consumer {:?} is not an organisation (0192:<orgnr>)",
                claims.consumer
            ),
        )
        .into_response();
    }
    let caller = CallerToken(token.to_owned());
    request.extensions_mut().insert(claims.clone());
    request.extensions_mut().insert(caller);
    let mut response = next.run(request).await;
    response.extensions_mut().insert(claims);
    response
}

/// The query of an identifier lookup. `conversationId` only correlates the registry's logs.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct LookupQuery {
    security_level: Option<i32>,
    #[serde(rename = "conversationId")]
    _conversation_id: Option<String>,
    print: Option<bool>,
}

/// The caller's bearer token, passed on to KRR as the real registry does.
#[derive(Clone)]
struct CallerToken(String);

async fn identifier(
    State(state): State<Arc<RegistryState>>,
    Extension(claims): Extension<TokenClaims>,
    Extension(caller): Extension<CallerToken>,
    Path(id): Path<String>,
    query: Result<Query<LookupQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    lookup(&state, &claims, &caller, &id, None, query, &headers).await
}

async fn identifier_process(
    State(state): State<Arc<RegistryState>>,
    Extension(claims): Extension<TokenClaims>,
    Extension(caller): Extension<CallerToken>,
    Path((id, process)): Path<(String, String)>,
    query: Result<Query<LookupQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    lookup(
        &state,
        &claims,
        &caller,
        &id,
        Some(&process),
        query,
        &headers,
    )
    .await
}

async fn lookup(
    state: &RegistryState,
    claims: &TokenClaims,
    caller: &CallerToken,
    id: &str,
    process: Option<&str>,
    query: Result<Query<LookupQuery>, axum::extract::rejection::QueryRejection>,
    headers: &HeaderMap,
) -> Result<Response, Refusal> {
    let Query(query) = query.map_err(|rejection| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("malformed query: {}", rejection.body_text()),
        )
    })?;
    let mut entity = state.entity(id).await?.ok_or_else(|| unknown(id))?;
    if matches!(entity, Entity::Citizen(_))
        && !claims
            .scopes
            .iter()
            .any(|s| DPI_SCOPES.contains(&s.as_str()))
    {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("looking up citizens requires one of the scopes {DPI_SCOPES:?}"),
        ));
    }
    let process = process
        .map(|urn| {
            processes::find(urn).ok_or_else(|| Refusal::not_found(format!("unknown process {urn}")))
        })
        .transpose()?;
    let options = Options {
        security_level: query.security_level,
        print: query.print.unwrap_or(true),
    };
    let consumer = claims.consumer.strip_prefix("0192:").unwrap_or_default();
    let facts = state.facts(&mut entity, &caller.0, consumer).await?;
    let records = facts.service_records(&entity, process, options);
    if let Some(process) = process
        && records.is_empty()
    {
        return Err(Refusal::not_found(format!(
            "{id} has no service record for process {}",
            process.urn
        )));
    }
    let body = json!({ "infoRecord": records::info_record(&entity), "serviceRecords": records });
    state.answer(headers, Answer::Json(body))
}

async fn info(
    State(state): State<Arc<RegistryState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let entity = state.entity(&id).await?.ok_or_else(|| unknown(&id))?;
    let body = json!({ "infoRecord": records::info_record(&entity) });
    state.answer(&headers, Answer::Json(body))
}

async fn virksert(
    State(state): State<Arc<RegistryState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let pem = state
        .sources
        .certificate(&id)
        .await?
        .ok_or_else(|| Refusal::not_found(format!("no certificate for {id} in Virksert")))?;
    state.answer(&headers, Answer::Text(pem))
}

async fn sas_token(
    State(state): State<Arc<RegistryState>>,
    Extension(claims): Extension<TokenClaims>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    if !claims.scopes.iter().any(|scope| scope == DPE_SCOPE) {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("the SAS key requires the scope {DPE_SCOPE}"),
        ));
    }
    state.answer(&headers, Answer::Text(state.sas_key.clone()))
}

async fn jwk(State(state): State<Arc<RegistryState>>) -> Response {
    Json(state.signer.jwk_set()).into_response()
}

/// A register failed: the lookup cannot be answered truthfully.
impl From<SourceError> for Refusal {
    fn from(SourceError(reason): SourceError) -> Self {
        tracing::error!(%reason, "a register failed");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("a register failed: {reason}"),
        )
    }
}

fn unknown(id: &str) -> Refusal {
    Refusal::not_found(format!("identifier {id} not found"))
}

/// An answer before it is signed or not.
enum Answer {
    Json(serde_json::Value),
    Text(String),
}

impl RegistryState {
    /// The organisation (nine digits) or citizen (eleven) `id` names, from Brreg or the
    /// population register.
    async fn entity(&self, id: &str) -> Result<Option<Entity>, SourceError> {
        Ok(match id.len() {
            9 => self
                .sources
                .organisation(id)
                .await?
                .map(Entity::Organisation),
            11 => self.sources.person(id).await?.map(Entity::Citizen),
            _ => None,
        })
    }

    /// What the records of `entity` need beyond who it is: an organisation's certificate (and
    /// SvarUt's, for DPF); a
    /// citizen's KRR entry (filled into `entity`), mailbox provider certificate, print provider
    /// and the return address of `consumer`.
    async fn facts(
        &self,
        entity: &mut Entity,
        caller_token: &str,
        consumer: &str,
    ) -> Result<Facts, SourceError> {
        match entity {
            Entity::Organisation(organisation) => Ok(Facts {
                certificate: self.sources.certificate(&organisation.orgnr).await?,
                svarut_certificate: Some(self.svarut_pem.clone()),
                print: None,
                sender: None,
            }),
            Entity::Citizen(citizen) => {
                let (krr, print, sender) = tokio::try_join!(
                    self.sources.krr(&citizen.id, caller_token),
                    self.sources.print_provider(caller_token),
                    self.sources.organisation(consumer),
                )?;
                let certificate = krr.and_then(|(krr, certificate)| {
                    citizen.krr = krr;
                    certificate
                });
                Ok(Facts {
                    certificate,
                    svarut_certificate: None,
                    print: Some(print),
                    sender,
                })
            }
        }
    }

    /// `answer` as a JWS when the client accepts `application/jose`, else as it is.
    fn answer(&self, headers: &HeaderMap, answer: Answer) -> Result<Response, Refusal> {
        let (text, content_type) = match answer {
            Answer::Json(value) => (value.to_string(), "application/json"),
            Answer::Text(text) => (text, "text/plain; charset=utf-8"),
        };
        let wants_jose = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .any(|value| value.contains("application/jose"));
        if !wants_jose {
            return Ok(([(header::CONTENT_TYPE, content_type)], text).into_response());
        }
        let foreign_key = {
            let mut forgery = lock(&self.forgery);
            if forgery.remaining > 0 {
                forgery.remaining -= 1;
                forgery.key.clone()
            } else {
                None
            }
        };
        let signed = match &foreign_key {
            Some(key) => self.signer.sign_with(key, text.as_bytes()),
            None => self.signer.sign(text.as_bytes()),
        }
        .map_err(Refusal::internal)?;
        Ok(([(header::CONTENT_TYPE, "application/jose")], signed).into_response())
    }
}

/// The registry trusts exactly the tokens the Maskinporten simulator issues, as the real one
/// trusts its Maskinporten.
impl TokenVerifier for crate::maskinporten::TokenVerifier {
    fn verify(&self, token: &str) -> Result<TokenClaims, String> {
        let claims = crate::maskinporten::TokenVerifier::verify(self, token, None)?;
        Ok(TokenClaims {
            consumer: claims.consumer,
            scopes: claims.scopes,
        })
    }
}
