//! The central log service (Logtjeneste): a Logstash TCP input taking one JSON object per line,
//! plain or over TLS with a client certificate, as production's input requires.
//!
//! The host ships its log events here; tests need to see what arrived and to know that a line
//! that is not a JSON object would be refused. So each line must be a JSON object: one that is
//! not is counted and the connection closed, as the `json_lines` codec's input gives up on a
//! stream it cannot parse. With TLS on, a client must present a certificate chained to the
//! configured CA or the handshake fails. Memory is bounded: at most `max_events` are kept and
//! the rest only counted, and a line longer than [`MAX_LINE`] is refused. Fault injection
//! closes the next N connections as soon as they are accepted.

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openssl::pkey::{PKey, Private};
use openssl::ssl::{Ssl, SslAcceptor, SslMethod, SslVerifyMode};
use openssl::x509::X509;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use crate::serving::lock;

/// The longest line accepted, in bytes.
pub const MAX_LINE: usize = 1 << 20;
/// How many events are kept when the configuration does not say.
pub const DEFAULT_MAX_EVENTS: usize = 10_000;

/// TLS for the sink.
#[derive(Clone)]
pub struct LogSinkTls {
    /// The sink's own certificate.
    pub certificate: X509,
    /// Its private key.
    pub key: PKey<Private>,
    /// The CA that client certificates must chain to.
    pub client_ca: X509,
}

/// How the sink is set up.
#[derive(Clone)]
pub struct LogSinkConfig {
    /// The port on 127.0.0.1; 0 lets the system pick a free one.
    pub port: u16,
    /// TLS with a required client certificate; plain TCP when `None`.
    pub tls: Option<LogSinkTls>,
    /// How many events are kept; further ones are counted in [`LogSink::dropped`].
    pub max_events: usize,
}

impl Default for LogSinkConfig {
    /// Plain TCP on a free port, keeping [`DEFAULT_MAX_EVENTS`].
    fn default() -> Self {
        Self {
            port: 0,
            tls: None,
            max_events: DEFAULT_MAX_EVENTS,
        }
    }
}

/// A running log sink. Dropping it stops it.
pub struct LogSink {
    address: SocketAddr,
    state: Arc<SinkState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl LogSink {
    /// Binds 127.0.0.1 on the configured port and accepts connections until stopped.
    pub async fn start(config: LogSinkConfig) -> io::Result<Self> {
        let acceptor = config.tls.as_ref().map(acceptor).transpose()?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, config.port)).await?;
        let address = listener.local_addr()?;
        let state = Arc::new(SinkState {
            max_events: config.max_events,
            events: Mutex::new(VecDeque::new()),
            rejected: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            refused_handshakes: AtomicU64::new(0),
            drop_next: AtomicU64::new(0),
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept(listener, acceptor, state.clone(), stopped));
        tracing::info!(%address, tls = config.tls.is_some(), "log sink listening");
        Ok(Self {
            address,
            state,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `127.0.0.1:PORT`, the form the host's log destination takes.
    pub fn destination(&self) -> String {
        self.address.to_string()
    }

    /// The events kept, in the order received.
    pub fn received(&self) -> Vec<Value> {
        lock(&self.state.events).iter().cloned().collect()
    }

    /// How many lines were not JSON objects (each closed its connection).
    pub fn rejected(&self) -> u64 {
        self.state.rejected.load(Ordering::SeqCst)
    }

    /// How many events arrived after `max_events` were kept, and were not kept.
    pub fn dropped(&self) -> u64 {
        self.state.dropped.load(Ordering::SeqCst)
    }

    /// How many TLS handshakes failed (no client certificate, or an untrusted one).
    pub fn refused_handshakes(&self) -> u64 {
        self.state.refused_handshakes.load(Ordering::SeqCst)
    }

    /// Closes the next `connections` connections as soon as they are accepted.
    pub fn drop_next_connections(&self, connections: u64) {
        self.state.drop_next.store(connections, Ordering::SeqCst);
    }

    /// Stops accepting and closes every open connection.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for LogSink {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

struct SinkState {
    max_events: usize,
    events: Mutex<VecDeque<Value>>,
    rejected: AtomicU64,
    dropped: AtomicU64,
    refused_handshakes: AtomicU64,
    drop_next: AtomicU64,
}

fn acceptor(tls: &LogSinkTls) -> io::Result<SslAcceptor> {
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    builder.set_certificate(&tls.certificate)?;
    builder.set_private_key(&tls.key)?;
    builder.check_private_key()?;
    builder.cert_store_mut().add_cert(tls.client_ca.clone())?;
    builder.add_client_ca(&tls.client_ca)?;
    builder.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    Ok(builder.build())
}

/// Accepts until `stopped`; dropping the set of connections on return closes them all.
async fn accept(
    listener: TcpListener,
    acceptor: Option<SslAcceptor>,
    state: Arc<SinkState>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let dropping = state
                        .drop_next
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    if dropping {
                        tracing::info!(%peer, "log sink dropped a connection (injected fault)");
                        continue;
                    }
                    let ssl = acceptor.as_ref().map(|a| Ssl::new(a.context()));
                    connections.spawn(serve(tcp, ssl, state.clone()));
                }
                Err(error) => tracing::warn!(%error, "log sink could not accept a connection"),
            },
        }
    }
}

async fn serve(
    tcp: TcpStream,
    ssl: Option<Result<Ssl, openssl::error::ErrorStack>>,
    state: Arc<SinkState>,
) {
    let Some(ssl) = ssl else {
        return read_events(tcp, &state).await;
    };
    let handshake = async {
        let mut stream = tokio_openssl::SslStream::new(ssl?, tcp)?;
        Pin::new(&mut stream)
            .accept()
            .await
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok::<_, io::Error>(stream)
    };
    match handshake.await {
        Ok(stream) => read_events(stream, &state).await,
        Err(error) => {
            state.refused_handshakes.fetch_add(1, Ordering::SeqCst);
            tracing::info!(%error, "log sink refused a TLS handshake");
        }
    }
}

/// Keeps each line's JSON object; stops at the first line that is not one.
async fn read_events(stream: impl AsyncRead + Unpin, state: &SinkState) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        let limit = (MAX_LINE + 1) as u64;
        match (&mut reader).take(limit).read_until(b'\n', &mut line).await {
            Ok(0) => return,
            Ok(_) => {}
            Err(error) => {
                tracing::info!(%error, "log sink connection failed");
                return;
            }
        }
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Value>(text) {
            Ok(event @ Value::Object(_)) if line.len() <= MAX_LINE => {
                let mut events = lock(&state.events);
                if events.len() < state.max_events {
                    events.push_back(event);
                } else {
                    state.dropped.fetch_add(1, Ordering::SeqCst);
                }
            }
            _ => {
                state.rejected.fetch_add(1, Ordering::SeqCst);
                tracing::info!(
                    bytes = line.len(),
                    "log sink refused a line that is not a JSON object"
                );
                return;
            }
        }
    }
}
