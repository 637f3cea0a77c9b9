//! The host's real token client against the Maskinporten and Altinn exchange simulators: the
//! assertion the host signs with a keystore from the test PKI is accepted, the token carries the
//! organisation the certificate names, the Altinn exchange takes it, and a scope the client may
//! not have comes back as the host's error naming that scope.

use std::sync::Arc;

use integrasjonspunkt::crypto::BusinessCertificate;
use integrasjonspunkt::tokens::{
    AltinnConfig, AltinnExchange, ClientKey, Maskinporten, MaskinportenConfig, TokenService,
    TokenSource,
};
use simulators::altinn_exchange::{self, AltinnExchangeConfig};
use simulators::maskinporten::{self as simulated, MaskinportenConfig as SimulatedConfig};
use simulators::pki::TestPki;

const AUDIENCE: &str = "http://127.0.0.1/maskinporten/";
const PASSWORD: &str = "keystore password";

struct Setup {
    _dir: tempfile::TempDir,
    maskinporten: simulated::Maskinporten,
    exchange: altinn_exchange::AltinnExchange,
    service: TokenService,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path()).unwrap();
    let issued = pki
        .issue("910075918", "Testetat", -1, 365, PASSWORD)
        .unwrap();
    let maskinporten = simulated::Maskinporten::start(SimulatedConfig::new(
        pki.ca().clone(),
        AUDIENCE,
        ["eformidling:dpo", "eformidling:dpv"],
    ))
    .await
    .unwrap();
    let exchange =
        altinn_exchange::AltinnExchange::start(AltinnExchangeConfig::new(maskinporten.verifier()))
            .await
            .unwrap();

    let certificate = BusinessCertificate::from_pkcs12(&issued.keystore, PASSWORD, None).unwrap();
    let client = Arc::new(
        Maskinporten::new(
            MaskinportenConfig::new(maskinporten.token_url(), AUDIENCE, "MOVE_IP_910075918"),
            ClientKey::Certificate(certificate),
        )
        .unwrap(),
    );
    let altinn =
        AltinnExchange::new(AltinnConfig::new(exchange.exchange_url()), client.clone()).unwrap();
    Setup {
        _dir: dir,
        maskinporten,
        exchange,
        service: TokenService::new(client, Some(altinn)),
    }
}

fn scopes(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

#[tokio::test]
async fn the_host_gets_a_maskinporten_token_for_its_organisation() {
    let setup = setup().await;
    let token = setup
        .service
        .maskinporten(&scopes(&["eformidling:dpv", "eformidling:dpo"]))
        .await
        .unwrap();
    let claims = setup
        .maskinporten
        .verify_access_token(&token, "eformidling:dpo")
        .unwrap();
    assert_eq!(claims.consumer, "0192:910075918");
    assert_eq!(claims.client_id, "MOVE_IP_910075918");
    assert_eq!(claims.scopes, ["eformidling:dpo", "eformidling:dpv"]);
    assert!(setup.maskinporten.refusals().is_empty());
}

#[tokio::test]
async fn the_host_exchanges_its_token_for_an_altinn_token() {
    let setup = setup().await;
    let token = setup
        .service
        .altinn(&scopes(&["eformidling:dpv"]))
        .await
        .unwrap();
    let claims = setup
        .exchange
        .verifier()
        .verify(&token, Some("eformidling:dpv"))
        .unwrap();
    assert_eq!(claims.consumer, "0192:910075918");
    assert_eq!(setup.exchange.exchanged().len(), 1);
    assert_eq!(setup.exchange.refused(), 0);
}

#[tokio::test]
async fn a_scope_not_allowed_is_refused_with_an_error_naming_it() {
    let setup = setup().await;
    let error = setup
        .service
        .maskinporten(&scopes(&["eformidling:dpo", "eformidling:dpi"]))
        .await
        .unwrap_err();
    assert!(error.contains("HTTP 400"), "{error}");
    assert!(
        error.contains("invalid_scope: Scope eformidling:dpi is not allowed"),
        "{error}"
    );
    assert!(setup.maskinporten.issued().is_empty());
    let refusals = setup.maskinporten.refusals();
    assert_eq!(refusals.len(), 1, "a refusal is not retried");
    assert_eq!(refusals[0].error, "invalid_scope");
}
