//! The Altinn token exchange: Altinn 3 accepts only its own tokens, which it issues for a
//! valid Maskinporten token.
//!
//! DPO and DPV (Altinn 3) cannot be exercised without it, and an exchange that issued a token
//! for any bearer would hide a host that sent none or a stale one. So the bearer is verified
//! against the Maskinporten simulator's key ([`TokenVerifier`]), and a missing, malformed,
//! foreign or expired one is answered 401 as Altinn does. The Altinn token is an RS256 JWT
//! signed by this simulator's own key, sent as the bare text body, carrying the Maskinporten
//! token's `scope`, `consumer` and `client_id`, the organisation number as
//! `urn:altinn:orgNumber`, and `iss`, `iat`, `exp`, `jti`.
//!
//! | request | answer |
//! |---|---|
//! | `GET /authentication/api/v1/exchange/maskinporten`, `Authorization: Bearer <Maskinporten token>` | `200` the Altinn JWT, `text/plain`; `401` otherwise |

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use serde_json::json;

use crate::jose;
use crate::maskinporten::{Claims, TokenVerifier};
use crate::serving::{Server, lock, record};

/// The path of the exchange.
pub const EXCHANGE_PATH: &str = "/authentication/api/v1/exchange/maskinporten";
/// The `iss` of the Altinn tokens.
pub const ISSUER: &str = "https://platform.altinn.simulated/authentication/api/v1/openid/";
/// How many exchanges are kept for inspection.
const KEPT: usize = 1000;

/// How the exchange is set up.
#[derive(Clone)]
pub struct AltinnExchangeConfig {
    /// The port on 127.0.0.1; 0 lets the system pick a free one.
    pub port: u16,
    /// Checks the Maskinporten tokens presented.
    pub maskinporten: TokenVerifier,
    /// How long Altinn tokens live, in seconds (Altinn's are valid 30 minutes).
    pub token_lifetime: u64,
    /// The key its tokens are signed with; none makes a new one at start.
    pub signing_key: Option<PKey<Private>>,
}

impl AltinnExchangeConfig {
    /// An exchange on a free port accepting tokens `maskinporten` verifies, issuing tokens
    /// valid 30 minutes.
    pub fn new(maskinporten: TokenVerifier) -> Self {
        Self {
            port: 0,
            maskinporten,
            token_lifetime: 30 * 60,
            signing_key: None,
        }
    }
}

/// A running Altinn token exchange. Dropping it stops the server.
pub struct AltinnExchange {
    server: Server,
    state: Arc<ExchangeState>,
}

impl AltinnExchange {
    /// Binds 127.0.0.1 on the configured port and serves until stopped.
    pub async fn start(config: AltinnExchangeConfig) -> io::Result<Self> {
        let key = match &config.signing_key {
            Some(key) => key.clone(),
            None => PKey::from_rsa(Rsa::generate(2048)?)?,
        };
        let kid = format!("simulated-altinn-{}", uuid::Uuid::new_v4());
        let state = Arc::new(ExchangeState {
            config,
            key,
            kid,
            exchanged: Mutex::new(VecDeque::new()),
            refused: AtomicU64::new(0),
            fail_next: Arc::new(AtomicU64::new(0)),
        });
        let app = Router::new()
            .route(EXCHANGE_PATH, get(exchange))
            .with_state(state.clone());
        let server = Server::start(
            "altinn token exchange",
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

    /// The exchange's URL.
    pub fn exchange_url(&self) -> String {
        format!("{}{EXCHANGE_PATH}", self.base_url())
    }

    /// What checks this exchange's Altinn tokens (their `iss` is [`ISSUER`]).
    pub fn verifier(&self) -> TokenVerifier {
        TokenVerifier::new(&self.state.key, &self.state.kid, ISSUER)
            .expect("an RSA key has a public half")
    }

    /// The claims of the Maskinporten tokens exchanged so far (the last thousand), oldest first.
    pub fn exchanged(&self) -> Vec<Claims> {
        lock(&self.state.exchanged).iter().cloned().collect()
    }

    /// How many requests were refused with 401.
    pub fn refused(&self) -> u64 {
        self.state.refused.load(Ordering::SeqCst)
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

struct ExchangeState {
    config: AltinnExchangeConfig,
    key: PKey<Private>,
    kid: String,
    exchanged: Mutex<VecDeque<Claims>>,
    refused: AtomicU64,
    fail_next: Arc<AtomicU64>,
}

async fn exchange(State(state): State<Arc<ExchangeState>>, headers: HeaderMap) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or_else(|| "a Bearer Maskinporten token is required".to_owned());
    let claims = bearer.and_then(|token| state.config.maskinporten.verify(token, None));
    let claims = match claims {
        Ok(claims) => claims,
        Err(why) => {
            state.refused.fetch_add(1, Ordering::SeqCst);
            tracing::info!(%why, "altinn token exchange refused a token");
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                why,
            )
                .into_response();
        }
    };
    let now = jose::now();
    let org_number = claims
        .consumer
        .strip_prefix("0192:")
        .unwrap_or(&claims.consumer);
    let altinn = json!({
        "scope": claims.scopes.join(" "),
        "consumer": {"authority": "iso6523-actorid-upis", "ID": claims.consumer},
        "client_id": claims.client_id,
        "urn:altinn:orgNumber": org_number,
        "urn:altinn:authenticatemethod": "maskinporten",
        "iss": ISSUER,
        "iat": now,
        "exp": now + state.config.token_lifetime as i64,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    match jose::sign_rs256(&state.kid, &altinn, &state.key) {
        Ok(token) => {
            record(&state.exchanged, KEPT, claims);
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], token).into_response()
        }
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}
