//! The host's configuration file: where it keeps data, where it listens, the plugin set of its
//! environment and the secrets that set may name.
//!
//! Secrets are references (an environment variable or a file), never values in the file, and are
//! resolved at load. Every error names the file and the key, and unknown keys are refused.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

use crate::plugins::{PluginSetSpec, PluginSpec};
use crate::secrets::{Secret, Secrets};

/// The configuration as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ConfigFile {
    data_dir: PathBuf,
    #[serde(default)]
    manage: Manage,
    #[serde(default)]
    plugins: BTreeMap<String, PluginSpec>,
    #[serde(default)]
    secrets: BTreeMap<String, SecretSpec>,
}

/// The management endpoint.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manage {
    /// Where `/manage` listens.
    pub listen: SocketAddr,
}

impl Default for Manage {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9093)),
        }
    }
}

/// Where a secret's value comes from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
enum SecretRef {
    /// An environment variable.
    Env(String),
    /// A file (its content, trailing line break removed).
    File(PathBuf),
}

/// A secret as written: a single value, a username and password, or a shared access key.
#[derive(Debug, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
enum SecretSpec {
    Value {
        value: SecretRef,
    },
    UsernamePassword {
        username: String,
        password: SecretRef,
    },
    SharedAccessKey {
        #[serde(rename = "key-name")]
        key_name: String,
        key: SecretRef,
    },
}

/// The resolved configuration.
#[derive(Debug)]
pub struct HostConfig {
    /// The file it was read from.
    pub path: PathBuf,
    /// Where data lives.
    pub data_dir: PathBuf,
    /// The management endpoint.
    pub manage: Manage,
    /// The plugin set.
    pub plugins: PluginSetSpec,
    /// The secrets.
    pub secrets: Secrets,
}

impl HostConfig {
    /// Reads and resolves the configuration file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file: ConfigFile = toml::from_str(&text)
            .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut secrets = Secrets::new();
        for (name, spec) in file.secrets {
            let key = |field: &str| format!("{}: secrets.{name}.{field}", path.display());
            let secret = match spec {
                SecretSpec::Value { value } => {
                    Secret::Value(resolve(&value, &base_dir).with_context(|| key("value"))?)
                }
                SecretSpec::UsernamePassword { username, password } => Secret::UsernamePassword {
                    username,
                    password: resolve(&password, &base_dir).with_context(|| key("password"))?,
                },
                SecretSpec::SharedAccessKey {
                    key_name,
                    key: value,
                } => Secret::SharedAccessKey {
                    key_name,
                    key: resolve(&value, &base_dir).with_context(|| key("key"))?,
                },
            };
            secrets.insert(name, secret);
        }
        for (plugin, spec) in &file.plugins {
            if let Some(name) = spec.secrets.iter().find(|name| secrets.get(name).is_none()) {
                anyhow::bail!(
                    "{}: plugins.{plugin}.secrets names {name:?}, which no [secrets.{name}] defines",
                    path.display()
                );
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            data_dir: base_dir.join(file.data_dir),
            manage: file.manage,
            plugins: PluginSetSpec {
                base_dir,
                plugins: file.plugins,
            },
            secrets,
        })
    }
}

fn resolve(reference: &SecretRef, base_dir: &Path) -> anyhow::Result<String> {
    match reference {
        SecretRef::Env(variable) => std::env::var(variable)
            .with_context(|| format!("environment variable {variable} is not set")),
        SecretRef::File(file) => {
            let path = base_dir.join(file);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            Ok(text.trim_end_matches(['\r', '\n']).to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("host.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn secrets_resolve_from_files_and_plugins_may_only_name_defined_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("password"), "s3cret\n").unwrap();
        let path = write(
            dir.path(),
            r#"
data-dir = "data"
[secrets.peer]
username = "agency"
password = { file = "password" }
[plugins.loopback]
file = "loopback.wasm"
secrets = ["peer"]
"#,
        );
        let config = HostConfig::load(&path).unwrap();
        assert_eq!(config.data_dir, dir.path().join("data"));
        assert_eq!(
            config.secrets.get("peer").unwrap().field(Some("password")),
            Some("s3cret")
        );

        let path = write(
            dir.path(),
            "data-dir = \"d\"\n[plugins.loopback]\nfile = \"x.wasm\"\nsecrets = [\"absent\"]\n",
        );
        let error = format!("{:#}", HostConfig::load(&path).unwrap_err());
        assert!(
            error.contains("plugins.loopback.secrets") && error.contains("absent"),
            "{error}"
        );
    }

    #[test]
    fn unknown_keys_and_missing_secret_sources_name_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "data-dir = \"d\"\n[plugins.loopback]\nfile = \"x.wasm\"\nallow-hosts = []\n",
        );
        let error = format!("{:#}", HostConfig::load(&path).unwrap_err());
        assert!(
            error.contains("host.toml") && error.contains("allow-hosts"),
            "{error}"
        );

        let path = write(
            dir.path(),
            "data-dir = \"d\"\n[secrets.peer]\nusername = \"u\"\npassword = { env = \"IP_TEST_SURELY_UNSET\" }\n",
        );
        let error = format!("{:#}", HostConfig::load(&path).unwrap_err());
        assert!(
            error.contains("secrets.peer.password") && error.contains("IP_TEST_SURELY_UNSET"),
            "{error}"
        );
    }
}
