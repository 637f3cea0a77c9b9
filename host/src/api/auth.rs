//! HTTP Basic for the API and `/manage`, on by default, with users from configuration whose
//! passwords are stored as Argon2 hashes (PHC strings).
//!
//! Only `/manage/health` and its liveness and readiness stay open, for load balancers and
//! orchestrators. A password hash is slow to check on purpose, so a credential that checked out
//! is remembered by its SHA-256 and the next request with it costs a hash, not an Argon2 run.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

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

use super::ApiState;
use super::error::ApiError;

/// The configured users and the credentials already checked.
#[derive(Clone, Default)]
pub struct Users {
    hashes: Arc<BTreeMap<String, String>>,
    verified: Arc<Mutex<HashSet<[u8; 32]>>>,
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

    /// Whether `name` with `password` checked out before: a hash, no Argon2 run, so it is
    /// answered on the request's own thread.
    pub fn remembered(&self, name: &str, password: &str) -> bool {
        let fingerprint = fingerprint(name, password);
        self.verified
            .lock()
            .expect("the verified set")
            .contains(&fingerprint)
    }

    /// Whether `name` with `password` is a user; slow (Argon2) unless [`Users::remembered`].
    pub fn check(&self, name: &str, password: &str) -> bool {
        if self.remembered(name, password) {
            return true;
        }
        let Some(hash) = self.hashes.get(name) else {
            return false;
        };
        let Ok(hash) = PasswordHash::new(hash) else {
            return false;
        };
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok();
        if ok {
            self.verified
                .lock()
                .expect("the verified set")
                .insert(fingerprint(name, password));
        }
        ok
    }
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
    let users = state.users.clone();
    let accepted = match credentials {
        Some(credentials) => {
            let (name, password) = credentials.split_once(':').unwrap_or((&credentials, ""));
            if users.remembered(name, password) {
                true
            } else {
                // Only a credential not seen before costs an Argon2 run, off the runtime.
                let (name, password) = (name.to_owned(), password.to_owned());
                tokio::task::spawn_blocking(move || users.check(&name, &password))
                    .await
                    .unwrap_or(false)
            }
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
