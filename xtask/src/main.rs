//! `cargo xtask`: the project's tasks that plain cargo cannot express.
//!
//! `cargo xtask test` is the project's test command (README, `.ci/run`).
//!
//! Plugins are built for another target than the host, so building the distributable set,
//! running the local system and benchmarking each need a few cargo invocations in order.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use sha2::{Digest, Sha256};

mod demo;
mod local;

#[derive(Parser)]
#[command(about = "Project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Builds every channel plugin in release into one folder and prints each file's sha256.
    Plugins {
        /// The folder; `target/plugins` by default.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Runs every test: the workspace's (which build the plugins for wasm32-wasip2 first) and
    /// the native unit tests of the plugin SDK and of the DPV and DPE channels.
    Test {
        /// Passed on to `cargo test --workspace`, for example a test name filter.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Starts the local system: the simulators and two integration points of two
    /// organisations on config/local.toml, and prints their URLs, credentials and a curl line.
    Local,
    /// Beside a running `local`, sends one message on every channel and prints its statuses.
    Demo,
    /// Runs a benchmark and prints its table.
    Bench {
        /// Which: `plugin`, `crypto`, `pipeline` or `large`.
        which: String,
    },
}

fn main() -> anyhow::Result<()> {
    let root = root();
    match Cli::parse().task {
        Task::Plugins { out } => {
            let out = out.unwrap_or_else(|| root.join("target/plugins"));
            for (file, digest) in build_plugins(&root, &out)? {
                println!("{digest}  {}", file.display());
            }
            Ok(())
        }
        Task::Test { args } => {
            check(
                cargo(&root)
                    .args(["test", "--workspace"])
                    .args(&args)
                    .status()?,
            )?;
            let sdk = root.join("plugins/Cargo.toml");
            check(
                cargo(&root)
                    .args([
                        "test",
                        "-p",
                        "eformidling-sdk",
                        "-p",
                        "example",
                        "-p",
                        "dpv",
                        "-p",
                        "dpe",
                        "-p",
                        "dpo",
                        "-p",
                        "dpf",
                        "-p",
                        "dpi",
                        "--manifest-path",
                    ])
                    .arg(&sdk)
                    .arg("--target-dir")
                    .arg(root.join("target"))
                    .status()?,
            )
        }
        Task::Local => local::run(&root),
        Task::Demo => demo::run(),
        Task::Bench { which } => match which.as_str() {
            "plugin" => check(
                cargo(&root)
                    .args(["bench", "-p", "ip-tests", "--bench", "plugin"])
                    .status()?,
            ),
            // The size is `CRYPTO_BENCH_BYTES` (default 2 GiB), read by the bench itself.
            "crypto" => check(
                cargo(&root)
                    .args(["bench", "-p", "integrasjonspunkt", "--bench", "crypto"])
                    .status()?,
            ),
            // The message count is `PIPELINE_BENCH_MESSAGES` (default 2000), read by the bench.
            "pipeline" => check(
                cargo(&root)
                    .args(["bench", "-p", "ip-tests", "--bench", "pipeline"])
                    .status()?,
            ),
            // The size is `LARGE_BENCH_BYTES` (default 1 GiB), read by the bench.
            "large" => check(
                cargo(&root)
                    .args(["bench", "-p", "ip-tests", "--bench", "large"])
                    .status()?,
            ),
            other => bail!("unknown benchmark {other:?}; known: plugin, crypto, pipeline, large"),
        },
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ lies in the root")
        .to_path_buf()
}

fn cargo(root: &Path) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(root);
    command
}

fn check(status: ExitStatus) -> anyhow::Result<()> {
    if status.success() {
        Ok(())
    } else {
        bail!("a step failed: {status}")
    }
}

/// Builds the channel plugins (the cdylib packages under `plugins/`, not the test-only ones kept
/// with the tests) and copies them to `out`; returns each file and its sha256.
fn build_plugins(root: &Path, out: &Path) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let manifest = root.join("plugins/Cargo.toml");
    let metadata = cargo(root)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()?;
    check(metadata.status)?;
    let metadata: serde_json::Value = serde_json::from_slice(&metadata.stdout)?;
    let plugins_dir = root.join("plugins");
    let mut packages = Vec::new();
    for package in metadata["packages"]
        .as_array()
        .context("cargo metadata lists packages")?
    {
        let manifest_path = PathBuf::from(package["manifest_path"].as_str().unwrap_or_default());
        let is_cdylib = package["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|target| {
                target["crate_types"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|kind| kind == "cdylib")
            });
        if is_cdylib && manifest_path.starts_with(&plugins_dir) {
            packages.push(package["name"].as_str().unwrap_or_default().to_owned());
        }
    }
    let target_dir = root.join("target/wasm");
    let mut build = cargo(root);
    build
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(&manifest);
    build.arg("--target-dir").arg(&target_dir);
    for package in &packages {
        build.args(["-p", package]);
    }
    check(build.status()?)?;
    std::fs::create_dir_all(out)?;
    let mut built = Vec::new();
    for package in packages {
        let file = format!("{}.wasm", package.replace('-', "_"));
        let source = target_dir.join("wasm32-wasip2/release").join(&file);
        let destination = out.join(&file);
        std::fs::copy(&source, &destination)
            .with_context(|| format!("copying {}", source.display()))?;
        let digest = hex::encode(Sha256::digest(std::fs::read(&destination)?));
        built.push((destination, digest));
    }
    Ok(built)
}
