//! What every HTTP simulator shares: binding 127.0.0.1, serving until stopped, answering 503
//! to the next N requests when a test asks for an outage, and the run-time fault rules of
//! [`crate::faults`] with their `/_faults` control endpoint.
//!
//! Kept in one place so that each simulator module is only its service's surface and checks.
//! Connections are accepted through [`FaultableListener`] so that a rule can close one without
//! an answer, which a handler cannot do by returning a response.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::faults::{self, Faults};

/// The path of every service's fault control endpoint.
pub const FAULTS_PATH: &str = "/_faults";

/// A running HTTP server; dropping it stops the server.
pub(crate) struct Server {
    address: SocketAddr,
    faults: Faults,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves `app` on 127.0.0.1:`port` (0: a free port), answering 503 while `fail_next` is
    /// above zero (each such request counts it down).
    pub(crate) async fn start(
        name: &'static str,
        port: u16,
        app: Router,
        fail_next: Arc<AtomicU64>,
    ) -> io::Result<Self> {
        let app = app.layer(middleware::from_fn_with_state(fail_next, inject_faults));
        Self::serve(name, port, app).await
    }

    /// Serves `app` without the `fail_next` layer, for a simulator whose outage answers must be
    /// in its own service's error format or come after its own request recording. The fault
    /// rules of [`Server::faults`] and their control endpoint apply to it all the same.
    pub(crate) async fn serve(name: &'static str, port: u16, app: Router) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let address = listener.local_addr()?;
        let faults = Faults::default();
        let app = Router::new()
            .route(
                FAULTS_PATH,
                get(faults::list_rules)
                    .post(faults::add_rule)
                    .delete(faults::clear_rules),
            )
            .with_state(faults.clone())
            .fallback_service(app.layer(middleware::from_fn_with_state(
                faults.clone(),
                apply_fault_rules,
            )));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let app = app.into_make_service_with_connect_info::<Connection>();
            let served = axum::serve(FaultableListener(listener), app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "{name} stopped serving");
            }
        });
        tracing::info!(%address, "{name} listening");
        Ok(Self {
            address,
            faults,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address it listens on.
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The run-time fault rules of this server.
    pub(crate) fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Stops accepting connections and waits for requests in flight.
    pub(crate) async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn inject_faults(
    State(fail_next): State<Arc<AtomicU64>>,
    request: Request,
    next: Next,
) -> Response {
    let failing = fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        return (StatusCode::SERVICE_UNAVAILABLE, "injected fault").into_response();
    }
    next.run(request).await
}

/// Delays, drops or answers an error as the fault rules say; otherwise passes the request on.
async fn apply_fault_rules(State(faults): State<Faults>, request: Request, next: Next) -> Response {
    let verdict = faults.judge();
    if verdict.delay > Duration::ZERO {
        tokio::time::sleep(verdict.delay).await;
    }
    if verdict.drop
        && let Some(ConnectInfo(connection)) = request.extensions().get::<ConnectInfo<Connection>>()
    {
        connection.dropped.store(true, Ordering::SeqCst);
        // Never written: the connection refuses every write from now on and is closed.
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if let Some(status) = verdict.status {
        return (status, "injected fault").into_response();
    }
    next.run(request).await
}

/// Accepts TCP connections whose request handling may drop them ([`Connection`]).
struct FaultableListener(TcpListener);

/// A request's connection, as the fault layer sees it: a switch that makes it fail.
#[derive(Clone)]
struct Connection {
    dropped: Arc<AtomicBool>,
}

/// A TCP stream that fails every read and write once its connection is dropped, so hyper
/// closes it without writing the answer in hand.
struct FaultableStream {
    stream: TcpStream,
    dropped: Arc<AtomicBool>,
}

impl Listener for FaultableListener {
    type Io = FaultableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, address)) => {
                    let dropped = Arc::new(AtomicBool::new(false));
                    return (FaultableStream { stream, dropped }, address);
                }
                Err(error) => {
                    // Out of descriptors or a connection reset before accept: wait, go on.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

impl Connected<IncomingStream<'_, FaultableListener>> for Connection {
    fn connect_info(stream: IncomingStream<'_, FaultableListener>) -> Self {
        Self {
            dropped: stream.io().dropped.clone(),
        }
    }
}

impl FaultableStream {
    fn check(&self) -> io::Result<()> {
        if self.dropped.load(Ordering::SeqCst) {
            Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "connection dropped by an injected fault",
            ))
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for FaultableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for FaultableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A poisoned lock only means a handler panicked; no update spans a fallible step.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Appends `item` to `log`, dropping the oldest beyond `limit`, so inspection logs stay bounded.
pub(crate) fn record<T>(log: &Mutex<std::collections::VecDeque<T>>, limit: usize, item: T) {
    let mut log = lock(log);
    if log.len() == limit {
        log.pop_front();
    }
    log.push_back(item);
}
