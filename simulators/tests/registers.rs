//! The registers behind the ServiceRegistry, each asked over HTTP the way the registry asks it,
//! and the registry deriving its records from them rather than from its own fixture.

use std::path::Path;
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::Value;
use simulators::fixture::Fixture;
use simulators::pki::TestPki;
use simulators::registers::{
    INTEGRATION_ID, INTEGRATION_PASSWORD, RegisterPorts, Registers, RegistersConfig,
};
use simulators::registry::{RegistryConfig, ServiceRegistry, TokenClaims, TokenVerifier};

const ARKIVMELDING: &str = "urn:no:difi:profile:arkivmelding:administrasjon:ver1.0";
const INFO: &str = "urn:no:difi:profile:digitalpost:info:ver1.0";
const TOKEN: &str = "token-of-910075918";

/// Accepts the one token [`TOKEN`], with every scope the registry asks for.
struct OneToken;

impl TokenVerifier for OneToken {
    fn verify(&self, token: &str) -> Result<TokenClaims, String> {
        (token == TOKEN)
            .then(|| TokenClaims {
                consumer: "0192:910075918".to_owned(),
                scopes: vec!["eformidling:dpo".to_owned(), "eformidling:dpi".to_owned()],
            })
            .ok_or_else(|| "unknown token".to_owned())
    }
}

fn shipped_fixture() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixture.toml")).unwrap()
}

async fn registers(fixture: &str, pki: &TestPki) -> Registers {
    Registers::start(
        RegistersConfig {
            ports: RegisterPorts::default(),
            fixture: Fixture::parse(fixture).unwrap(),
            verifier: Arc::new(OneToken),
            keystore_password: "pw".to_owned(),
        },
        pki,
    )
    .await
    .unwrap()
}

async fn json(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = response.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn each_register_answers_in_its_own_shape_from_the_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path()).unwrap();
    let registers = registers(&shipped_fixture(), &pki).await;
    let urls = registers.urls();
    let http = reqwest::Client::new();
    let get = |url: String| http.get(url).send();

    // Brreg: the unit, no sub-units, unknown numbers 404; the population register's person.
    let (status, unit) = json(
        get(format!(
            "{}/enhetsregisteret/api/enheter/910077201",
            urls.brreg
        ))
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(unit["navn"], "Testkommune");
    assert_eq!(unit["organisasjonsform"]["kode"], "KOMM");
    assert_eq!(unit["postadresse"]["poststed"], "Trondheim");
    for path in [
        "/enhetsregisteret/api/enheter/974760673",
        "/enhetsregisteret/api/underenheter/910077201",
        "/folkeregisteret/api/v1/personer/01818099999",
    ] {
        let status = get(format!("{}{path}", urls.brreg)).await.unwrap().status();
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (_, person) = json(
        get(format!(
            "{}/folkeregisteret/api/v1/personer/02818512441",
            urls.brreg
        ))
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(person["navn"]["etternavn"], "Papir");

    // ELMA: the registered processes of a participant; an unregistered one is unknown.
    let (status, group) = json(
        get(format!(
            "{}/iso6523-actorid-upis::0192:910075918",
            urls.elma
        ))
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let processes: Vec<&str> = group["serviceMetadataReferences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|reference| reference["processIdentifier"].as_str().unwrap())
        .collect();
    assert!(processes.contains(&ARKIVMELDING), "{group}");
    assert!(processes.contains(&"urn:no:difi:profile:einnsyn:innsynskrav:ver1.0"));
    let unregistered = get(format!(
        "{}/iso6523-actorid-upis::0192:910077309",
        urls.elma
    ))
    .await
    .unwrap();
    assert_eq!(unregistered.status(), StatusCode::NOT_FOUND);

    // Virksert: the certificate issued at start, PEM.
    let pem = get(format!("{}/api/v1/0192:910076787", urls.virksert))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let issued = registers
        .certificate("910076787")
        .unwrap()
        .to_pem()
        .unwrap();
    assert_eq!(pem.as_bytes(), issued);

    // FIKS: the receiving system, only to the registry's integration.
    let lookup = |credentials: Option<(&str, &str)>| {
        let mut request = http
            .get(format!("{}/api/v2/mottakersystem", urls.fiks_address))
            .query(&[("organisasjonsnummer", "910077201")]);
        if let Some((id, password)) = credentials {
            request = request
                .header("IntegrasjonId", id)
                .header("IntegrasjonPassord", password);
        }
        request.send()
    };
    let (status, systems) = json(
        lookup(Some((INTEGRATION_ID, INTEGRATION_PASSWORD)))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(systems[0]["niva"], 3);
    assert_eq!(
        lookup(Some((INTEGRATION_ID, "wrong")))
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        lookup(None).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    // KRR: only with a valid token; unknown identity numbers are left out.
    let persons = |token: &str| {
        http.post(format!("{}/rest/v1/personer", urls.krr))
            .bearer_auth(token)
            .header("Content-Type", "application/json")
            .body(r#"{"personidentifikatorer":["01818012337","02818512441","01818099999"]}"#)
            .send()
    };
    let (status, answer) = json(persons(TOKEN).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let people = answer["personer"].as_array().unwrap();
    assert_eq!(people.len(), 2);
    assert_eq!(people[0]["reservasjon"], "NEI");
    assert_eq!(
        people[0]["digital_post"]["postkasseleverandoeradresse"],
        "984661185"
    );
    let provider = registers
        .certificate("984661185")
        .unwrap()
        .to_pem()
        .unwrap();
    assert_eq!(
        people[0]["sertifikat"].as_str().unwrap().as_bytes(),
        provider
    );
    assert_eq!(people[1]["reservasjon"], "JA");
    assert_eq!(
        persons("forged").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let (_, print) = json(
        http.get(format!("{}/rest/v1/printSertifikat", urls.krr))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(print["postkasseleverandoerAdresse"], "984661185");
}

#[tokio::test]
async fn the_registry_derives_its_records_from_the_registers_it_is_pointed_at() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path()).unwrap();
    // The registers no longer have 910076787 in ELMA, nor Kari's mailbox active; the registry's
    // own fixture still says otherwise, and must not be what it answers from.
    let changed = shipped_fixture()
        .replace(
            "address = { street = \"Mottakergata 2\", postcode = \"5003\", town = \"Bergen\", country = \"Norge\" }\nelma = [\"urn:no:difi:profile:arkivmelding:administrasjon:ver1.0\"]",
            "address = { street = \"Mottakergata 2\", postcode = \"5003\", town = \"Bergen\", country = \"Norge\" }",
        )
        .replace("krr = { status = \"AKTIV\", reserved = false, mailbox", "krr = { status = \"SLETTET\", reserved = false, mailbox");
    assert_ne!(changed, shipped_fixture());
    let registers = registers(&changed, &pki).await;
    let mut config = RegistryConfig::new(
        Fixture::parse(&shipped_fixture()).unwrap(),
        Arc::new(OneToken),
        "pw",
        "sas",
    );
    config.sources = Some(registers.urls());
    let svarut = pki.issue_svarut("pw").unwrap();
    config.svarut_certificate = Some(svarut.certificate.clone());
    let registry = ServiceRegistry::start(config, &pki).await.unwrap();
    assert!(registry.registers().is_none());
    let http = reqwest::Client::new();
    let record = |id: &str, process: &str| {
        http.get(format!(
            "{}/identifier/{id}/process/{process}",
            registry.base_url()
        ))
        .bearer_auth(TOKEN)
        .send()
    };

    let (status, answer) = json(record("910076787", ARKIVMELDING).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["serviceRecords"][0]["service"]["identifier"], "DPV");
    let (_, answer) = json(record("01818012337", INFO).await.unwrap()).await;
    assert_eq!(answer["serviceRecords"][0]["service"]["identifier"], "DPV");
    // DPF's record carries the SvarUt certificate it was given, which SvarUt decrypts with.
    let (_, answer) = json(record("910077201", ARKIVMELDING).await.unwrap()).await;
    assert_eq!(answer["serviceRecords"][0]["service"]["identifier"], "DPF");
    let pem = answer["serviceRecords"][0]["pemCertificate"]
        .as_str()
        .unwrap();
    assert_eq!(pem.as_bytes(), svarut.certificate.to_pem().unwrap());
    let (_, answer) = json(record("910075918", ARKIVMELDING).await.unwrap()).await;
    let pem = answer["serviceRecords"][0]["pemCertificate"]
        .as_str()
        .unwrap();
    assert_eq!(
        pem.as_bytes(),
        registers
            .certificate("910075918")
            .unwrap()
            .to_pem()
            .unwrap()
    );

    // Every register was asked, KRR with the caller's token.
    for (name, register) in [
        ("Brreg", &registers.brreg),
        ("ELMA", &registers.elma),
        ("FIKS", &registers.fiks_address),
        ("Virksert", &registers.virksert),
        ("KRR", &registers.krr),
    ] {
        assert!(!register.requests().is_empty(), "{name} was never asked");
    }

    // A register that fails makes the lookup fail rather than answer a wrong channel.
    registers.elma.fail_next(1);
    let (status, body) = json(record("910075918", ARKIVMELDING).await.unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["error_description"].as_str().unwrap().contains("ELMA"),
        "{body}"
    );
    let (status, _) = json(record("910075918", ARKIVMELDING).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
}
