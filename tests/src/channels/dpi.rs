//! DPI for the end-to-end tests: the corner-2 meldingsformidler with the fixture's mailbox and
//! print providers, and integration points sending to it with the DPI Maskinporten scope.

use std::path::PathBuf;

use simulators::dpi::{self, Meldingsformidler, MeldingsformidlerConfig};
use simulators::fixture::Fixture;

use crate::network::{IntegrationPoint, KEYSTORE_PASSWORD, Network};

/// Kari Digital: an active digital mailbox.
pub const KARI_DIGITAL: &str = "01818012337";
/// Per Papir: reserved against digital post, so vedtak go on paper.
pub const PER_PAPIR: &str = "02818512441";

/// Starts the meldingsformidler: tokens checked by the network's Maskinporten, senders'
/// certificates by its CA, packages opened with the providers' keys the registry's Virksert
/// issued, receipts signed by a certificate of its own.
pub async fn start_meldingsformidler(network: &Network) -> Meldingsformidler {
    let fixture = Fixture::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../simulators/fixture.toml"),
    )
    .expect("the fixture");
    let receipts = network
        .pki
        .issue_meldingsformidler(KEYSTORE_PASSWORD)
        .expect("the meldingsformidler's certificate");
    let providers =
        dpi::providers_from_fixture(&fixture, &network.pki).expect("the providers' keys");
    Meldingsformidler::start(MeldingsformidlerConfig {
        port: 0,
        maskinporten: network.maskinporten.verifier(),
        ca: network.pki.ca().clone(),
        receipt_certificate: receipts.certificate,
        receipt_key: receipts.key,
        providers,
        print_provider: fixture.print_provider.clone(),
        max_package_size: dpi::DEFAULT_MAX_PACKAGE_SIZE,
        data_dir: None,
    })
    .await
    .expect("the DPI meldingsformidler")
}

/// The configuration of `orgnr`'s integration point with DPI enabled against `formidler`.
pub fn configure(network: &Network, formidler: &Meldingsformidler, orgnr: &str) -> PathBuf {
    let home = network.configure(orgnr, "");
    let environment = format!(
        r#"[endpoints.channels.dpi]
meldingsformidler = "{api}"

[plugins.dpi]
file = "{plugin}"
allowed-hosts = ["{base}"]
scopes = ["{scope}"]
limits = {{ memory-mib = 64, timeout-seconds = 120, concurrency = 4 }}
settings = {{ kanal = "no.difi.move.integrasjonspunkt-{orgnr}" }}
"#,
        api = formidler.api_url(),
        plugin = crate::artifacts::DPI,
        base = formidler.base_url(),
        scope = dpi::SCOPE,
    );
    super::enable(&home, "dpi", &environment, "", &[]);
    home
}

/// Starts `orgnr`'s integration point with DPI enabled.
pub async fn integration_point(
    network: &Network,
    formidler: &Meldingsformidler,
    orgnr: &str,
) -> IntegrationPoint {
    IntegrationPoint::start(&configure(network, formidler, orgnr)).await
}
