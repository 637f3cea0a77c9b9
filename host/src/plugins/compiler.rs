//! Where a missing artifact is compiled: in this process, or in a short-lived child process of
//! the host's own binary (its hidden `compile-plugin` command).
//!
//! The child exists for the service's memory: see the [`super::cache`] module. Compiling in this
//! process stays the default because a host embedded as a library (the tests) has no such
//! binary to run: its `std::env::current_exe()` is a test harness.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

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
/// stores the artifact at `path`. What the child said on its standard error is in the error.
pub(super) fn in_child(
    executable: &Path,
    engine: &PluginEngine,
    wasm: &[u8],
    path: &Path,
) -> anyhow::Result<()> {
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
    let mut stderr = child.stderr.take().context("the child's standard error")?;
    // Fed and heard on threads of their own while the child is watched here, so that a child
    // that talks before it has read everything cannot leave both sides waiting, and one that
    // hangs is killed at the deadline instead of holding a start or a reload for good.
    let (fed, said, status) = thread::scope(|scope| {
        let feeding = scope.spawn(move || stdin.write_all(wasm));
        let hearing = scope.spawn(move || {
            let mut said = Vec::new();
            let _ = stderr.read_to_end(&mut said);
            said
        });
        let status = watch(&mut child, CHILD_DEADLINE);
        (feeding.join(), hearing.join().unwrap_or_default(), status)
    });
    // A child that died or was killed mid-write leaves its partial file; nothing else would
    // remove it.
    let remove_partial = || {
        let _ = std::fs::remove_file(cache::partial(path, pid));
    };
    let status = status
        .inspect_err(|_| remove_partial())
        .with_context(|| format!("waiting for {}", executable.display()))?;
    let said = String::from_utf8_lossy(&said);
    if !status.success() {
        remove_partial();
        anyhow::bail!(
            "{} compile-plugin failed ({status}): {}",
            executable.display(),
            said.trim()
        );
    }
    match fed {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error).context("writing the component to the child"),
        Err(_) => anyhow::bail!("the thread feeding the child panicked"),
    }
}

/// How long a compile child may take: far longer than compiling any plugin takes (seconds,
/// even in a debug build), short enough that a hung child does not hold the service for good.
const CHILD_DEADLINE: Duration = Duration::from_secs(300);

/// Waits for `child` to exit, killing it once `deadline` has passed.
fn watch(child: &mut Child, deadline: Duration) -> std::io::Result<ExitStatus> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if started.elapsed() > deadline {
            child.kill()?;
            child.wait()?;
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("killed after {} s", deadline.as_secs()),
            ));
        }
        thread::sleep(Duration::from_millis(20));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_past_its_deadline_is_killed_and_one_in_time_is_waited_for() {
        let mut hung = Command::new("sleep").arg("30").spawn().expect("sleep runs");
        let started = Instant::now();
        let error = watch(&mut hung, Duration::from_millis(200)).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(
            hung.try_wait().expect("its status").is_some(),
            "the killed child is reaped"
        );

        let mut quick = Command::new("true").spawn().expect("true runs");
        let status = watch(&mut quick, Duration::from_secs(30)).expect("it exits");
        assert!(status.success());
    }
}
