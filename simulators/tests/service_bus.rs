//! DPE's Service Bus driven the way the integration point drives it: each request signed with a
//! shared access signature computed here, independently of the crate (HMAC-SHA256 from `hmac` and
//! `sha2` over the URL-encoded resource URI, a newline and the expiry), then send, peek-lock,
//! delete, lock expiry and redelivery, and the refusals.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::Sha256;
use simulators::fixture::ServiceBusKey;
use simulators::service_bus::{MAX_DELIVERY_COUNT, ServiceBus, ServiceBusConfig};

const KEY_NAME: &str = "MoveDPE-pilotPolicy";
const KEY: &str = "test-key-0123456789";
const QUEUE: &str = "nextbestqueue910075918innsyn";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A SAS for `resource_uri`, as the integration point makes it.
fn sas(resource_uri: &str, key_name: &str, key: &str, expiry: u64) -> String {
    let encoded = urlencoding::encode(resource_uri);
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{encoded}\n{expiry}").as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    format!(
        "SharedAccessSignature sr={encoded}&sig={}&se={expiry}&skn={key_name}",
        urlencoding::encode(&signature)
    )
}

struct Bus {
    bus: ServiceBus,
    http: reqwest::Client,
}

async fn start(lock_duration: Duration, max_message_size: usize) -> Bus {
    let mut config = ServiceBusConfig::new(ServiceBusKey {
        key_name: KEY_NAME.to_owned(),
        key: KEY.to_owned(),
    });
    config.lock_duration = lock_duration;
    config.max_message_size = max_message_size;
    Bus {
        bus: ServiceBus::start(config).await.unwrap(),
        http: reqwest::Client::new(),
    }
}

impl Bus {
    /// The resource URI of `queue`, as the integration point signs it.
    fn resource(&self, queue: &str) -> String {
        format!("{}/{queue}", self.bus.base_url())
    }

    fn authorization(&self, queue: &str) -> String {
        sas(&self.resource(queue), KEY_NAME, KEY, now() + 20)
    }

    async fn send_as(&self, queue: &str, authorization: &str, body: Vec<u8>) -> StatusCode {
        self.http
            .post(format!("{}/{queue}/messages", self.bus.base_url()))
            .header("Authorization", authorization)
            .header("BrokerProperties", "{}")
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
    }

    async fn send(&self, body: &str) {
        let status = self
            .send_as(QUEUE, &self.authorization(QUEUE), body.as_bytes().to_vec())
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }

    async fn head(&self) -> reqwest::Response {
        self.http
            .post(format!("{}/{QUEUE}/messages/head", self.bus.base_url()))
            .header("Authorization", self.authorization(QUEUE))
            .send()
            .await
            .unwrap()
    }

    /// The `BrokerProperties` and body of the locked head message.
    async fn locked(&self) -> (Value, String) {
        let response = self.head().await;
        assert_eq!(response.status(), StatusCode::CREATED);
        assert!(response.headers().contains_key("location"));
        let properties =
            serde_json::from_slice(response.headers()["brokerproperties"].as_bytes()).unwrap();
        (properties, response.text().await.unwrap())
    }

    async fn delete(&self, properties: &Value) -> StatusCode {
        let id = properties["MessageId"].as_str().unwrap();
        let token = properties["LockToken"].as_str().unwrap();
        self.http
            .delete(format!(
                "{}/{QUEUE}/messages/{id}/{token}",
                self.bus.base_url()
            ))
            .header("Authorization", self.authorization(QUEUE))
            .send()
            .await
            .unwrap()
            .status()
    }
}

#[tokio::test]
async fn a_message_is_sent_peek_locked_and_deleted_in_order() {
    let bus = start(Duration::from_secs(30), 1024).await;
    assert_eq!(bus.head().await.status(), StatusCode::NO_CONTENT);
    bus.send(r#"{"sbd":{},"asic":"first"}"#).await;
    bus.send(r#"{"sbd":{},"asic":"second"}"#).await;

    let (first, body) = bus.locked().await;
    assert_eq!(body, r#"{"sbd":{},"asic":"first"}"#);
    assert_eq!(first["SequenceNumber"], 1);
    assert_eq!(first["DeliveryCount"], 1);
    assert!(first["MessageId"].is_string() && first["LockToken"].is_string());
    // The locked head is invisible: the next peek-lock gets the second message.
    let (second, body) = bus.locked().await;
    assert_eq!(body, r#"{"sbd":{},"asic":"second"}"#);
    assert_eq!(second["SequenceNumber"], 2);
    assert_eq!(bus.head().await.status(), StatusCode::NO_CONTENT);

    assert_eq!(bus.delete(&first).await, StatusCode::OK);
    // Deleting again, or with a lock token that is not the message's, finds nothing.
    assert_eq!(bus.delete(&first).await, StatusCode::NOT_FOUND);
    let mut wrong_lock = second.clone();
    wrong_lock["LockToken"] = Value::from(uuid::Uuid::new_v4().to_string());
    assert_eq!(bus.delete(&wrong_lock).await, StatusCode::NOT_FOUND);
    assert_eq!(bus.delete(&second).await, StatusCode::OK);
    assert!(bus.bus.messages(QUEUE).is_empty());
}

#[tokio::test]
async fn an_expired_lock_makes_the_message_visible_again_with_a_higher_delivery_count() {
    let bus = start(Duration::from_millis(1000), 1024).await;
    bus.send("payload").await;
    let (first, _) = bus.locked().await;
    assert_eq!(bus.head().await.status(), StatusCode::NO_CONTENT);
    assert!(bus.bus.messages(QUEUE)[0].locked);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (again, body) = bus.locked().await;
    assert_eq!(body, "payload");
    assert_eq!(again["MessageId"], first["MessageId"]);
    assert_eq!(again["DeliveryCount"], 2);
    assert_ne!(again["LockToken"], first["LockToken"]);
    // The expired lock no longer completes the message; the current one does.
    assert_eq!(bus.delete(&first).await, StatusCode::NOT_FOUND);
    assert_eq!(bus.delete(&again).await, StatusCode::OK);
}

#[tokio::test]
async fn a_message_never_completed_is_dead_lettered_after_the_maximum_deliveries() {
    let bus = start(Duration::from_millis(40), 1024).await;
    bus.send("poison").await;
    for delivery in 1..=MAX_DELIVERY_COUNT {
        let (properties, _) = bus.locked().await;
        assert_eq!(properties["DeliveryCount"], delivery);
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    assert_eq!(bus.head().await.status(), StatusCode::NO_CONTENT);
    assert!(bus.bus.messages(QUEUE).is_empty());
    let dead = bus.bus.dead_letters(QUEUE);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "poison");
}

#[tokio::test]
async fn an_independently_computed_sas_is_accepted_and_a_wrong_one_refused() {
    let bus = start(Duration::from_secs(30), 1024).await;
    let resource = bus.resource(QUEUE);
    let body = || b"{}".to_vec();

    // A signature over the whole namespace covers every queue in it.
    let namespace = sas(&bus.bus.base_url(), KEY_NAME, KEY, now() + 20);
    assert_eq!(
        bus.send_as(QUEUE, &namespace, body()).await,
        StatusCode::CREATED
    );

    let refusals = [
        (
            "wrong key",
            sas(&resource, KEY_NAME, "other-key", now() + 20),
        ),
        (
            "unknown key name",
            sas(&resource, "RootManageSharedAccessKey", KEY, now() + 20),
        ),
        ("expired", sas(&resource, KEY_NAME, KEY, now() - 1)),
        (
            "another queue's resource",
            sas(
                &bus.resource("nextbestqueue910076787innsyn"),
                KEY_NAME,
                KEY,
                now() + 20,
            ),
        ),
        ("no signature", "Bearer abc".to_owned()),
    ];
    for (case, authorization) in &refusals {
        let response = bus
            .http
            .post(format!("{}/{QUEUE}/messages", bus.bus.base_url()))
            .header("Authorization", authorization)
            .body(body())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{case}");
        let text = response.text().await.unwrap();
        assert!(
            text.starts_with("<Error><Code>401</Code><Detail>"),
            "{case}: {text}"
        );
    }
    // The signature's own expiry is what is signed: raising `se` afterwards breaks it.
    let tampered = sas(&resource, KEY_NAME, KEY, now() + 20).replace(
        &format!("se={}", now() + 20),
        &format!("se={}", now() + 3600),
    );
    assert_eq!(
        bus.send_as(QUEUE, &tampered, body()).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(bus.bus.refused() >= refusals.len() as u64);
    assert_eq!(bus.bus.messages(QUEUE).len(), 1);
}

#[tokio::test]
async fn other_queue_names_are_unknown_and_large_messages_are_refused() {
    let bus = start(Duration::from_secs(30), 1024).await;
    for queue in [
        "testqueue",
        "nextbestqueue910075918journal",
        "nextbestqueue910075919innsyn",
    ] {
        let status = bus
            .send_as(queue, &bus.authorization(queue), b"{}".to_vec())
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{queue}");
    }
    let data_queue = "nextbestqueue910075918data";
    let status = bus
        .send_as(data_queue, &bus.authorization(data_queue), vec![b'x'; 1024])
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let status = bus
        .send_as(data_queue, &bus.authorization(data_queue), vec![b'x'; 1025])
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(bus.bus.messages(data_queue).len(), 1);

    bus.bus.fail_next(1);
    let status = bus
        .send_as(data_queue, &bus.authorization(data_queue), b"{}".to_vec())
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let inspected: Value = serde_json::from_slice(
        &bus.http
            .get(format!("{}/_queues", bus.bus.base_url()))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(inspected[data_queue][0]["sequenceNumber"], 1);
}
