//! Set-ups of the real channels for the end-to-end tests: their providers' simulators and an
//! integration point with the channel enabled beside the network's loopback channel.
//!
//! Each channel's module starts its simulator; [`enable`] adds the channel to a configuration
//! written by [`crate::network::Network::configure`], so the network's own set-up stays as it is.

pub mod dpf;
pub mod dpi;

use std::path::Path;

use reqwest::Method;
use serde_json::Value;

use crate::network::IntegrationPoint;

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
