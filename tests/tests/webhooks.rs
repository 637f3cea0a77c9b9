//! Webhooks end to end: an archive system subscribes to an integration point's status events
//! and receives them over HTTP while a message travels between two organisations.
//!
//! The real integration point checks a subscription with a ping and pushes each event once; this
//! one keeps every event durably and retries the head event of a subscription, so a subscriber
//! that is down for a while still sees every event, in order, exactly once. These tests hold it
//! to both: the real API's answers, and the stronger delivery.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use ip_tests::network::{IntegrationPoint, Network};
use reqwest::Method;
use serde_json::{Value, json};

const SENDER: &str = "910075918";
const RECEIVER: &str = "910076787";

#[derive(Default)]
struct HookState {
    /// `(path, body)` of every push answered 200, in arrival order.
    received: Mutex<Vec<(String, Value)>>,
    /// How many of the next pushes to answer 503.
    refuse_next: AtomicU64,
    /// How many pushes were answered 503.
    refused: AtomicU64,
}

/// A webhook subscriber: records every JSON body it is sent, by path, and can refuse pushes.
struct Hooks {
    url: String,
    state: Arc<HookState>,
}

impl Hooks {
    async fn start() -> Self {
        let state = Arc::new(HookState::default());
        let app = axum::Router::new().fallback(hook).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the subscriber");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, state }
    }

    /// Answers the next `pushes` pushes with 503.
    fn refuse_next(&self, pushes: u64) {
        self.state.refuse_next.store(pushes, Ordering::SeqCst);
    }

    fn refused(&self) -> u64 {
        self.state.refused.load(Ordering::SeqCst)
    }

    /// Every body received at `path` whose `event` is `event`.
    fn events(&self, path: &str, event: &str) -> Vec<Value> {
        self.state
            .received
            .lock()
            .expect("subscriber state")
            .iter()
            .filter(|(at, body)| at == path && body["event"] == event)
            .map(|(_, body)| body.clone())
            .collect()
    }

    /// The `status` of every status event received at `path`.
    fn statuses(&self, path: &str) -> Vec<String> {
        self.events(path, "status")
            .iter()
            .map(|event| event["status"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Waits until `path` has received `count` status events, up to a generous deadline.
    async fn wait_for_statuses(&self, path: &str, count: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let seen = self.statuses(path);
            if seen.len() >= count || tokio::time::Instant::now() > deadline {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn hook(State(state): State<Arc<HookState>>, uri: Uri, body: Bytes) -> StatusCode {
    let refuse = state
        .refuse_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if refuse {
        state.refused.fetch_add(1, Ordering::SeqCst);
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state
        .received
        .lock()
        .expect("subscriber state")
        .push((uri.path().to_owned(), body));
    StatusCode::OK
}

/// A URL nothing listens on.
async fn closed_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a port");
    let address = listener.local_addr().expect("an address");
    drop(listener);
    format!("http://{address}/down")
}

async fn json_of(answer: reqwest::Response) -> (u16, Value) {
    let status = answer.status().as_u16();
    let body = answer.bytes().await.expect("a body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn subscribe(ip: &IntegrationPoint, subscription: &Value) -> (u16, Value) {
    json_of(ip.post_json("/api/subscriptions", subscription).await).await
}

async fn put(ip: &IntegrationPoint, path: &str, body: &Value) -> (u16, Value) {
    json_of(
        ip.request(Method::PUT, path)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("an answer"),
    )
    .await
}

/// Asserts a 400 whose `exception` is the real one named `exception`.
fn assert_refused(answer: &(u16, Value), exception: &str) {
    assert_eq!(answer.0, 400, "{}", answer.1);
    assert!(
        answer.1["exception"]
            .as_str()
            .is_some_and(|e| e.ends_with(exception)),
        "expected {exception}: {}",
        answer.1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_pinged_validated_and_managed() {
    let network = Network::start().await;
    let ip = network.integration_point(SENDER).await;
    let hooks = Hooks::start().await;
    let first = format!("{}/first", hooks.url);
    let subscription = json!({
        "name": "archive", "pushEndpoint": first, "resource": "all", "event": "all",
        "filter": "status=FEIL,LEVETID_UTLOPT&direction=INCOMING"
    });

    // Create: the endpoint is pinged with the real ping body before the subscription is kept.
    let (status, created) = subscribe(&ip, &subscription).await;
    assert_eq!(status, 200, "{created}");
    let id = created["id"].as_i64().expect("an id");
    assert_eq!(created["name"], "archive");
    assert_eq!(created["pushEndpoint"], first.as_str());
    assert_eq!(created["resource"], "all");
    assert_eq!(created["event"], "all");
    assert_eq!(
        created["filter"],
        "status=FEIL,LEVETID_UTLOPT&direction=INCOMING"
    );
    let pings = hooks.events("/first", "ping");
    assert_eq!(pings.len(), 1, "one ping on create");
    let ping = pings[0].as_object().expect("a JSON object");
    assert_eq!(ping.len(), 2, "only createdTs and event: {ping:?}");
    assert!(ping["createdTs"].is_string(), "{ping:?}");

    // Refusals: an endpoint that is down, an unknown filter key, a taken name and endpoint.
    let down = closed_endpoint().await;
    let answer = subscribe(
        &ip,
        &json!({"name": "down", "pushEndpoint": down, "resource": "all", "event": "all"}),
    )
    .await;
    assert_refused(&answer, "WebhookPushEndpointPingFailedException");
    let answer = subscribe(
        &ip,
        &json!({"name": "colour", "pushEndpoint": first, "resource": "all", "event": "all",
                "filter": "colour=red"}),
    )
    .await;
    assert_refused(&answer, "WebhookUnknownFilterException");
    let answer = subscribe(&ip, &subscription).await;
    assert_eq!(answer.0, 400, "a taken name and endpoint: {}", answer.1);
    let (_, list) = ip.get("/api/subscriptions").await;
    assert_eq!(list["totalElements"], 1, "nothing refused was kept: {list}");

    // Read.
    let (status, read) = ip.get(&format!("/api/subscriptions/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(read, created);

    // Update: a new endpoint is pinged; the same endpoint is not pinged again; an endpoint that
    // is down is refused and the subscription stays as it was.
    let second = format!("{}/second", hooks.url);
    let moved = json!({"name": "archive", "pushEndpoint": second, "resource": "messages",
                       "event": "status", "filter": "direction=OUTGOING"});
    let (status, body) = put(&ip, &format!("/api/subscriptions/{id}"), &moved).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        hooks.events("/second", "ping").len(),
        1,
        "the new endpoint is pinged"
    );
    let renamed = json!({"name": "renamed", "pushEndpoint": second, "resource": "messages",
                         "event": "status", "filter": "direction=OUTGOING"});
    let (status, body) = put(&ip, &format!("/api/subscriptions/{id}"), &renamed).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        hooks.events("/second", "ping").len(),
        1,
        "an unchanged endpoint is not pinged again"
    );
    let answer = put(
        &ip,
        &format!("/api/subscriptions/{id}"),
        &json!({"name": "renamed", "pushEndpoint": down, "resource": "all", "event": "all"}),
    )
    .await;
    assert_refused(&answer, "WebhookPushEndpointPingFailedException");
    let (_, read) = ip.get(&format!("/api/subscriptions/{id}")).await;
    assert_eq!(read["name"], "renamed");
    assert_eq!(read["pushEndpoint"], second.as_str());
    assert_eq!(read["resource"], "messages");
    assert_eq!(read["event"], "status");
    assert_eq!(read["filter"], "direction=OUTGOING");

    // Delete.
    let deleted = ip
        .request(Method::DELETE, &format!("/api/subscriptions/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let (status, _) = ip.get(&format!("/api/subscriptions/{id}")).await;
    assert_eq!(status, 404);
    let (_, list) = ip.get("/api/subscriptions").await;
    assert_eq!(list["totalElements"], 0, "{list}");

    ip.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_events_reach_each_subscriber_in_order_with_the_real_fields() {
    let network = Network::start().await;
    let sender = network.integration_point(SENDER).await;
    let receiver = network.integration_point(RECEIVER).await;
    let hooks = Hooks::start().await;
    for (name, path, filter) in [
        (
            "filtered",
            "/filtered",
            Some("status=SENDT,LEVERT&direction=OUTGOING"),
        ),
        ("everything", "/all", None),
    ] {
        let mut subscription = json!({"name": name, "pushEndpoint": format!("{}{path}", hooks.url),
                                      "resource": "all", "event": "all"});
        if let Some(filter) = filter {
            subscription["filter"] = filter.into();
        }
        let (status, body) = subscribe(&sender, &subscription).await;
        assert_eq!(status, 200, "{body}");
    }

    let message_id = sender.send_arkivmelding(SENDER, RECEIVER).await;
    let conversation_id = sender
        .get(&format!("/api/conversations/messageId/{message_id}"))
        .await
        .1["conversationId"]
        .as_str()
        .expect("a conversation id")
        .to_owned();

    let everything = hooks.wait_for_statuses("/all", 4).await;
    assert_eq!(everything, ["OPPRETTET", "SENDT", "MOTTATT", "LEVERT"]);
    let filtered = hooks.wait_for_statuses("/filtered", 2).await;
    assert_eq!(filtered, ["SENDT", "LEVERT"]);
    // Nothing more comes: no duplicates, nothing the filter excludes.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hooks.statuses("/all").len(), 4);
    assert_eq!(hooks.statuses("/filtered").len(), 2);

    for event in hooks
        .events("/all", "status")
        .iter()
        .chain(&hooks.events("/filtered", "status"))
    {
        assert_eq!(event["resource"], "messages", "{event}");
        assert_eq!(event["event"], "status", "{event}");
        assert_eq!(event["messageId"], message_id.as_str(), "{event}");
        assert_eq!(event["conversationId"], conversation_id.as_str(), "{event}");
        assert_eq!(event["direction"], "OUTGOING", "{event}");
        assert_eq!(event["serviceIdentifier"], "DPO", "{event}");
        assert!(event["createdTs"].is_string(), "{event}");
    }
    let statuses = sender.outgoing_statuses(&message_id).await;
    assert_eq!(
        statuses, everything,
        "the events follow the registered statuses"
    );

    sender.service.stop().await;
    receiver.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_survive_a_subscriber_outage_in_order_and_once() {
    let network = Network::start().await;
    let sender = network.integration_point(SENDER).await;
    let receiver = network.integration_point(RECEIVER).await;
    let hooks = Hooks::start().await;
    let (status, body) = subscribe(
        &sender,
        &json!({"name": "durable", "pushEndpoint": format!("{}/durable", hooks.url),
                "resource": "messages", "event": "status"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // The subscriber is down for the first three pushes.
    hooks.refuse_next(3);
    let message_id = sender.send_arkivmelding(SENDER, RECEIVER).await;
    let seen = sender
        .wait_for_status(&message_id, "LEVERT", Duration::from_secs(60))
        .await;
    assert_eq!(seen, ["OPPRETTET", "SENDT", "MOTTATT", "LEVERT"]);

    let delivered = hooks.wait_for_statuses("/durable", 4).await;
    assert_eq!(hooks.refused(), 3, "the outage was seen");
    assert_eq!(delivered, ["OPPRETTET", "SENDT", "MOTTATT", "LEVERT"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        hooks.statuses("/durable"),
        ["OPPRETTET", "SENDT", "MOTTATT", "LEVERT"],
        "none duplicated"
    );
    assert!(
        hooks
            .events("/durable", "status")
            .iter()
            .all(|event| event["messageId"] == message_id.as_str())
    );

    sender.service.stop().await;
    receiver.service.stop().await;
}
