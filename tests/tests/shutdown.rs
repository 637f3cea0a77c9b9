//! Graceful shutdown end to end: an integration point stopped while a send hangs at the
//! provider stops in bounded time, stops answering, and loses nothing.
//!
//! An operator restarts the service for upgrades and configuration changes, often while the
//! provider is slow. Stopping must not wait on the provider forever, and a message the archive
//! system was told is accepted must survive: it stays in the outbox and is sent after the next
//! start on the same configuration. The loopback peer cannot hold its answers, so a stand-in
//! provider here takes every request and never answers; after the restart the configuration
//! points at the real peer again.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::post;
use ip_tests::network::{IntegrationPoint, Network, outbox_attempts, outbox_claimant, wait_until};
use ip_tests::postgres::FreshDatabase;
use tokio::sync::Notify;

const SENDER: &str = "910075918";
const RECEIVER: &str = "910076787";

/// A provider that holds every answer: it reads each upload in full and counts it, and answers
/// no request at all (uploads, status and inbox polls alike).
struct HangingProvider {
    url: String,
    uploads: Arc<AtomicU64>,
    arrived: Arc<Notify>,
}

impl HangingProvider {
    async fn start() -> Self {
        let uploads = Arc::new(AtomicU64::new(0));
        let arrived = Arc::new(Notify::new());
        let (counter, signal) = (uploads.clone(), arrived.clone());
        let app = axum::Router::new()
            .route(
                "/messages",
                post(move |_body: Bytes| {
                    let (counter, signal) = (counter.clone(), signal.clone());
                    async move {
                        counter.fetch_add(1, Ordering::SeqCst);
                        signal.notify_one();
                        std::future::pending::<()>().await;
                    }
                }),
            )
            .fallback(|| async {
                std::future::pending::<()>().await;
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the provider");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            uploads,
            arrived,
        }
    }
}

/// Points the loopback channel of the configuration in `home` from `from` to `to`.
fn repoint(home: &std::path::Path, from: &str, to: &str) {
    let path = home.join("config/e2e.toml");
    let text = std::fs::read_to_string(&path).expect("the environment file");
    assert!(text.contains(from), "{text}");
    std::fs::write(&path, text.replace(from, to)).expect("the environment file");
}

/// How long a stop may take: the shutdown grace (30 s) for sends and polls in flight, and a
/// margin.
const STOP_PATIENCE: Duration = Duration::from_secs(60);

/// The database of the sender's integration point unless a test says otherwise.
const SQLITE: &str = "sqlite://data/integrasjonspunkt.db";

/// The sender's integration point on `database`, on the operator configuration
/// `operator_extra` adds to, with its loopback channel pointing at a [`HangingProvider`]; with
/// the network, the provider and the configuration's home.
async fn start_held_sender(
    database: &str,
    operator_extra: &str,
) -> (Network, HangingProvider, PathBuf, IntegrationPoint) {
    let network = Network::start().await;
    let provider = HangingProvider::start().await;
    let home = network.configure_instance(SENDER, "", database, operator_extra, "");
    repoint(&home, &network.peer.base_url(), &provider.url);
    let ip = IntegrationPoint::start(&home).await;
    (network, provider, home, ip)
}

/// Sends an arkivmelding through `ip` and waits until its upload reaches `provider`, which
/// never answers; its message id.
async fn send_until_held(ip: &IntegrationPoint, provider: &HangingProvider) -> String {
    let arrived = provider.arrived.notified();
    let message_id = ip.send_arkivmelding(SENDER, RECEIVER).await;
    tokio::time::timeout(Duration::from_secs(60), arrived)
        .await
        .expect("the upload reached the provider");
    message_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_in_flight_at_shutdown_is_sent_after_the_restart() {
    let (network, provider, home, ip) = start_held_sender(SQLITE, "").await;
    let url = ip.url.clone();

    // The send reaches the provider, which never answers.
    let message_id = send_until_held(&ip, &provider).await;
    assert_eq!(ip.outgoing_statuses(&message_id).await, ["OPPRETTET"]);

    // Stop: it returns although the provider still holds the send.
    tokio::time::timeout(STOP_PATIENCE, ip.service.stop())
        .await
        .expect("stop returns within the grace while the provider holds its answers");
    let refused = reqwest::Client::new()
        .get(format!("{url}/api/conversations"))
        .send()
        .await
        .expect_err("the API no longer answers");
    assert!(refused.is_connect(), "connection refused: {refused}");
    assert!(
        outbox_attempts(&home, &message_id).await.is_some(),
        "the accepted message is still in the outbox"
    );

    // Restart on the same configuration, with the provider reachable again.
    repoint(&home, &provider.url, &network.peer.base_url());
    let ip = IntegrationPoint::start(&home).await;
    let seen = ip
        .wait_for_status(&message_id, "MOTTATT", Duration::from_secs(60))
        .await;
    assert_eq!(seen, ["OPPRETTET", "SENDT", "MOTTATT"]);
    let held: Vec<_> = network
        .peer
        .received()
        .into_iter()
        .filter(|m| m.message_id == message_id)
        .collect();
    assert_eq!(held.len(), 1, "the provider holds the message once");
    assert_eq!(provider.uploads.load(Ordering::SeqCst), 1);
    assert_eq!(outbox_attempts(&home, &message_id).await, None);

    ip.service.stop().await;
}

/// The worker claims the next sends ahead, before a permit is free; on PostgreSQL, where a
/// claim is a lease in the store, a stop must hand those back at once (for another instance on
/// the same database, or the next start) rather than leave them claimed until their lease runs
/// out. The send in flight keeps its claim: the provider may still be taking it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_claimed_ahead_but_not_started_are_released_at_shutdown() {
    let database = FreshDatabase::create("shutdown").await;
    let (_network, provider, _home, ip) =
        start_held_sender(&database.url, "[outbox]\nconcurrency = 1\n").await;

    let in_flight = send_until_held(&ip, &provider).await;
    let next = ip.send_arkivmelding(SENDER, RECEIVER).await;
    wait_until(
        "the next send claimed ahead",
        Duration::from_secs(30),
        async || {
            outbox_claimant(&database.url, &next)
                .await
                .flatten()
                .is_some()
        },
    )
    .await;
    assert_eq!(
        provider.uploads.load(Ordering::SeqCst),
        1,
        "one send at a time: the next waits for a permit"
    );

    tokio::time::timeout(STOP_PATIENCE, ip.service.stop())
        .await
        .expect("stop returns within the grace while the provider holds its answers");
    assert_eq!(
        outbox_claimant(&database.url, &next).await,
        Some(None),
        "the send that never started is unclaimed"
    );
    assert!(
        outbox_claimant(&database.url, &in_flight)
            .await
            .is_some_and(|claimant| claimant.is_some()),
        "the send in flight keeps its claim"
    );
}
