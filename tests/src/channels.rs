//! Integration points that run one real channel plugin against its provider's simulator, in
//! the [`Network`](crate::network::Network)'s world (registry, tokens, PKI).
//!
//! The network's own integration points run the loopback channel; a channel test needs its
//! plugin, its endpoints and its secret instead, so this writes that environment and operator
//! file beside them and leaves the rest as the network has it.

use std::path::PathBuf;

use crate::network::{API_PASSWORD, API_USER, IntegrationPoint, KEYSTORE_PASSWORD, Network};

/// One channel as an environment names it.
pub struct Channel<'a> {
    /// The channel's name (`dpv`, `dpe`), also the key of its plugin and endpoints.
    pub name: &'a str,
    /// The plugin file.
    pub plugin: &'a str,
    /// The provider's base URL, allowed to the plugin.
    pub provider: &'a str,
    /// `[endpoints.channels.NAME]` entries, each `key = "value"` on its own line.
    pub endpoints: &'a str,
    /// Further plugin settings, inline-table entries each starting with a comma.
    pub settings: &'a str,
    /// The `[secrets.NAME]` table the plugin names, in TOML (secret values by file).
    pub secret: &'a str,
    /// The files the secret's values are read from: (file name, content).
    pub secret_files: &'a [(&'a str, &'a str)],
}

/// Writes the configuration of organisation `orgnr`'s integration point running `channel`;
/// its home directory.
pub fn configure(network: &Network, orgnr: &str, channel: &Channel<'_>) -> PathBuf {
    let home = network
        .dir
        .path()
        .join(format!("ip-{orgnr}-{}", channel.name));
    let config_dir = home.join("config");
    std::fs::create_dir_all(&config_dir).expect("a configuration directory");
    let environment = format!(
        r#"[environment]
name = "e2e"

[endpoints]
service-registry = "{registry}"
maskinporten = "{token}"
maskinporten-audience = "http://127.0.0.1/maskinporten/"
altinn-token-exchange = "http://127.0.0.1:9/exchange"
log-service = "127.0.0.1:9"

[endpoints.channels.{name}]
{endpoints}

[plugins.{name}]
file = "{plugin}"
allowed-hosts = ["{provider}"]
secrets = ["{name}"]
limits = {{ memory-mib = 64, timeout-seconds = 120, concurrency = 4 }}
settings = {{ identifier = "0192:{orgnr}"{settings} }}
"#,
        registry = network.registry.base_url(),
        token = network.maskinporten.token_url(),
        name = channel.name,
        endpoints = channel.endpoints,
        plugin = channel.plugin,
        provider = channel.provider,
        settings = channel.settings,
    );
    std::fs::write(config_dir.join("e2e.toml"), environment).expect("the environment file");
    std::fs::write(home.join("keystore-password"), KEYSTORE_PASSWORD).expect("a password");
    for (file, content) in channel.secret_files {
        std::fs::write(home.join(file), content).expect("a secret file");
    }
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
enabled = ["{name}"]

[polling]
statuses-seconds = 1
incoming-seconds = 1

[retry]
initial-seconds = 1
max-interval-seconds = 2

{secret}
"#,
        keystore = network
            .dir
            .path()
            .join("pki")
            .join(format!("{orgnr}.p12"))
            .display(),
        name = channel.name,
        secret = channel.secret,
    );
    std::fs::write(home.join("integrasjonspunkt.toml"), operator).expect("the operator file");
    home
}

/// Starts organisation `orgnr`'s integration point running `channel`.
pub async fn integration_point(
    network: &Network,
    orgnr: &str,
    channel: &Channel<'_>,
) -> IntegrationPoint {
    IntegrationPoint::start(&configure(network, orgnr, channel)).await
}
