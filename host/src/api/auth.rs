//! HTTP Basic for the API and `/manage`, on by default, with users from configuration whose
//! passwords are stored as Argon2 hashes (PHC strings).
//!
//! Only `/manage/health` and its liveness and readiness stay open, for load balancers and
//! orchestrators. A password hash is slow to check on purpose (Argon2id with its default 19 MiB
//! and two passes), so a credential that checked out is remembered by its SHA-256 for a day, and
//! the next request with it costs a hash, not an Argon2 run. Checks of one credential are a
//! single flight ([`ExpiringCache`]): an archive system that opens with 16 requests at once
//! causes one Argon2 run, not 16 runs and 16 × 19 MiB, and a wrong password tried by many
//! requests at once costs one run too.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::ApiState;
use super::error::ApiError;
use crate::expiring::ExpiringCache;

/// How long a credential that checked out is taken without a new Argon2 run.
const REMEMBERED: Duration = Duration::from_secs(24 * 3600);

/// A credential that did not check out.
#[derive(Clone, Debug)]
struct Refused;

/// The configured users and the credentials already checked.
#[derive(Clone, Default)]
pub struct Users {
    hashes: Arc<BTreeMap<String, String>>,
    verified: Arc<ExpiringCache<[u8; 32], (), Refused>>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users")
            .field("names", &self.hashes.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Users {
    /// Users by name with their password hashes; each hash must be a PHC string.
    pub fn new(hashes: BTreeMap<String, String>) -> Result<Self, String> {
        for (name, hash) in &hashes {
            PasswordHash::new(hash).map_err(|error| {
                format!("the password hash of API user {name:?} is not a PHC string: {error}")
            })?;
        }
        Ok(Self {
            hashes: Arc::new(hashes),
            verified: Arc::default(),
        })
    }

    /// Whether any user is configured.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Whether `name` with `password` is a user. Argon2 runs on the blocking pool, and only
    /// for a credential not remembered and not being checked already.
    pub async fn check(&self, name: &str, password: &str) -> bool {
        let key = fingerprint(name, password);
        self.verified
            .get_or_fetch(&key, || {
                // Only a lookup that starts a check gets here; a remembered one copies nothing.
                let hashes = self.hashes.clone();
                let (name, password) = (name.to_owned(), password.to_owned());
                Box::pin(async move {
                    let verified =
                        tokio::task::spawn_blocking(move || verify(&hashes, &name, &password))
                            .await
                            .unwrap_or(false);
                    if verified {
                        Ok(((), Instant::now() + REMEMBERED))
                    } else {
                        Err(Refused)
                    }
                })
            })
            .await
            .is_ok()
    }
}

/// Whether `password` matches `name`'s hash in `hashes`: an Argon2 run.
fn verify(hashes: &BTreeMap<String, String>, name: &str, password: &str) -> bool {
    let Some(hash) = hashes.get(name) else {
        return false;
    };
    let Ok(hash) = PasswordHash::new(hash) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &hash)
        .is_ok()
}

/// What a credential is remembered by.
fn fingerprint(name: &str, password: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([0])
        .chain_update(password.as_bytes())
        .finalize()
        .into()
}

/// The Argon2id PHC string of `password`, for the configuration's `password-hash`.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| error.to_string())
}

/// Whether `path` is open without credentials.
fn is_open(path: &str) -> bool {
    matches!(
        path,
        "/manage/health" | "/manage/health/liveness" | "/manage/health/readiness"
    )
}

/// Refuses a request without the credentials of a configured user.
pub async fn require_user(
    State(state): State<Arc<ApiState>>,
    request: Request,
    next: Next,
) -> Response {
    if is_open(request.uri().path()) {
        return next.run(request).await;
    }
    let credentials = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic "))
        .and_then(|encoded| BASE64.decode(encoded.trim()).ok())
        .and_then(|decoded| String::from_utf8(decoded).ok());
    let accepted = match credentials {
        Some(credentials) => {
            let (name, password) = credentials.split_once(':').unwrap_or((&credentials, ""));
            state.users.check(name, password).await
        }
        None => false,
    };
    if accepted {
        return next.run(request).await;
    }
    let mut response = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "org.springframework.security.authentication.BadCredentialsException",
        "Full authentication is required to access this resource",
    )
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Basic realm=\"integrasjonspunkt\""),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_first_checks_of_a_credential_share_one_argon2_run() {
        let users = Users::new(BTreeMap::from([(
            "archive".to_owned(),
            hash_password("secret").unwrap(),
        )]))
        .unwrap();
        let checks: Vec<_> = (0..16)
            .map(|_| {
                let users = users.clone();
                tokio::spawn(async move { users.check("archive", "secret").await })
            })
            .collect();
        for check in checks {
            assert!(check.await.unwrap());
        }
        let counts = users.verified.counters().snapshot();
        assert_eq!(
            counts.fetches, 1,
            "one Argon2 run for 16 requests: {counts:?}"
        );
        assert_eq!(counts.shared + counts.hits, 15);

        assert!(!users.check("archive", "wrong").await);
        assert!(!users.check("nobody", "secret").await);
        assert!(!users.check("archive", "wrong").await, "still wrong");
        assert!(users.check("archive", "secret").await);
        let counts = users.verified.counters().snapshot();
        assert_eq!(
            counts.fetches, 4,
            "refusals are checked each time, the good credential is remembered: {counts:?}"
        );
    }
}
