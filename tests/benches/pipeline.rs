//! `cargo xtask bench pipeline`: what the whole send path costs next to the provider alone.
//!
//! One run, one in-process eFormidling network (Maskinporten, the ServiceRegistry and the
//! loopback peer standing in for the DPO provider), and the release `integrasjonspunkt` binary
//! in a process of its own on organisation 910075918's configuration:
//!
//! 1. Idle RSS: a freshly started binary with every channel loaded (loopback, DPO, DPV, DPF,
//!    DPI and DPE; their providers are never called, so none runs), after 2 s idle; then the
//!    same for the pipeline's sender, which loads the loopback only (the loopback stands in
//!    for DPO, so no other channel may claim DPO beside it, and it polls at an operator's
//!    default pace, so its first poll falls after the 2 s). Each one's peak RSS by then is the
//!    start-up's: a fresh data directory means every plugin is compiled once. The first binary
//!    is also started a second time, as after a restart, when the compiled plugins are kept.
//! 2. Pipeline rate: N messages (`PIPELINE_BENCH_MESSAGES`, default 2000), each an SBD,
//!    `arkivmelding.xml` and a 1 KiB document in one `POST /api/messages/out/multipart` (create
//!    and send in one request), 16 in flight; rate = N / (first request → the Nth message's
//!    arrival at the peer, by the peer's own `mottatt` time). The path is API → store and outbox
//!    → loopback plugin → peer. No receiving integration point runs, so nothing else polls the
//!    peer's inboxes, and the sender polls at an operator's default pace, not the test network's.
//! 3. Accept → SENDT p50/p99, from the sender's database after it stopped: per conversation,
//!    the SENDT status's time minus the OPPRETTET status's (registered when the API accepts).
//! 4. Raw ingest rate: the same peer, the same concurrency, envelopes and packages like the
//!    plugin's own (a stored zip of the same documents, by name and in its order, and its
//!    envelope's document list) posted straight to `POST /messages`, each with a fresh message
//!    id; the median of 3 runs, taken after the sender stopped so that nothing else loads the
//!    peer.
//!
//! The sender's and this process's CPU time over the pipeline run say where the time goes.
//!
//! The ratio pipeline / raw says how much of the provider's capacity an integration point can
//! use; the targets are a ratio ≥ 0.3 and idle RSS ≤ 60 MB.
//!
//! Both rates depend on the file system the run's temporary directory is on: the peer keeps
//! each package in a file of its own. On an ext4 volume that has freed many files (earlier
//! runs delete theirs), creating a file can cost the peer far more CPU than the rest of its
//! work (inode allocation passes over recently freed inodes), and the raw rate falls several
//! times over; both parts of the ratio pay it then. `TMPDIR` on a tmpfs takes the file system out,
//! for comparing two builds.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt as _;
use integrasjonspunkt::config::Config;
use integrasjonspunkt::store::{ConversationQuery, PageRequest, ReceiptStatus, Store};
use ip_tests::artifacts;
use ip_tests::network::{
    API_PASSWORD, API_USER, ARKIVMELDING, Network, PROCESS, TEST_POLLING, arkivmelding_sbd,
    arkivmelding_xml, load_options, wait_healthy, wait_until,
};
use ip_tests::process::{free_port, proc_kib, release_binary, start};
use serde_json::{Value, json};

const SENDER: &str = "910075918";
const RECEIVER: &str = "910076787";
/// Requests in flight, for the pipeline and the raw ingest alike.
const CONCURRENCY: usize = 16;
/// The document's size.
const DOCUMENT_BYTES: usize = 1024;
/// The document's name, and the main document of each message.
const DOCUMENT: &str = "a.pdf";
/// Raw ingest runs, of which the median is quoted.
const RAW_RUNS: usize = 3;

/// A `multipart/form-data` body of `(disposition, content type, data)` parts.
fn multipart(boundary: &str, parts: &[(String, &str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (disposition, content_type, data) in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

/// A stored zip of `entries`, as the loopback plugin packages documents.
fn stored_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in entries {
        writer.start_file(*name, options).expect("a zip entry");
        writer.write_all(data).expect("zip data");
    }
    writer.finish().expect("a zip").into_inner()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The CPU time process `pid` has used so far, user and system, in ms (`/proc` counts in
/// USER_HZ, which is 100 on Linux).
fn cpu_ms(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses: utime and stime are the
    // 12th and 13th of them.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|field| field.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) * 10
}

/// The nearest-rank percentile `p` (0–1) of sorted `samples`.
fn percentile<T: Copy>(sorted: &[T], p: f64) -> T {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn row(what: &str, value: String) {
    println!("| {what:<62} | {value:>22} |");
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// The latest `mottatt` time the peer recorded, in ms since the epoch: when the last message
/// it holds arrived.
async fn last_arrival(
    client: &reqwest::Client,
    network: &Network,
    credentials: &(String, String),
) -> i64 {
    let references: Vec<String> = network
        .peer
        .received()
        .into_iter()
        .map(|m| m.reference)
        .collect();
    let mut last = 0;
    for batch in references.chunks(100) {
        let query: Vec<(&str, &str)> = batch.iter().map(|r| ("reference", r.as_str())).collect();
        let answer = client
            .get(format!("{}/statuses", network.peer.base_url()))
            .basic_auth(&credentials.0, Some(&credentials.1))
            .query(&query)
            .send()
            .await
            .expect("the peer answers")
            .bytes()
            .await
            .expect("a status list");
        let statuses: Vec<Value> = serde_json::from_slice(&answer).expect("a status list");
        for status in statuses {
            if status["status"] == "mottatt" {
                last = last.max(status["at"].as_i64().expect("a time"));
            }
        }
    }
    last
}

/// The configuration of an integration point of `SENDER` with every channel plugin enabled;
/// their endpoints lead nowhere, as nothing is sent through them.
fn configure_every_channel(network: &Network) -> PathBuf {
    let home = network
        .dir
        .path()
        .join(format!("ip-{SENDER}-every-channel"));
    let nowhere = "http://127.0.0.1:9";
    let plugin = |name: &str, file: &str, access: &str, settings: &str| {
        format!(
            "[plugins.{name}]\nfile = \"{file}\"\nallowed-hosts = [\"{nowhere}\"]\n{access}\n\
             settings = {{ identifier = \"0192:{SENDER}\"{settings} }}\n\n"
        )
    };
    let channel_tables = [
        format!("[endpoints.channels.loopback]\nendpoint = \"{nowhere}\"\n\n"),
        format!(
            "[endpoints.channels.dpo]\nbroker-basic = \"{nowhere}/basic\"\n\
             broker-streamed = \"{nowhere}/streamed\"\n\n"
        ),
        format!("[endpoints.channels.dpv]\ncorrespondence = \"{nowhere}/correspondence\"\n\n"),
        format!(
            "[endpoints.channels.dpf]\nforsendelseservice = \"{nowhere}/forsendelse\"\n\
             svarinn = \"{nowhere}/svarinn\"\n\n"
        ),
        format!("[endpoints.channels.dpi]\nmeldingsformidler = \"{nowhere}/api\"\n\n"),
        format!("[endpoints.channels.dpe]\nservice-bus = \"{nowhere}\"\n\n"),
        plugin(
            "loopback",
            artifacts::LOOPBACK,
            "secrets = [\"peer\"]",
            ", credentials = \"peer\", service = \"LOOPBACK\"",
        ),
        plugin(
            "dpo",
            artifacts::DPO,
            "secrets = [\"dpo\"]",
            &format!(", reportee = \"{SENDER}\""),
        ),
        plugin("dpv", artifacts::DPV, "secrets = [\"dpv\"]", ""),
        plugin(
            "dpf",
            artifacts::DPF,
            "secrets = [\"svarut\", \"svarinn\"]",
            "",
        ),
        plugin(
            "dpi",
            artifacts::DPI,
            "scopes = [\"digitalpostinnbygger:send\"]",
            "",
        ),
        plugin("dpe", artifacts::DPE, "secrets = [\"dpe\"]", ""),
    ]
    .concat();
    let account = |name: &str| {
        format!("[secrets.{name}]\nusername = \"{SENDER}\"\npassword = {{ file = \"secret\" }}\n\n")
    };
    let operator_tables = [
        account("peer"),
        account("dpo"),
        account("dpv"),
        account("svarut"),
        account("svarinn"),
        "[secrets.dpe]\nkey-name = \"policy\"\nkey = { file = \"secret\" }\n".to_owned(),
    ]
    .concat();
    network.write_configuration(
        &home,
        SENDER,
        "sqlite://data/integrasjonspunkt.db",
        "\"loopback\", \"dpo\", \"dpv\", \"dpf\", \"dpi\", \"dpe\"",
        &channel_tables,
        &operator_tables,
    );
    std::fs::write(home.join("secret"), "not-used").expect("a secret file");
    home
}

/// Lets the sender at `home` poll as an operator's does by default (statuses every minute,
/// incoming messages every 20 s) instead of every second, as the test network's integration
/// points do so that tests see statuses at once: at sixty times its production pace the status
/// poller would be measured beside the send path, and would load the peer it polls.
fn poll_at_the_defaults(home: &Path) {
    let file = home.join("integrasjonspunkt.toml");
    let text = std::fs::read_to_string(&file).expect("the sender's operator file");
    assert!(
        text.contains(TEST_POLLING),
        "the test network's polling settings are where this bench removes them"
    );
    std::fs::write(&file, text.replacen(TEST_POLLING, "", 1)).expect("the sender's operator file");
}

/// A started binary after 2 s idle.
struct Idle {
    process: std::process::Child,
    url: String,
    /// RSS then, KiB.
    rss: u64,
    /// Peak RSS by then, KiB.
    peak: u64,
    /// From start to healthy.
    startup: Duration,
}

impl Idle {
    /// Starts the binary on `home`'s configuration and waits until it is healthy and 2 s idle.
    async fn start(binary: &Path, home: &Path, client: &reqwest::Client) -> Self {
        let port = free_port();
        let process = start(binary, home, port);
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        wait_healthy(client, &url, Duration::from_secs(120)).await;
        let startup = started.elapsed();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let pid = process.id();
        Self {
            rss: proc_kib(pid, "VmRSS:"),
            peak: proc_kib(pid, "VmHWM:"),
            process,
            url,
            startup,
        }
    }

    /// Stops it; its measures.
    fn stop(mut self) -> Self {
        self.process.kill().expect("stopping the binary");
        self.process.wait().expect("the binary is reaped");
        self
    }
}

/// Posts `messages` envelopes (naming `documents`) with `package` straight to the peer,
/// `CONCURRENCY` at a time; the messages per second.
async fn raw_ingest(
    client: &reqwest::Client,
    network: &Network,
    credentials: &(String, String),
    messages: usize,
    package: &[u8],
    documents: &[Value],
) -> f64 {
    let url = format!("{}/messages", network.peer.base_url());
    let boundary = "pipeline-bench-raw";
    let bodies: Vec<Vec<u8>> = (0..messages)
        .map(|_| {
            let sbd = arkivmelding_sbd(SENDER, RECEIVER, DOCUMENT);
            let header = &sbd["standardBusinessDocumentHeader"];
            let envelope = json!({
                "messageId": header["documentIdentification"]["instanceIdentifier"],
                "conversationId": header["businessScope"]["scope"][0]["instanceIdentifier"],
                "sender": format!("0192:{SENDER}"),
                "receiver": format!("0192:{RECEIVER}"),
                "process": PROCESS,
                "documentType": ARKIVMELDING,
                "sbd": sbd.to_string(),
                "expiresAt": null,
                "documents": documents,
            });
            multipart(
                boundary,
                &[
                    (
                        "form-data; name=\"envelope\"".into(),
                        "application/json",
                        envelope.to_string().as_bytes(),
                    ),
                    (
                        "form-data; name=\"package\"; filename=\"package.zip\"".into(),
                        "application/zip",
                        package,
                    ),
                ],
            )
        })
        .collect();
    let started = Instant::now();
    let answers: Vec<u16> = futures::stream::iter(bodies)
        .map(|body| {
            client
                .post(&url)
                .basic_auth(&credentials.0, Some(&credentials.1))
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body)
                .send()
        })
        .buffer_unordered(CONCURRENCY)
        .map(|answer| answer.expect("the peer answers").status().as_u16())
        .collect()
        .await;
    let elapsed = started.elapsed();
    assert!(
        answers.iter().all(|&status| status == 201),
        "the peer accepted every raw message"
    );
    messages as f64 / elapsed.as_secs_f64()
}

#[tokio::main]
async fn main() {
    let messages: usize = std::env::var("PIPELINE_BENCH_MESSAGES")
        .ok()
        .map(|n| n.parse().expect("PIPELINE_BENCH_MESSAGES is a number"))
        .unwrap_or(2000);
    let binary = release_binary();
    let network = Network::start().await;
    let home = network.configure(SENDER, "");
    poll_at_the_defaults(&home);
    let config = Config::load(&load_options(&home))
        .await
        .expect("the sender's configuration");
    let peer_secret = config.secrets.get("peer").expect("the peer's credentials");
    let credentials = (
        peer_secret
            .field(Some("username"))
            .expect("a username")
            .to_owned(),
        peer_secret
            .field(Some("password"))
            .expect("a password")
            .to_owned(),
    );
    let channels: Vec<String> = config.plugin_set().plugins.into_keys().collect();
    let database = format!(
        "sqlite://{}",
        config.data_dir().join("integrasjonspunkt.db").display()
    );
    let client = reqwest::Client::new();

    // 1. Idle RSS of a fresh binary with every channel loaded, then of the sender.
    let every_channel = configure_every_channel(&network);
    let every = Idle::start(&binary, &every_channel, &client).await.stop();
    let (every_idle, every_peak) = (every.rss, every.peak);
    let every_restart_idle = Idle::start(&binary, &every_channel, &client)
        .await
        .stop()
        .rss;
    let Idle {
        process: mut sender,
        url,
        rss: idle_rss,
        peak: startup_peak,
        startup,
    } = Idle::start(&binary, &home, &client).await;
    let pid = sender.id();

    // 2. The pipeline.
    let xml = arkivmelding_xml("Melding", &[DOCUMENT]);
    let document = vec![b'x'; DOCUMENT_BYTES];
    let boundary = "pipeline-bench-api";
    let bodies: Vec<Vec<u8>> = (0..messages)
        .map(|_| {
            let sbd = arkivmelding_sbd(SENDER, RECEIVER, DOCUMENT).to_string();
            multipart(
                boundary,
                &[
                    (
                        "form-data; name=\"sbd\"".into(),
                        "application/json",
                        sbd.as_bytes(),
                    ),
                    (
                        "form-data; name=\"Arkivmelding\"; filename=\"arkivmelding.xml\"".into(),
                        "application/xml",
                        xml.as_bytes(),
                    ),
                    (
                        format!("form-data; name=\"Dokument\"; filename=\"{DOCUMENT}\""),
                        "application/pdf",
                        &document,
                    ),
                ],
            )
        })
        .collect();
    let cpu_before = (cpu_ms(pid), cpu_ms(std::process::id()));
    let first_request = now_ms();
    let started = Instant::now();
    let accepts: Vec<Duration> = futures::stream::iter(bodies)
        .map(|body| {
            let request = client
                .post(format!("{url}/api/messages/out/multipart"))
                .basic_auth(API_USER, Some(API_PASSWORD))
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body);
            async move {
                let sent = Instant::now();
                let answer = request.send().await.expect("the sender answers");
                let status = answer.status();
                assert_eq!(status, 200, "{}", answer.text().await.unwrap_or_default());
                sent.elapsed()
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let all_accepted = started.elapsed();
    wait_until(
        "every message at the peer",
        Duration::from_secs(1800),
        async || network.peer.received_count() >= messages,
    )
    .await;
    let last = last_arrival(&client, &network, &credentials).await;
    let pipeline_seconds = (last - first_request) as f64 / 1e3;
    let pipeline_rate = messages as f64 / pipeline_seconds;
    let sender_cpu = cpu_ms(pid) - cpu_before.0;
    let bench_cpu = cpu_ms(std::process::id()) - cpu_before.1;
    let sender_rss = proc_kib(pid, "VmRSS:");
    let sender_peak = proc_kib(pid, "VmHWM:");
    sender.kill().expect("stopping the sender");
    sender.wait().expect("the sender is reaped");

    // 3. Accept → SENDT from the sender's database.
    let store = Store::open(&database).await.expect("the sender's database");
    let conversations = store
        .conversations(
            &ConversationQuery::default(),
            &PageRequest {
                page: 0,
                size: i64::try_from(messages).expect("a page size") + 1,
                sort_column: "id",
                descending: false,
            },
        )
        .await
        .expect("the conversations");
    store.close().await;
    let mut latencies: Vec<i64> = conversations
        .items
        .iter()
        .filter_map(|conversation| {
            let at: HashMap<ReceiptStatus, i64> = conversation
                .statuses
                .iter()
                .map(|s| (s.status, s.last_update))
                .collect();
            Some(at.get(&ReceiptStatus::Sendt)? - at.get(&ReceiptStatus::Opprettet)?)
        })
        .collect();
    assert_eq!(latencies.len(), messages, "every conversation was SENDT");
    latencies.sort_unstable();
    let mut accepts = accepts;
    accepts.sort_unstable();

    // 4. The peer alone, for the same payload.
    // The plugin's package, entry for entry and in its order, and its envelope's documents.
    let sent = network.peer.received()[0].clone();
    let package = stored_zip(
        &sent
            .entries
            .iter()
            .map(|name| match name.as_str() {
                "arkivmelding.xml" => (name.as_str(), xml.as_bytes()),
                DOCUMENT => (name.as_str(), document.as_slice()),
                other => panic!("the plugin sent an unexpected entry {other:?}"),
            })
            .collect::<Vec<_>>(),
    );
    let documents: Vec<Value> = sent
        .documents
        .iter()
        .map(|d| json!({"name": d.name, "title": d.title, "mimeType": d.mime_type, "primary": d.primary}))
        .collect();
    let mut raw: Vec<f64> = Vec::new();
    for _ in 0..RAW_RUNS {
        raw.push(
            raw_ingest(
                &client,
                &network,
                &credentials,
                messages,
                &package,
                &documents,
            )
            .await,
        );
    }
    raw.sort_by(f64::total_cmp);
    let raw_rate = raw[raw.len() / 2];
    let ratio = pipeline_rate / raw_rate;

    let idle_mb = every_idle as f64 * 1024.0 / 1e6;
    println!(
        "\nsend pipeline, release binary {} (sender's channels: {})\n",
        binary.display(),
        channels.join(", ")
    );
    println!("| {:<62} | {:>22} |", "measure", "value");
    println!("|{}|{}|", "-".repeat(64), "-".repeat(24));
    row("messages (N)", messages.to_string());
    row("requests in flight", CONCURRENCY.to_string());
    row(
        "payload: document + arkivmelding.xml",
        format!("{DOCUMENT_BYTES} B + {} B", xml.len()),
    );
    row(
        "package at the peer: pipeline / raw (stored zip)",
        format!("{} B / {} B", sent.package_size, package.len()),
    );
    row(
        "pipeline: API → outbox → plugin → peer",
        format!("{pipeline_rate:.0} msg/s"),
    );
    row(
        "  first request → Nth arrival at the peer",
        format!("{pipeline_seconds:.2} s"),
    );
    row(
        "  API accept rate (first request → last 200)",
        format!("{:.0} msg/s", messages as f64 / all_accepted.as_secs_f64()),
    );
    row(
        "  API round trip p50 / p99",
        format!(
            "{:.1} / {:.1} ms",
            percentile(&accepts, 0.5).as_secs_f64() * 1e3,
            percentile(&accepts, 0.99).as_secs_f64() * 1e3
        ),
    );
    row(
        "  CPU per message: sender / this process (client + peer)",
        format!(
            "{:.2} / {:.2} ms",
            sender_cpu as f64 / messages as f64,
            bench_cpu as f64 / messages as f64
        ),
    );
    row(
        "  CPU use over the run: sender / this process",
        format!(
            "{:.0} % / {:.0} %",
            sender_cpu as f64 / 10.0 / pipeline_seconds,
            bench_cpu as f64 / 10.0 / pipeline_seconds
        ),
    );
    row(
        &format!("raw peer ingest, same payload (median of {RAW_RUNS})"),
        format!("{raw_rate:.0} msg/s"),
    );
    row(
        "  runs",
        raw.iter()
            .map(|rate| format!("{rate:.0}"))
            .collect::<Vec<_>>()
            .join(" / "),
    );
    row(
        "ratio pipeline / raw (target ≥ 0.3)",
        format!(
            "{ratio:.2} {}",
            if ratio >= 0.3 { "met" } else { "NOT met" }
        ),
    );
    row(
        "accept → SENDT p50",
        format!("{} ms", percentile(&latencies, 0.5)),
    );
    row(
        "accept → SENDT p99",
        format!("{} ms", percentile(&latencies, 0.99)),
    );
    row("start → healthy", format!("{:.2} s", startup.as_secs_f64()));
    row(
        "idle RSS, all six channels loaded (target ≤ 60 MB)",
        format!(
            "{} = {idle_mb:.1} MB {}",
            mib(every_idle),
            if idle_mb <= 60.0 { "met" } else { "NOT met" }
        ),
    );
    row(
        "  peak RSS by then (start-up, compiling six plugins)",
        mib(every_peak),
    );
    row(
        "  idle RSS after a restart (plugins compiled already)",
        mib(every_restart_idle),
    );
    row("sender idle RSS, loopback only", mib(idle_rss));
    row(
        "  peak RSS by then (start-up, compiling the loopback)",
        mib(startup_peak),
    );
    row("sender RSS after the run", mib(sender_rss));
    row(
        "sender peak RSS over the whole run (VmHWM)",
        mib(sender_peak),
    );
}
