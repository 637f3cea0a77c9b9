//! The registry's signature: compact JWS (RS256) over the answer's text, with the signing
//! certificate chain as `x5c` and the key's RFC 7638 thumbprint as `kid`, and the JWK set that
//! lets a client check it, as the real registry's `PayloadSigner` and `/jwk` do.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// The registry's signing key and what its signatures carry.
pub(super) struct PayloadSigner {
    key: PKey<Private>,
    kid: String,
    x5c: Vec<String>,
    jwk: Value,
}

impl PayloadSigner {
    /// A signer with `key`, whose certificate and its issuers are `chain`.
    pub(super) fn new(key: PKey<Private>, chain: &[X509]) -> anyhow::Result<Self> {
        let rsa = key.rsa()?;
        let n = URL_SAFE_NO_PAD.encode(rsa.n().to_vec());
        let e = URL_SAFE_NO_PAD.encode(rsa.e().to_vec());
        // RFC 7638: the hash of the required members, in lexicographic order, no whitespace.
        let thumbprint = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint.as_bytes()));
        let x5c = chain
            .iter()
            .map(|certificate| Ok(STANDARD.encode(certificate.to_der()?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let jwk = json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e, "x5c": x5c,
        });
        Ok(Self { key, kid, x5c, jwk })
    }

    /// `payload` as a compact JWS signed with the registry's key.
    pub(super) fn sign(&self, payload: &[u8]) -> anyhow::Result<String> {
        self.sign_with(&self.key, payload)
    }

    /// `payload` as a compact JWS whose header names the registry's key but whose signature is
    /// made with `key`: what a forged answer looks like to a client.
    pub(super) fn sign_with(&self, key: &PKey<Private>, payload: &[u8]) -> anyhow::Result<String> {
        let header = json!({ "alg": "RS256", "kid": self.kid, "x5c": self.x5c });
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), key)?;
        signer.update(signed.as_bytes())?;
        let signature = signer.sign_to_vec()?;
        Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }

    /// The JWK set with the registry's one key.
    pub(super) fn jwk_set(&self) -> Value {
        json!({ "keys": [self.jwk] })
    }
}
