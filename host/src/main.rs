//! The `integrasjonspunkt` command: runs the integration point.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use integrasjonspunkt::blobs::FileBlobStore;
use integrasjonspunkt::config::HostConfig;
use integrasjonspunkt::manage::{self, Reloader};
use integrasjonspunkt::plugins::egress::Egress;
use integrasjonspunkt::plugins::{HostServices, PluginEngine, PluginHost};
use integrasjonspunkt::tokens::NoTokenService;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(version, about = "The eFormidling integration point")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the service until interrupted; SIGHUP reloads the plugin set.
    Run {
        /// The configuration file.
        #[arg(long, env = "IP_CONFIG")]
        config: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    match Cli::parse().command {
        Command::Run { config } => run(config).await,
    }
}

async fn run(config_path: PathBuf) -> anyhow::Result<()> {
    let config = HostConfig::load(&config_path)?;
    let blobs = Arc::new(
        FileBlobStore::open(config.data_dir.join("blobs")).context("opening the blob store")?,
    );
    let services = Arc::new(HostServices {
        egress: Egress::new(Arc::new(config.secrets.clone()), Arc::new(NoTokenService))?,
        blobs,
    });
    let plugins = Arc::new(PluginHost::new(
        PluginEngine::new()?,
        &config.data_dir.join("compiled"),
        services,
    )?);
    plugins.load(&config.plugins).await?;
    let reloader = Arc::new(Reloader {
        config_path,
        plugins,
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

    let listener = tokio::net::TcpListener::bind(config.manage.listen)
        .await
        .with_context(|| format!("binding {}", config.manage.listen))?;
    tracing::info!(address = %config.manage.listen, "management endpoint listening");
    axum::serve(listener, manage::router(reloader))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
