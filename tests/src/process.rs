//! The integration point as an operator runs it: the binary in a process of its own, for tests
//! that kill it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The `integrasjonspunkt` binary of this build, built first so it is never stale.
pub fn binary() -> PathBuf {
    built(false)
}

/// The release `integrasjonspunkt` binary, built first so it is never stale: what a benchmark
/// measures, whichever profile the benchmark itself was built in.
///
/// When `IP_BENCH_BINARY` is set, its path is returned instead and nothing is built: a
/// benchmark then measures that given build (say a debug binary, or a release binary kept apart
/// from the shared target directory while another build or measurement uses it).
pub fn release_binary() -> PathBuf {
    match std::env::var_os(BENCH_BINARY) {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "{BENCH_BINARY}={} is not a file",
                path.display()
            );
            path
        }
        None => built(true),
    }
}

/// The variable naming the binary a benchmark measures instead of the release build.
const BENCH_BINARY: &str = "IP_BENCH_BINARY";

/// Builds the binary (in release when `release`) and finds it in the target directory this
/// test or benchmark was built into.
fn built(release: bool) -> PathBuf {
    let mut build = Command::new(env!("CARGO"));
    build.args([
        "build",
        "--quiet",
        "-p",
        "integrasjonspunkt",
        "--bin",
        "integrasjonspunkt",
    ]);
    if release {
        build.arg("--release");
    }
    let built = build
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .status()
        .expect("running cargo build");
    assert!(
        built.success(),
        "the integrasjonspunkt binary did not build"
    );
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test> → target/<profile>/integrasjonspunkt
    let profile_dir = exe.parent().and_then(Path::parent);
    let profile_dir = if release {
        profile_dir
            .and_then(Path::parent)
            .map(|target| target.join("release"))
    } else {
        profile_dir.map(Path::to_path_buf)
    };
    profile_dir
        .map(|dir| dir.join("integrasjonspunkt"))
        .filter(|path| path.exists())
        .expect("the integrasjonspunkt binary in the target directory")
}

/// A `/proc/<pid>/status` field in KiB, e.g. `VmRSS:` or `VmHWM:` (the peak RSS); 0 when the
/// process or the field is gone.
pub fn proc_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Starts the binary on the configuration in `home` (as `Network::configure` writes it),
/// listening on `port`, its log appended to `home/ip.log`.
pub fn start(binary: &Path, home: &Path, port: u16) -> Child {
    command(binary, home, port)
        .spawn()
        .expect("starting the integration point")
}

/// The command [`start`] runs (warnings and errors logged), for a test that changes some of it
/// first, say the log filter.
pub fn command(binary: &Path, home: &Path, port: u16) -> Command {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.join("ip.log"))
        .expect("the log file");
    let mut command = Command::new(binary);
    command
        .env_remove("IP_PROFILE")
        .env_remove("IP_CONFIG")
        .env_remove("IP_CONFIG_DIR")
        .env("IP__API__LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .current_dir(home)
        .arg("--profile")
        .arg("e2e")
        .arg("--config-dir")
        .arg(home.join("config"))
        .arg("--config")
        .arg(home.join("integrasjonspunkt.toml"))
        .arg("run")
        .stdout(Stdio::null())
        .stderr(log);
    command
}
