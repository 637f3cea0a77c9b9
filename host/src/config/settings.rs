//! The shape of the configuration: what an environment file and an operator file may say.
//!
//! One schema for all layers, so a key means the same wherever it is set; unknown keys are
//! refused everywhere. Defaults are the real integration point's where it has one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::plugins::PluginSpec;

/// The resolved configuration.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// Which environment the files describe.
    pub environment: Environment,
    /// The external services of the environment.
    pub endpoints: Endpoints,
    /// The channel plugins of the environment.
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginSpec>,
    /// The agency running the integration point.
    pub organisation: Organisation,
    /// The business certificate.
    pub keystore: Keystore,
    /// Maskinporten client settings.
    #[serde(default)]
    pub maskinporten: Maskinporten,
    /// Where data lives.
    #[serde(default)]
    pub data: Data,
    /// The database.
    #[serde(default)]
    pub database: Database,
    /// The Next Move API and `/manage`.
    #[serde(default)]
    pub api: Api,
    /// Which channels run, and their lifetimes.
    #[serde(default)]
    pub channels: Channels,
    /// How the outbox sends.
    #[serde(default)]
    pub outbox: Outbox,
    /// How the outbox retries.
    #[serde(default)]
    pub retry: Retry,
    /// How often providers are polled.
    #[serde(default)]
    pub polling: Polling,
    /// Webhook delivery.
    #[serde(default)]
    pub webhooks: Webhooks,
    /// How long things are kept.
    #[serde(default)]
    pub retention: Retention,
    /// The configuration service.
    #[serde(default)]
    pub config_service: Option<ConfigService>,
    /// The central log service.
    #[serde(default)]
    pub logging: Logging,
    /// Secrets plugins may name, by name.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretSpec>,
}

/// The environment the files describe.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Environment {
    /// `production`, `staging`, `local`, ...; must equal the profile.
    pub name: String,
    /// Where the plugin files are, relative to the file that sets it; the environment file's
    /// directory when not given.
    #[serde(default)]
    pub plugin_dir: Option<PathBuf>,
}

/// The external services of an environment.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Endpoints {
    /// The ServiceRegistry (adressetjeneste).
    pub service_registry: String,
    /// The Maskinporten token endpoint.
    pub maskinporten: String,
    /// The audience of Maskinporten assertions.
    pub maskinporten_audience: String,
    /// The Altinn token exchange.
    pub altinn_token_exchange: String,
    /// The configuration service (Konfigurasjonstjeneste), when the environment has one.
    #[serde(default)]
    pub configuration_service: Option<String>,
    /// The central log service, `host:port`.
    pub log_service: String,
    /// The registers the ServiceRegistry reaches (ELMA, Virksert, KRR, ...), for reference.
    #[serde(default)]
    pub registry_sources: BTreeMap<String, String>,
    /// Per channel, its provider endpoints by name; they are passed to the channel's plugin as
    /// settings `endpoint.<name>` and must be on its allow-list.
    #[serde(default)]
    pub channels: BTreeMap<String, BTreeMap<String, String>>,
}

/// The agency.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Organisation {
    /// The organisation number (9 digits, mod-11 checked).
    #[serde(deserialize_with = "text_or_number")]
    pub number: String,
    /// Its name, for logs.
    #[serde(default)]
    pub name: Option<String>,
}

fn text_or_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum TextOrNumber {
        Text(String),
        Number(u64),
    }
    Ok(match TextOrNumber::deserialize(deserializer)? {
        TextOrNumber::Text(text) => text,
        TextOrNumber::Number(number) => format!("{number:09}"),
    })
}

/// The business certificate (virksomhetssertifikat): a PKCS#12 file, or PEM key and certificate.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Keystore {
    /// A PKCS#12 file.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// The entry's alias in the PKCS#12 file.
    #[serde(default)]
    pub alias: Option<String>,
    /// The PKCS#12 password.
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// A PEM private key (instead of `path`).
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// A PEM certificate (and chain) for `key`.
    #[serde(default)]
    pub certificate: Option<PathBuf>,
}

/// Maskinporten client settings.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Maskinporten {
    /// The client id; `MOVE_IP_<organisation number>` by default, as the real one.
    #[serde(default)]
    pub client_id: Option<String>,
}

/// Where data lives.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Data {
    /// The data directory (blobs, compiled plugins, saved configuration), relative to the
    /// operator file.
    pub dir: PathBuf,
}

impl Default for Data {
    fn default() -> Self {
        Self { dir: "data".into() }
    }
}

/// The database.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Database {
    /// `sqlite://…` (embedded, the default) or `postgres://…` (several instances).
    pub url: String,
    /// The password, when the URL does not carry one.
    #[serde(default)]
    pub password: Option<SecretRef>,
}

impl Default for Database {
    fn default() -> Self {
        Self {
            url: "sqlite://data/integrasjonspunkt.db".into(),
            password: None,
        }
    }
}

/// The API and `/manage`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Api {
    /// Where it listens.
    pub listen: SocketAddr,
    /// TLS from a certificate and key (PEM).
    #[serde(default)]
    pub tls: Option<Tls>,
    /// Users of HTTP Basic, by name, with hashed passwords.
    #[serde(default)]
    pub users: BTreeMap<String, ApiUser>,
    /// The largest request body, MiB.
    pub max_request_mib: u64,
    /// The channels (service identifiers, `DPO` …) whose statuses also go on the queue of
    /// `GET /api/statuses/peek` (`statusQueueIncludes` of the real one); none by default.
    #[serde(default)]
    pub status_queue_includes: Vec<String>,
}

impl Default for Api {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9093)),
            tls: None,
            users: BTreeMap::new(),
            max_request_mib: 1024,
            status_queue_includes: Vec::new(),
        }
    }
}

/// TLS material.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Tls {
    /// The certificate chain, PEM.
    pub certificate: PathBuf,
    /// The private key, PEM.
    pub key: PathBuf,
}

/// An API user.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ApiUser {
    /// The password's hash (PHC string).
    pub password_hash: String,
}

/// Which channels run.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Channels {
    /// The enabled channels (`dpo`, `dpv`, `dpf`, `dpi`, `dpe`, or a plugin's own).
    #[serde(default)]
    pub enabled: Vec<String>,
    /// A message's lifetime per channel, hours (24 when not given).
    #[serde(default)]
    pub lifetime_hours: BTreeMap<String, u64>,
}

/// How many messages the outbox sends at once.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Outbox {
    /// Sends in flight at once, over all channels (the real one's
    /// `difi.move.queue.concurrency`, 10 there too). A send mostly waits on its provider, so
    /// an agency with many messages raises it; each channel's own `limits.concurrency` still
    /// bounds that channel's plugin calls.
    pub concurrency: usize,
}

impl Default for Outbox {
    fn default() -> Self {
        Self { concurrency: 10 }
    }
}

/// The outbox's retry policy.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Retry {
    /// Give up (and mark FEIL) after this many hours.
    pub max_hours: u64,
    /// The first back-off, seconds.
    pub initial_seconds: u64,
    /// The longest back-off, seconds.
    pub max_interval_seconds: u64,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            max_hours: 100,
            initial_seconds: 10,
            max_interval_seconds: 3600,
        }
    }
}

/// Polling intervals.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Polling {
    /// Statuses of sent messages, seconds.
    pub statuses_seconds: u64,
    /// Incoming messages, seconds.
    pub incoming_seconds: u64,
}

impl Default for Polling {
    fn default() -> Self {
        Self {
            statuses_seconds: 60,
            incoming_seconds: 20,
        }
    }
}

/// Webhook delivery.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Webhooks {
    /// Connect timeout, ms.
    pub connect_timeout_ms: u64,
    /// Read timeout, ms.
    pub read_timeout_ms: u64,
}

impl Default for Webhooks {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 10_000,
            read_timeout_ms: 10_000,
        }
    }
}

/// Retention.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Retention {
    /// Messages given up on (dead letters, kept for inspection), days. Sent messages and their
    /// files go at once; received ones when the archive system deletes them.
    pub messages_days: u64,
    /// Statuses and conversations, days.
    pub conversations_days: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            messages_days: 30,
            conversations_days: 365,
        }
    }
}

/// The configuration service client.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConfigService {
    /// Its URL; the environment's `endpoints.configuration-service` when not given.
    #[serde(default)]
    pub url: Option<String>,
    /// The application name in `GET {url}/{application}/{profile}`.
    #[serde(default = "default_application")]
    pub application: String,
    /// Attempts before giving up.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// What to do when it cannot be reached: fail the start, or use the last saved copy.
    #[serde(default)]
    pub when_unreachable: WhenUnreachable,
}

fn default_application() -> String {
    "integrasjonspunkt".into()
}

fn default_attempts() -> u32 {
    4
}

/// What to do when the configuration service cannot be reached.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum WhenUnreachable {
    /// Fail the start with a clear message.
    #[default]
    Fail,
    /// Use the last copy saved on disk.
    UseSavedCopy,
}

/// Shipping events to the central log service (`endpoints.log-service`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Logging {
    /// Ship events at all.
    pub central: bool,
    /// Over TLS, presenting the business certificate (production requires it).
    pub tls: bool,
    /// The CA file that verifies the log service, when not the system's roots.
    pub ca_file: Option<PathBuf>,
}

impl Default for Logging {
    fn default() -> Self {
        Self {
            central: true,
            tls: false,
            ca_file: None,
        }
    }
}

/// Where a secret's value comes from; never the value itself.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub enum SecretRef {
    /// An environment variable.
    Env(String),
    /// A file (its content, trailing line break removed).
    File(PathBuf),
}

/// A secret as written: a single value, a username and password, or a shared access key.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum SecretSpec {
    /// A single value.
    Value {
        /// Its reference.
        value: SecretRef,
    },
    /// A username and password.
    UsernamePassword {
        /// The user name (not secret).
        username: String,
        /// The password's reference.
        password: SecretRef,
    },
    /// A shared access key.
    SharedAccessKey {
        /// The key's name (not secret).
        #[serde(rename = "key-name")]
        key_name: String,
        /// The key's reference.
        key: SecretRef,
    },
}
