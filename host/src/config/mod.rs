//! Configuration: which environment the host runs in, and what the operator says about it.
//!
//! An environment file (`config/<profile>.toml`: endpoints and the plugin set of production,
//! staging or local) is the base; the configuration service's answer, the operator's
//! `integrasjonspunkt.toml` and `IP__SECTION__KEY` environment variables are layered over it, in
//! that order. The profile is chosen by `--profile` or `IP_PROFILE` only, production when neither
//! is given, as in the real integration point. Everything is validated before anything starts,
//! and every problem names the file (with its line) or variable, and the key.

mod layers;
mod service;
pub mod settings;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

pub use layers::{Layers, Problem, Source};
pub use settings::Settings;
pub use validate::organisation_number_is_valid;

use settings::{SecretRef, SecretSpec};

use crate::crypto::{BusinessCertificate, ExpiryStatus, KeystoreError};
use crate::plugins::{PluginSetSpec, PluginSpec};
use crate::secrets::{Secret, Secrets};

/// The profile when none is chosen.
pub const DEFAULT_PROFILE: &str = "production";

/// What to load.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// The profile: `production`, `staging`, `local`, ...
    pub profile: String,
    /// The directory of the environment files.
    pub config_dir: PathBuf,
    /// The operator's file; `integrasjonspunkt.toml` in the working directory when it exists.
    pub operator_file: Option<PathBuf>,
    /// The process's environment variables (only `IP__…` ones are read).
    pub variables: Vec<(String, String)>,
}

/// Every problem found, each located.
#[derive(Debug)]
pub struct ConfigError(pub Vec<Problem>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the configuration has {} problem(s):", self.0.len())?;
        for problem in &self.0 {
            writeln!(f, "  {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl From<Problem> for ConfigError {
    fn from(problem: Problem) -> Self {
        Self(vec![problem])
    }
}

/// The validated configuration and where each value came from.
#[derive(Debug)]
pub struct Config {
    /// The profile.
    pub profile: String,
    /// The settings.
    pub settings: Settings,
    /// The layers, for `config check`.
    pub layers: Layers,
    /// The environment file.
    pub environment_file: PathBuf,
    /// The resolved secrets.
    pub secrets: Secrets,
    /// The business certificate.
    pub certificate: BusinessCertificate,
}

impl Config {
    /// Loads, layers, validates and resolves the configuration.
    pub async fn load(options: &LoadOptions) -> Result<Self, ConfigError> {
        let environment_file = options.config_dir.join(format!("{}.toml", options.profile));
        if !environment_file.is_file() {
            return Err(Problem {
                location: environment_file.display().to_string(),
                key: "profile".into(),
                reason: format!(
                    "there is no environment file for profile {:?}",
                    options.profile
                ),
            }
            .into());
        }
        let operator_file = options.operator_file.clone().or_else(|| {
            let default = PathBuf::from("integrasjonspunkt.toml");
            default.is_file().then_some(default)
        });

        // The configuration service's own settings come from the files and variables.
        let home = operator_file
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let mut preview = Layers::with_home(home.clone());
        preview.add_file(&environment_file, false)?;
        if let Some(file) = &operator_file {
            preview.add_file(file, true)?;
        }
        preview.add_variables(options.variables.clone())?;

        let mut layers = Layers::with_home(home);
        layers.add_file(&environment_file, false)?;
        if let Some(sources) = configuration_service(&preview, &options.profile).await? {
            for (table, source) in sources {
                layers.add_tree(table, source);
            }
        }
        if let Some(file) = &operator_file {
            layers.add_file(file, true)?;
        }
        layers.add_variables(options.variables.clone())?;

        let operator_location = operator_file
            .as_deref()
            .unwrap_or(Path::new("integrasjonspunkt.toml"))
            .display()
            .to_string();
        let settings: Settings = deserialize(&layers, &operator_location)?;
        let mut problems =
            validate::problems(&settings, &options.profile, &layers, &operator_location);
        let secrets = resolve_secrets(&settings, &layers, &mut problems);
        let certificate = load_certificate(&settings, &layers, &operator_location, &mut problems);
        let certificate = match certificate {
            Some(certificate) if problems.is_empty() => certificate,
            _ => return Err(ConfigError(problems)),
        };
        Ok(Self {
            profile: options.profile.clone(),
            settings,
            layers,
            environment_file,
            secrets,
            certificate,
        })
    }

    /// The plugins of the enabled channels, each given its channel's endpoints as settings.
    /// Relative plugin files are found in `environment.plugin-dir`.
    pub fn plugin_set(&self) -> PluginSetSpec {
        let plugins = self
            .settings
            .plugins
            .iter()
            .filter(|(channel, _)| self.settings.channels.enabled.contains(channel))
            .map(|(channel, spec)| {
                let mut spec: PluginSpec = spec.clone();
                for (name, url) in self
                    .settings
                    .endpoints
                    .channels
                    .get(channel)
                    .into_iter()
                    .flatten()
                {
                    spec.settings.insert(name.clone(), url.clone());
                }
                (channel.clone(), spec)
            })
            .collect();
        let base_dir = match &self.settings.environment.plugin_dir {
            Some(dir) => self.path("environment.plugin-dir", dir),
            None => self
                .environment_file
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
        };
        PluginSetSpec { base_dir, plugins }
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.path("data.dir", &self.settings.data.dir)
    }

    /// A path setting resolved against the directory of the file that set `key` (the working
    /// directory for variables, the configuration service and defaults).
    pub fn path(&self, key: &str, value: &Path) -> PathBuf {
        self.layers.base_dir(key).join(value)
    }

    /// The resolved configuration as `key = value  # source` lines, secrets redacted.
    pub fn describe(&self) -> String {
        let resolved =
            toml::Value::try_from(&self.settings).unwrap_or(toml::Value::Table(Default::default()));
        let mut lines = Vec::new();
        render(&resolved, "", &self.layers, &mut lines);
        let mut out = format!(
            "# profile {} (environment file {})\n",
            self.profile,
            self.environment_file.display()
        );
        for line in lines {
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}

async fn configuration_service(
    preview: &Layers,
    profile: &str,
) -> Result<Option<service::Sources>, ConfigError> {
    let Some(section) = preview.tree().get("config-service") else {
        return Ok(None);
    };
    let config: settings::ConfigService =
        section
            .clone()
            .try_into()
            .map_err(|error: toml::de::Error| Problem {
                location: preview
                    .source_of("config-service")
                    .map(Source::location)
                    .unwrap_or_default(),
                key: "config-service".into(),
                reason: error.message().trim().to_owned(),
            })?;
    let url = match config.url.clone().or_else(|| {
        preview
            .tree()
            .get("endpoints")
            .and_then(|endpoints| endpoints.get("configuration-service"))
            .and_then(|url| url.as_str().map(str::to_owned))
    }) {
        Some(url) => url,
        None => {
            return Err(Problem {
                location: preview.source_of("config-service").map(Source::location).unwrap_or_default(),
                key: "config-service.url".into(),
                reason: "the configuration service is configured, but neither it nor endpoints.configuration-service gives a URL".into(),
            }
            .into());
        }
    };
    let data_dir = preview
        .tree()
        .get("data")
        .and_then(|data| data.get("dir"))
        .and_then(|dir| dir.as_str())
        .unwrap_or("data");
    let saved_copy = preview
        .base_dir("data.dir")
        .join(data_dir)
        .join("config-service")
        .join(format!("{}-{profile}.json", config.application));
    let request = service::Request {
        url: &url,
        application: &config.application,
        profile,
        attempts: config.attempts,
        when_unreachable: config.when_unreachable,
        saved_copy: &saved_copy,
    };
    service::fetch(&request).await.map(Some).map_err(|reason| {
        Problem {
            location: preview
                .source_of("config-service")
                .map(Source::location)
                .unwrap_or_default(),
            key: "config-service".into(),
            reason,
        }
        .into()
    })
}

fn deserialize(layers: &Layers, operator_location: &str) -> Result<Settings, ConfigError> {
    let tree = toml::Value::Table(layers.tree().clone());
    serde_path_to_error::deserialize(tree).map_err(|error| {
        let path = error.path().to_string();
        let message = error.inner().to_string();
        let (key, reason) = explain(&path, &message);
        let location = layers
            .source_of(&key)
            .map(Source::location)
            .unwrap_or_else(|| operator_location.to_owned());
        ConfigError(vec![Problem {
            location,
            key,
            reason,
        }])
    })
}

/// The key a serde error is about and a reason an operator can act on.
fn explain(path: &str, message: &str) -> (String, String) {
    let parent = if path == "." {
        String::new()
    } else {
        path.to_owned()
    };
    let join = |field: &str| {
        if parent.is_empty() {
            field.to_owned()
        } else {
            format!("{parent}.{field}")
        }
    };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, rest) = rest.split_once('`').unwrap_or((rest, ""));
        let known: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
        let nearest = known
            .iter()
            .map(|candidate| (strsim::levenshtein(field, candidate), *candidate))
            .min()
            .filter(|(distance, _)| *distance <= 3);
        let key = if parent.ends_with(field) {
            parent.clone()
        } else {
            join(field)
        };
        let reason = match nearest {
            Some((_, candidate)) => format!(
                "unknown key; did you mean {}?",
                join(candidate).replace(&format!("{field}."), "")
            ),
            None if known.is_empty() => "unknown key".to_owned(),
            None => format!("unknown key; known keys here: {}", known.join(", ")),
        };
        return (key, reason);
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        return (join(field), "a required value is missing".to_owned());
    }
    (parent, message.to_owned())
}

/// Opens the business certificate the keystore settings name and checks it is valid now; a
/// certificate that expires within 30 days starts with a warning.
fn load_certificate(
    settings: &Settings,
    layers: &Layers,
    operator_location: &str,
    problems: &mut Vec<Problem>,
) -> Option<BusinessCertificate> {
    let keystore = &settings.keystore;
    let mut problem = |key: &str, reason: String| {
        let location = layers
            .source_of(key)
            .map(Source::location)
            .unwrap_or_else(|| operator_location.to_owned());
        problems.push(Problem {
            location,
            key: key.to_owned(),
            reason,
        });
    };
    let loaded = match (&keystore.path, &keystore.key, &keystore.certificate) {
        (Some(path), None, None) => {
            let Some(password) = &keystore.password else {
                problem(
                    "keystore.password",
                    "a PKCS#12 keystore needs a password reference".into(),
                );
                return None;
            };
            let password = match resolve(password, &layers.base_dir("keystore.password.file")) {
                Ok(password) => password,
                Err(reason) => {
                    problem("keystore.password", reason);
                    return None;
                }
            };
            let path = layers.base_dir("keystore.path").join(path);
            BusinessCertificate::from_pkcs12(&path, &password, keystore.alias.as_deref())
        }
        (None, Some(key), Some(certificate)) => BusinessCertificate::from_pem(
            &layers.base_dir("keystore.key").join(key),
            &layers.base_dir("keystore.certificate").join(certificate),
        ),
        _ => {
            problem(
                "keystore",
                "name either path (a PKCS#12 keystore, with password) or key and certificate (PEM files)".into(),
            );
            return None;
        }
    };
    let certificate = match loaded {
        Ok(certificate) => certificate,
        Err(error) => {
            let key = match &error {
                KeystoreError::Invalid { reason, .. } if reason == "wrong password" => {
                    "keystore.password"
                }
                KeystoreError::Invalid { reason, .. } if reason.contains("alias") => {
                    "keystore.alias"
                }
                _ if keystore.path.is_some() => "keystore.path",
                _ => "keystore.key",
            };
            problem(key, error.to_string());
            return None;
        }
    };
    match certificate.check_expiry(std::time::SystemTime::now()) {
        ExpiryStatus::Valid => {}
        ExpiryStatus::ExpiresSoon(message) => tracing::warn!("{message}"),
        ExpiryStatus::Invalid(message) => {
            problem(
                if keystore.path.is_some() {
                    "keystore.path"
                } else {
                    "keystore.certificate"
                },
                message,
            );
            return None;
        }
    }
    Some(certificate)
}

/// Resolves the secrets the enabled channels' plugins name; others are left alone, so a secret
/// an operator has not provided only matters for a channel that is switched on.
fn resolve_secrets(settings: &Settings, layers: &Layers, problems: &mut Vec<Problem>) -> Secrets {
    let needed: std::collections::BTreeSet<&String> = settings
        .plugins
        .iter()
        .filter(|(channel, _)| settings.channels.enabled.contains(channel))
        .flat_map(|(_, plugin)| &plugin.secrets)
        .collect();
    let mut secrets = Secrets::new();
    for (name, spec) in settings
        .secrets
        .iter()
        .filter(|(name, _)| needed.contains(name))
    {
        let mut resolve = |field: &str, reference: &SecretRef| {
            let key = format!("secrets.{name}.{field}");
            let file_key = format!("{key}.file");
            match resolve(reference, &layers.base_dir(&file_key)) {
                Ok(value) => Some(value),
                Err(reason) => {
                    problems.push(Problem {
                        location: layers
                            .source_of(&key)
                            .map(Source::location)
                            .unwrap_or_default(),
                        key,
                        reason,
                    });
                    None
                }
            }
        };
        let secret = match spec {
            SecretSpec::Value { value } => resolve("value", value).map(Secret::Value),
            SecretSpec::UsernamePassword { username, password } => resolve("password", password)
                .map(|password| Secret::UsernamePassword {
                    username: username.clone(),
                    password,
                }),
            SecretSpec::SharedAccessKey { key_name, key } => {
                resolve("key", key).map(|key| Secret::SharedAccessKey {
                    key_name: key_name.clone(),
                    key,
                })
            }
        };
        if let Some(secret) = secret {
            secrets.insert(name.clone(), secret);
        }
    }
    secrets
}

/// The value a secret reference points at.
pub fn resolve(reference: &SecretRef, base_dir: &Path) -> Result<String, String> {
    match reference {
        SecretRef::Env(variable) => std::env::var(variable)
            .map_err(|_| format!("environment variable {variable} is not set")),
        SecretRef::File(file) => {
            let path = base_dir.join(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
            Ok(text.trim_end_matches(['\r', '\n']).to_owned())
        }
    }
}

fn render(value: &toml::Value, path: &str, layers: &Layers, lines: &mut Vec<String>) {
    match value {
        toml::Value::Table(table) if !table.is_empty() => {
            for (key, value) in table {
                let path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                render(value, &path, layers, lines);
            }
        }
        leaf => {
            let sensitive = ["password", "secret", "token"]
                .iter()
                .any(|word| path.contains(word))
                && !leaf.is_table()
                && !path.contains(".env")
                && !path.contains(".file");
            let shown = if sensitive {
                "\"<redacted>\"".to_owned()
            } else {
                leaf.to_string()
            };
            let source = layers
                .sources()
                .get(path)
                .map(ToString::to_string)
                .unwrap_or_else(|| "default".into());
            lines.push(format!("{path} = {shown}  # {source}"));
        }
    }
}
