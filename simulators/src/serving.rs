//! What every HTTP simulator shares: binding 127.0.0.1, serving until stopped, and answering 503
//! to the next N requests when a test asks for an outage.
//!
//! Kept in one place so that each simulator module is only its service's surface and checks.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running HTTP server; dropping it stops the server.
pub(crate) struct Server {
    address: SocketAddr,
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

    /// Serves `app` as it is, for a simulator whose faults must answer in its own service's
    /// error format or come after its own request recording.
    pub(crate) async fn serve(name: &'static str, port: u16, app: Router) -> io::Result<Self> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let address = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
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
