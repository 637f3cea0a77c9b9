//! Integration points that carry DPO over the Altinn 2 broker service simulator.
//!
//! The shared network's integration points run the loopback channel in DPO's place; these run
//! the real `dpo` plugin against the broker simulator, each organisation with the Altinn 2
//! end-user system the fixture gives it, its password a secret the host fills into the SOAP
//! bodies.

use std::path::{Path, PathBuf};

use simulators::altinn_broker::{AltinnBroker, AltinnBrokerConfig};
use simulators::fixture::Fixture;

use super::Channel;
use crate::network::{IntegrationPoint, Network};

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
        let system = self
            .fixture
            .organisation(orgnr)
            .and_then(|o| o.altinn2.clone())
            .expect("an organisation with an Altinn 2 end-user system");
        let endpoints = format!(
            "broker-basic = \"{}\"\nbroker-streamed = \"{}\"",
            self.broker.basic_url(),
            self.broker.streamed_url()
        );
        let settings = format!(", reportee = \"{orgnr}\"{plugin_settings}");
        let secret = format!(
            "[secrets.dpo]\nusername = \"{}\"\npassword = {{ file = \"dpo-password\" }}\n",
            system.system_user_name
        );
        super::configure(
            &self.network,
            orgnr,
            &Channel {
                name: "dpo",
                plugin: crate::artifacts::DPO,
                provider: &self.broker.base_url(),
                endpoints: &endpoints,
                settings: &settings,
                secret: &secret,
                secret_files: &[("dpo-password", &system.system_password)],
                timeout_seconds,
            },
        )
    }

    /// Starts organisation `orgnr`'s integration point carrying DPO.
    pub async fn integration_point(&self, orgnr: &str, plugin_settings: &str) -> IntegrationPoint {
        IntegrationPoint::start(&self.configure(orgnr, plugin_settings)).await
    }
}
