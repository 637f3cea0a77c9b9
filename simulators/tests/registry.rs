//! The ServiceRegistry driven over HTTP the way an integration point drives it, on the shipped
//! fixture: each routing case of the fixture, the signature checked with an independent JOSE
//! implementation (`jsonwebtoken`, RustCrypto backend), and the refusals.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey};
use reqwest::StatusCode;
use serde_json::Value;
use simulators::fixture::Fixture;
use simulators::maskinporten::{JWT_BEARER, Maskinporten, MaskinportenConfig};
use simulators::pki::TestPki;
use simulators::registry::{
    RegistryConfig, SeenRequest, ServiceRegistry, TokenClaims, TokenVerifier,
};

const ARKIVMELDING: &str = "urn:no:difi:profile:arkivmelding:administrasjon:ver1.0";
const INNSYNSKRAV: &str = "urn:no:difi:profile:einnsyn:innsynskrav:ver1.0";
const INFO: &str = "urn:no:difi:profile:digitalpost:info:ver1.0";
const VEDTAK: &str = "urn:no:difi:profile:digitalpost:vedtak:ver1.0";

/// The token of 910075918 with the DPO, DPE and DPI scopes.
const FULL: &str = "token-full";
/// The token of 910075918 without a DPI scope.
const NO_DPI: &str = "token-no-dpi";
/// A token whose consumer is not an organisation.
const PERSON: &str = "token-person";

/// Accepts a fixed set of tokens, as the registry's trusted Maskinporten would.
struct Tokens(HashMap<&'static str, TokenClaims>);

impl TokenVerifier for Tokens {
    fn verify(&self, token: &str) -> Result<TokenClaims, String> {
        self.0
            .get(token)
            .cloned()
            .ok_or_else(|| "unknown token".to_owned())
    }
}

fn claims(consumer: &str, scopes: &[&str]) -> TokenClaims {
    TokenClaims {
        consumer: consumer.to_owned(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    }
}

struct Setup {
    registry: ServiceRegistry,
    http: reqwest::Client,
    pki_dir: tempfile::TempDir,
}

async fn start() -> Setup {
    let fixture =
        Fixture::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixture.toml")).unwrap();
    let tokens = Tokens(HashMap::from([
        (
            FULL,
            claims(
                "0192:910075918",
                &["eformidling:dpo", "eformidling:dpe", "eformidling:dpi"],
            ),
        ),
        (NO_DPI, claims("0192:910075918", &["eformidling:dpo"])),
        (PERSON, claims("01818012337", &["eformidling:dpo"])),
    ]));
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(pki_dir.path()).unwrap();
    let config = RegistryConfig::new(fixture, Arc::new(tokens), "pw", "sas-key-1");
    let registry = ServiceRegistry::start(config, &pki).await.unwrap();
    Setup {
        registry,
        http: reqwest::Client::new(),
        pki_dir,
    }
}

impl Setup {
    async fn get(&self, path: &str, token: Option<&str>, accept: &str) -> reqwest::Response {
        let mut request = self
            .http
            .get(format!("{}{path}", self.registry.base_url()))
            .header("Accept", accept);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// The plain JSON answer to `path` with the full token, which must be 200.
    async fn json(&self, path: &str) -> Value {
        let response = self.get(path, Some(FULL), "application/json").await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        json_of(response).await
    }

    /// The one service record for `id` in `process`.
    async fn record(&self, id: &str, process: &str, query: &str) -> Value {
        let answer = self
            .json(&format!("/identifier/{id}/process/{process}{query}"))
            .await;
        let records = answer["serviceRecords"].as_array().unwrap();
        assert_eq!(records.len(), 1, "{answer}");
        records[0].clone()
    }
}

async fn json_of(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

#[tokio::test]
async fn arkivmelding_goes_by_dpo_when_in_elma_else_dpf_with_svarut_else_dpv() {
    let setup = start().await;
    for orgnr in ["910075918", "910076787"] {
        let record = setup.record(orgnr, ARKIVMELDING, "").await;
        assert_eq!(record["service"]["identifier"], "DPO", "{orgnr}: {record}");
        assert_eq!(record["organisationNumber"], orgnr);
        assert_eq!(
            record["documentTypes"][0],
            "urn:no:difi:arkivmelding:xsd::arkivmelding"
        );
        let issued = setup.registry.certificate(orgnr).unwrap().to_pem().unwrap();
        assert_eq!(
            record["pemCertificate"].as_str().unwrap().as_bytes(),
            issued
        );
    }

    let municipality = setup.record("910077201", ARKIVMELDING, "").await;
    assert_eq!(municipality["service"]["identifier"], "DPF");
    assert_eq!(municipality["service"]["securityLevel"], 3);
    // Senders encrypt DPF documents to SvarUt, so the record carries SvarUt's certificate (the
    // registry issued it, given none), not the municipality's own.
    let dpf_pem = municipality["pemCertificate"].as_str().unwrap().as_bytes();
    let svarut = setup.registry.svarut_certificate();
    assert_eq!(dpf_pem, svarut.to_pem().unwrap());
    let own = setup.registry.certificate("910077201").unwrap();
    assert_ne!(dpf_pem, own.to_pem().unwrap());
    let serial_number = svarut
        .subject_name()
        .entries_by_nid(openssl::nid::Nid::SERIALNUMBER)
        .next()
        .unwrap()
        .data()
        .to_string()
        .unwrap();
    assert_eq!(serial_number, simulators::pki::SVARUT_ORGNR);
    let written = std::fs::read(setup.pki_dir.path().join("svarut.pem")).unwrap();
    assert!(written.starts_with(dpf_pem));
    // SvarUt receives at level 3 at most, so a level 4 message cannot go by DPF.
    let level4 = setup
        .record("910077201", ARKIVMELDING, "?securityLevel=4")
        .await;
    assert_eq!(level4["service"]["identifier"], "DPV");

    let association = setup.record("910077309", ARKIVMELDING, "").await;
    assert_eq!(association["service"]["identifier"], "DPV");
    assert_eq!(association["service"]["serviceCode"], "4255");
    assert!(association["pemCertificate"].is_null());

    let info = setup.json("/info/910077201").await;
    assert_eq!(info["infoRecord"]["organizationName"], "Testkommune");
    assert_eq!(info["infoRecord"]["entityType"]["name"], "KOMM");
    assert_eq!(info["infoRecord"]["postadresse"]["poststed"], "Trondheim");
}

#[tokio::test]
async fn einnsyn_goes_by_dpe_only_when_registered() {
    let setup = start().await;
    let record = setup.record("910075918", INNSYNSKRAV, "").await;
    assert_eq!(record["service"]["identifier"], "DPE");
    assert_eq!(record["service"]["endpointUrl"], "innsyn");

    let all = setup.json("/identifier/910075918").await;
    let channels: Vec<&str> = all["serviceRecords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["service"]["identifier"].as_str().unwrap())
        .collect();
    assert!(
        channels.contains(&"DPE") && channels.contains(&"DPO"),
        "{channels:?}"
    );

    let response = setup
        .get(
            &format!("/identifier/910076787/process/{INNSYNSKRAV}"),
            Some(FULL),
            "application/json",
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn citizens_go_by_dpi_print_or_dpv_by_their_krr_entry() {
    let setup = start().await;
    let digital = setup.record("01818012337", INFO, "").await;
    assert_eq!(digital["service"]["identifier"], "DPI");
    assert_eq!(digital["fysiskPost"], false);
    assert_eq!(digital["postkasseAdresse"], "kari.digital#4711");
    assert_eq!(digital["orgnrPostkasse"], "984661185");
    assert_eq!(digital["kanVarsles"], true);
    let provider = setup
        .registry
        .certificate("984661185")
        .unwrap()
        .to_pem()
        .unwrap();
    assert_eq!(
        digital["pemCertificate"].as_str().unwrap().as_bytes(),
        provider
    );
    let vedtak = setup.record("01818012337", VEDTAK, "").await;
    assert_eq!(vedtak["service"]["identifier"], "DPI");
    assert_eq!(vedtak["fysiskPost"], false);

    let printed = setup.record("02818512441", VEDTAK, "").await;
    assert_eq!(printed["service"]["identifier"], "DPI");
    assert_eq!(printed["fysiskPost"], true);
    assert_eq!(printed["postAddress"]["name"], "Per Papir");
    // The return address is the caller's, from Brreg.
    assert_eq!(printed["returnAddress"]["name"], "Lokal testetat");
    let no_print = setup.record("02818512441", VEDTAK, "?print=false").await;
    assert_eq!(no_print["service"]["identifier"], "DPV");
    let reserved_info = setup.record("02818512441", INFO, "").await;
    assert_eq!(reserved_info["service"]["identifier"], "DPV");

    let without_mailbox = setup.record("05817012789", INFO, "").await;
    assert_eq!(without_mailbox["service"]["identifier"], "DPV");
    assert_eq!(
        without_mailbox["documentTypes"][0],
        "urn:no:difi:digitalpost:xsd:digital::digital_dpv"
    );
    let citizen = setup.json("/info/05817012789").await;
    assert_eq!(citizen["infoRecord"]["entityType"]["name"], "citizen");
}

#[tokio::test]
async fn signed_answers_verify_with_an_independent_jose_library() {
    let setup = start().await;
    let keys: JwkSet =
        serde_json::from_value(json_of(setup.get("/jwk", None, "application/json").await).await)
            .unwrap();

    let answer = setup
        .get(
            "/identifier/910076787",
            Some(FULL),
            "application/jose, application/json",
        )
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()["content-type"], "application/jose");
    let compact = answer.text().await.unwrap();
    let payload = verified_payload(&keys, &compact).unwrap();
    let plain = setup.json("/identifier/910076787").await;
    assert_eq!(serde_json::from_slice::<Value>(&payload).unwrap(), plain);

    // The certificate answer is signed the same way; its payload is the PEM text.
    let compact = setup
        .get("/virksert/910075918", Some(FULL), "application/jose")
        .await
        .text()
        .await
        .unwrap();
    let pem = setup
        .registry
        .certificate("910075918")
        .unwrap()
        .to_pem()
        .unwrap();
    assert_eq!(verified_payload(&keys, &compact).unwrap(), pem);

    // The header carries the signing certificate, whose key is the published one.
    let header = jsonwebtoken::decode_header(&compact).unwrap();
    let der = header.x5c_der().unwrap().unwrap();
    let signing = openssl::x509::X509::from_der(&der[0]).unwrap();
    let rsa = signing.public_key().unwrap().rsa().unwrap();
    let published = keys.find(header.kid.as_deref().unwrap()).unwrap();
    let jsonwebtoken::jwk::AlgorithmParameters::RSA(params) = &published.algorithm else {
        panic!("not an RSA key: {published:?}");
    };
    use base64::Engine as _;
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&params.n)
        .unwrap();
    assert_eq!(rsa.n().to_vec(), n);

    // A changed payload no longer verifies, nor does a forged answer.
    let parts: Vec<&str> = compact.split('.').collect();
    let other = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"changed");
    let altered = format!("{}.{other}.{}", parts[0], parts[2]);
    assert!(verified_payload(&keys, &altered).is_none());
    setup.registry.forge_next(1).unwrap();
    let forged = setup
        .get("/virksert/910075918", Some(FULL), "application/jose")
        .await
        .text()
        .await
        .unwrap();
    assert!(verified_payload(&keys, &forged).is_none());
}

/// The payload of `compact` if its signature verifies with the key its `kid` names in `keys`.
fn verified_payload(keys: &JwkSet, compact: &str) -> Option<Vec<u8>> {
    let header = jsonwebtoken::decode_header(compact).ok()?;
    assert_eq!(header.alg, Algorithm::RS256);
    let key = DecodingKey::from_jwk(keys.find(header.kid.as_deref()?)?).ok()?;
    let (message, signature) = compact.rsplit_once('.')?;
    let valid =
        jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key, Algorithm::RS256).ok()?;
    use base64::Engine as _;
    let payload = message.split_once('.')?.1;
    valid.then(|| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap()
    })
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused() {
    let setup = start().await;
    let path = "/identifier/910075918";
    let missing = setup.get(path, None, "application/json").await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert!(missing.headers().contains_key("www-authenticate"));
    let body = json_of(missing).await;
    assert!(body["error_description"].is_string(), "{body}");

    let invalid = setup.get(path, Some("forged"), "application/json").await;
    assert_eq!(invalid.status(), StatusCode::UNAUTHORIZED);

    let person = setup.get(path, Some(PERSON), "application/json").await;
    assert_eq!(person.status(), StatusCode::FORBIDDEN);

    // Citizens need a DPI scope, the SAS key the DPE scope.
    let citizen = setup
        .get("/identifier/01818012337", Some(NO_DPI), "application/json")
        .await;
    assert_eq!(citizen.status(), StatusCode::FORBIDDEN);
    let sas = setup
        .get("/sastoken", Some(NO_DPI), "application/json")
        .await;
    assert_eq!(sas.status(), StatusCode::FORBIDDEN);
    let sas = setup.get("/sastoken", Some(FULL), "text/plain").await;
    assert_eq!(sas.text().await.unwrap(), "sas-key-1");

    // The key set is public.
    let jwk = setup.get("/jwk", None, "application/json").await;
    assert_eq!(jwk.status(), StatusCode::OK);

    let seen = setup.registry.requests();
    assert_eq!(seen[0].path, path);
    assert_eq!((seen[0].status, seen[0].consumer.as_deref()), (401, None));
    assert_eq!(
        seen.iter()
            .filter(|r| r.consumer.as_deref() == Some("0192:910075918"))
            .count(),
        3
    );
}

#[tokio::test]
async fn an_unknown_identifier_is_404_with_the_error_body() {
    let setup = start().await;
    for path in [
        "/identifier/974760673",
        &format!("/identifier/974760673/process/{ARKIVMELDING}"),
        "/info/974760673",
        "/virksert/974760673",
        "/identifier/910075918/process/urn:no:difi:profile:unknown:ver1.0",
    ] {
        let response = setup.get(path, Some(FULL), "application/json").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body = json_of(response).await;
        assert_eq!(body["error_code"], "not_found", "{path}: {body}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("974760673")
                || path.contains("unknown"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn injected_failures_answer_503_then_recover() {
    let setup = start().await;
    setup.registry.fail_next(2);
    for _ in 0..2 {
        let response = setup.get("/jwk", None, "application/json").await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    let response = setup.get("/jwk", None, "application/json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let statuses: Vec<u16> = setup
        .registry
        .requests()
        .iter()
        .map(|r: &SeenRequest| r.status)
        .collect();
    assert_eq!(statuses, [503, 503, 200]);
}

#[tokio::test]
async fn tokens_of_the_maskinporten_simulator_are_accepted_and_others_refused() {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path()).unwrap();
    let audience = "http://maskinporten.test/";
    let maskinporten = Maskinporten::start(MaskinportenConfig::new(
        pki.ca().clone(),
        audience,
        ["eformidling:dpo"],
    ))
    .await
    .unwrap();
    let fixture =
        Fixture::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixture.toml")).unwrap();
    let config = RegistryConfig::new(fixture, Arc::new(maskinporten.verifier()), "pw", "sas");
    let registry = ServiceRegistry::start(config, &pki).await.unwrap();

    // A JWT-bearer grant, signed with a business certificate of 910075918 from the test CA.
    let client = pki
        .issue("910075918", "Lokal testetat", -1, 365, "pw")
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({
        "alg": "RS256", "x5c": [STANDARD.encode(client.certificate.to_der().unwrap())],
    });
    let claims = serde_json::json!({
        "aud": audience, "iss": "MOVE_IP_910075918", "scope": "eformidling:dpo",
        "jti": uuid::Uuid::new_v4().to_string(), "iat": now, "exp": now + 120,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signer =
        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &client.key).unwrap();
    signer.update(input.as_bytes()).unwrap();
    let assertion = format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(signer.sign_to_vec().unwrap())
    );
    let http = reqwest::Client::new();
    let granted = http
        .post(maskinporten.token_url())
        .form(&[
            ("grant_type", JWT_BEARER),
            ("assertion", assertion.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(granted.status(), StatusCode::OK);
    let token = json_of(granted).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let get = |path: &str, token: &str| {
        http.get(format!("{}{path}", registry.base_url()))
            .bearer_auth(token)
            .send()
    };
    let organisation = get("/identifier/910076787", &token).await.unwrap();
    assert_eq!(organisation.status(), StatusCode::OK);
    // The token carries no DPI scope, so citizens stay hidden.
    let citizen = get("/identifier/01818012337", &token).await.unwrap();
    assert_eq!(citizen.status(), StatusCode::FORBIDDEN);
    // One changed character in the signature and the token is refused.
    let mut forged = token.clone().into_bytes();
    let inside = forged.len() - 10;
    forged[inside] = if forged[inside] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let refused = get("/identifier/910076787", &forged).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        registry.requests()[0].consumer.as_deref(),
        Some("0192:910075918")
    );
}
