//! Compact RS256 JWTs and RSA JWKs, as the token simulators sign, publish and verify them.
//!
//! Maskinporten and the Altinn token exchange both issue signed JWTs and check the ones they
//! receive, so signing, parsing and verifying live here once. Verification is strict (three
//! parts, `alg` exactly `RS256`, JSON objects) because the point of a simulator is to refuse
//! what the real service refuses.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use openssl::hash::MessageDigest;
use openssl::pkey::{HasPublic, PKey, PKeyRef, Private};
use openssl::sign::{Signer, Verifier};
use openssl::x509::X509;
use serde_json::{Map, Value, json};

/// A compact JWT split into its parts, not yet verified.
pub struct Compact {
    /// The decoded header.
    pub header: Map<String, Value>,
    /// The decoded claims.
    pub claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

impl Compact {
    /// Splits and decodes `token`; the error says what is malformed.
    pub fn parse(token: &str) -> Result<Self, String> {
        let parts: Vec<&str> = token.split('.').collect();
        let [header, claims, signature] = parts[..] else {
            return Err("not a compact JWT (three dot-separated parts expected)".into());
        };
        let object = |part: &str, what: &str| -> Result<Map<String, Value>, String> {
            let bytes = URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| format!("the JWT {what} is not base64url"))?;
            match serde_json::from_slice(&bytes) {
                Ok(Value::Object(map)) => Ok(map),
                _ => Err(format!("the JWT {what} is not a JSON object")),
            }
        };
        Ok(Self {
            header: object(header, "header")?,
            claims: object(claims, "claims")?,
            signing_input: format!("{header}.{claims}"),
            signature: URL_SAFE_NO_PAD
                .decode(signature)
                .map_err(|_| "the JWT signature is not base64url".to_owned())?,
        })
    }

    /// Checks that the header says RS256 and the signature is `key`'s.
    pub fn verify_rs256<T: HasPublic>(&self, key: &PKeyRef<T>) -> Result<(), String> {
        if self.header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err("the JWT's alg is not RS256".into());
        }
        let verified = Verifier::new(MessageDigest::sha256(), key)
            .and_then(|mut verifier| {
                verifier.update(self.signing_input.as_bytes())?;
                verifier.verify(&self.signature)
            })
            .unwrap_or(false);
        if verified {
            Ok(())
        } else {
            Err("the JWT signature does not verify".into())
        }
    }

    /// The first certificate of the `x5c` header (the signer's), not yet trusted.
    pub fn x5c_leaf(&self) -> Result<X509, String> {
        let first = self
            .header
            .get("x5c")
            .and_then(Value::as_array)
            .and_then(|chain| chain.first())
            .and_then(Value::as_str)
            .ok_or("the JWS header has no x5c certificate")?;
        STANDARD
            .decode(first)
            .ok()
            .and_then(|der| X509::from_der(&der).ok())
            .ok_or_else(|| "x5c[0] is not a base64 DER certificate".to_owned())
    }

    /// A text claim, if present and a string.
    pub fn text(&self, claim: &str) -> Option<&str> {
        self.claims.get(claim).and_then(Value::as_str)
    }

    /// A numeric date claim, if present and an integer.
    pub fn number(&self, claim: &str) -> Option<i64> {
        self.claims.get(claim).and_then(Value::as_i64)
    }
}

/// `claims` signed RS256 by `key`, with `kid` in the header.
pub fn sign_rs256(
    kid: &str,
    claims: &Value,
    key: &PKey<Private>,
) -> Result<String, openssl::error::ErrorStack> {
    sign_with_header(
        &json!({"alg": "RS256", "kid": kid, "typ": "JWT"}),
        claims,
        key,
    )
}

/// `claims` signed RS256 by `key`, with `chain` (leaf first) in the `x5c` header, as DPI
/// receipts are signed.
pub fn sign_rs256_x5c(
    chain: &[X509],
    claims: &Value,
    key: &PKey<Private>,
) -> Result<String, openssl::error::ErrorStack> {
    let x5c = chain
        .iter()
        .map(|certificate| Ok(STANDARD.encode(certificate.to_der()?)))
        .collect::<Result<Vec<_>, openssl::error::ErrorStack>>()?;
    sign_with_header(&json!({"alg": "RS256", "x5c": x5c}), claims, key)
}

fn sign_with_header(
    header: &Value,
    claims: &Value,
    key: &PKey<Private>,
) -> Result<String, openssl::error::ErrorStack> {
    let mut compact = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signer = Signer::new(MessageDigest::sha256(), key)?;
    signer.update(compact.as_bytes())?;
    let signature = signer.sign_to_vec()?;
    compact.push('.');
    compact.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(compact)
}

/// The public half of an RSA `key` as a JWK set of one key named `kid`.
pub fn jwk_set<T: HasPublic>(
    kid: &str,
    key: &PKeyRef<T>,
) -> Result<Value, openssl::error::ErrorStack> {
    let rsa = key.rsa()?;
    Ok(json!({"keys": [{
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": kid,
        "n": URL_SAFE_NO_PAD.encode(rsa.n().to_vec()),
        "e": URL_SAFE_NO_PAD.encode(rsa.e().to_vec()),
    }]}))
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use openssl::rsa::Rsa;

    use super::*;

    #[test]
    fn a_signed_token_verifies_with_its_key_only() {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let other = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let token = sign_rs256("k1", &json!({"sub": "x", "exp": 5}), &key).unwrap();
        let compact = Compact::parse(&token).unwrap();
        assert_eq!(compact.header["kid"], "k1");
        assert_eq!(compact.text("sub"), Some("x"));
        assert_eq!(compact.number("exp"), Some(5));
        assert!(compact.verify_rs256(&key).is_ok());
        assert!(compact.verify_rs256(&other).is_err());
        let parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(json!({"sub": "y", "exp": 5}).to_string());
        let tampered = format!("{}.{forged}.{}", parts[0], parts[2]);
        assert!(
            Compact::parse(&tampered)
                .unwrap()
                .verify_rs256(&key)
                .is_err()
        );
        assert!(Compact::parse("a.b").is_err());
    }
}
