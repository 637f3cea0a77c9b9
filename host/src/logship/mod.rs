//! Shipping log events to the central log service (Logtjeneste), a Logstash TCP input that takes
//! one JSON object per line, over TLS with a client certificate in production.
//!
//! Central logging must never slow message processing: an event is queued with `try_send` into a
//! bounded buffer, and when the buffer is full (the service is away or slow) the event is dropped
//! and counted, and the count is logged locally now and then. One task drains the buffer into the
//! connection and reconnects with back-off when the connection fails or the service closes it;
//! it watches the connection for the service's close so an event is not written into a socket
//! already dead. Delivery is at most once, like Logback's Logstash appender: an event written
//! just as the connection breaks may be lost.
//!
//! Every event is masked before it is queued: each text value (and any number) has its 11-digit
//! identity numbers masked by [`crate::logmask`], which keeps the line valid JSON, as masking the
//! serialised line would not (an 11-digit JSON number would become `123456*****`).
//!
//! [`LogShipper::event`] ships an event built by the caller; [`LogShipper::layer`] is a
//! `tracing` layer that ships what the host logs anyway, so status changes and audit events are
//! logged once, with `tracing`, and reach both the local log and the central one.

mod connect;
mod layer;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio::time::Instant;

pub use connect::LogTls;
pub use layer::ShipLayer;

use crate::logmask::mask_identity_numbers;

/// The target of the shipper's own log events, which the layer does not ship.
const OWN_TARGET: &str = module_path!();
/// How often, at most, dropped events are reported in the local log.
const DROP_REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// Where and how events are shipped.
#[derive(Clone, Debug)]
pub struct LogShipConfig {
    /// The service's `host:port` (`app.logger.destination`: `test-logs.eformidling.no:80` in
    /// staging, `logs.eformidling.no:443` in production).
    pub destination: String,
    /// TLS, which production requires; `None` is plain TCP.
    pub tls: Option<LogTls>,
    /// How many events wait while the service is slow or away; more are dropped.
    pub buffer: usize,
    /// Fields added to every event (`appname`, `orgnr`, `HOSTNAME`, `buildinfo.version`).
    pub fields: Map<String, Value>,
    /// The pause after the first failed connection; each further pause doubles.
    pub reconnect_first: Duration,
    /// The longest pause between connection attempts.
    pub reconnect_max: Duration,
    /// The longest one connection attempt may take.
    pub connect_timeout: Duration,
}

impl LogShipConfig {
    /// Plain TCP to `destination`, 10 000 buffered events, reconnecting after 1 s and at most
    /// every 30 s (Logback's delay), 10 s to connect.
    pub fn new(destination: impl Into<String>) -> Self {
        Self {
            destination: destination.into(),
            tls: None,
            buffer: 10_000,
            fields: Map::new(),
            reconnect_first: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// A handle for queueing events; clones share the queue.
#[derive(Clone)]
pub struct LogShipper {
    queue: mpsc::Sender<String>,
    fields: Arc<Map<String, Value>>,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    shipped: AtomicU64,
    dropped: AtomicU64,
}

impl LogShipper {
    /// Starts shipping to `config.destination` on the current tokio runtime. Connecting happens
    /// in the background; only a TLS set-up that cannot work (an unreadable CA file, say) fails
    /// here.
    pub fn start(config: LogShipConfig) -> anyhow::Result<Self> {
        let connector = connect::Connector::new(&config)?;
        let (queue, lines) = mpsc::channel(config.buffer.max(1));
        let counts = Arc::new(Counts::default());
        let shipper = Self {
            queue,
            fields: Arc::new(config.fields.clone()),
            counts: counts.clone(),
        };
        tokio::spawn(Writer::new(config, connector, counts).run(lines));
        Ok(shipper)
    }

    /// Queues `event`, with the configured fields added where it lacks them and identity numbers
    /// masked; never waits. A full buffer drops the event and counts it.
    pub fn event(&self, mut event: Map<String, Value>) {
        for (name, value) in self.fields.iter() {
            if !event.contains_key(name) {
                event.insert(name.clone(), value.clone());
            }
        }
        let line = mask_value(Value::Object(event)).to_string();
        if self.queue.try_send(line).is_err() {
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events dropped so far because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.counts.dropped.load(Ordering::Relaxed)
    }

    /// Events written to the service so far.
    pub fn shipped(&self) -> u64 {
        self.counts.shipped.load(Ordering::Relaxed)
    }

    /// A `tracing` layer shipping every event at `level` or more severe.
    pub fn layer(&self, level: tracing::Level) -> ShipLayer {
        ShipLayer::new(self.clone(), level)
    }
}

/// `value` with identity numbers masked in every text, key and number.
fn mask_value(value: Value) -> Value {
    match value {
        Value::String(text) => Value::String(mask_identity_numbers(&text)),
        Value::Number(number) => {
            let text = number.to_string();
            let masked = mask_identity_numbers(&text);
            if masked == text {
                Value::Number(number)
            } else {
                Value::String(masked)
            }
        }
        Value::Array(items) => Value::Array(items.into_iter().map(mask_value).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(name, value)| (mask_identity_numbers(&name), mask_value(value)))
                .collect(),
        ),
        other => other,
    }
}

/// The task that owns the connection.
struct Writer {
    config: LogShipConfig,
    connector: connect::Connector,
    counts: Arc<Counts>,
    reported_drops: u64,
    last_report: Option<Instant>,
}

impl Writer {
    fn new(config: LogShipConfig, connector: connect::Connector, counts: Arc<Counts>) -> Self {
        Self {
            config,
            connector,
            counts,
            reported_drops: 0,
            last_report: None,
        }
    }

    /// Ships lines until every [`LogShipper`] is gone.
    async fn run(mut self, mut lines: mpsc::Receiver<String>) {
        // A line taken from the buffer whose write failed goes first on the next connection.
        let mut unsent: Option<String> = None;
        loop {
            let mut connection = self.connect().await;
            // The service sends nothing; a read ends only when it closes or fails.
            let mut peer_input = [0u8; 512];
            loop {
                let line = match unsent.take() {
                    Some(line) => line,
                    None => tokio::select! {
                        // A close the service already sent is noticed before the next write.
                        biased;
                        read = connection.read(&mut peer_input) => {
                            if matches!(read, Ok(0) | Err(_)) {
                                tracing::warn!(destination = %self.config.destination, "the central log service closed the connection; reconnecting");
                                break;
                            }
                            continue;
                        }
                        line = lines.recv() => match line {
                            Some(line) => line,
                            None => return,
                        },
                    },
                };
                let written = async {
                    connection.write_all(line.as_bytes()).await?;
                    connection.write_all(b"\n").await?;
                    connection.flush().await
                };
                if let Err(error) = written.await {
                    tracing::warn!(destination = %self.config.destination, %error, "writing to the central log service failed; reconnecting");
                    unsent = Some(line);
                    break;
                }
                self.counts.shipped.fetch_add(1, Ordering::Relaxed);
                self.report_drops();
            }
        }
    }

    /// A connection, after as many attempts as it takes.
    async fn connect(&mut self) -> connect::Connection {
        let mut pause = self.config.reconnect_first;
        loop {
            match self.connector.connect().await {
                Ok(connection) => {
                    tracing::info!(destination = %self.config.destination, "connected to the central log service");
                    return connection;
                }
                Err(error) => {
                    tracing::warn!(
                        destination = %self.config.destination,
                        error = %format!("{error:#}"),
                        retry_in_ms = pause.as_millis() as u64,
                        "cannot connect to the central log service"
                    );
                    self.report_drops();
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(self.config.reconnect_max);
                }
            }
        }
    }

    /// Logs how many events were dropped since the last report, at most every
    /// [`DROP_REPORT_INTERVAL`].
    fn report_drops(&mut self) {
        let dropped = self.counts.dropped.load(Ordering::Relaxed);
        let due = self
            .last_report
            .is_none_or(|last| last.elapsed() >= DROP_REPORT_INTERVAL);
        if dropped > self.reported_drops && due {
            tracing::warn!(
                dropped_since_last_report = dropped - self.reported_drops,
                dropped_in_all = dropped,
                "the central log service's buffer was full; events were dropped"
            );
            self.reported_drops = dropped;
            self.last_report = Some(Instant::now());
        }
    }
}
