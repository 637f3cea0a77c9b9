//! The service compiles a plugin it has no artifact for in a short-lived child process of its
//! own binary (the hidden `compile-plugin` command), so that cranelift's code and heap never
//! stay resident in the service: the artifact the child stores is what the cache loads, a
//! child whose engine is not the service's refuses, and a first start compiles in the child.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use integrasjonspunkt::plugins::{Allocator, CompileCache, PluginEngine, Provenance};
use ip_tests::artifacts;
use ip_tests::network::{Network, wait_healthy};
use ip_tests::process::{binary, command, free_port};
use sha2::{Digest, Sha256};

/// Runs `binary compile-plugin` on `wasm` as the service does.
fn compile_plugin(
    binary: &Path,
    wasm: &[u8],
    output: &Path,
    compatibility: &str,
    allocator: Allocator,
) -> Output {
    let mut child = Command::new(binary)
        .arg("compile-plugin")
        .arg("--output")
        .arg(output)
        .arg("--compatibility")
        .arg(compatibility)
        .arg("--pooling")
        .arg(allocator.pooling_flag())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting compile-plugin");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), wasm).expect("the component in");
    child.wait_with_output().expect("compile-plugin ends")
}

/// The names of the files in `dir`, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("the directory")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_child_stores_the_artifact_the_cache_then_loads() {
    let binary = binary();
    let dir = tempfile::tempdir().unwrap();
    let engine = PluginEngine::new().expect("an engine");
    let wasm = std::fs::read(artifacts::LOOPBACK).expect("the loopback plugin");
    let sha256 = hex::encode(Sha256::digest(&wasm));
    let cache = CompileCache::new(dir.path().join("compiled"));
    let artifact = cache.artifact(&engine, &sha256);

    let output = compile_plugin(
        &binary,
        &wasm,
        &artifact,
        &engine.compatibility_key(),
        engine.allocator(),
    );
    assert!(
        output.status.success(),
        "compile-plugin failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        files(cache.dir()),
        [artifact.file_name().unwrap().to_string_lossy()],
        "the artifact is in place, and no partial file is left"
    );
    let (_, provenance) = cache
        .component(&engine, &sha256, &wasm)
        .expect("the artifact loads");
    assert_eq!(provenance, Provenance::Cached);
}

#[test]
fn a_child_whose_engine_is_not_the_services_refuses() {
    let binary = binary();
    let dir = tempfile::tempdir().unwrap();
    let engine = PluginEngine::new().expect("an engine");
    let wasm = std::fs::read(artifacts::LOOPBACK).expect("the loopback plugin");

    let output = compile_plugin(
        &binary,
        &wasm,
        &dir.path().join("artifact.cwasm"),
        "0123456789abcdef",
        engine.allocator(),
    );
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "compile-plugin succeeded: {said}");
    assert!(
        said.contains("is not the service's (compatibility 0123456789abcdef)"),
        "{said}"
    );
    assert!(files(dir.path()).is_empty(), "nothing is stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_compiles_its_plugins_in_a_child_process() {
    let binary = binary();
    let network = Network::start().await;
    let home = network.configure("910075918", "");
    let port = free_port();
    let mut service = command(&binary, &home, port)
        .env("RUST_LOG", "warn,integrasjonspunkt::plugins::cache=info")
        .spawn()
        .expect("starting the integration point");
    let url = format!("http://127.0.0.1:{port}");
    wait_healthy(&reqwest::Client::new(), &url, Duration::from_secs(120)).await;
    service.kill().expect("SIGKILL");
    service.wait().expect("the service is reaped");

    let log = std::fs::read_to_string(home.join("ip.log")).expect("the log");
    assert!(
        log.contains("compiled a plugin in a child process"),
        "the child compiled the plugin: {log}"
    );
    assert!(
        !log.contains("compiling it in this one"),
        "the service did not fall back to compiling itself: {log}"
    );
    let compiled = files(&home.join("data").join("compiled"));
    assert!(
        compiled.len() == 1 && compiled[0].ends_with(".cwasm"),
        "one artifact and nothing else: {compiled:?}"
    );
}
