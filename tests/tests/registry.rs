//! The host's registry client against the ServiceRegistry simulator: lookups through the real
//! client (bearer token, JWS verified against `/jwk`) route the fixture's receivers to the right
//! channels, and a forged answer is refused.

use std::path::Path;
use std::sync::Arc;

use futures::future::BoxFuture;
use integrasjonspunkt::registry::{
    LookupOptions, RegistryConfig, RegistryError, ServiceRegistry, scopes_for_channels,
};
use integrasjonspunkt::tokens::TokenSource;
use simulators::fixture::Fixture;
use simulators::pki::TestPki;
use simulators::registry::{self as simulator, TokenClaims, TokenVerifier};

const ARKIVMELDING_PROCESS: &str = "urn:no:difi:profile:arkivmelding:administrasjon:ver1.0";
const ARKIVMELDING: &str = "urn:no:difi:arkivmelding:xsd::arkivmelding";

/// Hands out `mp-<scopes>` tokens, as the host's Maskinporten client would hand out real ones.
struct Tokens;

impl TokenSource for Tokens {
    fn maskinporten<'a>(&'a self, scopes: &'a [String]) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move { Ok(format!("mp-{}", scopes.join("+"))) })
    }

    fn altinn<'a>(&'a self, _: &'a [String]) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async { Err("the registry needs no Altinn token".to_owned()) })
    }
}

/// Accepts exactly the tokens [`Tokens`] makes, for 910075918 with the scopes they name.
struct Verifier;

impl TokenVerifier for Verifier {
    fn verify(&self, token: &str) -> Result<TokenClaims, String> {
        let scopes = token.strip_prefix("mp-").ok_or("not a test token")?;
        Ok(TokenClaims {
            consumer: "0192:910075918".into(),
            scopes: scopes.split('+').map(str::to_owned).collect(),
        })
    }
}

#[tokio::test]
async fn the_host_finds_receivers_channels_and_refuses_a_forged_answer() {
    let fixture =
        Fixture::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../simulators/fixture.toml"))
            .unwrap();
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(pki_dir.path()).unwrap();
    let config = simulator::RegistryConfig::new(fixture, Arc::new(Verifier), "pw", "sas");
    let registry = simulator::ServiceRegistry::start(config, &pki)
        .await
        .unwrap();

    let mut config = RegistryConfig::new(registry.base_url());
    config.scopes = scopes_for_channels(["DPO", "DPF", "DPV", "DPI"]);
    let client = ServiceRegistry::new(config, Arc::new(Tokens)).unwrap();
    let options = LookupOptions::default();

    let dpo = client
        .service_record("910076787", ARKIVMELDING_PROCESS, ARKIVMELDING, &options)
        .await
        .unwrap();
    assert_eq!(dpo.service_identifier(), "DPO");
    let issued = registry.certificate("910076787").unwrap().to_pem().unwrap();
    assert_eq!(dpo.certificate_pem().unwrap().as_bytes(), issued);

    let dpf = client
        .service_record("910077201", ARKIVMELDING_PROCESS, ARKIVMELDING, &options)
        .await
        .unwrap();
    assert_eq!(dpf.service_identifier(), "DPF");
    assert_eq!(dpf.service.security_level, Some(3));

    let citizen = client
        .default_service_record("01818012337", &options)
        .await
        .unwrap();
    assert_eq!(citizen.service_identifier(), "DPI");
    assert_eq!(
        citizen.postkasse_adresse.as_deref(),
        Some("kari.digital#4711")
    );

    // Every request carried a token the registry accepted, and asked for a signed answer.
    let seen = registry.requests();
    assert!(seen.iter().any(|r| r.path == "/jwk"));
    for request in seen.iter().filter(|r| r.path != "/jwk") {
        assert_eq!(request.consumer.as_deref(), Some("0192:910075918"));
        assert!(
            request
                .accept
                .as_deref()
                .unwrap()
                .contains("application/jose")
        );
    }

    // A forged answer (signed with another key under the registry's kid) is refused, not used.
    registry.forge_next(1).unwrap();
    let forged = client
        .service_record("910077309", ARKIVMELDING_PROCESS, ARKIVMELDING, &options)
        .await
        .unwrap_err();
    assert!(
        matches!(forged, RegistryError::BadSignature { .. }),
        "{forged}"
    );
    // Nothing of it was kept: asked again, the genuine answer is used.
    let dpv = client
        .service_record("910077309", ARKIVMELDING_PROCESS, ARKIVMELDING, &options)
        .await
        .unwrap();
    assert_eq!(dpv.service_identifier(), "DPV");
}
