//! Compact JWS (RFC 7515) signed RS256 with the business certificate, which the header carries
//! as `x5c` so a receiver can check it against the certificate it knows for the organisation.
//!
//! Plugins add protected header members (`typ`, `kid`, `cty`, ...) as JSON values; they may not
//! replace `alg` or `x5c`, since the host decides how it signs and with what.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use serde_json::{Map, Value};

use super::{BusinessCertificate, KeystoreError};

/// Why a JWS could not be made.
#[derive(Debug, thiserror::Error)]
pub enum JwsError {
    /// A header member is malformed or not allowed.
    #[error("JWS header: {0}")]
    Header(String),
    /// The key could not sign.
    #[error(transparent)]
    Signing(#[from] KeystoreError),
}

/// `base64url(header).base64url(payload).base64url(signature)`.
pub fn sign(
    certificate: &BusinessCertificate,
    payload: &[u8],
    members: &[(String, String)],
) -> Result<String, JwsError> {
    let mut header = Map::new();
    header.insert("alg".into(), Value::from("RS256"));
    header.insert("x5c".into(), Value::from(certificate.x5c()));
    for (name, value) in members {
        if name == "alg" || name == "x5c" {
            return Err(JwsError::Header(format!("{name:?} is set by the host")));
        }
        let value: Value = serde_json::from_str(value).map_err(|error| {
            JwsError::Header(format!("the value of {name:?} is not JSON: {error}"))
        })?;
        if header.insert(name.clone(), value).is_some() {
            return Err(JwsError::Header(format!("{name:?} is given twice")));
        }
    }
    let header = Value::Object(header).to_string();
    let signing_input = format!(
        "{}.{}",
        BASE64URL.encode(header.as_bytes()),
        BASE64URL.encode(payload)
    );
    let signature = certificate.sign_rs256(signing_input.as_bytes())?;
    Ok(format!("{signing_input}.{}", BASE64URL.encode(signature)))
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;
    use crate::crypto::testpki::TestPki;

    #[test]
    fn openssl_verifies_the_signature_over_header_and_payload() {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::new(dir.path(), 365);
        let certificate = pki.business_certificate();
        let members = [
            ("typ".to_owned(), "\"JWT\"".to_owned()),
            ("kid".to_owned(), "\"k1\"".to_owned()),
        ];
        let jws = sign(&certificate, br#"{"aud":"x"}"#, &members).unwrap();
        let parts: Vec<&str> = jws.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value = serde_json::from_slice(&BASE64URL.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["kid"], "k1");
        assert_eq!(header["x5c"][0], certificate.x5c()[0]);
        assert_eq!(BASE64URL.decode(parts[1]).unwrap(), br#"{"aud":"x"}"#);

        let input = dir.path().join("input");
        let signature = dir.path().join("signature");
        let public = dir.path().join("public.pem");
        std::fs::write(&input, format!("{}.{}", parts[0], parts[1])).unwrap();
        std::fs::write(&signature, BASE64URL.decode(parts[2]).unwrap()).unwrap();
        std::fs::write(
            &public,
            pki.leaf.public_key().unwrap().public_key_to_pem().unwrap(),
        )
        .unwrap();
        let verify = |input: &std::path::Path| {
            Command::new("openssl")
                .args(["dgst", "-sha256", "-verify"])
                .arg(&public)
                .arg("-signature")
                .arg(&signature)
                .arg(input)
                .output()
                .unwrap()
                .status
                .success()
        };
        assert!(verify(&input));
        let altered = dir.path().join("altered");
        std::fs::write(&altered, format!("{}.{}x", parts[0], parts[1])).unwrap();
        assert!(!verify(&altered));
    }

    #[test]
    fn refuses_bad_or_overriding_members() {
        let dir = tempfile::tempdir().unwrap();
        let certificate = TestPki::new(dir.path(), 365).business_certificate();
        let cases = [
            (vec![("alg", "\"none\"")], "set by the host"),
            (vec![("x5c", "[]")], "set by the host"),
            (vec![("typ", "JWT")], "not JSON"),
            (vec![("typ", "\"a\""), ("typ", "\"b\"")], "twice"),
        ];
        for (members, expected) in cases {
            let members: Vec<(String, String)> = members
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect();
            let error = sign(&certificate, b"{}", &members).unwrap_err();
            assert!(error.to_string().contains(expected), "{error}");
        }
    }
}
