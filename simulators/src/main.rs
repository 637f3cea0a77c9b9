//! The simulators as one process, for running the local profile by hand or from `cargo xtask`.
//!
//! Each service listens on its own fixed loopback port so the local environment file can name
//! it; logs go to stdout so a developer sees every request a stand-in refused and why.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use simulators::loopback_peer::{DEFAULT_MAX_PACKAGE_SIZE, LoopbackPeer, LoopbackPeerConfig};
use simulators::pki::TestPki;
use tracing_subscriber::EnvFilter;

/// Offline stand-ins for the services the integration point talks to.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Port of the loopback peer on 127.0.0.1.
    #[arg(long, env = "SIMULATORS_LOOPBACK_PORT", default_value_t = 7101)]
    loopback_port: u16,

    /// HTTP Basic username the loopback peer requires.
    #[arg(long, env = "SIMULATORS_LOOPBACK_USERNAME", default_value = "loopback")]
    loopback_username: String,

    /// HTTP Basic password the loopback peer requires.
    #[arg(long, env = "SIMULATORS_LOOPBACK_PASSWORD", hide_env_values = true)]
    loopback_password: String,

    /// Largest package the loopback peer accepts, in bytes.
    #[arg(long, env = "SIMULATORS_LOOPBACK_MAX_PACKAGE_SIZE", default_value_t = DEFAULT_MAX_PACKAGE_SIZE)]
    loopback_max_package_size: u64,

    /// Directory for received data; a temporary one, removed at exit, when not given.
    #[arg(long, env = "SIMULATORS_DATA_DIR")]
    data_dir: Option<PathBuf>,

    /// Where the fresh test PKI is written: the CA, and per organisation `<orgnr>.p12`,
    /// `<orgnr>.pem` and `<orgnr>-key.pem`.
    #[arg(long, env = "SIMULATORS_PKI_DIR", default_value = "target/local/pki")]
    pki_dir: PathBuf,

    /// The password of the PKCS#12 keystores written to the PKI directory.
    #[arg(long, env = "SIMULATORS_KEYSTORE_PASSWORD", hide_env_values = true)]
    keystore_password: String,

    /// The organisations that get a business certificate, `orgnr=name`.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "910075918=Lokal testetat,910076787=Lokal mottakeretat"
    )]
    organisations: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stdout)
        .with_ansi(std::io::stdout().is_terminal())
        .init();
    let args = Args::parse();

    let pki = TestPki::new(&args.pki_dir).context("creating the test PKI")?;
    for organisation in &args.organisations {
        let (number, name) = organisation
            .split_once('=')
            .unwrap_or((organisation, organisation));
        let issued = pki
            .issue(number, name, -1, 365, &args.keystore_password)
            .with_context(|| format!("issuing a business certificate for {number}"))?;
        tracing::info!(keystore = %issued.keystore.display(), "business certificate issued");
    }

    let loopback = LoopbackPeer::start(LoopbackPeerConfig {
        port: args.loopback_port,
        username: args.loopback_username,
        password: args.loopback_password,
        max_package_size: args.loopback_max_package_size,
        data_dir: args.data_dir.map(|dir| dir.join("loopback-peer")),
    })
    .await
    .with_context(|| {
        format!(
            "cannot start the loopback peer on port {}",
            args.loopback_port
        )
    })?;
    tracing::info!(url = %loopback.base_url(), "loopback peer ready");

    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    tracing::info!("stopping");
    loopback.shutdown().await;
    Ok(())
}
