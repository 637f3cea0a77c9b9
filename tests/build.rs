//! Builds the plugin components the tests load, and tells the tests where they are.
//!
//! Stable cargo cannot depend on a crate built for another target, so this script runs a
//! nested `cargo build --release --target wasm32-wasip2` of the plugins workspace (which also
//! holds the hostile plugins in `tests/hostile/`). The rules that keep it sound:
//!
//! - Its own target directory (`target/wasm`): an outer `cargo build --release` holds the lock
//!   on `target/release`, and a nested build waiting on the same lock deadlocks.
//! - The outer build's flags are removed from the nested command (host `RUSTFLAGS` must not
//!   reach a wasm build, nor clippy's workspace wrapper); `CARGO_MAKEFLAGS` stays, so both
//!   builds share one jobserver and two cores are not oversubscribed.
//! - `rerun-if-changed` lists every input, so an unchanged tree costs nothing.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

/// Each plugin as (environment variable the tests read, cdylib file name).
const PLUGINS: &[(&str, &str)] = &[
    ("PLUGIN_LOOPBACK", "loopback"),
    ("PLUGIN_DPO", "dpo"),
    ("PLUGIN_EXAMPLE", "example"),
    ("PLUGIN_DPV", "dpv"),
    ("PLUGIN_DPE", "dpe"),
    ("PLUGIN_DPF", "dpf"),
    ("PLUGIN_DPI", "dpi"),
    ("PLUGIN_HOSTILE_PANIC", "hostile_panic"),
    ("PLUGIN_HOSTILE_LOOP", "hostile_loop"),
    ("PLUGIN_HOSTILE_MEMORY", "hostile_memory"),
    ("PLUGIN_HOSTILE_EGRESS", "hostile_egress"),
    ("PLUGIN_HOSTILE_CREDENTIALS", "hostile_credentials"),
    ("PLUGIN_HOSTILE_SANDBOX", "hostile_sandbox"),
    ("PLUGIN_HOSTILE_FOREIGN", "hostile_foreign"),
    ("PLUGIN_HOSTILE_OUTDATED", "hostile_outdated"),
    ("PLUGIN_HOSTILE_NO_TRANSPORT", "hostile_no_transport"),
];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("tests/ lies inside the repository root")
        .to_path_buf();
    let plugins = root.join("plugins");
    let target_dir = root.join("target").join("wasm");

    for input in [
        root.join("wit"),
        plugins.join("Cargo.toml"),
        plugins.join("Cargo.lock"),
        plugins.join("sdk"),
        plugins.join("loopback"),
        plugins.join("dpo"),
        plugins.join("example"),
        plugins.join("dpv"),
        plugins.join("dpe"),
        plugins.join("dpf"),
        plugins.join("dpi"),
        manifest_dir.join("hostile"),
    ] {
        println!("cargo:rerun-if-changed={}", input.display());
    }

    ensure_target_installed();

    let cargo = env::var_os("CARGO").expect("cargo sets CARGO for build scripts");
    let output = Command::new(cargo)
        .args(["build", "--release", "--target", TARGET, "--manifest-path"])
        .arg(plugins.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .output()
        .expect("failed to run the nested cargo build of plugins/");
    if !output.status.success() {
        panic!(
            "building the plugins for {TARGET} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let out = target_dir.join(TARGET).join("release");
    for (variable, file) in PLUGINS {
        let wasm = out.join(format!("{file}.wasm"));
        assert!(
            wasm.is_file(),
            "the plugins build succeeded but did not write {}",
            wasm.display()
        );
        println!("cargo:rustc-env={variable}={}", wasm.display());
    }
}

/// Fails with the fix when the toolchain lacks the wasm32-wasip2 standard library, instead of
/// the nested build's "can't find crate for `core`".
fn ensure_target_installed() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .expect("failed to run rustc --print target-libdir");
    let libdir = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || !Path::new(libdir.trim()).is_dir() {
        panic!(
            "the Rust target {TARGET} is not installed for this toolchain; the plugins cannot be \
             built. Install it with `rustup target add {TARGET}` (rust-toolchain.toml lists it, \
             so a fresh rustup install adds it by itself)."
        );
    }
}
