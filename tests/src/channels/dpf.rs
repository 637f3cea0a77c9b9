//! DPF for the end-to-end tests: the SvarUt/SvarInn simulator with the fixture's accounts, and
//! integration points sending with their SvarUt account and receiving with their SvarInn one.

use std::path::PathBuf;

use simulators::fixture::Fixture;
use simulators::pki::SVARUT_ORGNR;
use simulators::svarut::{self, SvarUt, SvarUtConfig};

use crate::network::{IntegrationPoint, Network};

/// Starts SvarUt with SvarUt's key from the network's PKI (the registry's DPF records carry its
/// certificate) and the fixture's accounts; SvarInn encrypts to each receiver's certificate.
pub async fn start_svarut(network: &Network) -> SvarUt {
    let (certificate, key) = network
        .pki
        .issued_identity(SVARUT_ORGNR)
        .expect("SvarUt's identity, issued by the registry");
    let fixture = Fixture::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../simulators/fixture.toml"),
    )
    .expect("the fixture");
    let accounts = svarut::accounts_from_fixture(&fixture, |orgnr| {
        network.registry.certificate(orgnr).cloned()
    });
    SvarUt::start(SvarUtConfig {
        port: 0,
        certificate,
        key,
        accounts,
        max_document_size: svarut::DEFAULT_MAX_DOCUMENT_SIZE,
        data_dir: None,
    })
    .await
    .expect("the SvarUt simulator")
}

/// The configuration of `orgnr`'s integration point with DPF enabled against `svarut`, using
/// the fixture's account of `orgnr` (username = organisation number) for SvarUt and SvarInn.
pub fn configure(network: &Network, svarut: &SvarUt, orgnr: &str) -> PathBuf {
    let home = network.configure(orgnr, "");
    let base = svarut.base_url();
    let environment = format!(
        r#"[endpoints.channels.dpf]
forsendelseservice = "{service}"
svarinn = "{svarinn}"

[plugins.dpf]
file = "{plugin}"
allowed-hosts = ["{base}"]
secrets = ["svarut", "svarinn"]
limits = {{ memory-mib = 64, timeout-seconds = 120, concurrency = 4 }}
"#,
        service = svarut.forsendelse_service_url(),
        svarinn = svarut.svarinn_url(),
        plugin = crate::artifacts::DPF,
    );
    let operator = format!(
        r#"[secrets.svarut]
username = "{orgnr}"
password = {{ file = "svarut-password" }}

[secrets.svarinn]
username = "{orgnr}"
password = {{ file = "svarut-password" }}
"#
    );
    let password = format!("svarut-{orgnr}");
    super::enable(
        &home,
        "dpf",
        &environment,
        &operator,
        &[("svarut-password", &password)],
    );
    home
}

/// Starts `orgnr`'s integration point with DPF enabled.
pub async fn integration_point(
    network: &Network,
    svarut: &SvarUt,
    orgnr: &str,
) -> IntegrationPoint {
    IntegrationPoint::start(&configure(network, svarut, orgnr)).await
}
