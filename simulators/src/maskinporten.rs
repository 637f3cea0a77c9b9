//! Maskinporten: the OAuth token endpoint that turns a signed JWT-bearer assertion into an
//! access token, and the JWK set that lets services verify those tokens.
//!
//! Every call the integration point makes to the registry or a provider carries one of these
//! tokens, so this simulator checks the assertion as Maskinporten does: an RS256 signature by
//! the business certificate in `x5c`, that certificate chained to the (test) CA, `aud` equal
//! to the configured audience, a client id in `iss`, a lifetime of at most 120 s that has not
//! run out, a `jti` not seen before, and scopes the client may have. It answers Maskinporten's
//! JSON, or a `400 {"error", "error_description"}` naming what was wrong. Its access tokens are
//! RS256 JWTs carrying `scope`, `consumer` (`0192:<orgnr>` from the certificate), `client_id`,
//! `iss`, `iat`, `exp` and `jti`; other simulators check them with a [`TokenVerifier`].
//!
//! | request | answer |
//! |---|---|
//! | `POST /token`, form `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT` | `200 {access_token, token_type, expires_in, scope}` or `400 {error, error_description}` |
//! | `GET /jwk`, `GET /jwks` | `200 {"keys": [RSA JWK]}` |

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Form;
use axum::Router;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use openssl::pkey::{PKey, Private, Public};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509Ref, X509StoreContext};
use serde_json::{Value, json};

use crate::jose::{self, Compact};
use crate::serving::{Server, lock, record};

/// The grant type of the JWT-bearer grant (RFC 7523).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The longest an assertion may live, `exp - iat`, as Maskinporten allows.
pub const MAX_ASSERTION_LIFETIME: i64 = 120;
/// Clock difference tolerated on `iat` and `exp`.
const SKEW: i64 = 10;
/// How many issued tokens and refusals are kept for inspection.
const KEPT: usize = 1000;
/// The ISO 6523 authority of Norwegian organisation numbers.
const AUTHORITY: &str = "iso6523-actorid-upis";

/// How the simulator is set up.
#[derive(Clone)]
pub struct MaskinportenConfig {
    /// The port on 127.0.0.1; 0 lets the system pick a free one.
    pub port: u16,
    /// The `aud` every assertion must carry; also the `iss` of the access tokens.
    pub audience: String,
    /// The CA that client certificates must chain to.
    pub ca: X509,
    /// The scopes clients may ask for.
    pub allowed_scopes: BTreeSet<String>,
    /// How long access tokens live, in seconds.
    pub token_lifetime: u64,
    /// The key its tokens are signed with; none makes a new one at start.
    pub signing_key: Option<PKey<Private>>,
}

impl MaskinportenConfig {
    /// A simulator on a free port trusting `ca`, for `audience`, allowing `allowed_scopes`,
    /// issuing tokens valid 120 s (Maskinporten's default).
    pub fn new(
        ca: X509,
        audience: impl Into<String>,
        allowed_scopes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            port: 0,
            audience: audience.into(),
            ca,
            allowed_scopes: allowed_scopes.into_iter().map(Into::into).collect(),
            token_lifetime: 120,
            signing_key: None,
        }
    }
}

/// The claims of a verified access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The scopes, in the token's order.
    pub scopes: Vec<String>,
    /// `consumer.ID`, `0192:<orgnr>`.
    pub consumer: String,
    /// The client id the token was issued to.
    pub client_id: String,
    /// The token's id.
    pub jti: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
}

/// Checks access tokens one issuer signs: signature, `kid`, `iss`, expiry and a scope. Cheap
/// to clone, so other simulators hold one.
#[derive(Clone)]
pub struct TokenVerifier {
    key: PKey<Public>,
    kid: String,
    issuer: String,
}

impl TokenVerifier {
    /// Checks tokens `key` signs under `kid`, issued by `issuer`.
    pub(crate) fn new(
        key: &PKey<Private>,
        kid: &str,
        issuer: &str,
    ) -> Result<Self, openssl::error::ErrorStack> {
        Ok(Self {
            key: PKey::public_key_from_der(&key.public_key_to_der()?)?,
            kid: kid.to_owned(),
            issuer: issuer.to_owned(),
        })
    }

    /// The claims of `token` if it is valid now and, when `required_scope` is given, carries it.
    pub fn verify(&self, token: &str, required_scope: Option<&str>) -> Result<Claims, String> {
        let compact = Compact::parse(token)?;
        if compact.header.get("kid").and_then(Value::as_str) != Some(&self.kid) {
            return Err(format!("the token is not signed with key {}", self.kid));
        }
        compact.verify_rs256(&self.key)?;
        if compact.text("iss") != Some(&self.issuer) {
            return Err(format!("the token's iss is not {}", self.issuer));
        }
        let exp = compact.number("exp").ok_or("the token has no exp")?;
        if exp <= jose::now() {
            return Err("the token has expired".into());
        }
        let scopes: Vec<String> = compact
            .text("scope")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if let Some(required) = required_scope
            && !scopes.iter().any(|scope| scope == required)
        {
            return Err(format!("the token does not carry scope {required}"));
        }
        let consumer = compact
            .claims
            .get("consumer")
            .filter(|c| c.get("authority").and_then(Value::as_str) == Some(AUTHORITY))
            .and_then(|c| c.get("ID"))
            .and_then(Value::as_str)
            .ok_or("the token has no ISO 6523 consumer")?;
        Ok(Claims {
            scopes,
            consumer: consumer.to_owned(),
            client_id: compact.text("client_id").unwrap_or_default().to_owned(),
            jti: compact.text("jti").unwrap_or_default().to_owned(),
            exp,
        })
    }
}

/// A refused token request, as answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The OAuth error code: `invalid_request`, `unsupported_grant_type`, `invalid_grant`,
    /// `invalid_client` or `invalid_scope` (answered 400), or `server_error` (500).
    pub error: String,
    /// The description sent with it.
    pub description: String,
}

/// A running Maskinporten simulator. Dropping it stops the server.
pub struct Maskinporten {
    server: Server,
    state: Arc<MpState>,
}

impl Maskinporten {
    /// Binds 127.0.0.1 on the configured port and serves until stopped.
    pub async fn start(config: MaskinportenConfig) -> io::Result<Self> {
        let key = match &config.signing_key {
            Some(key) => key.clone(),
            None => PKey::from_rsa(Rsa::generate(2048)?)?,
        };
        let mut store = X509StoreBuilder::new()?;
        store.add_cert(config.ca.clone())?;
        let kid = format!("simulated-maskinporten-{}", uuid::Uuid::new_v4());
        let state = Arc::new(MpState {
            verifier: TokenVerifier::new(&key, &kid, &config.audience)?,
            key,
            kid,
            trust: store.build(),
            config,
            seen_jti: Mutex::new(HashMap::new()),
            issued: Mutex::new(VecDeque::new()),
            refusals: Mutex::new(VecDeque::new()),
            fail_next: Arc::new(AtomicU64::new(0)),
        });
        let app = Router::new()
            .route("/token", post(token))
            .route("/jwk", get(jwks))
            .route("/jwks", get(jwks))
            .with_state(state.clone());
        let server = Server::start(
            "maskinporten",
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

    /// The run-time fault rules (latency, errors, dropped connections) of this service; the
    /// same rules its `/_faults` endpoint sets.
    pub fn faults(&self) -> &crate::faults::Faults {
        self.server.faults()
    }

    /// The token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.base_url())
    }

    /// What checks this simulator's access tokens.
    pub fn verifier(&self) -> TokenVerifier {
        self.state.verifier.clone()
    }

    /// The claims of `token` if this simulator issued it, it is valid now and carries
    /// `required_scope`.
    pub fn verify_access_token(&self, token: &str, required_scope: &str) -> Result<Claims, String> {
        self.state.verifier.verify(token, Some(required_scope))
    }

    /// The claims of the tokens issued so far (the last thousand), oldest first.
    pub fn issued(&self) -> Vec<Claims> {
        lock(&self.state.issued).iter().cloned().collect()
    }

    /// The requests refused so far (the last thousand), oldest first.
    pub fn refusals(&self) -> Vec<Refusal> {
        lock(&self.state.refusals).iter().cloned().collect()
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

struct MpState {
    config: MaskinportenConfig,
    key: PKey<Private>,
    kid: String,
    verifier: TokenVerifier,
    trust: openssl::x509::store::X509Store,
    /// Assertion ids seen, with their expiry; forgotten once expired.
    seen_jti: Mutex<HashMap<String, i64>>,
    issued: Mutex<VecDeque<Claims>>,
    refusals: Mutex<VecDeque<Refusal>>,
    fail_next: Arc<AtomicU64>,
}

fn refuse(error: &str, description: impl Into<String>) -> Refusal {
    Refusal {
        error: error.to_owned(),
        description: description.into(),
    }
}

async fn jwks(State(state): State<Arc<MpState>>) -> Response {
    match jose::jwk_set(&state.kid, &state.key) {
        Ok(set) => axum::Json(set).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

async fn token(
    State(state): State<Arc<MpState>>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let answer = form
        .map_err(|rejection| refuse("invalid_request", rejection.body_text()))
        .and_then(|Form(form)| grant(&state, &form));
    match answer {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(refusal) => {
            tracing::info!(error = %refusal.error, description = %refusal.description,
                "maskinporten refused a token request");
            let status = if refusal.error == "server_error" {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::BAD_REQUEST
            };
            let body = json!({"error": refusal.error, "error_description": refusal.description});
            record(&state.refusals, KEPT, refusal);
            (status, axum::Json(body)).into_response()
        }
    }
}

fn grant(state: &MpState, form: &HashMap<String, String>) -> Result<Value, Refusal> {
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| refuse("invalid_request", "grant_type is missing"))?;
    if grant_type != JWT_BEARER {
        return Err(refuse(
            "unsupported_grant_type",
            format!("grant_type must be {JWT_BEARER}"),
        ));
    }
    let assertion = form
        .get("assertion")
        .ok_or_else(|| refuse("invalid_request", "assertion is missing"))?;
    let invalid = |why: String| refuse("invalid_grant", format!("Invalid assertion: {why}"));
    let compact = Compact::parse(assertion).map_err(invalid)?;
    let leaf = client_certificate(state, &compact)?;
    let public = leaf.public_key().map_err(|e| invalid(e.to_string()))?;
    compact.verify_rs256(&public).map_err(invalid)?;
    let orgnr = organisation_number(&leaf).ok_or_else(|| {
        refuse(
            "invalid_client",
            "the client certificate names no organisation number",
        )
    })?;
    check_claims(state, &compact)?;
    let client_id = compact
        .text("iss")
        .filter(|iss| !iss.is_empty())
        .ok_or_else(|| refuse("invalid_client", "the assertion has no iss (client id)"))?;
    let scope = compact.text("scope").unwrap_or_default();
    let scopes: Vec<String> = scope.split_whitespace().map(str::to_owned).collect();
    if scopes.is_empty() {
        return Err(refuse("invalid_scope", "the assertion asks for no scope"));
    }
    if let Some(denied) = scopes
        .iter()
        .find(|s| !state.config.allowed_scopes.contains(*s))
    {
        return Err(refuse(
            "invalid_scope",
            format!("Scope {denied} is not allowed for client {client_id}"),
        ));
    }
    remember_jti(state, &compact)?;

    let now = jose::now();
    let exp = now + state.config.token_lifetime as i64;
    let jti = uuid::Uuid::new_v4().to_string();
    let consumer = format!("0192:{orgnr}");
    let claims = json!({
        "scope": scopes.join(" "),
        "consumer": {"authority": AUTHORITY, "ID": consumer},
        "client_id": client_id,
        "client_amr": "virksomhetssertifikat",
        "token_type": "Bearer",
        "iss": state.config.audience,
        "iat": now,
        "exp": exp,
        "jti": jti,
    });
    let access_token = jose::sign_rs256(&state.kid, &claims, &state.key)
        .map_err(|e| refuse("server_error", e.to_string()))?;
    record(
        &state.issued,
        KEPT,
        Claims {
            scopes: scopes.clone(),
            consumer,
            client_id: client_id.to_owned(),
            jti,
            exp,
        },
    );
    Ok(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": state.config.token_lifetime,
        "scope": scopes.join(" "),
    }))
}

/// The `x5c` leaf, verified against the trusted CA (chain and validity dates).
fn client_certificate(state: &MpState, compact: &Compact) -> Result<X509, Refusal> {
    let first = compact
        .header
        .get("x5c")
        .and_then(Value::as_array)
        .and_then(|chain| chain.first())
        .and_then(Value::as_str);
    let Some(first) = first else {
        let why = if compact.header.contains_key("kid") {
            "no key is registered for the client under that kid; send the certificate in x5c"
        } else {
            "the assertion header has no x5c certificate"
        };
        return Err(refuse("invalid_client", why));
    };
    let leaf = BASE64
        .decode(first)
        .ok()
        .and_then(|der| X509::from_der(&der).ok())
        .ok_or_else(|| refuse("invalid_client", "x5c[0] is not a DER certificate"))?;
    let verified = (|| {
        let chain = Stack::new()?;
        let mut context = X509StoreContext::new()?;
        context.init(&state.trust, &leaf, &chain, |c| {
            Ok(c.verify_cert()?.then_some(()).ok_or(c.error()))
        })
    })();
    match verified {
        Ok(Ok(())) => Ok(leaf),
        Ok(Err(error)) => Err(refuse(
            "invalid_client",
            format!("the client certificate is not trusted: {error}"),
        )),
        Err(error) => Err(refuse("server_error", error.to_string())),
    }
}

/// The organisation number in the subject's organizationIdentifier (`NTRNO-<orgnr>`) or
/// serialNumber.
fn organisation_number(certificate: &X509Ref) -> Option<String> {
    let subject = certificate.subject_name();
    let text = |entry: &openssl::x509::X509NameEntryRef| entry.data().to_string().ok();
    let identifier = subject
        .entries()
        .find(|e| {
            let object = e.object().to_string();
            object == "organizationIdentifier" || object == "2.5.4.97"
        })
        .and_then(text)
        .and_then(|value| value.strip_prefix("NTRNO-").map(str::to_owned));
    let number = identifier.or_else(|| {
        subject
            .entries_by_nid(openssl::nid::Nid::SERIALNUMBER)
            .next()
            .and_then(text)
    })?;
    (number.len() == 9 && number.bytes().all(|b| b.is_ascii_digit())).then_some(number)
}

fn check_claims(state: &MpState, compact: &Compact) -> Result<(), Refusal> {
    let invalid = |why: String| refuse("invalid_grant", format!("Invalid assertion: {why}"));
    if compact.text("aud") != Some(&state.config.audience) {
        return Err(invalid(format!(
            "aud must be {}, not {}",
            state.config.audience,
            compact.claims.get("aud").unwrap_or(&Value::Null)
        )));
    }
    let (Some(iat), Some(exp)) = (compact.number("iat"), compact.number("exp")) else {
        return Err(invalid("iat and exp are required".into()));
    };
    let now = jose::now();
    if exp - iat > MAX_ASSERTION_LIFETIME || exp < iat {
        return Err(invalid(format!(
            "exp - iat must be 0 to {MAX_ASSERTION_LIFETIME} s, not {}",
            exp - iat
        )));
    }
    if exp + SKEW < now {
        return Err(invalid("the assertion has expired".into()));
    }
    if iat > now + SKEW {
        return Err(invalid("the assertion is issued in the future".into()));
    }
    Ok(())
}

/// Refuses a `jti` seen before, and remembers this one until its assertion expires.
fn remember_jti(state: &MpState, compact: &Compact) -> Result<(), Refusal> {
    let jti = compact
        .text("jti")
        .filter(|jti| !jti.is_empty())
        .ok_or_else(|| refuse("invalid_grant", "Invalid assertion: jti is required"))?;
    let exp = compact.number("exp").unwrap_or_default();
    let now = jose::now();
    let mut seen = lock(&state.seen_jti);
    seen.retain(|_, expiry| *expiry + SKEW >= now);
    if seen.insert(jti.to_owned(), exp).is_some() {
        return Err(refuse(
            "invalid_grant",
            format!("Invalid assertion: jti {jti} has been used before"),
        ));
    }
    Ok(())
}
