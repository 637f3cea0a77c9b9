//! What the end-to-end tests share: a plugin host in a temporary directory, plugin specs, an
//! outgoing message, and an HTTP sink that records what reaches it.
//!
//! The sink streams each body through sha256 without keeping it, so a test can send hundreds of
//! megabytes and compare digests, and it can hold its answer back to keep a request in flight.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use futures::StreamExt;
use integrasjonspunkt::blobs::{Blob, BlobStore, FileBlobStore};
use integrasjonspunkt::plugins::bindings::{Party, ServiceRecord};
use integrasjonspunkt::plugins::egress::Egress;
use integrasjonspunkt::plugins::{
    Document, HostServices, Limits, OutgoingMessage, PluginEngine, PluginHost, PluginSetSpec,
    PluginSpec,
};
use integrasjonspunkt::secrets::Secrets;
use integrasjonspunkt::tokens::TokenSource;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

/// A plugin host over a temporary data directory.
pub struct TestHost {
    /// The host.
    pub plugins: Arc<PluginHost>,
    /// The blob store its plugins use.
    pub blobs: Arc<dyn BlobStore>,
    /// The temporary directory (data, compiled artifacts).
    pub dir: tempfile::TempDir,
}

impl TestHost {
    /// A host with these secrets and token source. Compiled plugins are cached across tests in
    /// `target/test-compiled`, as a host caches them across restarts.
    pub fn new(secrets: Secrets, tokens: Arc<dyn TokenSource>) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let blobs: Arc<dyn BlobStore> =
            Arc::new(FileBlobStore::open(dir.path().join("blobs")).expect("a blob store"));
        let services = Arc::new(HostServices {
            egress: Egress::new(Arc::new(secrets), tokens).expect("an egress client"),
            blobs: blobs.clone(),
            certificate: None,
        });
        let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-compiled");
        let plugins = Arc::new(
            PluginHost::new(PluginEngine::new().expect("an engine"), &cache, services)
                .expect("a plugin host"),
        );
        Self {
            plugins,
            blobs,
            dir,
        }
    }

    /// Loads a set of `(name, spec)` plugins with absolute files.
    pub async fn load(&self, plugins: Vec<(&str, PluginSpec)>) -> anyhow::Result<u64> {
        let spec = PluginSetSpec {
            base_dir: self.dir.path().to_path_buf(),
            plugins: plugins
                .into_iter()
                .map(|(name, spec)| (name.to_owned(), spec))
                .collect(),
        };
        Ok(self.plugins.load(&spec).await?.generation())
    }

    /// A temporary blob of `size` bytes of a repeating pattern.
    pub fn blob(&self, size: u64) -> Blob {
        let mut writer = self.blobs.create().expect("a blob writer");
        let pattern: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
        let mut left = size;
        while left > 0 {
            let n = left.min(pattern.len() as u64) as usize;
            std::io::Write::write_all(&mut writer, &pattern[..n]).expect("writing a blob");
            left -= n as u64;
        }
        let (id, size) = writer.commit().expect("committing a blob");
        Blob::temporary(self.blobs.clone(), id, size)
    }
}

/// A plugin spec for `file` with default limits and nothing allowed.
pub fn spec(file: &str) -> PluginSpec {
    PluginSpec {
        file: file.into(),
        sha256: None,
        allowed_hosts: vec![],
        secrets: vec![],
        scopes: vec![],
        limits: Limits::default(),
        settings: BTreeMap::new(),
    }
}

/// The sha256 of a blob's bytes, hex.
pub fn blob_sha256(blob: &Blob) -> String {
    let mut hasher = Sha256::new();
    std::io::copy(&mut blob.open().expect("opening a blob"), &mut hasher).expect("reading a blob");
    hex::encode(hasher.finalize())
}

/// A message from 0192:910075918 to 0192:910076787 carrying `documents`.
pub fn outgoing(documents: Vec<(&str, Blob)>) -> OutgoingMessage {
    let message_id = uuid::Uuid::new_v4().to_string();
    let party = |identifier: &str| Party {
        identifier: identifier.into(),
        name: None,
    };
    OutgoingMessage {
        message_id: message_id.clone(),
        conversation_id: uuid::Uuid::new_v4().to_string(),
        sender: party("0192:910075918"),
        receiver: party("0192:910076787"),
        process: "urn:no:difi:profile:arkivmelding:administrasjon:ver1.0".into(),
        document_type: "urn:no:difi:arkivmelding:xsd::arkivmelding".into(),
        sbd: serde_json::json!({
            "standardBusinessDocumentHeader": {
                "documentIdentification": { "instanceIdentifier": message_id }
            },
            "arkivmelding": { "sikkerhetsnivaa": 3 }
        })
        .to_string(),
        documents: documents
            .into_iter()
            .enumerate()
            .map(|(index, (name, content))| Document {
                name: name.into(),
                title: Some(format!("Document {name}")),
                mime_type: "application/pdf".into(),
                primary: index == 0,
                content,
            })
            .collect(),
        service: ServiceRecord {
            service: "LOOPBACK".into(),
            process: "urn:no:difi:profile:arkivmelding:administrasjon:ver1.0".into(),
            document_types: vec!["urn:no:difi:arkivmelding:xsd::arkivmelding".into()],
            endpoint_url: None,
            certificate: None,
            security_level: Some(3),
            service_code: None,
            service_edition: None,
            altinn_resource: None,
            mailbox: None,
            reserved: false,
            extra: vec![],
        },
        expires_at: None,
    }
}

/// One request the sink received.
#[derive(Clone, Debug)]
pub struct Received {
    /// The method.
    pub method: String,
    /// The path and query.
    pub uri: String,
    /// The headers, lower-case names.
    pub headers: BTreeMap<String, String>,
    /// The body's length.
    pub length: u64,
    /// The body's sha256, hex.
    pub sha256: String,
}

#[derive(Default)]
struct SinkState {
    received: Mutex<Vec<Received>>,
    hold: Mutex<Option<Duration>>,
    arrived: Notify,
}

/// An HTTP server on loopback that records every request and answers `201 {"reference": …}`.
pub struct Sink {
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its address.
    pub address: SocketAddr,
    state: Arc<SinkState>,
}

impl Sink {
    /// Starts a sink on an ephemeral port.
    pub async fn start() -> Self {
        let state = Arc::new(SinkState::default());
        let app = axum::Router::new()
            .fallback(record)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the sink");
        let address = listener.local_addr().expect("the sink's address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{address}"),
            address,
            state,
        }
    }

    /// What it received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("sink state").clone()
    }

    /// Holds every answer back this long after the body has been read.
    pub fn hold_answers(&self, hold: Duration) {
        *self.state.hold.lock().expect("sink state") = Some(hold);
    }

    /// Waits until a request has been received in full.
    pub async fn arrival(&self) {
        self.state.arrived.notified().await;
    }
}

async fn record(State(state): State<Arc<SinkState>>, request: Request) -> (StatusCode, String) {
    let (parts, body) = request.into_parts();
    let mut hasher = Sha256::new();
    let mut length = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                length += chunk.len() as u64;
                hasher.update(&chunk);
            }
            Err(error) => return (StatusCode::BAD_REQUEST, error.to_string()),
        }
    }
    let received = Received {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        length,
        sha256: hex::encode(hasher.finalize()),
    };
    state.received.lock().expect("sink state").push(received);
    state.arrived.notify_waiters();
    let hold = *state.hold.lock().expect("sink state");
    if let Some(hold) = hold {
        tokio::time::sleep(hold).await;
    }
    let reference = uuid::Uuid::new_v4();
    (
        StatusCode::CREATED,
        format!("{{\"reference\":\"{reference}\"}}"),
    )
}

/// The sha256 of a file, hex.
pub fn file_sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).expect("reading a file")))
}

/// Writes `keystore.p12` (a business certificate for 0192:910075918 from a fresh test CA) and
/// `keystore-password` into `dir`, as an operator file's `[keystore]` names them.
pub fn write_keystore(dir: &Path) {
    let pki = simulators::pki::TestPki::new(&dir.join("pki")).expect("a test CA");
    let issued = pki
        .issue("910075918", "Testetat", -1, 365, "keystore-pw")
        .expect("a business certificate");
    std::fs::copy(issued.keystore, dir.join("keystore.p12")).expect("copying the keystore");
    std::fs::write(dir.join("keystore-password"), "keystore-pw").expect("writing the password");
}

/// An environment file `name` whose one channel, `channel`, is the loopback plugin `file`
/// (relative to the environment file, pinned when `sha256` is given) sending to `sink` with
/// Basic from the secret `peer`; `settings` adds inline-table entries to its settings.
pub fn loopback_environment(
    name: &str,
    channel: &str,
    file: &str,
    sha256: Option<&str>,
    sink: &str,
    settings: &str,
) -> String {
    let pin = sha256
        .map(|digest| format!("sha256 = \"{digest}\"\n"))
        .unwrap_or_default();
    format!(
        r#"[environment]
name = "{name}"

[endpoints]
service-registry = "https://sr.example"
maskinporten = "https://mp.example/token"
maskinporten-audience = "https://mp.example/"
altinn-token-exchange = "https://altinn.example/exchange"
log-service = "logs.example:443"

[endpoints.channels.{channel}]
endpoint = "{sink}"

[plugins.{channel}]
file = "{file}"
{pin}allowed-hosts = ["{sink}"]
secrets = ["peer"]
settings = {{ identifier = "0192:910075918", credentials = "peer"{settings} }}
"#
    )
}

/// An operator file for 0192:910075918 enabling `channel`, with the keystore
/// [`write_keystore`] writes and the `peer` secret's password from `password` (a reference).
pub fn loopback_operator(channel: &str, password: &str) -> String {
    format!(
        r#"[organisation]
number = "910075918"

[keystore]
path = "keystore.p12"
password = {{ file = "keystore-password" }}

[channels]
enabled = ["{channel}"]

[secrets.peer]
username = "agency"
password = {password}
"#
    )
}
