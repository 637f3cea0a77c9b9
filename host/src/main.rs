//! The `integrasjonspunkt` command: runs the integration point, or checks its configuration.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use integrasjonspunkt::blobs::{BlobStore, FileBlobStore};
use integrasjonspunkt::config::{Config, DEFAULT_PROFILE, LoadOptions};
use integrasjonspunkt::crypto::ExpiryStatus;
use integrasjonspunkt::crypto::at_rest::EncryptedBlobStore;
use integrasjonspunkt::logmask::MaskingWriter;
use integrasjonspunkt::logship::{LogShipConfig, LogShipper, LogTls, ShipLayer};
use integrasjonspunkt::manage::{self, Reloader};
use integrasjonspunkt::plugins::egress::Egress;
use integrasjonspunkt::plugins::{HostServices, PluginEngine, PluginHost};
use integrasjonspunkt::tokens::{
    AltinnConfig, AltinnExchange, ClientKey, Maskinporten, MaskinportenConfig, TokenService,
    TokenSource,
};
use tracing::Level;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// Adds the central log layer once the configuration is known.
type ShipHandle = reload::Handle<Option<ShipLayer>, Registry>;

#[derive(Parser)]
#[command(version, about = "The eFormidling integration point")]
struct Cli {
    /// The environment: production (the default), staging, local, ...
    #[arg(long, global = true, env = "IP_PROFILE", default_value = DEFAULT_PROFILE)]
    profile: String,
    /// The operator's configuration file; `integrasjonspunkt.toml` when it exists.
    #[arg(long, global = true, env = "IP_CONFIG")]
    config: Option<PathBuf>,
    /// The directory of the environment files.
    #[arg(long, global = true, env = "IP_CONFIG_DIR", default_value = "config")]
    config_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the service until interrupted; SIGHUP reloads the plugin set.
    Run,
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validates the configuration and prints it resolved, with the source of each value.
    Check,
}

#[tokio::main]
async fn main() -> ExitCode {
    // The central log service's layer is added once the configuration says where it is.
    let (shipping, ship_handle) = reload::Layer::new(None::<ShipLayer>);
    tracing_subscriber::registry()
        .with(shipping)
        .with(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(MaskingWriter(std::io::stderr))
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .init();
    let cli = Cli::parse();
    let options = LoadOptions {
        profile: cli.profile,
        config_dir: cli.config_dir,
        operator_file: cli.config,
        variables: std::env::vars().collect(),
    };
    let result = match cli.command {
        Command::Run => run(options, ship_handle).await,
        Command::Config {
            command: ConfigCommand::Check,
        } => check(options).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("integrasjonspunkt: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn check(options: LoadOptions) -> anyhow::Result<()> {
    let config = Config::load(&options).await?;
    print!("{}", config.describe());
    Ok(())
}

async fn run(options: LoadOptions, ship_handle: ShipHandle) -> anyhow::Result<()> {
    let config = Config::load(&options).await?;
    let settings = &config.settings;
    if settings.logging.central {
        let mut ship = LogShipConfig::new(settings.endpoints.log_service.clone());
        if settings.logging.tls {
            ship.tls = Some(LogTls {
                client: Some(config.certificate.clone()),
                ca_file: settings
                    .logging
                    .ca_file
                    .as_ref()
                    .map(|file| config.path("logging.ca-file", file)),
            });
        }
        ship.fields
            .insert("appname".into(), "integrasjonspunkt".into());
        ship.fields
            .insert("orgnr".into(), settings.organisation.number.clone().into());
        let shipper = LogShipper::start(ship)?;
        ship_handle
            .reload(Some(shipper.layer(Level::INFO)))
            .context("adding the central log layer")?;
    }
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
    let tokens: Arc<dyn TokenSource> = Arc::new(TokenService::new(maskinporten, Some(altinn)));
    let data_dir = config.data_dir();
    // Stored files are encrypted at rest to the organisation's own certificate.
    let files: Arc<dyn BlobStore> =
        Arc::new(FileBlobStore::open(data_dir.join("blobs")).context("opening the blob store")?);
    let blobs: Arc<dyn BlobStore> =
        Arc::new(EncryptedBlobStore::new(files, config.certificate.clone()));
    let services = Arc::new(HostServices {
        egress: Egress::new(Arc::new(config.secrets.clone()), tokens)?,
        blobs,
        certificate: Some(config.certificate.clone()),
    });
    let plugins = Arc::new(PluginHost::new(
        PluginEngine::new()?,
        &data_dir.join("compiled"),
        services,
    )?);
    plugins.load(&config.plugin_set()).await?;
    let listen = config.settings.api.listen;
    let reloader = Arc::new(Reloader { options, plugins });

    let certificate = config.certificate.clone();
    tokio::spawn(async move {
        // The start already refused an invalid certificate; this catches one that expires while
        // the service runs, a month ahead and on the day.
        let mut daily = tokio::time::interval(std::time::Duration::from_secs(24 * 60 * 60));
        loop {
            daily.tick().await;
            match certificate.check_expiry(std::time::SystemTime::now()) {
                ExpiryStatus::Valid => {}
                ExpiryStatus::ExpiresSoon(message) => tracing::warn!("{message}"),
                ExpiryStatus::Invalid(message) => tracing::error!("{message}"),
            }
        }
    });

    let on_hangup = reloader.clone();
    tokio::spawn(async move {
        let mut hangups =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                Ok(hangups) => hangups,
                Err(error) => return tracing::error!(%error, "cannot listen for SIGHUP"),
            };
        while hangups.recv().await.is_some() {
            match on_hangup.reload().await {
                Ok(generation) => tracing::info!(generation, "SIGHUP: plugin set reloaded"),
                Err(error) => {
                    tracing::error!(error = %format!("{error:#}"), "SIGHUP: plugin set rejected; the active set keeps serving")
                }
            }
        }
    });

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    tracing::info!(address = %listen, "listening");
    axum::serve(listener, manage::router(reloader))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
