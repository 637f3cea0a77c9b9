//! `cargo xtask bench large`: one DPO message of a gigabyte, sent and received, and what it
//! costs the two integration points in memory and time.
//!
//! The simulators (Maskinporten, the ServiceRegistry and the Altinn 2 broker service) run in
//! this process; the release `integrasjonspunkt` binary runs twice in processes of its own,
//! 910075918 sending and 910076787 receiving, each on the real `dpo` plugin. So the peak RSS
//! (VmHWM) read from `/proc` for each host is the host's alone: the broker's buffers are this
//! process's.
//!
//! The archive client does what one does with a large document: creates the message, `PUT`s
//! the document as a stream (made as it is sent, so this process never holds it either),
//! sends; the receiver's client peeks, pops (read as a stream, the document inside the
//! container hashed on the way) and deletes. The document's sha256 must come out as it went
//! in.
//!
//! Rates, in MB/s of the document's size: send (upload start → SENDT), end to end (upload
//! start → the pop read to its last byte), and the pop's own (its request → its last byte).
//! The size is `LARGE_BENCH_BYTES` (default 1 GiB); the issue's target is a peak RSS of at most
//! 200 MB for each host.

use std::io::{BufReader, Read, Write};
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf as _, Bytes};
use futures::StreamExt as _;
use ip_tests::channels::dpo::DpoNetwork;
use ip_tests::network::{API_PASSWORD, API_USER, arkivmelding_sbd, arkivmelding_xml, message_id};
use ip_tests::process::{free_port, proc_kib, release_binary, start};
use ip_tests::zip_stream;
use reqwest::{Client, Method, RequestBuilder};
use serde_json::Value;
use sha2::{Digest, Sha256};

const SENDER: &str = "910075918";
const RECEIVER: &str = "910076787";
const DOCUMENT: &str = "vedtak.pdf";
/// The chunks the document is made and sent in.
const CHUNK: usize = 1 << 20;
/// What the package adds to the document (container, signature, encryption, zip, MTOM), with
/// room to spare: the plugin's and the broker's size limits are the document's size plus this.
const OVERHEAD: u64 = 64 << 20;
/// The issue's target for each host's peak RSS, in MB.
const TARGET_MB: f64 = 200.0;

/// One integration point in its own process.
struct Host {
    process: std::process::Child,
    url: String,
    client: Client,
}

impl Host {
    async fn start(binary: &std::path::Path, home: &std::path::Path) -> Self {
        let port = free_port();
        let host = Self {
            process: start(binary, home, port),
            url: format!("http://127.0.0.1:{port}"),
            client: Client::new(),
        };
        wait(
            "the host to be healthy",
            Duration::from_secs(120),
            async || {
                host.client
                    .get(format!("{}/manage/health", host.url))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            },
        )
        .await;
        host
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.url))
            .basic_auth(API_USER, Some(API_PASSWORD))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let answer = self
            .request(Method::GET, path)
            .send()
            .await
            .expect("an answer");
        let status = answer.status().as_u16();
        let body = answer.bytes().await.expect("a body");
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    fn pid(&self) -> u32 {
        self.process.id()
    }

    fn stop(mut self) {
        self.process.kill().expect("stopping a host");
        self.process.wait().expect("the host is reaped");
    }
}

/// Polls `done` until it holds, up to `patience`.
async fn wait(what: &str, patience: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + patience;
    while !done().await {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `size` bytes that do not compress, so every stage carries the full size, made a chunk at a
/// time (xorshift64*) and digested as they go.
struct Document {
    state: u64,
    remaining: u64,
    digest: Arc<Mutex<Sha256>>,
}

impl Iterator for Document {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        if self.remaining == 0 {
            return None;
        }
        let length = self.remaining.min(CHUNK as u64) as usize;
        let mut chunk = vec![0u8; length.next_multiple_of(8)];
        for word in chunk.chunks_exact_mut(8) {
            self.state ^= self.state >> 12;
            self.state ^= self.state << 25;
            self.state ^= self.state >> 27;
            word.copy_from_slice(&self.state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        chunk.truncate(length);
        self.remaining -= length as u64;
        self.digest.lock().expect("the digest").update(&chunk);
        Some(Bytes::from(chunk))
    }
}

/// A blocking reader of the chunks an async task receives.
struct Chunks {
    receiver: Receiver<Bytes>,
    current: Bytes,
    total: u64,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.recv() {
                Ok(chunk) => self.current = chunk,
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        self.total += n as u64;
        Ok(n)
    }
}

/// Digests and counts what is written to it.
#[derive(Default)]
struct Digesting {
    hasher: Sha256,
    count: u64,
}

impl Write for Digesting {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.hasher.update(data);
        self.count += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads a popped container to its end: its size, the names of its entries, and the size and
/// sha256 of the document in it.
async fn read_pop(answer: reqwest::Response) -> (u64, Vec<String>, u64, String) {
    let (sender, receiver) = sync_channel::<Bytes>(8);
    let reading = tokio::task::spawn_blocking(move || {
        let mut chunks = Chunks {
            receiver,
            current: Bytes::new(),
            total: 0,
        };
        let mut document = Digesting::default();
        let names = zip_stream::read_entries(
            BufReader::with_capacity(CHUNK, &mut chunks),
            DOCUMENT,
            &mut document,
        )
        .expect("the pop is a readable zip");
        (
            chunks.total,
            names,
            document.count,
            hex::encode(document.hasher.finalize()),
        )
    });
    let mut body = answer.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("the pop streams to its end");
        if sender.send(chunk).is_err() {
            break;
        }
    }
    drop(sender);
    reading.await.expect("the pop was read")
}

fn row(what: &str, value: String) {
    println!("| {what:<58} | {value:>26} |");
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn verdict(kib: u64) -> String {
    let mb = kib as f64 * 1024.0 / 1e6;
    format!(
        "{} = {mb:.0} MB {}",
        mib(kib),
        if mb <= TARGET_MB { "met" } else { "NOT met" }
    )
}

fn rate(bytes: u64, time: Duration) -> String {
    format!(
        "{:.1} MB/s ({:.1} s)",
        bytes as f64 / 1e6 / time.as_secs_f64(),
        time.as_secs_f64()
    )
}

#[tokio::main]
async fn main() {
    let size: u64 = std::env::var("LARGE_BENCH_BYTES")
        .ok()
        .map(|n| n.parse().expect("LARGE_BENCH_BYTES is a number of bytes"))
        .unwrap_or(1 << 30);
    let limit = size + OVERHEAD;
    let binary = release_binary();
    let dpo = DpoNetwork::start_with(|broker| broker.max_file_size = limit).await;
    // DPO's own limit is 1 GB; a gigabyte benchmark needs a little more. The timeout covers
    // building, encrypting and uploading the package in one plugin call, and the upload or the
    // download of a gigabyte in one HTTP request.
    let settings = format!(r#", max-message-size = "{limit}""#);
    let timeout = 600;
    let sender = Host::start(
        &binary,
        &dpo.configure_with_timeout(SENDER, &settings, timeout),
    )
    .await;
    let receiver = Host::start(
        &binary,
        &dpo.configure_with_timeout(RECEIVER, &settings, timeout),
    )
    .await;
    let idle = (
        proc_kib(sender.pid(), "VmRSS:"),
        proc_kib(receiver.pid(), "VmRSS:"),
    );

    // Create the message and upload its arkivmelding, which are small.
    let sbd = arkivmelding_sbd(SENDER, RECEIVER, DOCUMENT);
    let message_id = message_id(&sbd);
    let created = sender
        .request(Method::POST, "/api/messages/out")
        .header("content-type", "application/json")
        .body(sbd.to_string())
        .send()
        .await
        .expect("an answer");
    assert_eq!(created.status(), 200, "{}", created.text().await.unwrap());
    let upload = |name: &str, mime: &str, body: reqwest::Body| {
        sender
            .request(Method::PUT, &format!("/api/messages/out/{message_id}"))
            .header("content-type", mime)
            .header(
                "content-disposition",
                format!("attachment; name=\"{name}\"; filename=\"{name}\""),
            )
            .body(body)
    };
    let uploaded = upload(
        "arkivmelding.xml",
        "application/xml",
        arkivmelding_xml("Vedtak", &[DOCUMENT]).into(),
    )
    .send()
    .await
    .expect("an answer");
    assert_eq!(uploaded.status(), 200, "{}", uploaded.text().await.unwrap());

    // The document, streamed, then send.
    let digest = Arc::new(Mutex::new(Sha256::new()));
    let document = Document {
        state: 0x9e37_79b9_7f4a_7c15,
        remaining: size,
        digest: digest.clone(),
    };
    let started = Instant::now();
    let uploaded = upload(
        DOCUMENT,
        "application/pdf",
        reqwest::Body::wrap_stream(futures::stream::iter(document.map(Ok::<_, std::io::Error>))),
    )
    .header("content-length", size)
    .send()
    .await
    .expect("an answer");
    assert_eq!(uploaded.status(), 200, "{}", uploaded.text().await.unwrap());
    let upload_time = started.elapsed();
    let sent_digest = hex::encode(digest.lock().expect("the digest").clone().finalize());
    let answer = sender
        .request(Method::POST, &format!("/api/messages/out/{message_id}"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    let conversation = format!("/api/conversations/messageId/{message_id}");
    wait("SENDT", Duration::from_secs(3600), async || {
        let (_, conversation) = sender.get(&conversation).await;
        let statuses = conversation["messageStatuses"].as_array().cloned();
        assert!(
            !statuses
                .iter()
                .flatten()
                .any(|s| s["status"] == "FEIL" || s["status"] == "LEVETID_UTLOPT"),
            "the message failed: {conversation}"
        );
        statuses.iter().flatten().any(|s| s["status"] == "SENDT")
    })
    .await;
    let send_time = started.elapsed();
    let broker_file = dpo
        .broker
        .files()
        .into_iter()
        .find(|f| f.sender == SENDER)
        .expect("the message's file at the broker");

    // The receiver's archive client: peek, pop as a stream, delete.
    wait(
        "the message at the receiver",
        Duration::from_secs(3600),
        async || receiver.get("/api/messages/in/peek").await.0 == 200,
    )
    .await;
    let popping = Instant::now();
    let popped = receiver
        .request(Method::GET, &format!("/api/messages/in/pop/{message_id}"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(popped.status(), 200);
    let (pop_size, entries, document_size, received_digest) = read_pop(popped).await;
    let pop_time = popping.elapsed();
    let end_to_end = started.elapsed();
    let deleted = receiver
        .request(Method::DELETE, &format!("/api/messages/in/{message_id}"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(deleted.status(), 200);
    assert_eq!(document_size, size, "the whole document arrived");
    assert_eq!(
        received_digest, sent_digest,
        "the document arrived byte for byte"
    );

    let peaks = (
        proc_kib(sender.pid(), "VmHWM:"),
        proc_kib(receiver.pid(), "VmHWM:"),
    );
    sender.stop();
    receiver.stop();

    println!("\none large DPO message, binary {}\n", binary.display());
    println!("| {:<58} | {:>26} |", "measure", "value");
    println!("|{}|{}|", "-".repeat(60), "-".repeat(28));
    row(
        "document (LARGE_BENCH_BYTES)",
        format!("{size} B = {:.1} MiB", size as f64 / f64::from(1 << 20)),
    );
    row("sbd.zip at the broker", format!("{} B", broker_file.size));
    row(
        "popped ASiC-E (entries)",
        format!("{pop_size} B ({})", entries.len()),
    );
    row(
        "document sha256, sent = received",
        sent_digest[..16].to_owned() + "…",
    );
    row("upload: PUT of the document", rate(size, upload_time));
    row("send: upload start → SENDT", rate(size, send_time));
    row(
        "end to end: upload start → pop read",
        rate(size, end_to_end),
    );
    row("pop: request → last byte", rate(size, pop_time));
    row("sender RSS idle", mib(idle.0));
    row("receiver RSS idle", mib(idle.1));
    row("sender peak RSS (target ≤ 200 MB)", verdict(peaks.0));
    row("receiver peak RSS (target ≤ 200 MB)", verdict(peaks.1));
    row(
        "this process's peak RSS (client and simulators)",
        mib(proc_kib(std::process::id(), "VmHWM:")),
    );
}
