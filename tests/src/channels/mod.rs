//! Set-ups of the real channels for the end-to-end tests: their providers' simulators and an
//! integration point with the channel enabled beside the network's loopback channel.
//!
//! Each channel's module starts its simulator; [`enable`] adds the channel to a configuration
//! written by [`crate::network::Network::configure`], so the network's own set-up stays as it is.

pub mod dpf;

use std::path::Path;

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
