//! The Altinn token exchange: Altinn 3 (DPO's broker, DPV's correspondence) accepts its own
//! tokens, which it issues in exchange for a Maskinporten token.
//!
//! Exchanged tokens are kept per scope set like Maskinporten's, until their own `exp` less a
//! margin; a token whose `exp` cannot be read is taken to live 25 minutes, as long as the Java
//! integration point keeps every Altinn token (they live 30).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use super::maskinporten::{Maskinporten, scope_set};
use super::retry::{self, Backoff, Failure};
use super::{TokenError, jwt};
use crate::expiring::{CacheCounters, ExpiringCache};
use crate::http_text::excerpt;

const SERVICE: &str = "the Altinn token exchange";
const UNREADABLE_EXPIRY_LIFETIME: Duration = Duration::from_secs(25 * 60);

/// Where and how the exchange is reached.
#[derive(Clone, Debug)]
pub struct AltinnConfig {
    /// The exchange, e.g.
    /// `https://platform.tt02.altinn.no/authentication/api/v1/exchange/maskinporten`.
    pub exchange_url: String,
    /// How long before its expiry an Altinn token stops being handed out.
    pub refresh_margin: Duration,
    /// Retries of a request that failed transiently.
    pub retry: Backoff,
    /// The longest one exchange may take.
    pub request_timeout: Duration,
}

impl AltinnConfig {
    /// The exchange at `exchange_url`, with a one-minute refresh margin, [`Backoff::default`]
    /// and a 30 s request timeout.
    pub fn new(exchange_url: impl Into<String>) -> Self {
        Self {
            exchange_url: exchange_url.into(),
            refresh_margin: Duration::from_secs(60),
            retry: Backoff::default(),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Exchanges Maskinporten tokens for Altinn tokens, and keeps them.
pub struct AltinnExchange {
    exchange: Arc<Exchange>,
    tokens: ExpiringCache<Vec<String>, String, TokenError>,
}

struct Exchange {
    config: AltinnConfig,
    maskinporten: Arc<Maskinporten>,
    http: reqwest::Client,
}

impl AltinnExchange {
    /// An exchange of tokens that `maskinporten` issues.
    pub fn new(config: AltinnConfig, maskinporten: Arc<Maskinporten>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .user_agent(concat!("integrasjonspunkt/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            exchange: Arc::new(Exchange {
                config,
                maskinporten,
                http,
            }),
            tokens: ExpiringCache::new(),
        })
    }

    /// How token lookups were answered: kept, shared, or exchanged.
    pub fn cache_counters(&self) -> Arc<CacheCounters> {
        self.tokens.counters()
    }

    /// An Altinn token for a Maskinporten token carrying `scopes`.
    pub async fn token(&self, scopes: &[String]) -> Result<String, TokenError> {
        let key = scope_set(scopes);
        let exchange = self.exchange.clone();
        let set = key.clone();
        self.tokens
            .get_or_fetch(&key, move || {
                Box::pin(async move { exchange.fetch(&set).await })
            })
            .await
    }
}

impl Exchange {
    async fn fetch(&self, scopes: &[String]) -> Result<(String, Instant), TokenError> {
        let maskinporten = self.maskinporten.token(scopes).await?;
        let scopes = scopes.join(" ");
        let asked = Instant::now();
        let what = format!("the Altinn token exchange for scopes \"{scopes}\"");
        let token = retry::with_backoff(
            &self.config.retry,
            &what,
            || self.attempt(&maskinporten, &scopes),
            |attempts, reason| TokenError::Unavailable {
                service: SERVICE,
                scopes: scopes.clone(),
                attempts,
                reason,
            },
        )
        .await?;
        let lifetime = match jwt::unverified_time_claim(&token, "exp") {
            Some(exp) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs() as i64;
                Duration::from_secs(exp.saturating_sub(now).max(0) as u64)
            }
            None => UNREADABLE_EXPIRY_LIFETIME,
        };
        Ok((
            token,
            asked + lifetime.saturating_sub(self.config.refresh_margin),
        ))
    }

    async fn attempt(
        &self,
        maskinporten: &str,
        scopes: &str,
    ) -> Result<String, Failure<TokenError>> {
        let request = self
            .http
            .get(&self.config.exchange_url)
            .bearer_auth(maskinporten);
        let answer = retry::send(request).await.map_err(Failure::Transient)?;
        let text = String::from_utf8_lossy(&answer.body);
        // Altinn answers the bare token; tolerate it quoted as a JSON string.
        let token = text.trim().trim_matches('"');
        if !answer.status.is_success() {
            return Err(Failure::Final(TokenError::Refused {
                service: SERVICE,
                scopes: scopes.to_owned(),
                status: answer.status.as_u16(),
                reason: excerpt(&answer.body),
            }));
        }
        if token.is_empty() {
            return Err(Failure::Final(TokenError::Malformed {
                service: SERVICE,
                scopes: scopes.to_owned(),
                reason: "an empty answer".into(),
            }));
        }
        Ok(token.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::get;
    use serde_json::json;

    use super::*;
    use crate::tokens::maskinporten::ClientKey;
    use crate::tokens::standin::{StandIn, business_certificate, config};

    /// An exchange that checks the bearer is a Maskinporten token for `eformidling:dpv` and
    /// answers Altinn tokens valid `expires_in` s, counting requests.
    async fn exchange(expires_in: i64) -> (String, Arc<AtomicUsize>) {
        let requests = Arc::new(AtomicUsize::new(0));
        let handler = |State((requests, expires_in)): State<(Arc<AtomicUsize>, i64)>,
                       headers: HeaderMap| async move {
            requests.fetch_add(1, Ordering::SeqCst);
            let bearer = headers
                .get("authorization")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "))
                .unwrap_or_default();
            let claims = jwt::unverified_claims(bearer).unwrap_or_default();
            if claims.get("scope").and_then(|scope| scope.as_str()) != Some("eformidling:dpv") {
                return (
                    StatusCode::UNAUTHORIZED,
                    "not a Maskinporten token".to_owned(),
                );
            }
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            let token = jwt::sign_compact(
                &json!({"alg": "none"}),
                &json!({"iss": "altinn", "n": requests.load(Ordering::SeqCst), "exp": now + expires_in}),
                |_| Ok::<_, ()>(vec![]),
            )
            .unwrap();
            (StatusCode::OK, token)
        };
        let app = axum::Router::new()
            .route("/authentication/api/v1/exchange/maskinporten", get(handler))
            .with_state((requests.clone(), expires_in));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/authentication/api/v1/exchange/maskinporten",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, requests)
    }

    async fn client(dir: &tempfile::TempDir, exchange_url: &str) -> (AltinnExchange, StandIn) {
        let stand_in = StandIn::start(Vec::new(), 120, 0).await;
        let maskinporten = Maskinporten::new(
            config(&stand_in.url),
            ClientKey::Certificate(business_certificate(dir)),
        )
        .unwrap();
        let altinn =
            AltinnExchange::new(AltinnConfig::new(exchange_url), Arc::new(maskinporten)).unwrap();
        (altinn, stand_in)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_callers_share_one_exchange_and_keep_its_token() {
        let dir = tempfile::tempdir().unwrap();
        let (url, requests) = exchange(1800).await;
        let (altinn, maskinporten) = client(&dir, &url).await;
        let altinn = Arc::new(altinn);
        let callers: Vec<_> = (0..20)
            .map(|_| {
                let altinn = altinn.clone();
                tokio::spawn(async move { altinn.token(&["eformidling:dpv".to_owned()]).await })
            })
            .collect();
        for caller in callers {
            let token = caller.await.unwrap().expect("an Altinn token");
            assert_eq!(jwt::unverified_claims(&token).unwrap()["iss"], "altinn");
        }
        altinn.token(&["eformidling:dpv".to_owned()]).await.unwrap();
        assert_eq!(requests.load(Ordering::SeqCst), 1);
        assert_eq!(maskinporten.requests(), 1);
    }

    #[tokio::test]
    async fn a_token_expiring_within_the_margin_is_exchanged_again() {
        let dir = tempfile::tempdir().unwrap();
        let (url, requests) = exchange(30).await;
        let (altinn, maskinporten) = client(&dir, &url).await;
        let scopes = ["eformidling:dpv".to_owned()];
        let first = altinn.token(&scopes).await.unwrap();
        let second = altinn.token(&scopes).await.unwrap();
        assert_ne!(first, second);
        assert_eq!(requests.load(Ordering::SeqCst), 2);
        assert_eq!(
            maskinporten.requests(),
            1,
            "the Maskinporten token is still kept"
        );
    }

    #[tokio::test]
    async fn a_refused_exchange_names_the_scope_and_quotes_altinn() {
        let dir = tempfile::tempdir().unwrap();
        let (url, _) = exchange(1800).await;
        let (altinn, _maskinporten) = client(&dir, &url).await;
        let error = altinn
            .token(&["eformidling:dpo".to_owned()])
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, TokenError::Refused { status: 401, .. }),
            "{message}"
        );
        assert!(
            message.contains("Altinn") && message.contains("\"eformidling:dpo\""),
            "{message}"
        );
        assert!(message.contains("not a Maskinporten token"), "{message}");
    }
}
