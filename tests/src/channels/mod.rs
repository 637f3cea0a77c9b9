//! Set-ups of the real channels for the end-to-end tests: their providers' simulators and
//! integration points that carry them, in the [`Network`](crate::network::Network)'s world
//! (registry, tokens, PKI).
//!
//! [`configure`] writes an integration point that runs one channel instead of the network's
//! loopback; [`enable`] adds a channel beside the loopback of a configuration written by
//! [`crate::network::Network::configure`]; the channels' own modules start their simulators.

pub mod dpf;
pub mod dpi;
pub mod dpo;

use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::Value;

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

/// Enables `channel` in the integration point configured in `home`: `environment` (its
/// `[endpoints.channels.…]` and `[plugins.…]` tables) goes into the environment file,
/// `operator` (its secrets) into the operator file, and `secret_files` (name, content) beside it.
pub fn enable(
    home: &Path,
    channel: &str,
    environment: &str,
    operator: &str,
    secret_files: &[(&str, &str)],
) {
    let environment_file = home.join("config/e2e.toml");
    let mut text = std::fs::read_to_string(&environment_file).expect("the environment file");
    text.push('\n');
    text.push_str(environment);
    std::fs::write(&environment_file, text).expect("the environment file");

    let operator_file = home.join("integrasjonspunkt.toml");
    let text = std::fs::read_to_string(&operator_file).expect("the operator file");
    let enabled = "enabled = [\"loopback\"";
    assert!(text.contains(enabled), "the operator file enables loopback");
    let mut text = text.replacen(enabled, &format!("{enabled}, \"{channel}\""), 1);
    text.push('\n');
    text.push_str(operator);
    std::fs::write(&operator_file, text).expect("the operator file");
    for (name, content) in secret_files {
        std::fs::write(home.join(name), content).expect("a secret file");
    }
}

/// Sets the recorded size of `filename` of `message_id`: a stand-in for a file of that size.
pub async fn pretend_size(home: &Path, message_id: &str, filename: &str, size: i64) {
    sqlx::any::install_default_drivers();
    let url = format!(
        "sqlite://{}",
        home.join("data/integrasjonspunkt.db").display()
    );
    let pool = sqlx::AnyPool::connect(&url).await.expect("the database");
    let updated =
        sqlx::query("UPDATE message_file SET size = $1 WHERE message_id = $2 AND filename = $3")
            .bind(size)
            .bind(message_id)
            .bind(filename)
            .execute(&pool)
            .await
            .expect("the update");
    assert_eq!(updated.rows_affected(), 1);
    pool.close().await;
}

/// Uploads `bytes` as file `name` (a PDF) of `message_id`; the status and the JSON answer.
pub async fn upload(
    ip: &IntegrationPoint,
    message_id: &str,
    name: &str,
    bytes: Vec<u8>,
) -> (u16, Value) {
    let answer = ip
        .request(Method::PUT, &format!("/api/messages/out/{message_id}"))
        .header("content-type", "application/pdf")
        .header(
            "content-disposition",
            format!("attachment; name=\"{name}\"; filename=\"{name}\""),
        )
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let body = answer.bytes().await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}
