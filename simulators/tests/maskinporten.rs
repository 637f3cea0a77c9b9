//! The Maskinporten simulator, driven over HTTP with assertions built here by hand, so a test
//! can also send the malformed and wrongly signed ones a client library would not build.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::{Signer, Verifier};
use openssl::x509::X509;
use reqwest::StatusCode;
use serde_json::{Value, json};
use simulators::maskinporten::{JWT_BEARER, Maskinporten, MaskinportenConfig, Refusal};
use simulators::pki::TestPki;

const AUDIENCE: &str = "http://maskinporten.test/";
const ORGNR: &str = "910075918";

struct Setup {
    _dir: tempfile::TempDir,
    pki: TestPki,
    certificate: X509,
    key: PKey<Private>,
    maskinporten: Maskinporten,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path()).unwrap();
    let issued = pki.issue(ORGNR, "Testetat", -1, 365, "pw").unwrap();
    let config = MaskinportenConfig::new(
        pki.ca().clone(),
        AUDIENCE,
        ["eformidling:dpo", "eformidling:dpe"],
    );
    let maskinporten = Maskinporten::start(config).await.unwrap();
    Setup {
        _dir: dir,
        pki,
        certificate: issued.certificate,
        key: issued.key,
        maskinporten,
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims(scope: &str) -> Value {
    let iat = now();
    json!({
        "aud": AUDIENCE,
        "iss": format!("MOVE_IP_{ORGNR}"),
        "scope": scope,
        "jti": uuid::Uuid::new_v4().to_string(),
        "iat": iat,
        "exp": iat + 120,
    })
}

fn sign(header: &Value, claims: &Value, key: &PKey<Private>) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signer = Signer::new(MessageDigest::sha256(), key).unwrap();
    signer.update(input.as_bytes()).unwrap();
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(signer.sign_to_vec().unwrap())
    )
}

fn assertion(certificate: &X509, key: &PKey<Private>, claims: &Value) -> String {
    let header = json!({"alg": "RS256", "x5c": [STANDARD.encode(certificate.to_der().unwrap())]});
    sign(&header, claims, key)
}

async fn post_form(url: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn ask(setup: &Setup, assertion: &str) -> (StatusCode, Value) {
    post_form(
        &setup.maskinporten.token_url(),
        &[("grant_type", JWT_BEARER), ("assertion", assertion)],
    )
    .await
}

fn claims_of(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test]
async fn a_well_formed_assertion_gets_a_signed_token_for_the_certificates_organisation() {
    let setup = setup().await;
    let signed = assertion(
        &setup.certificate,
        &setup.key,
        &claims("eformidling:dpo eformidling:dpe"),
    );
    let (status, answer) = ask(&setup, &signed).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 120);
    assert_eq!(answer["scope"], "eformidling:dpo eformidling:dpe");
    let token = answer["access_token"].as_str().unwrap();
    let body = claims_of(token);
    assert_eq!(
        body["consumer"],
        json!({"authority": "iso6523-actorid-upis", "ID": "0192:910075918"})
    );
    assert_eq!(body["client_id"], "MOVE_IP_910075918");
    assert_eq!(body["iss"], AUDIENCE);
    assert!(body["exp"].as_i64().unwrap() > body["iat"].as_i64().unwrap());

    let verified = setup
        .maskinporten
        .verify_access_token(token, "eformidling:dpe")
        .unwrap();
    assert_eq!(verified.consumer, "0192:910075918");
    assert_eq!(verified.scopes, ["eformidling:dpo", "eformidling:dpe"]);
    assert_eq!(setup.maskinporten.issued(), vec![verified]);
    let missing = setup
        .maskinporten
        .verify_access_token(token, "eformidling:dpv")
        .unwrap_err();
    assert!(missing.contains("eformidling:dpv"), "{missing}");
}

#[tokio::test]
async fn the_published_jwk_verifies_the_token_independently() {
    let setup = setup().await;
    let signed = assertion(&setup.certificate, &setup.key, &claims("eformidling:dpo"));
    let (_, answer) = ask(&setup, &signed).await;
    let token = answer["access_token"].as_str().unwrap();
    let jwks = reqwest::get(format!("{}/jwks", setup.maskinporten.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let jwks: Value = serde_json::from_str(&jwks).unwrap();
    let jwk = &jwks["keys"][0];
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], jwk["kid"]);
    let number = |name: &str| {
        BigNum::from_slice(&URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap()).unwrap()
    };
    let public =
        PKey::from_rsa(Rsa::from_public_components(number("n"), number("e")).unwrap()).unwrap();
    let (input, signature) = token.rsplit_once('.').unwrap();
    let mut verifier = Verifier::new(MessageDigest::sha256(), &public).unwrap();
    verifier.update(input.as_bytes()).unwrap();
    assert!(
        verifier
            .verify(&URL_SAFE_NO_PAD.decode(signature).unwrap())
            .unwrap()
    );

    let forged = format!(
        "{}.{}.{signature}",
        input.split('.').next().unwrap(),
        URL_SAFE_NO_PAD.encode(json!({"scope": "eformidling:dpo"}).to_string())
    );
    assert!(
        setup
            .maskinporten
            .verify_access_token(&forged, "eformidling:dpo")
            .is_err()
    );
}

async fn refused(setup: &Setup, assertion: &str) -> (String, String) {
    let (status, answer) = ask(setup, assertion).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    (
        answer["error"].as_str().unwrap().to_owned(),
        answer["error_description"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn a_replayed_jti_is_refused() {
    let setup = setup().await;
    let signed = assertion(&setup.certificate, &setup.key, &claims("eformidling:dpo"));
    assert_eq!(ask(&setup, &signed).await.0, StatusCode::OK);
    let (error, description) = refused(&setup, &signed).await;
    assert_eq!(error, "invalid_grant");
    assert!(description.contains("used before"), "{description}");
}

#[tokio::test]
async fn wrong_audience_lifetime_or_expiry_is_an_invalid_grant() {
    let setup = setup().await;
    let mut wrong_audience = claims("eformidling:dpo");
    wrong_audience["aud"] = json!("https://maskinporten.no/");
    let mut too_long = claims("eformidling:dpo");
    too_long["exp"] = json!(now() + 121);
    let mut expired = claims("eformidling:dpo");
    expired["iat"] = json!(now() - 600);
    expired["exp"] = json!(now() - 500);
    for (claims, expected) in [
        (wrong_audience, "aud must be"),
        (too_long, "exp - iat"),
        (expired, "expired"),
    ] {
        let (error, description) =
            refused(&setup, &assertion(&setup.certificate, &setup.key, &claims)).await;
        assert_eq!(error, "invalid_grant", "{description}");
        assert!(description.contains(expected), "{description}");
    }
    assert_eq!(setup.maskinporten.refusals().len(), 3);
    assert!(setup.maskinporten.issued().is_empty());
}

#[tokio::test]
async fn a_signature_by_another_key_is_an_invalid_grant() {
    let setup = setup().await;
    let other = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let (error, description) = refused(
        &setup,
        &assertion(&setup.certificate, &other, &claims("eformidling:dpo")),
    )
    .await;
    assert_eq!(error, "invalid_grant");
    assert!(description.contains("signature"), "{description}");
}

#[tokio::test]
async fn a_certificate_from_another_ca_or_no_certificate_is_an_invalid_client() {
    let setup = setup().await;
    let elsewhere = tempfile::tempdir().unwrap();
    let stranger = TestPki::new(elsewhere.path())
        .unwrap()
        .issue(ORGNR, "Fake", -1, 365, "pw")
        .unwrap();
    let (error, description) = refused(
        &setup,
        &assertion(
            &stranger.certificate,
            &stranger.key,
            &claims("eformidling:dpo"),
        ),
    )
    .await;
    assert_eq!(error, "invalid_client");
    assert!(description.contains("not trusted"), "{description}");

    let expired = setup
        .pki
        .issue("910076787", "Utløpt", -400, 30, "pw")
        .unwrap();
    let (error, _) = refused(
        &setup,
        &assertion(
            &expired.certificate,
            &expired.key,
            &claims("eformidling:dpo"),
        ),
    )
    .await;
    assert_eq!(error, "invalid_client");

    let by_kid = sign(
        &json!({"alg": "RS256", "kid": "k1"}),
        &claims("eformidling:dpo"),
        &setup.key,
    );
    assert_eq!(refused(&setup, &by_kid).await.0, "invalid_client");
}

#[tokio::test]
async fn a_scope_not_allowed_or_none_is_an_invalid_scope() {
    let setup = setup().await;
    let (error, description) = refused(
        &setup,
        &assertion(
            &setup.certificate,
            &setup.key,
            &claims("eformidling:dpo eformidling:dpv"),
        ),
    )
    .await;
    assert_eq!(error, "invalid_scope");
    assert!(description.contains("eformidling:dpv"), "{description}");
    let (error, _) = refused(
        &setup,
        &assertion(&setup.certificate, &setup.key, &claims(" ")),
    )
    .await;
    assert_eq!(error, "invalid_scope");
}

#[tokio::test]
async fn a_malformed_request_is_refused_with_the_oauth_error() {
    let setup = setup().await;
    let url = setup.maskinporten.token_url();
    let (status, answer) = post_form(
        &url,
        &[("grant_type", "client_credentials"), ("assertion", "x")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"], "unsupported_grant_type");
    let (_, answer) = post_form(&url, &[("grant_type", JWT_BEARER)]).await;
    assert_eq!(answer["error"], "invalid_request");
    let (_, answer) = post_form(
        &url,
        &[("grant_type", JWT_BEARER), ("assertion", "not.a-jwt")],
    )
    .await;
    assert_eq!(answer["error"], "invalid_grant");
    let refusals = setup.maskinporten.refusals();
    assert_eq!(
        refusals.first(),
        Some(&Refusal {
            error: "unsupported_grant_type".into(),
            description: format!("grant_type must be {JWT_BEARER}"),
        })
    );
}

#[tokio::test]
async fn injected_faults_answer_503_then_service_resumes() {
    let setup = setup().await;
    setup.maskinporten.fail_next(1);
    let signed = assertion(&setup.certificate, &setup.key, &claims("eformidling:dpo"));
    let (status, _) = ask(&setup, &signed).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, answer) = ask(&setup, &signed).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the jti was not used by the refused request: {answer}"
    );
}
