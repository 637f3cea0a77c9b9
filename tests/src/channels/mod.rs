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

use crate::network::{IntegrationPoint, Network};

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
    /// How long one plugin call, and one of its HTTP requests, may take.
    pub timeout_seconds: u32,
}

/// Writes the configuration of organisation `orgnr`'s integration point running `channel`;
/// its home directory.
pub fn configure(network: &Network, orgnr: &str, channel: &Channel<'_>) -> PathBuf {
    let home = network
        .dir
        .path()
        .join(format!("ip-{orgnr}-{}", channel.name));
    let channel_tables = format!(
        r#"[endpoints.channels.{name}]
{endpoints}

[plugins.{name}]
file = "{plugin}"
allowed-hosts = ["{provider}"]
secrets = ["{name}"]
limits = {{ memory-mib = 64, timeout-seconds = {timeout}, request-timeout-seconds = {timeout}, concurrency = 4 }}
settings = {{ identifier = "0192:{orgnr}"{settings} }}
"#,
        name = channel.name,
        endpoints = channel.endpoints,
        plugin = channel.plugin,
        provider = channel.provider,
        timeout = channel.timeout_seconds,
        settings = channel.settings,
    );
    network.write_configuration(
        &home,
        orgnr,
        "sqlite://data/integrasjonspunkt.db",
        &format!("\"{}\"", channel.name),
        &channel_tables,
        channel.secret,
    );
    for (file, content) in channel.secret_files {
        std::fs::write(home.join(file), content).expect("a secret file");
    }
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
