//! Compact JWTs as the token grant needs them: the assertion the host signs, and the claims it
//! reads, unverified, from the tokens it is handed.
//!
//! Tokens are verified by the services that accept them (the registry, Altinn); the host only
//! reads `iat` and `exp` to check its own clock and to know how long a token stays usable, so
//! reading them unverified is enough and needs no key.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// `header.claims.signature`, the signature made by `sign` over `header.claims`.
pub fn sign_compact<E>(
    header: &Value,
    claims: &Value,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, E>,
) -> Result<String, E> {
    let mut compact = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = sign(compact.as_bytes())?;
    compact.push('.');
    compact.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(compact)
}

/// The claims of a compact JWT, read without verifying it; `None` if it is not a JWT.
pub fn unverified_claims(token: &str) -> Option<Map<String, Value>> {
    let mut parts = token.split('.');
    let (_header, claims, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let json = URL_SAFE_NO_PAD.decode(claims).ok()?;
    match serde_json::from_slice(&json).ok()? {
        Value::Object(claims) => Some(claims),
        _ => None,
    }
}

/// A numeric date claim (`iat`, `exp`) of a compact JWT, in seconds since the epoch.
pub fn unverified_time_claim(token: &str, claim: &str) -> Option<i64> {
    unverified_claims(token)?.get(claim)?.as_i64()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn signs_header_and_claims_and_reads_the_claims_back() {
        let jwt = sign_compact(
            &json!({"alg": "RS256"}),
            &json!({"iat": 7, "x": "y"}),
            |input| Ok::<_, ()>(input.iter().rev().copied().collect()),
        )
        .unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let signed = format!("{}.{}", parts[0], parts[1]);
        let reversed: Vec<u8> = signed.bytes().rev().collect();
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap(), reversed);
        assert_eq!(unverified_time_claim(&jwt, "iat"), Some(7));
        assert_eq!(unverified_claims(&jwt).unwrap()["x"], "y");
    }

    #[test]
    fn what_is_not_a_jwt_has_no_claims() {
        assert_eq!(unverified_claims("opaque-token"), None);
        assert_eq!(unverified_claims("a.b.c.d"), None);
        assert_eq!(
            unverified_claims("e30.WzFd.c"),
            None,
            "claims must be an object"
        );
        assert_eq!(unverified_time_claim("e30.e30.c", "iat"), None);
    }
}
