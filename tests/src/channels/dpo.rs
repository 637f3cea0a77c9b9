//! Integration points that carry DPO over the Altinn 2 broker service simulator.
//!
//! The shared network's integration points run the loopback channel in DPO's place; these run
//! the real `dpo` plugin against the broker simulator, each organisation with the Altinn 2
//! end-user system the fixture gives it, its password a secret the host fills into the SOAP
//! bodies.

use std::path::{Path, PathBuf};

use simulators::altinn_broker::{AltinnBroker, AltinnBrokerConfig};
use simulators::fixture::Fixture;

use crate::network::{API_PASSWORD, API_USER, IntegrationPoint, KEYSTORE_PASSWORD, Network};

/// The simulators and the broker service.
pub struct DpoNetwork {
    /// Maskinporten, the registry (and the loopback peer, unused here).
    pub network: Network,
    /// The Altinn 2 broker service.
    pub broker: AltinnBroker,
    fixture: Fixture,
}

impl DpoNetwork {
    /// Starts the simulators and a broker as Altinn runs it.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// As [`DpoNetwork::start`], with the broker's configuration adjusted by `broker`.
    pub async fn start_with(broker: impl FnOnce(&mut AltinnBrokerConfig)) -> Self {
        let network = Network::start().await;
        let fixture = Fixture::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../simulators/fixture.toml"),
        )
        .expect("the fixture");
        let mut config = AltinnBrokerConfig::new(fixture.clone());
        broker(&mut config);
        let broker = AltinnBroker::start(config)
            .await
            .expect("the broker simulator");
        Self {
            network,
            broker,
            fixture,
        }
    }

    /// The configuration directory of organisation `orgnr`'s integration point carrying DPO,
    /// with `plugin_settings` (inline-table entries, each starting with a comma) added to the
    /// plugin's settings.
    pub fn configure(&self, orgnr: &str, plugin_settings: &str) -> PathBuf {
        self.configure_with_timeout(orgnr, plugin_settings, 120)
    }

    /// As [`DpoNetwork::configure`], with each plugin call and each of its HTTP requests
    /// allowed `timeout_seconds`: a gigabyte takes longer to send or take than the tests'
    /// messages.
    pub fn configure_with_timeout(
        &self,
        orgnr: &str,
        plugin_settings: &str,
        timeout_seconds: u32,
    ) -> PathBuf {
        let network = &self.network;
        let home = network.dir.path().join(format!("dpo-{orgnr}"));
        let config_dir = home.join("config");
        std::fs::create_dir_all(&config_dir).expect("a configuration directory");
        let system = self
            .fixture
            .organisation(orgnr)
            .and_then(|o| o.altinn2.clone())
            .expect("an organisation with an Altinn 2 end-user system");
        let environment = format!(
            r#"[environment]
name = "e2e"

[endpoints]
service-registry = "{registry}"
maskinporten = "{token}"
maskinporten-audience = "http://127.0.0.1/maskinporten/"
altinn-token-exchange = "http://127.0.0.1:9/exchange"
log-service = "127.0.0.1:9"

[endpoints.channels.dpo]
broker-basic = "{basic}"
broker-streamed = "{streamed}"

[plugins.dpo]
file = "{plugin}"
allowed-hosts = ["{broker}"]
secrets = ["dpo"]
limits = {{ memory-mib = 64, timeout-seconds = {timeout_seconds}, request-timeout-seconds = {timeout_seconds}, concurrency = 8 }}
settings = {{ reportee = "{orgnr}"{plugin_settings} }}
"#,
            registry = network.registry.base_url(),
            token = network.maskinporten.token_url(),
            basic = self.broker.basic_url(),
            streamed = self.broker.streamed_url(),
            broker = self.broker.base_url(),
            plugin = crate::artifacts::DPO,
        );
        std::fs::write(config_dir.join("e2e.toml"), environment).expect("the environment file");
        std::fs::write(home.join("keystore-password"), KEYSTORE_PASSWORD).expect("a password");
        std::fs::write(home.join("dpo-password"), &system.system_password).expect("a password");
        let hash = integrasjonspunkt::api::hash_password(API_PASSWORD).expect("a password hash");
        let operator = format!(
            r#"[organisation]
number = "{orgnr}"

[keystore]
path = "{keystore}"
password = {{ file = "keystore-password" }}

[api]
listen = "127.0.0.1:0"

[api.users.{API_USER}]
password-hash = "{hash}"

[database]
url = "sqlite://data/integrasjonspunkt.db"

[channels]
enabled = ["dpo"]

[polling]
statuses-seconds = 1
incoming-seconds = 1

[retry]
initial-seconds = 1
max-interval-seconds = 2

[secrets.dpo]
username = "{user}"
password = {{ file = "dpo-password" }}
"#,
            keystore = network
                .dir
                .path()
                .join(format!("pki/{orgnr}.p12"))
                .display(),
            user = system.system_user_name,
        );
        std::fs::write(home.join("integrasjonspunkt.toml"), operator).expect("the operator file");
        home
    }

    /// Starts organisation `orgnr`'s integration point carrying DPO.
    pub async fn integration_point(&self, orgnr: &str, plugin_settings: &str) -> IntegrationPoint {
        IntegrationPoint::start(&self.configure(orgnr, plugin_settings)).await
    }
}
