//! The `integrasjonspunkt` command: runs the integration point, or checks its configuration.

use std::io::{IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use integrasjonspunkt::config::{Config, DEFAULT_PROFILE, LoadOptions};
use integrasjonspunkt::crypto::ExpiryStatus;
use integrasjonspunkt::logmask::MaskingWriter;
use integrasjonspunkt::logship::{LogShipConfig, LogShipper, LogTls, ShipLayer};
use integrasjonspunkt::plugins::{Allocator, Compiler};
use tracing::Level;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// mimalloc instead of the C library's allocator: a send allocates and frees many small
/// buffers on several threads (HTTP, JSON, the store, the plugin call), and the pipeline
/// benchmark measured about an eighth less CPU per message with it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Where the kernel backs every anonymous mapping with transparent huge pages when it can
/// (`always`), each 2 MiB region the allocator touches becomes resident whole: idle RSS rose
/// from about 35 to about 60 MiB. Small pages for this process (and the compile child it
/// starts) keep it within a few MiB of the C allocator's; the allocator asks the same of the
/// kernel when told not to use huge pages, but only from its environment, before `main`.
#[cfg(target_os = "linux")]
fn without_transparent_huge_pages() {
    let (on, unused): (libc::c_ulong, libc::c_ulong) = (1, 0);
    // SAFETY: PR_SET_THP_DISABLE takes one integer flag and touches no memory of ours.
    let refused = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, on, unused, unused, unused) } != 0;
    if refused {
        eprintln!(
            "integrasjonspunkt: transparent huge pages could not be turned off ({}); idle memory may be higher",
            std::io::Error::last_os_error()
        );
    }
}

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
    /// Prints the Argon2 hash of a password read from standard input, for `api.users`.
    HashPassword,
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Compiles the plugin component on standard input into the artifact `output`, for a
    /// running service. Not for operators: `run` starts it as a short-lived child process so
    /// that compiling, which leaves cranelift's code and heap resident in the compiling process,
    /// never runs in the long-lived service (see `plugins::cache`).
    #[command(hide = true)]
    CompilePlugin {
        /// Where to store the artifact (written aside, then renamed into place).
        #[arg(long)]
        output: PathBuf,
        /// The service engine's compatibility key; the command fails unless its own is the same.
        #[arg(long)]
        compatibility: String,
        /// The service engine's allocator: `on` for pooling, `off` for on demand.
        #[arg(long)]
        pooling: Allocator,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validates the configuration and prints it resolved, with the source of each value.
    Check,
}

fn main() -> ExitCode {
    #[cfg(target_os = "linux")]
    without_transparent_huge_pages();
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(command()),
        Err(error) => {
            eprintln!("integrasjonspunkt: the async runtime could not start: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn command() -> ExitCode {
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
        Command::HashPassword => hash_password(),
        Command::Config {
            command: ConfigCommand::Check,
        } => check(options).await,
        Command::CompilePlugin {
            output,
            compatibility,
            pooling,
        } => compile_plugin(&output, &compatibility, pooling),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("integrasjonspunkt: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn hash_password() -> anyhow::Result<()> {
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("reading the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(!password.is_empty(), "the password is empty");
    let hash = integrasjonspunkt::api::hash_password(password).map_err(anyhow::Error::msg)?;
    println!("{hash}");
    Ok(())
}

fn compile_plugin(output: &Path, compatibility: &str, allocator: Allocator) -> anyhow::Result<()> {
    let mut wasm = Vec::new();
    std::io::stdin()
        .read_to_end(&mut wasm)
        .context("reading the component from standard input")?;
    integrasjonspunkt::plugins::compile_to_artifact(&wasm, allocator, compatibility, output)
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
    let certificate = config.certificate.clone();
    // Compiling runs in a child process of this very binary, so that it leaves nothing resident
    // in the service; without a path to run, it runs here.
    let compiler = match std::env::current_exe() {
        Ok(binary) => Compiler::Subprocess(binary),
        Err(error) => {
            tracing::warn!(%error, "this binary's path is unknown; plugins are compiled in the service's process");
            Compiler::InProcess
        }
    };
    let service = integrasjonspunkt::service::start(config, options, compiler).await?;
    let reloader = service.reloader.clone();
    let shutdown = service.shutdown_token();

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

    tokio::spawn(async move {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(terminate) => terminate,
                Err(error) => return tracing::error!(%error, "cannot listen for SIGTERM"),
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("stopping: sends in flight get the grace period, the rest stays queued");
        shutdown.cancel();
    });
    service.stopped().await;
    Ok(())
}
