//! Verifying the registry's signed answers.
//!
//! A registry answer decides where a message goes and which certificate it is encrypted to, so an
//! answer altered on the way would send documents to whoever altered it. The registry signs each
//! answer as a compact JWS (RS256) and publishes its keys as a JWK set; the host trusts only keys
//! from that set, never the `x5c` an answer carries about itself. The set is kept an hour (which
//! bounds how long a withdrawn key stays trusted) and fetched again, once, when an answer names a
//! `kid` the kept set lacks, so a key rotation costs one fetch. An answer without a `kid` is checked
//! with the set's first RSA key, as the Java integration point checks every answer.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Public};
use openssl::rsa::Rsa;
use openssl::sign::Verifier;
use serde::Deserialize;
use tokio::time::Instant;

use super::RegistryError;
use crate::expiring::{CacheCounters, ExpiringCache};
use crate::http_text::{error_chain, excerpt};

const KEY_SET_LIFETIME: Duration = Duration::from_secs(3600);

/// The registry's JWK set, fetched and kept.
pub(super) struct RegistryKeys {
    url: String,
    http: reqwest::Client,
    kept: ExpiringCache<(), Arc<KeySet>, RegistryError>,
}

/// The RSA keys of a JWK set.
pub(super) struct KeySet(Vec<(Option<String>, PKey<Public>)>);

impl KeySet {
    /// The key named `kid`, or without a `kid` the first.
    fn key(&self, kid: Option<&str>) -> Option<&PKey<Public>> {
        match kid {
            Some(kid) => self
                .0
                .iter()
                .find(|(id, _)| id.as_deref() == Some(kid))
                .map(|(_, key)| key),
            None => self.0.first().map(|(_, key)| key),
        }
    }
}

/// A JWK as far as an RSA verification key needs it.
#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

impl RegistryKeys {
    /// Keys fetched from the JWK set at `url` (the registry's `/jwk`).
    pub(super) fn new(url: String, http: reqwest::Client) -> Self {
        Self {
            url,
            http,
            kept: ExpiringCache::new(),
        }
    }

    /// How key set lookups were answered.
    pub(super) fn cache_counters(&self) -> Arc<CacheCounters> {
        self.kept.counters()
    }

    /// The payload of `compact`, the registry's answer to `resource`, once its signature checks.
    pub(super) async fn verified_payload(
        &self,
        resource: &str,
        compact: &str,
    ) -> Result<String, RegistryError> {
        let bad = |reason: String| RegistryError::BadSignature {
            resource: resource.to_owned(),
            reason,
        };
        let compact = compact.trim();
        let base64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        let parts: Vec<&str> = compact.split('.').collect();
        let [header, payload, signature] = parts[..] else {
            return Err(bad("the answer is not a compact JWS".into()));
        };
        if !parts.iter().all(|part| part.bytes().all(base64url)) {
            return Err(bad("the answer is not a compact JWS".into()));
        }
        let decode = |part: &str, what: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| bad(format!("the {what} is not base64url")))
        };
        let header: Header = serde_json::from_slice(&decode(header, "header")?)
            .map_err(|error| bad(format!("unreadable header: {error}")))?;
        if header.alg != "RS256" {
            return Err(bad(format!(
                "algorithm {} where RS256 is required",
                header.alg
            )));
        }
        let kid = header.kid.as_deref();
        let mut keys = self.keys().await?;
        if keys.key(kid).is_none() {
            self.kept.evict_if(&(), |kept| Arc::ptr_eq(kept, &keys));
            keys = self.keys().await?;
        }
        let key = keys.key(kid).ok_or_else(|| {
            bad(match kid {
                Some(kid) => format!("no key with kid {kid:?} in the registry's JWK set"),
                None => "the registry's JWK set has no RSA key".into(),
            })
        })?;
        let signed = format!("{}.{payload}", parts[0]);
        if !verify_rs256(key, signed.as_bytes(), &decode(signature, "signature")?) {
            return Err(bad(
                "the signature does not match the content and the registry's key".into(),
            ));
        }
        String::from_utf8(decode(payload, "payload")?)
            .map_err(|_| bad("the payload is not UTF-8 text".into()))
    }

    async fn keys(&self) -> Result<Arc<KeySet>, RegistryError> {
        let (url, http) = (self.url.clone(), self.http.clone());
        self.kept
            .get_or_fetch(&(), move || {
                Box::pin(async move {
                    let keys = fetch_key_set(&http, &url).await?;
                    Ok((Arc::new(keys), Instant::now() + KEY_SET_LIFETIME))
                })
            })
            .await
    }
}

async fn fetch_key_set(http: &reqwest::Client, url: &str) -> Result<KeySet, RegistryError> {
    let failed = |reason: String| RegistryError::Unavailable {
        resource: url.to_owned(),
        reason,
    };
    let response = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|error| failed(error_chain(&error)))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|error| failed(error_chain(&error)))?;
    if !status.is_success() {
        return Err(failed(format!("HTTP {status}: {}", excerpt(&body))));
    }
    let malformed = |reason: String| RegistryError::Malformed {
        resource: url.to_owned(),
        reason,
    };
    let set: JwkSet = serde_json::from_slice(&body)
        .map_err(|error| malformed(format!("not a JWK set: {error}")))?;
    let keys = set
        .keys
        .into_iter()
        .filter(|jwk| jwk.kty == "RSA")
        .map(|jwk| Ok((jwk.kid.clone(), rsa_public_key(&jwk)?)))
        .collect::<Result<Vec<_>, String>>()
        .map_err(malformed)?;
    Ok(KeySet(keys))
}

fn rsa_public_key(jwk: &Jwk) -> Result<PKey<Public>, String> {
    let number = |value: &Option<String>, name: &str| {
        let bytes = value
            .as_deref()
            .and_then(|text| URL_SAFE_NO_PAD.decode(text).ok())
            .ok_or_else(|| format!("an RSA key without a readable \"{name}\""))?;
        BigNum::from_slice(&bytes).map_err(|error| error.to_string())
    };
    Rsa::from_public_components(number(&jwk.n, "n")?, number(&jwk.e, "e")?)
        .and_then(PKey::from_rsa)
        .map_err(|error| error.to_string())
}

fn verify_rs256(key: &PKey<Public>, signed: &[u8], signature: &[u8]) -> bool {
    let verify = || {
        let mut verifier = Verifier::new(MessageDigest::sha256(), key)?;
        verifier.update(signed)?;
        verifier.verify(signature)
    };
    verify().unwrap_or(false)
}
