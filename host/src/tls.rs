//! TLS for the API from the configured certificate chain and key (PEM), with OpenSSL.
//!
//! The listener hands axum connections whose handshake is done. Handshakes run in tasks of their
//! own, each with a deadline, so a client that connects and never speaks stalls nobody; a failed
//! handshake is logged and dropped. Only TLS 1.2 and 1.3 with Mozilla's intermediate ciphers are
//! offered, the setting the agencies' own proxies use today.

use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use openssl::ssl::{Ssl, SslAcceptor, SslFiletype, SslMethod};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_openssl::SslStream;

/// How long a client has to complete its handshake.
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);
/// Connections handshaken and not yet taken by the server.
const READY_QUEUE: usize = 64;

/// The acceptor for `certificate` (chain, PEM) and `key` (PEM); fails naming the file at fault.
pub fn acceptor(certificate: &Path, key: &Path) -> anyhow::Result<Arc<SslAcceptor>> {
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls())?;
    builder
        .set_certificate_chain_file(certificate)
        .with_context(|| {
            format!(
                "api.tls.certificate {}: not a PEM certificate chain",
                certificate.display()
            )
        })?;
    builder
        .set_private_key_file(key, SslFiletype::PEM)
        .with_context(|| {
            format!(
                "api.tls.key {}: not a PEM private key, or not the key of the certificate {}",
                key.display(),
                certificate.display()
            )
        })?;
    builder.check_private_key().with_context(|| {
        format!(
            "api.tls: the key {} does not belong to the certificate {}",
            key.display(),
            certificate.display()
        )
    })?;
    Ok(Arc::new(builder.build()))
}

/// A listener of TLS connections, for `axum::serve`.
pub struct TlsListener {
    ready: mpsc::Receiver<(SslStream<TcpStream>, SocketAddr)>,
    address: SocketAddr,
}

impl TlsListener {
    /// Accepts on `listener` and handshakes with `acceptor` in the background.
    pub fn new(listener: TcpListener, acceptor: Arc<SslAcceptor>) -> std::io::Result<Self> {
        let address = listener.local_addr()?;
        let (sender, ready) = mpsc::channel(READY_QUEUE);
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if sender.is_closed() {
                    return;
                }
                let sender = sender.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_DEADLINE, handshake(&acceptor, tcp)).await
                    {
                        Ok(Ok(stream)) => {
                            let _ = sender.send((stream, peer)).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { ready, address })
    }
}

async fn handshake(acceptor: &SslAcceptor, tcp: TcpStream) -> anyhow::Result<SslStream<TcpStream>> {
    let ssl = Ssl::new(acceptor.context())?;
    let mut stream = SslStream::new(ssl, tcp)?;
    Pin::new(&mut stream).accept().await?;
    Ok(stream)
}

impl axum::serve::Listener for TlsListener {
    type Io = SslStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accepting task only ends with the runtime; wait for shutdown instead.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.address)
    }
}
