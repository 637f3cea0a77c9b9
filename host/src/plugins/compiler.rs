//! Where a missing artifact is compiled: in this process, or in a short-lived child process of
//! the host's own binary (its hidden `compile-plugin` command).
//!
//! The child exists for the service's memory: see the [`super::cache`] module. Compiling in this
//! process stays the default because a host embedded as a library (the tests) has no such
//! binary to run: its `std::env::current_exe()` is a test harness.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;

use anyhow::Context as _;

use super::cache;
use super::engine::{Allocator, PluginEngine};

/// How a [`super::CompileCache`] compiles a plugin it has no artifact for.
#[derive(Clone, Debug)]
pub enum Compiler {
    /// On the calling thread.
    InProcess,
    /// In a child process running this executable's hidden `compile-plugin` command, which
    /// must be the host's own binary (`std::env::current_exe()` of the service): what it stores
    /// is loaded as trusted machine code.
    Subprocess(PathBuf),
}

/// Compiles `wasm` in a child process of `executable` for `engine`'s configuration, which
/// stores the artifact at `path`. What the child said on its standard error is in the error, or
/// returned when it succeeded (for the error should its artifact not load).
pub(super) fn in_child(
    executable: &Path,
    engine: &PluginEngine,
    wasm: &[u8],
    path: &Path,
) -> anyhow::Result<String> {
    let mut child = Command::new(executable)
        .arg("compile-plugin")
        .arg("--output")
        .arg(path)
        .arg("--compatibility")
        .arg(engine.compatibility_key())
        .arg("--pooling")
        .arg(engine.allocator().pooling_flag())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", executable.display()))?;
    let pid = child.id();
    let mut stdin = child.stdin.take().context("the child's standard input")?;
    // Fed from a thread of its own while the child's standard error is read here, so that a
    // child that talks before it has read everything cannot leave both sides waiting.
    let (fed, output) = thread::scope(|scope| {
        let feeding = scope.spawn(move || stdin.write_all(wasm));
        let output = child.wait_with_output();
        (feeding.join(), output)
    });
    let output = output.with_context(|| format!("waiting for {}", executable.display()))?;
    let said = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        // A child that died mid-write leaves its partial file; nothing else will remove it.
        let _ = std::fs::remove_file(cache::partial(path, pid));
        anyhow::bail!(
            "{} compile-plugin failed ({}): {}",
            executable.display(),
            output.status,
            said.trim()
        );
    }
    match fed {
        Ok(Ok(())) => Ok(said.into_owned()),
        Ok(Err(error)) => Err(error).context("writing the component to the child"),
        Err(_) => anyhow::bail!("the thread feeding the child panicked"),
    }
}

/// The compile child's work: compiles `wasm` with an engine using `allocator` and stores the
/// artifact at `output`, once its engine is known to be the service's (`compatibility`, the
/// service engine's [`PluginEngine::compatibility_key`]).
pub fn compile_to_artifact(
    wasm: &[u8],
    allocator: Allocator,
    compatibility: &str,
    output: &Path,
) -> anyhow::Result<()> {
    let engine = PluginEngine::build(allocator)?;
    let own = engine.compatibility_key();
    anyhow::ensure!(
        own == compatibility,
        "this binary's engine (compatibility {own}) is not the service's (compatibility \
         {compatibility}); was the binary replaced while the service runs?"
    );
    let compiled = engine
        .engine()
        .precompile_component(wasm)
        .map_err(anyhow::Error::from)
        .context("compiling the component")?;
    cache::store(output, &compiled)
}
