//! What an environment says about one plugin: the file, its pin, what it may reach, which
//! credentials it may name, its limits and its own settings.
//!
//! This is the unit an operator edits to swap a channel, so every field is checked when the set is
//! loaded and an unknown key is an error rather than silently ignored.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One plugin of a plugin set.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PluginSpec {
    /// The component file (`.wasm`), relative to the configuration file's directory.
    pub file: PathBuf,
    /// The file's sha256 in hex; when given, a file with another digest is refused.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Where the plugin may send requests: `scheme://host[:port]`, `*.` wildcards allowed in the
    /// host. An empty list allows nothing.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// The secrets the plugin may name (Basic, SAS, body placeholders).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// The Maskinporten scopes the plugin may ask tokens for.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Resource limits.
    #[serde(default)]
    pub limits: Limits,
    /// The plugin's own settings, read through the `config` import. Never secrets.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

/// Resource limits of one plugin.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Limits {
    /// Linear memory of one call's instance, MiB.
    pub memory_mib: u64,
    /// Wall-clock time of one call, host calls included, seconds.
    pub timeout_seconds: u64,
    /// Calls of this plugin running at once; further calls wait.
    pub concurrency: u32,
    /// Overall time of one HTTP request, seconds (a request's own `timeout-ms` may lower it).
    pub request_timeout_seconds: u64,
    /// The largest response body a plugin may stream into a blob, MiB.
    pub download_mib: u64,
}

/// The largest memory cap a plugin may be given; it sizes the pooling allocator's slots.
pub const MAX_MEMORY_MIB: u64 = 1024;

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mib: 64,
            timeout_seconds: 300,
            concurrency: 4,
            request_timeout_seconds: 120,
            download_mib: 2048,
        }
    }
}

impl Limits {
    /// The memory cap in bytes.
    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mib << 20).unwrap_or(usize::MAX)
    }

    /// The per-call timeout.
    pub fn call_timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds)
    }

    /// The per-request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds)
    }

    /// The download cap in bytes.
    pub fn download_bytes(&self) -> u64 {
        self.download_mib << 20
    }

    /// Checks the limits are usable; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.memory_mib == 0 || self.memory_mib > MAX_MEMORY_MIB {
            return Err(format!(
                "limits.memory-mib must be 1..={MAX_MEMORY_MIB}, not {}",
                self.memory_mib
            ));
        }
        if self.timeout_seconds == 0 {
            return Err("limits.timeout-seconds must be at least 1".into());
        }
        if self.concurrency == 0 {
            return Err("limits.concurrency must be at least 1".into());
        }
        if self.request_timeout_seconds == 0 {
            return Err("limits.request-timeout-seconds must be at least 1".into());
        }
        Ok(())
    }
}
