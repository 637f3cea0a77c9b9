//! A stand-in Maskinporten token endpoint for the token tests: it checks each assertion as
//! Maskinporten does (signature against the `x5c`, `aud`, `iss`, a 120 s lifetime, a fresh `jti`)
//! and counts the requests it gets.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use openssl::hash::MessageDigest;
use openssl::sign::Verifier;
use openssl::x509::X509;
use serde_json::{Map, Value, json};

use super::Backoff;
use super::jwt;
use super::maskinporten::{JWT_BEARER, MaskinportenConfig};
use crate::crypto::BusinessCertificate;
use crate::crypto::testpki::TestPki;

/// A stand-in token endpoint that checks every assertion as Maskinporten would and answers
/// from a script, then with tokens.
pub(super) struct StandIn {
    pub url: String,
    pub requests: Arc<AtomicUsize>,
    pub scopes: Arc<Mutex<Vec<String>>>,
}

#[derive(Clone)]
struct Endpoint {
    audience: String,
    client_id: String,
    requests: Arc<AtomicUsize>,
    scopes: Arc<Mutex<Vec<String>>>,
    jtis: Arc<Mutex<HashSet<String>>>,
    script: Arc<Mutex<Vec<(StatusCode, String)>>>,
    expires_in: u64,
    iat_offset: i64,
}

const AUDIENCE: &str = "https://test.maskinporten.no/";
const CLIENT_ID: &str = "MOVE_IP_910075918";

impl StandIn {
    /// Answers `script` in turn, then tokens valid `expires_in` s whose `iat` is
    /// `iat_offset` s from now.
    pub(super) async fn start(
        script: Vec<(StatusCode, String)>,
        expires_in: u64,
        iat_offset: i64,
    ) -> Self {
        let endpoint = Endpoint {
            audience: AUDIENCE.into(),
            client_id: CLIENT_ID.into(),
            requests: Arc::default(),
            scopes: Arc::default(),
            jtis: Arc::default(),
            script: Arc::new(Mutex::new(script)),
            expires_in,
            iat_offset,
        };
        let (requests, scopes) = (endpoint.requests.clone(), endpoint.scopes.clone());
        let app = axum::Router::new()
            .route("/token", post(token))
            .with_state(endpoint);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            requests,
            scopes,
        }
    }

    pub(super) fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn token(
    State(endpoint): State<Endpoint>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    endpoint.requests.fetch_add(1, Ordering::SeqCst);
    let refuse = |reason: String| {
        let body = json!({"error": "invalid_grant", "error_description": reason});
        (StatusCode::BAD_REQUEST, body.to_string()).into_response()
    };
    if form.get("grant_type").map(String::as_str) != Some(JWT_BEARER) {
        return refuse("wrong grant_type".into());
    }
    let Some(assertion) = form.get("assertion") else {
        return refuse("no assertion".into());
    };
    let claims = match verify_assertion(assertion) {
        Ok(claims) => claims,
        Err(reason) => return refuse(reason),
    };
    let checks = [
        (claims["aud"] == endpoint.audience.as_str(), "aud"),
        (claims["iss"] == endpoint.client_id.as_str(), "iss"),
        (
            claims["exp"].as_i64() == claims["iat"].as_i64().map(|iat| iat + 120),
            "exp",
        ),
        (
            endpoint
                .jtis
                .lock()
                .unwrap()
                .insert(claims["jti"].as_str().unwrap_or_default().to_owned()),
            "jti reused",
        ),
    ];
    if let Some((_, claim)) = checks.iter().find(|(ok, _)| !ok) {
        return refuse(format!("bad {claim}"));
    }
    let scope = claims["scope"].as_str().unwrap_or_default().to_owned();
    endpoint.scopes.lock().unwrap().push(scope.clone());
    if let Some((status, body)) = {
        let mut script = endpoint.script.lock().unwrap();
        (!script.is_empty()).then(|| script.remove(0))
    } {
        return (status, body).into_response();
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let iat = now + endpoint.iat_offset;
    let access = jwt::sign_compact(
        &json!({"alg": "none"}),
        &json!({"scope": scope, "iat": iat, "exp": iat + endpoint.expires_in as i64,
                "consumer": {"authority": "iso6523-actorid-upis", "ID": "0192:910075918"}}),
        |_| Ok::<_, ()>(Vec::new()),
    )
    .unwrap();
    let body = json!({"access_token": access, "token_type": "Bearer",
                      "expires_in": endpoint.expires_in, "scope": scope});
    (StatusCode::OK, body.to_string()).into_response()
}

/// The assertion's claims if its RS256 signature verifies against its own `x5c`.
fn verify_assertion(assertion: &str) -> Result<Map<String, Value>, String> {
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err("not a compact JWS".into());
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|e| e.to_string());
    let header: Value = serde_json::from_slice(&decode(header)?).map_err(|e| e.to_string())?;
    if header["alg"] != "RS256" {
        return Err("alg must be RS256".into());
    }
    let x5c = header["x5c"][0].as_str().ok_or("no x5c")?;
    let der = STANDARD.decode(x5c).map_err(|e| e.to_string())?;
    let public = X509::from_der(&der)
        .and_then(|certificate| certificate.public_key())
        .map_err(|e| e.to_string())?;
    let mut verifier = Verifier::new(MessageDigest::sha256(), &public).unwrap();
    verifier
        .update(format!("{}.{claims}", parts[0]).as_bytes())
        .unwrap();
    if !verifier.verify(&decode(signature)?).unwrap_or(false) {
        return Err("bad signature".into());
    }
    jwt::unverified_claims(assertion).ok_or_else(|| "no claims".into())
}

/// A business certificate made for the test (its files live in `dir`).
pub(super) fn business_certificate(dir: &tempfile::TempDir) -> BusinessCertificate {
    TestPki::new(dir.path(), 365).business_certificate()
}

pub(super) fn config(url: &str) -> MaskinportenConfig {
    MaskinportenConfig {
        retry: Backoff {
            attempts: 3,
            first: Duration::from_millis(5),
            max: Duration::from_millis(5),
        },
        ..MaskinportenConfig::new(url, AUDIENCE, CLIENT_ID)
    }
}
