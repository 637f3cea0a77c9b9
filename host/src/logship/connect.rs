//! The connection to the central log service: TCP, or TLS over TCP presenting a client
//! certificate, as production's Logstash input requires.
//!
//! TLS uses OpenSSL, which the host already links for its business certificate, so the client
//! certificate is the same [`BusinessCertificate`] type whichever keystore it is loaded from
//! (the Java integration point ships a dedicated `logstash/client.p12`).

use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context as _;
use openssl::ssl::{SslConnector, SslMethod};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::LogShipConfig;
use crate::crypto::BusinessCertificate;

/// TLS to the central log service.
#[derive(Clone, Debug, Default)]
pub struct LogTls {
    /// The certificate and key presented when the service asks for one.
    pub client: Option<BusinessCertificate>,
    /// A PEM file of the CAs that may sign the service's certificate, trusted besides the
    /// system's.
    pub ca_file: Option<PathBuf>,
}

/// A byte stream to the service, plain or TLS.
pub(super) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}
pub(super) type Connection = Box<dyn Stream>;

/// Makes connections to one destination.
pub(super) struct Connector {
    destination: String,
    host: String,
    timeout: Duration,
    tls: Option<SslConnector>,
}

impl Connector {
    pub(super) fn new(config: &LogShipConfig) -> anyhow::Result<Self> {
        let destination = &config.destination;
        let (host, _port) = destination
            .rsplit_once(':')
            .with_context(|| format!("log destination {destination:?} is not host:port"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let tls = match &config.tls {
            None => None,
            Some(tls) => Some(
                ssl_connector(tls)
                    .with_context(|| format!("TLS to the log service at {destination}"))?,
            ),
        };
        Ok(Self {
            destination: destination.clone(),
            host,
            timeout: config.connect_timeout,
            tls,
        })
    }

    pub(super) async fn connect(&self) -> anyhow::Result<Connection> {
        let tcp = tokio::time::timeout(self.timeout, TcpStream::connect(&self.destination))
            .await
            .context("timed out")??;
        let Some(tls) = &self.tls else {
            return Ok(Box::new(tcp));
        };
        let ssl = tls.configure()?.into_ssl(&self.host)?;
        let mut stream = tokio_openssl::SslStream::new(ssl, tcp)?;
        tokio::time::timeout(self.timeout, Pin::new(&mut stream).connect())
            .await
            .context("TLS handshake timed out")?
            .context("TLS handshake")?;
        Ok(Box::new(stream))
    }
}

fn ssl_connector(tls: &LogTls) -> anyhow::Result<SslConnector> {
    let mut builder = SslConnector::builder(SslMethod::tls_client())?;
    if let Some(ca_file) = &tls.ca_file {
        builder
            .set_ca_file(ca_file)
            .with_context(|| format!("reading CA certificates from {}", ca_file.display()))?;
    }
    if let Some(client) = &tls.client {
        builder.set_certificate(client.certificate())?;
        builder.set_private_key(client.private_key())?;
        for issuer in client.chain() {
            builder.add_extra_chain_cert(issuer.clone())?;
        }
        builder.check_private_key()?;
    }
    Ok(builder.build())
}
