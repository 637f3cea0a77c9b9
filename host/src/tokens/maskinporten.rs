//! The Maskinporten JWT-bearer grant: the host proves who it is with an assertion signed by the
//! organisation's key and gets an access token for a set of scopes.
//!
//! Every plugin request and registry lookup needs a token, so tokens are kept per scope set until
//! shortly before they expire, and a missing one is fetched once however many callers wait for it
//! (see [`crate::expiring`]). The scope set is sorted and deduplicated first, so callers naming the
//! same scopes in another order share a token. The assertion carries the business certificate in
//! `x5c` (Maskinporten's default) or the `kid` of a key registered as a JWK (Tenor test
//! organisations); its claims are those the Java integration point sends. The token's own `iat`
//! doubles as a clock check: a host whose clock is off gets tokens that look expired or not yet
//! valid to the services it calls, so a difference over five seconds is logged as a warning.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::RsaPrivateKeyBuilder;
use openssl::sign::Signer;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::TokenError;
use super::jwt;
use super::retry::{self, Backoff, Failure};
use crate::crypto::BusinessCertificate;
use crate::expiring::{CacheCounters, ExpiringCache};
use crate::http_text::excerpt;

/// The grant type of the JWT-bearer grant (RFC 7523).
pub(super) const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// How long an assertion is valid, as Maskinporten expects.
const ASSERTION_LIFETIME: u64 = 120;
/// The clock difference from Maskinporten's above which the host warns.
const CLOCK_TOLERANCE: i64 = 5;
const SERVICE: &str = "Maskinporten";

/// How the integration point talks to Maskinporten.
#[derive(Clone, Debug)]
pub struct MaskinportenConfig {
    /// The token endpoint, e.g. `https://test.maskinporten.no/token`.
    pub token_url: String,
    /// The assertion's `aud`, e.g. `https://test.maskinporten.no/`.
    pub audience: String,
    /// The assertion's `iss`: the client id (the Java integration point's default is
    /// `MOVE_IP_<orgnr>`).
    pub client_id: String,
    /// `consumer_org`, the organisation acted for (DPI sending, SvarUt REST); none by default.
    pub consumer_org: Option<String>,
    /// `resource`, the audience the token is restricted to; none by default.
    pub resource: Option<String>,
    /// Further claims (DPO's Altinn system user `authorization_details`, for one).
    pub extra_claims: Map<String, Value>,
    /// How long before its expiry a token stops being handed out.
    pub refresh_margin: Duration,
    /// Retries of a request that failed transiently.
    pub retry: Backoff,
    /// The longest one token request may take.
    pub request_timeout: Duration,
}

impl MaskinportenConfig {
    /// The required settings, and defaults for the rest: no optional claims, a 10 s refresh
    /// margin (as the Java client keeps tokens for `expires_in - 10`), [`Backoff::default`] and
    /// a 30 s request timeout.
    pub fn new(
        token_url: impl Into<String>,
        audience: impl Into<String>,
        client_id: impl Into<String>,
    ) -> Self {
        Self {
            token_url: token_url.into(),
            audience: audience.into(),
            client_id: client_id.into(),
            consumer_org: None,
            resource: None,
            extra_claims: Map::new(),
            refresh_margin: Duration::from_secs(10),
            retry: Backoff::default(),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The key that signs assertions, and how Maskinporten finds its public half.
#[derive(Clone)]
pub enum ClientKey {
    /// The business certificate, sent in `x5c`.
    Certificate(BusinessCertificate),
    /// A key registered with the client as a JWK, named by its `kid`.
    Jwk {
        /// The private key.
        key: PKey<Private>,
        /// The key id it was registered under.
        kid: String,
    },
}

impl ClientKey {
    /// A key from a private RSA JWK (`kty`, `kid`, `n`, `e`, `d`, `p`, `q`, `dp`, `dq`, `qi`), as
    /// the Java integration point reads from its JWK file.
    pub fn from_jwk(json: &str) -> Result<Self, String> {
        let jwk: Map<String, Value> =
            serde_json::from_str(json).map_err(|error| format!("not a JWK: {error}"))?;
        let text = |name: &str| {
            jwk.get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("the JWK has no \"{name}\""))
        };
        if text("kty")? != "RSA" {
            return Err("the JWK is not an RSA key (\"kty\" must be \"RSA\")".into());
        }
        let number = |name: &str| {
            let bytes = URL_SAFE_NO_PAD
                .decode(text(name)?)
                .map_err(|_| format!("the JWK's \"{name}\" is not base64url"))?;
            BigNum::from_slice(&bytes).map_err(|error| error.to_string())
        };
        let openssl = |error: openssl::error::ErrorStack| error.to_string();
        let rsa = RsaPrivateKeyBuilder::new(number("n")?, number("e")?, number("d")?)
            .map_err(openssl)?
            .set_factors(number("p")?, number("q")?)
            .map_err(openssl)?
            .set_crt_params(number("dp")?, number("dq")?, number("qi")?)
            .map_err(openssl)?
            .build();
        if !rsa.check_key().unwrap_or(false) {
            return Err("the JWK's private key is inconsistent".into());
        }
        Ok(Self::Jwk {
            key: PKey::from_rsa(rsa).map_err(openssl)?,
            kid: text("kid")?.to_owned(),
        })
    }

    fn header(&self) -> Value {
        match self {
            // The Java integration point sends the business certificate alone, not its chain.
            Self::Certificate(certificate) => {
                let leaf: Vec<String> = certificate.x5c().into_iter().take(1).collect();
                json!({"alg": "RS256", "x5c": leaf})
            }
            Self::Jwk { kid, .. } => json!({"alg": "RS256", "kid": kid}),
        }
    }

    fn sign(&self, input: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            Self::Certificate(certificate) => certificate
                .sign_rs256(input)
                .map_err(|error| error.to_string()),
            Self::Jwk { key, .. } => {
                let sign = || {
                    let mut signer = Signer::new(MessageDigest::sha256(), key)?;
                    signer.update(input)?;
                    signer.sign_to_vec()
                };
                sign().map_err(|error| error.to_string())
            }
        }
    }
}

/// A Maskinporten client that keeps its tokens.
pub struct Maskinporten {
    grant: Arc<Grant>,
    tokens: ExpiringCache<Vec<String>, String, TokenError>,
}

struct Grant {
    config: MaskinportenConfig,
    key: ClientKey,
    http: reqwest::Client,
}

/// The token endpoint's answer.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

/// An OAuth error answer.
#[derive(Deserialize)]
struct OAuthError {
    error: String,
    error_description: Option<String>,
}

impl Maskinporten {
    /// A client for `config`, signing with `key`.
    pub fn new(config: MaskinportenConfig, key: ClientKey) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .user_agent(concat!("integrasjonspunkt/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            grant: Arc::new(Grant { config, key, http }),
            tokens: ExpiringCache::new(),
        })
    }

    /// How token lookups were answered: kept, shared, or fetched.
    pub fn cache_counters(&self) -> Arc<CacheCounters> {
        self.tokens.counters()
    }

    /// An access token carrying `scopes`: a kept one while it is fresh, else a new one.
    pub async fn token(&self, scopes: &[String]) -> Result<String, TokenError> {
        let key = scope_set(scopes);
        let grant = self.grant.clone();
        let scopes = key.join(" ");
        self.tokens
            .get_or_fetch(&key, move || {
                Box::pin(async move { grant.fetch(&scopes).await })
            })
            .await
    }
}

/// `scopes` sorted and without repeats: the cache key and the order they are asked for in.
pub(super) fn scope_set(scopes: &[String]) -> Vec<String> {
    let mut set = scopes.to_vec();
    set.sort();
    set.dedup();
    set
}

impl Grant {
    /// A new token for the space-separated `scopes`, and when to stop handing it out.
    async fn fetch(&self, scopes: &str) -> Result<(String, Instant), TokenError> {
        let asked = Instant::now();
        let what = format!("the Maskinporten token request for scopes \"{scopes}\"");
        let answer = retry::with_backoff(
            &self.config.retry,
            &what,
            || self.attempt(scopes),
            |attempts, reason| TokenError::Unavailable {
                service: SERVICE,
                scopes: scopes.to_owned(),
                attempts,
                reason,
            },
        )
        .await?;
        check_clock(&answer.access_token, SystemTime::now());
        let lifetime =
            Duration::from_secs(answer.expires_in).saturating_sub(self.config.refresh_margin);
        Ok((answer.access_token, asked + lifetime))
    }

    async fn attempt(&self, scopes: &str) -> Result<TokenResponse, Failure<TokenError>> {
        let assertion = self.assertion(scopes).map_err(Failure::Final)?;
        let request = self
            .http
            .post(&self.config.token_url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[("grant_type", JWT_BEARER), ("assertion", &assertion)]);
        let answer = retry::send(request).await.map_err(Failure::Transient)?;
        if !answer.status.is_success() {
            let reason = match serde_json::from_slice::<OAuthError>(&answer.body) {
                Ok(OAuthError {
                    error,
                    error_description: Some(description),
                }) => format!("{error}: {description}"),
                Ok(OAuthError { error, .. }) => error,
                Err(_) => excerpt(&answer.body),
            };
            return Err(Failure::Final(TokenError::Refused {
                service: SERVICE,
                scopes: scopes.to_owned(),
                status: answer.status.as_u16(),
                reason,
            }));
        }
        serde_json::from_slice(&answer.body).map_err(|error| {
            Failure::Final(TokenError::Malformed {
                service: SERVICE,
                scopes: scopes.to_owned(),
                reason: format!("{error} in {}", excerpt(&answer.body)),
            })
        })
    }

    /// The signed assertion asking for `scopes`.
    fn assertion(&self, scopes: &str) -> Result<String, TokenError> {
        let config = &self.config;
        let iat = unix_seconds(SystemTime::now());
        let mut claims = config.extra_claims.clone();
        claims.insert("aud".into(), config.audience.clone().into());
        claims.insert("iss".into(), config.client_id.clone().into());
        claims.insert("scope".into(), scopes.into());
        claims.insert("jti".into(), uuid::Uuid::new_v4().to_string().into());
        claims.insert("iat".into(), iat.into());
        claims.insert("exp".into(), (iat + ASSERTION_LIFETIME as i64).into());
        if let Some(consumer) = &config.consumer_org {
            claims.insert("consumer_org".into(), consumer.clone().into());
        }
        if let Some(resource) = &config.resource {
            claims.insert("resource".into(), resource.clone().into());
        }
        jwt::sign_compact(&self.key.header(), &Value::Object(claims), |input| {
            self.key.sign(input)
        })
        .map_err(|reason| TokenError::Signing {
            scopes: scopes.to_owned(),
            reason,
        })
    }
}

/// Warns when `token`'s `iat` and `now` differ by more than [`CLOCK_TOLERANCE`]; answers the
/// difference in seconds (positive when the local clock is ahead), if the token has an `iat`.
fn check_clock(token: &str, now: SystemTime) -> Option<i64> {
    let issued = jwt::unverified_time_claim(token, "iat")?;
    let ahead = unix_seconds(now) - issued;
    if ahead.abs() > CLOCK_TOLERANCE {
        tracing::warn!(
            clock_ahead_seconds = ahead,
            "the local clock differs from Maskinporten's by more than {CLOCK_TOLERANCE} s \
             (a token issued at {issued} arrived at {}); tokens may look expired or not yet \
             valid to the services they are sent to; check the host's time synchronisation",
            unix_seconds(now)
        );
    }
    Some(ahead)
}

fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_secs() as i64,
        Err(before) => -(before.duration().as_secs() as i64),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use axum::http::StatusCode;
    use openssl::sign::Verifier;

    use super::*;
    use crate::tokens::standin::{StandIn, business_certificate, config};

    fn scopes(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_hundred_concurrent_callers_of_one_scope_set_cause_one_request() {
        let dir = tempfile::tempdir().unwrap();
        let stand_in = StandIn::start(Vec::new(), 120, 0).await;
        let client = Arc::new(
            Maskinporten::new(
                config(&stand_in.url),
                ClientKey::Certificate(business_certificate(&dir)),
            )
            .unwrap(),
        );
        let callers: Vec<_> = (0..100)
            .map(|i| {
                let client = client.clone();
                // Half name the scopes in the other order, and one names one twice.
                let names = match i % 2 {
                    0 => scopes(&["eformidling:dpo", "eformidling:dpe"]),
                    _ if i == 1 => {
                        scopes(&["eformidling:dpe", "eformidling:dpo", "eformidling:dpe"])
                    }
                    _ => scopes(&["eformidling:dpe", "eformidling:dpo"]),
                };
                tokio::spawn(async move { client.token(&names).await })
            })
            .collect();
        let mut tokens = HashSet::new();
        for caller in callers {
            tokens.insert(caller.await.unwrap().expect("a token"));
        }
        assert_eq!(stand_in.requests(), 1, "one token request for all callers");
        assert_eq!(tokens.len(), 1, "every caller got the same token");
        assert_eq!(
            *stand_in.scopes.lock().unwrap(),
            ["eformidling:dpe eformidling:dpo"],
            "space-separated, sorted, deduplicated"
        );

        let other = client.token(&scopes(&["eformidling:dpv"])).await.unwrap();
        assert_eq!(
            stand_in.requests(),
            2,
            "a second scope set is a second request"
        );
        assert!(!tokens.contains(&other));
        client
            .token(&scopes(&["eformidling:dpo", "eformidling:dpe"]))
            .await
            .unwrap();
        assert_eq!(stand_in.requests(), 2, "the first token is still kept");
    }

    #[tokio::test]
    async fn a_token_within_its_refresh_margin_is_fetched_again() {
        let dir = tempfile::tempdir().unwrap();
        // Tokens valid 10 s, handed out until 10 s before expiry: expired as soon as fetched.
        let stand_in = StandIn::start(Vec::new(), 10, 0).await;
        let client = Maskinporten::new(
            config(&stand_in.url),
            ClientKey::Certificate(business_certificate(&dir)),
        )
        .unwrap();
        let names = scopes(&["eformidling:dpo"]);
        client.token(&names).await.unwrap();
        client.token(&names).await.unwrap();
        assert_eq!(stand_in.requests(), 2);
    }

    #[tokio::test]
    async fn a_refusal_names_the_scope_and_quotes_the_provider() {
        let dir = tempfile::tempdir().unwrap();
        let refusal = json!({"error": "invalid_scope",
                             "error_description": "Scope eformidling:dpx is not allowed"});
        let stand_in =
            StandIn::start(vec![(StatusCode::BAD_REQUEST, refusal.to_string())], 120, 0).await;
        let client = Maskinporten::new(
            config(&stand_in.url),
            ClientKey::Certificate(business_certificate(&dir)),
        )
        .unwrap();
        let error = client
            .token(&scopes(&["eformidling:dpx"]))
            .await
            .unwrap_err();
        assert!(matches!(error, TokenError::Refused { status: 400, .. }));
        let message = error.to_string();
        assert!(message.contains("\"eformidling:dpx\""), "{message}");
        assert!(
            message.contains("invalid_scope: Scope eformidling:dpx is not allowed"),
            "{message}"
        );
        assert_eq!(stand_in.requests(), 1, "a 4xx is not retried");
    }

    #[tokio::test]
    async fn a_5xx_is_retried_until_a_token_comes() {
        let dir = tempfile::tempdir().unwrap();
        let stand_in = StandIn::start(
            vec![(
                StatusCode::SERVICE_UNAVAILABLE,
                "down for maintenance".into(),
            )],
            120,
            0,
        )
        .await;
        let client = Maskinporten::new(
            config(&stand_in.url),
            ClientKey::Certificate(business_certificate(&dir)),
        )
        .unwrap();
        let token = client.token(&scopes(&["eformidling:dpo"])).await.unwrap();
        assert_eq!(
            jwt::unverified_claims(&token).unwrap()["scope"],
            "eformidling:dpo"
        );
        assert_eq!(stand_in.requests(), 2);
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_fails_after_the_configured_attempts() {
        let dir = tempfile::tempdir().unwrap();
        let unused = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", unused.local_addr().unwrap());
        drop(unused);
        let client = Maskinporten::new(
            config(&url),
            ClientKey::Certificate(business_certificate(&dir)),
        )
        .unwrap();
        let error = client
            .token(&scopes(&["eformidling:dpo"]))
            .await
            .unwrap_err();
        assert!(
            matches!(error, TokenError::Unavailable { attempts: 3, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("\"eformidling:dpo\""), "{error}");
    }

    #[tokio::test]
    async fn the_assertion_carries_the_optional_claims_and_a_jwk_kid() {
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        let b64 = |n: &openssl::bn::BigNumRef| URL_SAFE_NO_PAD.encode(n.to_vec());
        let jwk = json!({
            "kty": "RSA", "kid": "tenor-key-1", "n": b64(rsa.n()), "e": b64(rsa.e()),
            "d": b64(rsa.d()), "p": b64(rsa.p().unwrap()), "q": b64(rsa.q().unwrap()),
            "dp": b64(rsa.dmp1().unwrap()), "dq": b64(rsa.dmq1().unwrap()),
            "qi": b64(rsa.iqmp().unwrap()),
        });
        let key = ClientKey::from_jwk(&jwk.to_string()).unwrap();
        let mut config = config("http://127.0.0.1:9/token");
        config.consumer_org = Some("987654321".into());
        config.resource = Some("https://broker.altinn.no".into());
        config.extra_claims.insert(
            "authorization_details".into(),
            json!([{"type": "urn:altinn:systemuser"}]),
        );
        let grant = Grant {
            config,
            key,
            http: reqwest::Client::new(),
        };
        let assertion = grant.assertion("a b").unwrap();
        let parts: Vec<&str> = assertion.split('.').collect();
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header, json!({"alg": "RS256", "kid": "tenor-key-1"}));
        let public = PKey::from_rsa(
            openssl::rsa::Rsa::from_public_components(
                rsa.n().to_owned().unwrap(),
                rsa.e().to_owned().unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        let mut verifier = Verifier::new(MessageDigest::sha256(), &public).unwrap();
        verifier
            .update(format!("{}.{}", parts[0], parts[1]).as_bytes())
            .unwrap();
        assert!(
            verifier
                .verify(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap())
                .unwrap()
        );
        let claims = jwt::unverified_claims(&assertion).unwrap();
        assert_eq!(claims["scope"], "a b");
        assert_eq!(claims["consumer_org"], "987654321");
        assert_eq!(claims["resource"], "https://broker.altinn.no");
        assert_eq!(
            claims["authorization_details"][0]["type"],
            "urn:altinn:systemuser"
        );
        assert!(ClientKey::from_jwk(r#"{"kty":"EC","kid":"x"}"#).is_err());
        let mut broken = jwk.clone();
        broken["d"] = json!(b64(rsa.e()));
        let error = ClientKey::from_jwk(&broken.to_string()).err().unwrap();
        assert!(error.contains("inconsistent"), "{error}");
    }

    #[test]
    fn the_clock_check_measures_the_difference_from_the_token_iat() {
        let now = SystemTime::now();
        let token = |iat: i64| {
            jwt::sign_compact(&json!({}), &json!({"iat": iat}), |_| Ok::<_, ()>(vec![])).unwrap()
        };
        let seconds = unix_seconds(now);
        assert_eq!(check_clock(&token(seconds - 60), now), Some(60));
        assert_eq!(check_clock(&token(seconds + 3), now), Some(-3));
        assert_eq!(check_clock("opaque", now), None);
    }

    #[tokio::test]
    async fn a_token_from_a_clock_far_off_is_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let stand_in = StandIn::start(Vec::new(), 120, -30).await;
        let client = Maskinporten::new(
            config(&stand_in.url),
            ClientKey::Certificate(business_certificate(&dir)),
        )
        .unwrap();
        let captured = crate::logmask::tests::Captured::default();
        let _guard = tracing::subscriber::set_default(captured.subscriber());
        client.token(&scopes(&["eformidling:dpo"])).await.unwrap();
        let logs = captured.text();
        // 30 s, or 31 if a second boundary passed between issuing and checking.
        assert!(
            logs.contains("WARN") && logs.contains("clock_ahead_seconds=3"),
            "{logs}"
        );
    }
}
