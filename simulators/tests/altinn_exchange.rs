//! The Altinn token exchange in front of the Maskinporten simulator: a Maskinporten token it
//! issued is exchanged, anything else is refused with 401.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use reqwest::StatusCode;
use serde_json::{Value, json};
use simulators::altinn_exchange::{AltinnExchange, AltinnExchangeConfig};
use simulators::maskinporten::{JWT_BEARER, Maskinporten, MaskinportenConfig};
use simulators::pki::TestPki;

const AUDIENCE: &str = "http://maskinporten.test/";

struct Setup {
    _dir: tempfile::TempDir,
    maskinporten: Maskinporten,
    exchange: AltinnExchange,
    token: String,
}

/// Both simulators, and a Maskinporten token for `eformidling:dpv` valid `lifetime` seconds,
/// obtained the real way.
async fn setup(lifetime: u64) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path()).unwrap();
    let issued = pki.issue("910075918", "Testetat", -1, 365, "pw").unwrap();
    let mut config = MaskinportenConfig::new(pki.ca().clone(), AUDIENCE, ["eformidling:dpv"]);
    config.token_lifetime = lifetime;
    let maskinporten = Maskinporten::start(config).await.unwrap();
    let exchange = AltinnExchange::start(AltinnExchangeConfig::new(maskinporten.verifier()))
        .await
        .unwrap();

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header =
        json!({"alg": "RS256", "x5c": [STANDARD.encode(issued.certificate.to_der().unwrap())]});
    let claims = json!({"aud": AUDIENCE, "iss": "MOVE_IP_910075918", "scope": "eformidling:dpv",
                        "jti": uuid::Uuid::new_v4().to_string(), "iat": now, "exp": now + 120});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signer = Signer::new(MessageDigest::sha256(), &issued.key).unwrap();
    signer.update(input.as_bytes()).unwrap();
    let assertion = format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(signer.sign_to_vec().unwrap())
    );
    let answer = reqwest::Client::new()
        .post(maskinporten.token_url())
        .form(&[("grant_type", JWT_BEARER), ("assertion", &assertion)])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let answer: Value = serde_json::from_str(&answer).unwrap();
    let token = answer["access_token"].as_str().unwrap().to_owned();
    Setup {
        _dir: dir,
        maskinporten,
        exchange,
        token,
    }
}

async fn exchange(setup: &Setup, authorization: Option<&str>) -> (StatusCode, String, String) {
    let mut request = reqwest::Client::new().get(setup.exchange.exchange_url());
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn a_maskinporten_token_is_exchanged_for_a_signed_altinn_token() {
    let setup = setup(120).await;
    let (status, content_type, body) =
        exchange(&setup, Some(&format!("Bearer {}", setup.token))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let claims = setup
        .exchange
        .verifier()
        .verify(&body, Some("eformidling:dpv"))
        .unwrap();
    assert_eq!(claims.consumer, "0192:910075918");
    assert_eq!(claims.client_id, "MOVE_IP_910075918");
    let raw: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(body.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(raw["urn:altinn:orgNumber"], "910075918");
    assert!(raw["exp"].as_i64().unwrap() - raw["iat"].as_i64().unwrap() >= 25 * 60);
    assert_eq!(setup.exchange.exchanged().len(), 1);
    assert!(
        setup.maskinporten.verifier().verify(&body, None).is_err(),
        "an Altinn token is not a Maskinporten token"
    );
}

#[tokio::test]
async fn a_missing_foreign_or_tampered_bearer_is_refused_with_401() {
    let setup = setup(120).await;
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let parts: Vec<&str> = setup.token.split('.').collect();
    let mut signer = Signer::new(MessageDigest::sha256(), &key).unwrap();
    signer
        .update(format!("{}.{}", parts[0], parts[1]).as_bytes())
        .unwrap();
    let foreign = format!(
        "Bearer {}.{}.{}",
        parts[0],
        parts[1],
        URL_SAFE_NO_PAD.encode(signer.sign_to_vec().unwrap())
    );
    let cases = [
        None,
        Some("Basic dXNlcjpwdw==".to_owned()),
        Some("Bearer not-a-jwt".to_owned()),
        Some(foreign),
    ];
    for authorization in &cases {
        let (status, _, body) = exchange(&setup, authorization.as_deref()).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{authorization:?}: {body}"
        );
    }
    assert_eq!(setup.exchange.refused(), cases.len() as u64);
    assert!(setup.exchange.exchanged().is_empty());
}

#[tokio::test]
async fn injected_faults_answer_503() {
    let setup = setup(120).await;
    setup.exchange.fail_next(2);
    let bearer = format!("Bearer {}", setup.token);
    for _ in 0..2 {
        assert_eq!(
            exchange(&setup, Some(&bearer)).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    assert_eq!(exchange(&setup, Some(&bearer)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn an_expired_maskinporten_token_is_refused_with_401() {
    let setup = setup(0).await;
    let (status, _, body) = exchange(&setup, Some(&format!("Bearer {}", setup.token))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("expired"), "{body}");
}
