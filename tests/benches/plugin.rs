//! `cargo xtask bench plugin`: what the plugin runtime costs.
//!
//! Prints compile time, precompiled load time, a fresh instance, a no-op call and a 1 KiB send
//! (medians), and streaming a 100 MiB blob through the egress path with the process's RSS before
//! and after. Everything runs in this one process against an HTTP sink on loopback.

use std::sync::Arc;
use std::time::{Duration, Instant};

use integrasjonspunkt::plugins::PluginEngine;
use integrasjonspunkt::secrets::{Secret, Secrets};
use integrasjonspunkt::tokens::NoTokenService;
use ip_tests::artifacts;
use ip_tests::harness::{Sink, TestHost, outgoing, spec};
use wasmtime::component::Component;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

fn row(what: &str, value: String) {
    println!("| {what:<58} | {value:>16} |");
}

fn micros(duration: Duration) -> String {
    format!("{:.1} µs", duration.as_secs_f64() * 1e6)
}

fn millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() {
    let wasm = std::fs::read(artifacts::LOOPBACK).expect("the loopback plugin is built");
    let engine = PluginEngine::new().expect("an engine");

    let compile: Vec<Duration> = (0..5)
        .map(|_| {
            let started = Instant::now();
            engine
                .engine()
                .precompile_component(&wasm)
                .expect("compiles");
            started.elapsed()
        })
        .collect();
    let compiled = engine
        .engine()
        .precompile_component(&wasm)
        .expect("compiles");
    let load: Vec<Duration> = (0..200)
        .map(|_| {
            let started = Instant::now();
            // SAFETY: the bytes were produced just above by this engine.
            unsafe { Component::deserialize(engine.engine(), &compiled) }.expect("loads");
            started.elapsed()
        })
        .collect();

    let mut secrets = Secrets::new();
    secrets.insert(
        "peer",
        Secret::UsernamePassword {
            username: "agency".into(),
            password: "bench".into(),
        },
    );
    let host = TestHost::new(secrets, Arc::new(NoTokenService));
    let sink = Sink::start().await;
    let mut loopback = spec(artifacts::LOOPBACK);
    loopback.allowed_hosts = vec![sink.url.clone()];
    loopback.secrets = vec!["peer".into()];
    loopback.limits.memory_mib = 16;
    loopback.settings = [
        ("endpoint", sink.url.clone()),
        ("identifier", "0192:910075918".into()),
        ("credentials", "peer".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    host.load(vec![("loopback", loopback)])
        .await
        .expect("the plugin loads");
    let plugin = host.plugins.plugin("loopback").expect("loaded");

    let mut instantiate = Vec::new();
    for _ in 0..2000 {
        let started = Instant::now();
        plugin.check_instantiation().await.expect("instantiates");
        instantiate.push(started.elapsed());
    }
    let mut noop = Vec::new();
    for _ in 0..2000 {
        let started = Instant::now();
        plugin.describe().await.expect("describes");
        noop.push(started.elapsed());
    }
    let small = outgoing(vec![("small.pdf", host.blob(1024))]);
    let mut send = Vec::new();
    for _ in 0..300 {
        let started = Instant::now();
        plugin.send(&small).await.expect("no trap").expect("sent");
        send.push(started.elapsed());
    }

    let large = outgoing(vec![("large.pdf", host.blob(100 << 20))]);
    let rss_before = rss_kib("VmRSS:");
    // Writing 5 to clear_refs resets the peak (VmHWM) to the current RSS, so the peak read after
    // the send is the peak of the send alone.
    let peak_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let started = Instant::now();
    plugin.send(&large).await.expect("no trap").expect("sent");
    let streamed = started.elapsed();
    let rss_after = rss_kib("VmRSS:");
    let rss_peak = rss_kib("VmHWM:");
    let last = sink
        .received()
        .pop()
        .expect("the sink received the large message");
    assert!(
        last.length > 100 << 20,
        "the whole body arrived: {} bytes",
        last.length
    );

    println!(
        "\nplugin runtime ({:?} allocator, release host)\n",
        engine.allocator()
    );
    println!("| {:<58} | {:>16} |", "measure", "value");
    println!("|{}|{}|", "-".repeat(60), "-".repeat(18));
    row(
        "compile loopback.wasm with cranelift (median of 5)",
        millis(median(compile)),
    );
    row(
        "load the precompiled artifact (median of 200)",
        micros(median(load)),
    );
    row(
        "fresh store + instantiate from InstancePre (median of 2000)",
        micros(median(instantiate)),
    );
    row(
        "fresh instance + no-op call `describe` (median of 2000)",
        micros(median(noop)),
    );
    row(
        "fresh instance + 1 KiB send over HTTP to loopback (median of 300)",
        micros(median(send)),
    );
    row(
        "stream a 100 MiB blob through egress (one send)",
        millis(streamed),
    );
    row(
        "  throughput",
        format!(
            "{:.0} MB/s",
            (last.length as f64 / 1e6) / streamed.as_secs_f64()
        ),
    );
    row(
        "  host RSS before",
        format!("{:.1} MiB", rss_before as f64 / 1024.0),
    );
    row(
        "  host RSS after",
        format!("{:.1} MiB", rss_after as f64 / 1024.0),
    );
    row(
        "  RSS growth",
        format!("{:.1} MiB", (rss_after as f64 - rss_before as f64) / 1024.0),
    );
    if peak_reset {
        row(
            "  host peak RSS during the send",
            format!("{:.1} MiB", rss_peak as f64 / 1024.0),
        );
        row(
            "  peak growth over RSS before",
            format!("{:.1} MiB", (rss_peak as f64 - rss_before as f64) / 1024.0),
        );
    }
}
