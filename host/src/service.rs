//! The running integration point: configuration in, a served API and a running engine out.
//!
//! The binary and the end-to-end tests start the service the same way, so what the tests prove
//! is what an operator runs. Stopping is graceful: the API stops accepting, sends in flight get
//! the engine's grace period, and the rest stays in the outbox for the next start.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiSettings, ApiState, Users};
use crate::blobs::{BlobStore, DbBlobStore, FileBlobStore, ScratchBlobStore};
use crate::config::{Config, LoadOptions};
use crate::crypto::at_rest::EncryptedBlobStore;
use crate::engine::{Engine, EngineSettings, Handoff, Retention, SendWrites};
use crate::manage::{self, Reloader};
use crate::plugins::egress::Egress;
use crate::plugins::{Compiler, HostServices, PluginEngine, PluginHost};
use crate::registry::{RegistryConfig, ServiceRegistry, scopes_for_channels};
use crate::store::{Dialect, GroupCommit, Store};
use crate::tokens::{
    AltinnConfig, AltinnExchange, ClientKey, Maskinporten, MaskinportenConfig, TokenService,
    TokenSource,
};

/// A started service.
pub struct RunningService {
    address: SocketAddr,
    shutdown: CancellationToken,
    server: JoinHandle<()>,
    engine: JoinHandle<()>,
    /// The send path's writer; it ends once the API and the engine have let go of it, after
    /// writing what they handed it.
    writing: JoinHandle<()>,
    /// The plugin host, for `/manage` and SIGHUP reloads.
    pub reloader: Arc<Reloader>,
    /// The store, for inspection.
    pub store: Store,
    /// On SQLite, the lock that keeps a second instance off the database while this one runs.
    _sole_instance: Option<std::fs::File>,
}

impl RunningService {
    /// Where the API listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// A token that stops the service when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until the service has stopped (after its token is cancelled).
    pub async fn stopped(self) {
        let _ = self.server.await;
        let _ = self.engine.await;
        // Sends cut off at the end of the grace may have handed their completions over; they
        // are recorded before the store closes, or the messages would be sent again after the
        // restart. The writer ends once the API and the engine, both ended now, let go of it.
        if let Err(error) = self.writing.await {
            tracing::error!(%error, "the send path's writer failed");
        }
        self.store.close().await;
    }

    /// Stops the service gracefully and waits for it.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.stopped().await;
    }
}

/// The database URL with a relative SQLite path taken from the configuration file's directory.
fn database_url(config: &Config) -> String {
    let url = &config.settings.database.url;
    match url.strip_prefix("sqlite://") {
        Some(rest) if !rest.starts_with('/') && !rest.starts_with(":memory:") => {
            let (path, query) = rest
                .split_once('?')
                .map_or((rest, None), |(p, q)| (p, Some(q)));
            let absolute = config.path("database.url", std::path::Path::new(path));
            match query {
                Some(query) => format!("sqlite://{}?{query}", absolute.display()),
                None => format!("sqlite://{}", absolute.display()),
            }
        }
        _ => url.clone(),
    }
}

/// Starts everything `config` describes; `options` are kept for reloads. Plugins without a
/// cached artifact are compiled by `compiler`: the binary's own `run` compiles in a child
/// process of itself, a host embedded in a test in process.
pub async fn start(
    config: Config,
    options: LoadOptions,
    compiler: Compiler,
) -> anyhow::Result<RunningService> {
    let settings = &config.settings;
    let tls = settings
        .api
        .tls
        .as_ref()
        .map(|tls| {
            crate::tls::acceptor(
                &config.path("api.tls.certificate", &tls.certificate),
                &config.path("api.tls.key", &tls.key),
            )
        })
        .transpose()?;
    let client_id = settings
        .maskinporten
        .client_id
        .clone()
        .unwrap_or_else(|| format!("MOVE_IP_{}", settings.organisation.number));
    let maskinporten = Arc::new(Maskinporten::new(
        MaskinportenConfig::new(
            &settings.endpoints.maskinporten,
            &settings.endpoints.maskinporten_audience,
            client_id,
        ),
        ClientKey::Certificate(config.certificate.clone()),
    )?);
    let altinn = AltinnExchange::new(
        AltinnConfig::new(&settings.endpoints.altinn_token_exchange),
        maskinporten.clone(),
    )?;
    let mut caches = vec![
        ("maskinporten_token", maskinporten.cache_counters()),
        ("altinn_token", altinn.cache_counters()),
    ];
    let tokens: Arc<dyn TokenSource> = Arc::new(TokenService::new(maskinporten, Some(altinn)));
    let data_dir = config.data_dir();
    let database = database_url(&config);
    let sole_instance = lock_sqlite_database(&database)?;
    let store = Store::open(&database)
        .await
        .context("opening the database")?;
    // One instance keeps files on its disk; several share them in the database, in chunks.
    // Either way they are encrypted at rest to the organisation's own certificate.
    let files: Arc<dyn BlobStore> = match store.dialect() {
        Dialect::Sqlite => {
            Arc::new(FileBlobStore::open(data_dir.join("blobs")).context("opening the blob store")?)
        }
        Dialect::Postgres => Arc::new(DbBlobStore::new(&store, tokio::runtime::Handle::current())),
    };
    let blobs: Arc<dyn BlobStore> = Arc::new(ScratchBlobStore::new(Arc::new(
        EncryptedBlobStore::new(files, config.certificate.clone()),
    )));
    let services = Arc::new(HostServices {
        egress: Egress::new(Arc::new(config.secrets.clone()), tokens.clone())?,
        blobs: blobs.clone(),
        certificate: Some(config.certificate.clone()),
    });
    let plugins = Arc::new(
        PluginHost::new(PluginEngine::new()?, &data_dir.join("compiled"), services)?
            .with_compiler(compiler),
    );
    plugins.load(&config.plugin_set()).await?;

    let channel_services: Vec<String> = plugins
        .current()
        .plugins()
        .map(|plugin| plugin.description().service.clone())
        .collect();
    let mut registry_config = RegistryConfig::new(&settings.endpoints.service_registry);
    registry_config.scopes = scopes_for_channels(channel_services.iter().map(String::as_str));
    let registry = Arc::new(ServiceRegistry::new(registry_config, tokens)?);
    caches.extend(registry.cache_counters());

    let users = Users::new(
        settings
            .api
            .users
            .iter()
            .map(|(name, user)| (name.clone(), user.password_hash.clone()))
            .collect::<BTreeMap<_, _>>(),
    )
    .map_err(|reason| anyhow::anyhow!("api.users: {reason}"))?;
    if users.is_empty() {
        tracing::warn!(
            "api.users is empty: every API request will be refused; add a user with a password \
             hash (`integrasjonspunkt hash-password`)"
        );
    }
    let mut api_settings = ApiSettings::new(settings.organisation.number.clone());
    api_settings.lifetime_hours = settings.channels.lifetime_hours.clone();
    api_settings.status_queue_includes = settings.api.status_queue_includes.clone();
    api_settings.webhook_timeout = Duration::from_millis(settings.webhooks.connect_timeout_ms);
    api_settings.max_json_bytes = (settings.api.max_request_mib as usize) << 20;
    let handoff = Arc::new(Handoff::default());
    let (writes, writing) = GroupCommit::start(SendWrites {
        store: store.clone(),
        handoff: handoff.clone(),
    });
    let engine_settings = EngineSettings {
        concurrency: settings.outbox.concurrency,
        retry_initial: Duration::from_secs(settings.retry.initial_seconds),
        retry_max_interval: Duration::from_secs(settings.retry.max_interval_seconds),
        retry_give_up_after: Duration::from_secs(settings.retry.max_hours * 3600),
        status_interval: Duration::from_secs(settings.polling.statuses_seconds),
        incoming_interval: Duration::from_secs(settings.polling.incoming_seconds),
        webhook_timeout: Duration::from_millis(
            settings.webhooks.connect_timeout_ms + settings.webhooks.read_timeout_ms,
        ),
        retention: Retention {
            conversations: Duration::from_secs(settings.retention.conversations_days * 86_400),
            dead_letters: Duration::from_secs(settings.retention.messages_days * 86_400),
        },
        lifetime_hours: settings.channels.lifetime_hours.clone(),
        status_queue_includes: settings.api.status_queue_includes.clone(),
        ..EngineSettings::default()
    };
    let engine = Engine::new(
        store.clone(),
        blobs.clone(),
        plugins.clone(),
        engine_settings,
        handoff.clone(),
        writes.clone(),
    );
    let state = Arc::new(ApiState {
        store: store.clone(),
        blobs,
        registry,
        plugins: plugins.clone(),
        certificate: Some(config.certificate.clone()),
        handoff: handoff.clone(),
        users,
        settings: api_settings,
        http: reqwest::Client::new(),
        writes,
    });
    let reloader = Arc::new(Reloader { options, plugins });
    let monitor =
        manage::Monitor::new(store.clone(), reloader.plugins.clone(), &config).with_caches(caches);
    let manage = manage::router(reloader.clone()).merge(manage::monitoring(Arc::new(monitor)));
    let app = api::router(state, manage);
    let listen = settings.api.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let address = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let stopping = shutdown.clone();
    let server = tokio::spawn(async move {
        let stopped = async move { stopping.cancelled().await };
        let served = match tls {
            Some(acceptor) => match crate::tls::TlsListener::new(listener, acceptor) {
                Ok(listener) => {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(stopped)
                        .await
                }
                Err(error) => Err(error),
            },
            None => {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
            }
        };
        if let Err(error) = served {
            tracing::error!(%error, "the API stopped serving");
        }
    });
    let engine = tokio::spawn(engine.run(shutdown.clone()));
    tracing::info!(%address, "listening");
    Ok(RunningService {
        address,
        shutdown,
        server,
        engine,
        writing,
        reloader,
        store,
        _sole_instance: sole_instance,
    })
}

/// Locks the SQLite database at `url` (a file beside it, `….lock`) for as long as the returned
/// file is open; `None` for PostgreSQL and an in-memory database. An SQLite database has one
/// instance: its outbox worker keeps its claims in memory (the engine does so on SQLite only
/// because this lock is held), so a second one would send the same messages again. The lock
/// is named by the database's directory resolved, so two spellings of one path share it.
fn lock_sqlite_database(url: &str) -> anyhow::Result<Option<std::fs::File>> {
    let Some(path) = crate::store::sqlite_file(url) else {
        return Ok(None);
    };
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".lock");
    let lock = dir.join(name);
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .with_context(|| format!("opening {}", lock.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "the database {} is in use by another integration point (it holds {}); an SQLite \
             database has one instance, several instances share PostgreSQL",
            path.display(),
            lock.display()
        ),
        Err(std::fs::TryLockError::Error(error)) => {
            Err(error).with_context(|| format!("locking {}", lock.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sqlite_database_is_locked_once_however_its_url_spells_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = format!("sqlite://{}/data/ip.db", dir.path().display());
        let held = lock_sqlite_database(&first).unwrap();
        assert!(held.is_some(), "a file database is locked");
        let same = format!(
            "sqlite:{}/data/../data/ip.db?mode=rwc",
            dir.path().display()
        );
        let refused = lock_sqlite_database(&same).unwrap_err();
        assert!(
            format!("{refused:#}").contains("in use by another integration point"),
            "{refused:#}"
        );
        let other = format!("sqlite://{}/data/other.db", dir.path().display());
        assert!(
            lock_sqlite_database(&other).unwrap().is_some(),
            "another file"
        );
        drop(held);
        assert!(
            lock_sqlite_database(&same).unwrap().is_some(),
            "free once the first lets go"
        );
        assert!(lock_sqlite_database("sqlite::memory:").unwrap().is_none());
        assert!(
            lock_sqlite_database("postgres://localhost/ip")
                .unwrap()
                .is_none()
        );
    }
}
