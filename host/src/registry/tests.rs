//! The registry client against a stand-in registry that signs its answers as the real one does,
//! and can be made to alter them, sign with a key it does not publish, or rotate its key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use futures::future::BoxFuture;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use serde_json::{Value, json};

use super::*;
use crate::crypto::testpki::TestPki;

const ORGNR: &str = "910075918";
const PROCESS: &str = "urn:no:difi:profile:arkivmelding:administrasjon:ver1.0";
const ARKIVMELDING: &str = "urn:no:difi:arkivmelding:xsd::arkivmelding";

/// Hands out a recognisable token per scope set.
struct FakeTokens;

impl TokenSource for FakeTokens {
    fn maskinporten<'a>(&'a self, scopes: &'a [String]) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move { Ok(format!("token-for:{}", scopes.join(" "))) })
    }

    fn altinn<'a>(&'a self, _: &'a [String]) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async { Err("the registry never asks for Altinn tokens".to_owned()) })
    }
}

/// How the stand-in signs its answers.
#[derive(Clone, Copy)]
enum Signing {
    /// With its current key, as the registry does.
    Good,
    /// Then changes the payload.
    Altered,
    /// With a key it does not publish, under its current kid and with that key's certificate in
    /// `x5c`, as an impostor would.
    Impostor,
    /// Not at all: plain JSON.
    Unsigned,
}

struct Registry {
    /// Path → status and body (for 2xx, the payload to sign).
    answers: HashMap<String, (StatusCode, String)>,
    kid: String,
    keys: HashMap<String, PKey<Private>>,
    published: Vec<String>,
    signing: Signing,
    impostor: TestPki,
    requests: Vec<String>,
    headers: Vec<HeaderMap>,
    key_set_fetches: usize,
}

type Shared = Arc<Mutex<Registry>>;

struct StandIn {
    url: String,
    registry: Shared,
    _dir: tempfile::TempDir,
}

impl StandIn {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let impostor = TestPki::new(dir.path(), 365);
        let registry = Arc::new(Mutex::new(Registry {
            answers: HashMap::new(),
            kid: "k1".into(),
            keys: HashMap::from([("k1".to_owned(), rsa())]),
            published: vec!["k1".into()],
            signing: Signing::Good,
            impostor,
            requests: Vec::new(),
            headers: Vec::new(),
            key_set_fetches: 0,
        }));
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(registry.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/adressetjeneste", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            registry,
            _dir: dir,
        }
    }

    fn answer(&self, path: &str, status: StatusCode, body: impl Into<String>) {
        let path = format!("/adressetjeneste/{path}");
        let mut registry = self.registry.lock().unwrap();
        registry.answers.insert(path, (status, body.into()));
    }

    fn with<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        f(&mut self.registry.lock().unwrap())
    }

    fn requests(&self) -> Vec<String> {
        self.with(|registry| registry.requests.clone())
    }

    fn client(&self, configure: impl FnOnce(&mut RegistryConfig)) -> ServiceRegistry {
        let mut config = RegistryConfig::new(&self.url);
        configure(&mut config);
        ServiceRegistry::new(config, Arc::new(FakeTokens)).unwrap()
    }
}

fn rsa() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

async fn answer(State(registry): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    let mut registry = registry.lock().unwrap();
    if uri.path() == "/adressetjeneste/jwk" {
        registry.key_set_fetches += 1;
        let b64 = |n: &openssl::bn::BigNumRef| URL_SAFE_NO_PAD.encode(n.to_vec());
        let keys: Vec<Value> = registry
            .published
            .iter()
            .map(|kid| {
                let rsa = registry.keys[kid].rsa().unwrap();
                json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                       "n": b64(rsa.n()), "e": b64(rsa.e())})
            })
            .collect();
        return json!({"keys": keys}).to_string().into_response();
    }
    registry.requests.push(uri.to_string());
    registry.headers.push(headers);
    let Some((status, body)) = registry.answers.get(uri.path()).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !status.is_success() {
        return (status, body).into_response();
    }
    let signed = match registry.signing {
        Signing::Unsigned => body,
        Signing::Good | Signing::Altered => {
            let jws = sign(
                &json!({"alg": "RS256", "kid": registry.kid}),
                &body,
                &registry.keys[&registry.kid],
            );
            match registry.signing {
                Signing::Altered => {
                    let parts: Vec<&str> = jws.split('.').collect();
                    let altered = body.replace("https://", "https://evil.example/");
                    assert_ne!(
                        altered, body,
                        "the test payload must have something to alter"
                    );
                    format!(
                        "{}.{}.{}",
                        parts[0],
                        URL_SAFE_NO_PAD.encode(altered),
                        parts[2]
                    )
                }
                _ => jws,
            }
        }
        Signing::Impostor => {
            let x5c = STANDARD.encode(registry.impostor.leaf.to_der().unwrap());
            let header = json!({"alg": "RS256", "kid": registry.kid, "x5c": [x5c]});
            sign(&header, &body, &registry.impostor.leaf_key)
        }
    };
    (status, [("content-type", "application/jose")], signed).into_response()
}

fn sign(header: &Value, payload: &str, key: &PKey<Private>) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut signer = Signer::new(MessageDigest::sha256(), key).unwrap();
    signer.update(input.as_bytes()).unwrap();
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(signer.sign_to_vec().unwrap())
    )
}

fn resource_with(records: Value) -> String {
    json!({
        "infoRecord": {"identifier": ORGNR, "organizationName": "Testkommune",
                       "entityType": {"name": "KOMM"}},
        "serviceRecords": records,
    })
    .to_string()
}

fn dpo_record() -> Value {
    json!({"organisationNumber": ORGNR, "pemCertificate": "MIIB", "process": PROCESS,
           "documentTypes": [ARKIVMELDING],
           "service": {"identifier": "DPO", "endpointUrl": "https://dpo.example/broker",
                       "resource": "eformidling-dpo-meldingsutveksling"}})
}

fn lookup_path(identifier: &str) -> String {
    format!("identifier/{identifier}/process/{PROCESS}")
}

#[tokio::test]
async fn a_well_signed_answer_is_used_and_asked_for_as_the_registry_expects() {
    let stand_in = StandIn::start().await;
    stand_in.answer(
        &lookup_path(ORGNR),
        StatusCode::OK,
        resource_with(json!([dpo_record()])),
    );
    let registry = stand_in.client(|config| {
        config.scopes = scopes_for_channels(["DPO", "DPE"]);
        config.beta_features = true;
        config.print_lookup = false;
    });
    let options = LookupOptions {
        security_level: Some(3),
        conversation_id: Some("c-1".into()),
    };
    let record = registry
        .service_record(ORGNR, PROCESS, ARKIVMELDING, &options)
        .await
        .unwrap();
    assert_eq!(record.service_identifier(), "DPO");
    assert_eq!(
        record.service.endpoint_url.as_deref(),
        Some("https://dpo.example/broker")
    );
    assert_eq!(
        stand_in.requests(),
        [format!(
            "/adressetjeneste/{}?securityLevel=3&conversationId=c-1&print=false",
            lookup_path(ORGNR)
        )]
    );
    let headers = stand_in.with(|registry| registry.headers[0].clone());
    assert_eq!(headers["accept"], "application/jose, application/json");
    assert_eq!(
        headers["authorization"],
        "Bearer token-for:eformidling:dpe eformidling:dpo"
    );
    assert_eq!(headers["x-enable-beta-features"], "true");
    assert_eq!(stand_in.with(|registry| registry.key_set_fetches), 1);

    let error = registry
        .service_record(
            ORGNR,
            PROCESS,
            "urn:no:difi:eformidling:xsd::innsynskrav",
            &options,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::DocumentTypeNotAccepted { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("innsynskrav"), "{error}");
}

#[tokio::test]
async fn a_kept_answer_is_used_whatever_the_conversation_id() {
    let stand_in = StandIn::start().await;
    stand_in.answer(
        &lookup_path(ORGNR),
        StatusCode::OK,
        resource_with(json!([dpo_record()])),
    );
    stand_in.answer(
        &format!("identifier/{ORGNR}"),
        StatusCode::OK,
        resource_with(json!([dpo_record()])),
    );
    let registry = stand_in.client(|_| ());
    let conversation = |id: &str| LookupOptions {
        security_level: None,
        conversation_id: Some(id.into()),
    };
    let first = registry
        .identifier(ORGNR, Some(PROCESS), &conversation("c-1"))
        .await
        .unwrap();
    let second = registry
        .identifier(ORGNR, Some(PROCESS), &conversation("c-2"))
        .await
        .unwrap();
    assert_eq!(first, second);
    assert_eq!(stand_in.requests().len(), 1, "the second lookup was kept");
    let level = LookupOptions {
        security_level: Some(4),
        ..conversation("c-3")
    };
    registry
        .identifier(ORGNR, Some(PROCESS), &level)
        .await
        .unwrap();
    registry
        .identifier(ORGNR, None, &conversation("c-4"))
        .await
        .unwrap();
    assert_eq!(
        stand_in.requests().len(),
        3,
        "a security level or another process is another answer"
    );
}

#[tokio::test]
async fn an_answer_with_a_bad_signature_is_refused_and_not_kept() {
    let stand_in = StandIn::start().await;
    stand_in.answer(
        &lookup_path(ORGNR),
        StatusCode::OK,
        resource_with(json!([dpo_record()])),
    );
    let registry = stand_in.client(|_| ());
    let options = LookupOptions::default();
    let lookup = || registry.identifier(ORGNR, Some(PROCESS), &options);
    for (signing, expected) in [
        (Signing::Altered, "does not match"),
        (Signing::Impostor, "does not match"),
        (Signing::Unsigned, "not a compact JWS"),
    ] {
        stand_in.with(|registry| registry.signing = signing);
        let error = lookup().await.unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, RegistryError::BadSignature { .. }),
            "{message}"
        );
        assert!(
            message.contains("bad signature") && message.contains(expected),
            "{message}"
        );
        assert!(message.contains(&lookup_path(ORGNR)), "{message}");
    }
    stand_in.with(|registry| registry.signing = Signing::Good);
    let resource = lookup().await.expect("a good answer after the bad ones");
    assert_eq!(resource.service_records.len(), 1);
    assert_eq!(stand_in.requests().len(), 4, "no refused answer was kept");
    assert_eq!(
        stand_in.with(|registry| registry.key_set_fetches),
        1,
        "a known kid with a bad signature does not refetch the keys"
    );
}

#[tokio::test]
async fn an_unknown_kid_fetches_the_key_set_once_more() {
    let stand_in = StandIn::start().await;
    for id in ["1", "2", "3", "4"] {
        stand_in.answer(
            &format!("info/{id}"),
            StatusCode::OK,
            resource_with(json!([])),
        );
    }
    let registry = stand_in.client(|_| ());
    let fetches = || stand_in.with(|registry| registry.key_set_fetches);
    registry.info("1").await.unwrap();
    assert_eq!(fetches(), 1);

    // The registry rotates to k2 and publishes both.
    stand_in.with(|registry| {
        registry.keys.insert("k2".into(), rsa());
        registry.published.push("k2".into());
        registry.kid = "k2".into();
    });
    registry
        .info("2")
        .await
        .expect("verified with the refetched k2");
    assert_eq!(fetches(), 2);
    registry.info("3").await.unwrap();
    assert_eq!(fetches(), 2, "k2 is now kept");

    // A kid the registry never publishes: one refetch, then a clear refusal.
    stand_in.with(|registry| {
        registry.keys.insert("k3".into(), rsa());
        registry.kid = "k3".into();
    });
    let error = registry.info("4").await.unwrap_err();
    assert_eq!(fetches(), 3);
    assert!(
        error.to_string().contains("no key with kid \"k3\""),
        "{error}"
    );
}

#[tokio::test]
async fn not_found_and_error_answers_are_told_apart() {
    let stand_in = StandIn::start().await;
    stand_in.answer(
        &lookup_path("987654321"),
        StatusCode::BAD_REQUEST,
        json!({"error_code": "SR-101", "error_description": "Invalid security level 7"})
            .to_string(),
    );
    stand_in.answer(
        &lookup_path("123456789"),
        StatusCode::INTERNAL_SERVER_ERROR,
        "<html>proxy error</html>",
    );
    let registry = stand_in.client(|_| ());
    let options = LookupOptions::default();

    let missing = registry
        .identifier("999999999", Some(PROCESS), &options)
        .await
        .unwrap_err();
    assert!(
        matches!(&missing, RegistryError::NotFound { resource } if resource.contains("999999999")),
        "{missing}"
    );

    let refused = registry
        .identifier("987654321", Some(PROCESS), &options)
        .await
        .unwrap_err();
    let RegistryError::Refused {
        status,
        error_code,
        detail,
        ..
    } = &refused
    else {
        panic!("{refused}");
    };
    assert_eq!(
        (*status, error_code.as_deref(), detail.as_str()),
        (400, Some("SR-101"), "Invalid security level 7")
    );
    let message = refused.to_string();
    assert!(
        message.contains("HTTP 400 SR-101: Invalid security level 7"),
        "{message}"
    );

    let failed = registry
        .identifier("123456789", Some(PROCESS), &options)
        .await
        .unwrap_err();
    assert!(
        matches!(&failed, RegistryError::Refused { status: 500, detail, error_code: None, .. }
                 if detail == "<html>proxy error</html>"),
        "{failed}"
    );
}

#[tokio::test]
async fn info_certificate_and_sas_key_are_read_from_signed_answers() {
    let stand_in = StandIn::start().await;
    stand_in.answer(
        &format!("info/{ORGNR}"),
        StatusCode::OK,
        resource_with(json!([])),
    );
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    stand_in.answer(&format!("virksert/{ORGNR}"), StatusCode::OK, pem);
    stand_in.answer("sastoken", StatusCode::OK, "c2FzLWtleQ==");
    let registry = stand_in.client(|_| ());
    let info = registry.info(ORGNR).await.unwrap();
    assert_eq!(info.organization_name.as_deref(), Some("Testkommune"));
    assert_eq!(registry.certificate(ORGNR).await.unwrap(), pem.trim());
    assert_eq!(registry.sas_key().await.unwrap(), "c2FzLWtleQ==");
    assert_eq!(registry.sas_key().await.unwrap(), "c2FzLWtleQ==");
    assert_eq!(
        stand_in.requests(),
        [
            format!("/adressetjeneste/info/{ORGNR}"),
            format!("/adressetjeneste/virksert/{ORGNR}"),
            "/adressetjeneste/sastoken".to_owned(),
        ],
        "the SAS key was kept"
    );
    let headers = stand_in.with(|registry| registry.headers[0].clone());
    assert!(
        headers.get("authorization").is_none(),
        "no scopes, no bearer"
    );
}

#[tokio::test]
async fn without_a_process_the_default_record_is_picked() {
    let stand_in = StandIn::start().await;
    let dpe = json!({"process": "urn:no:difi:profile:einnsyn:journalpost:ver1.0",
                     "documentTypes": [], "service": {"identifier": "DPE", "endpointUrl": "innsyn"}});
    stand_in.answer(
        &format!("identifier/{ORGNR}"),
        StatusCode::OK,
        resource_with(json!([dpe, dpo_record()])),
    );
    stand_in.answer(
        "identifier/111111111",
        StatusCode::OK,
        resource_with(json!([])),
    );
    let registry = stand_in.client(|_| ());
    let options = LookupOptions::default();
    let record = registry
        .default_service_record(ORGNR, &options)
        .await
        .unwrap();
    assert_eq!(record.service_identifier(), "DPO");
    let error = registry
        .default_service_record("111111111", &options)
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::NoDefaultRecord { .. }),
        "{error}"
    );
}

#[test]
fn registry_scopes_follow_the_enabled_channels() {
    assert_eq!(
        scopes_for_channels(["DPO", "dpe", "DPO"]),
        ["eformidling:dpe", "eformidling:dpo"]
    );
    let with_dpi = scopes_for_channels(["DPI"]);
    assert!(with_dpi.contains(&"digitalpostinnbygger:send".to_owned()));
    assert!(with_dpi.contains(&"global/kontaktinformasjon.read".to_owned()));
    assert_eq!(with_dpi.len(), 8);
}
