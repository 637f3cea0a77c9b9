//! DPE end to end: eInnsyn's integration point sends an innsynskrav to an agency's over the
//! Service Bus simulator (SAS-signed REST, the agency's queue by the registry's suffix), the
//! receiving integration point takes it by peek-lock and delete, and its archive system pops
//! the documents byte for byte.
//!
//! The receiving integration point's MOTTATT and LEVERT status messages back to the sender are
//! the host's to send (not built yet); here they are put on the sender's queue as the receiving
//! side would write them, which proves the routing by mode and the receiving of status messages.

use std::time::Duration;

use base64::Engine as _;
use ip_tests::artifacts;
use ip_tests::channels::{self, Channel};
use ip_tests::network::{IntegrationPoint, Network, message_id, statuses, wait_until, zip_entry};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use simulators::faults::{Fault, Span};
use simulators::fixture::ServiceBusKey;
use simulators::service_bus::{ServiceBus, ServiceBusConfig};

/// eInnsyn's stand-in: sends innsynskrav, reads its `data` queue.
const SENDER: &str = "910076787";
/// Registered for innsynskrav by DPE: reads its `innsyn` queue.
const RECEIVER: &str = "910075918";
const RECEIVER_QUEUE: &str = "nextbestqueue910075918innsyn";
const SENDER_QUEUE: &str = "nextbestqueue910076787data";
const PROCESS: &str = "urn:no:difi:profile:einnsyn:innsynskrav:ver1.0";
const INNSYNSKRAV: &str = "urn:no:difi:einnsyn:xsd::innsynskrav";
const KEY: &str = "dpe-test-shared-access-key";

fn policy() -> ServiceBusKey {
    ServiceBusKey {
        key_name: "MoveDPE-pilotPolicy".into(),
        key: KEY.into(),
    }
}

async fn bus(configure: impl FnOnce(&mut ServiceBusConfig)) -> ServiceBus {
    let mut config = ServiceBusConfig::new(policy());
    configure(&mut config);
    ServiceBus::start(config).await.expect("the service bus")
}

async fn integration_point(
    network: &Network,
    bus: &ServiceBus,
    orgnr: &str,
    mode: &str,
) -> IntegrationPoint {
    let base = bus.base_url();
    let endpoints = format!("service-bus = \"{base}\"");
    let settings = format!(", mode = \"{mode}\"");
    let channel = Channel {
        name: "dpe",
        plugin: artifacts::DPE,
        provider: &base,
        endpoints: &endpoints,
        settings: &settings,
        secret: "[secrets.dpe]\nkey-name = \"MoveDPE-pilotPolicy\"\nkey = { file = \"dpe-key\" }",
        secret_files: &[("dpe-key", KEY)],
        timeout_seconds: 120,
    };
    channels::integration_point(network, orgnr, &channel).await
}

fn innsynskrav_sbd() -> Value {
    json!({
        "standardBusinessDocumentHeader": {
            "headerVersion": "1.0",
            "sender": [{"identifier": {"value": format!("0192:{SENDER}"), "authority": "iso6523-actorid-upis"}}],
            "receiver": [{"identifier": {"value": format!("0192:{RECEIVER}"), "authority": "iso6523-actorid-upis"}}],
            "documentIdentification": {
                "standard": INNSYNSKRAV,
                "typeVersion": "1.0",
                "instanceIdentifier": uuid::Uuid::new_v4().to_string(),
                "type": "innsynskrav"
            },
            "businessScope": {"scope": [{
                "type": "ConversationId",
                "instanceIdentifier": uuid::Uuid::new_v4().to_string(),
                "identifier": PROCESS
            }]}
        },
        "innsynskrav": {"orgnr": SENDER, "epost": "innsyn@example.invalid"}
    })
}

fn order(length: usize) -> Vec<u8> {
    (0..length).map(|i| (i * 11 % 253) as u8).collect()
}

/// Creates an innsynskrav with `order.xml` of `document`, and sends it; its message id.
async fn send_innsynskrav(ip: &IntegrationPoint, document: &[u8]) -> String {
    let sbd = innsynskrav_sbd();
    let message_id = message_id(&sbd);
    let created = ip.post_json("/api/messages/out", &sbd).await;
    assert_eq!(created.status(), 200, "{}", created.text().await.unwrap());
    upload(ip, &message_id, "order.xml", document.to_vec()).await;
    ip.send(&message_id).await;
    message_id
}

async fn upload(
    ip: &IntegrationPoint,
    message_id: &str,
    name: &str,
    bytes: Vec<u8>,
) -> reqwest::Response {
    ip.request(Method::PUT, &format!("/api/messages/out/{message_id}"))
        .header("content-type", "application/xml")
        .header(
            "content-disposition",
            format!("attachment; name=\"{name}\"; filename=\"{name}\""),
        )
        .body(bytes)
        .send()
        .await
        .expect("an answer")
}

/// Peeks, pops and deletes at `receiver`; the popped package's `order.xml`.
async fn receive(receiver: &IntegrationPoint, message_id: &str) -> Vec<u8> {
    let peeked = receiver.wait_for_incoming(Duration::from_secs(60)).await;
    assert_eq!(
        peeked["standardBusinessDocumentHeader"]["documentIdentification"]["instanceIdentifier"],
        message_id
    );
    let (_, mut archive) = receiver.pop(message_id).await;
    let received = zip_entry(&mut archive, "order.xml");
    receiver.delete_incoming(message_id).await;
    received
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_innsynskrav_travels_over_the_service_bus_byte_for_byte() {
    let network = Network::start().await;
    let bus = bus(|_| {}).await;
    let sender = integration_point(&network, &bus, SENDER, "data").await;

    // The registry offers innsynskrav to the receiver by DPE, with its document type.
    let (status, capabilities) = sender.get(&format!("/api/capabilities/{RECEIVER}")).await;
    assert_eq!(status, 200, "{capabilities}");
    let dpe = capabilities["capabilities"]
        .as_array()
        .and_then(|list| list.iter().find(|c| c["process"] == PROCESS))
        .unwrap_or_else(|| panic!("no innsynskrav capability: {capabilities}"));
    assert_eq!(dpe["serviceIdentifier"], "DPE", "{dpe}");
    assert_eq!(dpe["documentTypes"][0]["type"], "innsynskrav", "{dpe}");

    let document = order(1_200_000);
    let message_id = send_innsynskrav(&sender, &document).await;
    let seen = sender
        .wait_for_status(&message_id, "SENDT", Duration::from_secs(60))
        .await;
    assert_eq!(seen, ["OPPRETTET", "SENDT"]);

    // On the wire, before the receiver runs: the JSON the real one writes, the package
    // base64-encoded twice around a CMS structure, on the queue the registry names.
    let queued = bus.messages(RECEIVER_QUEUE);
    assert_eq!(queued.len(), 1, "one message on {RECEIVER_QUEUE}");
    let payload: Value = serde_json::from_slice(&queued[0].body).expect("a JSON body");
    assert_eq!(
        payload["sbd"]["standardBusinessDocumentHeader"]["documentIdentification"]["instanceIdentifier"],
        message_id.as_str()
    );
    let base64 = base64::engine::general_purpose::STANDARD;
    let once = base64
        .decode(payload["asic"].as_str().expect("asic is a string"))
        .expect("base64");
    let cms = base64.decode(&once).expect("base64 of base64");
    assert_eq!(cms[0], 0x30, "a DER structure (CMS)");
    assert!(queued[0].properties.is_empty(), "BrokerProperties: {{}}");

    let receiver = integration_point(&network, &bus, RECEIVER, "innsyn").await;
    let received = receive(&receiver, &message_id).await;
    assert_eq!(
        sha256(&received),
        sha256(&document),
        "the document arrives byte for byte"
    );
    assert!(
        bus.messages(RECEIVER_QUEUE).is_empty(),
        "deleted from the queue"
    );

    let (_, incoming) = receiver
        .get(&format!(
            "/api/conversations?messageId={message_id}&direction=INCOMING"
        ))
        .await;
    assert_eq!(
        statuses(&incoming["content"][0]),
        ["OPPRETTET", "INNKOMMENDE_MOTTATT", "INNKOMMENDE_LEVERT"]
    );
    assert_eq!(
        sender.outgoing_statuses(&message_id).await,
        ["OPPRETTET", "SENDT"]
    );

    // The receiving side's status messages: no package, on the sender's `data` queue (the
    // receiver reads `innsyn`, so its receipts go to `data`).
    for status in ["MOTTATT", "LEVERT"] {
        let body = json!({"sbd": status_sbd(&message_id, status)});
        put_on_queue(&bus, SENDER_QUEUE, &body).await;
    }
    let seen = sender
        .wait_for_status(&message_id, "LEVERT", Duration::from_secs(60))
        .await;
    assert_eq!(seen, ["OPPRETTET", "SENDT", "MOTTATT", "LEVERT"]);
    wait_until(
        "the status messages deleted",
        Duration::from_secs(30),
        async || bus.messages(SENDER_QUEUE).is_empty(),
    )
    .await;
    sender.service.stop().await;
    receiver.service.stop().await;
}

/// The status message the receiving side sends about `message_id` (it reuses the id).
fn status_sbd(message_id: &str, status: &str) -> Value {
    json!({
        "standardBusinessDocumentHeader": {
            "headerVersion": "1.0",
            "sender": [{"identifier": {"value": format!("0192:{RECEIVER}"), "authority": "iso6523-actorid-upis"}}],
            "receiver": [{"identifier": {"value": format!("0192:{SENDER}"), "authority": "iso6523-actorid-upis"}}],
            "documentIdentification": {
                "standard": "urn:no:difi:eformidling:xsd::status",
                "typeVersion": "1.0",
                "instanceIdentifier": message_id,
                "type": "status"
            },
            "businessScope": {"scope": [{
                "type": "ConversationId",
                "instanceIdentifier": uuid::Uuid::new_v4().to_string(),
                "identifier": "urn:no:difi:profile:eformidling:response:ver1.0"
            }]}
        },
        "status": {"status": status}
    })
}

/// Posts `body` to `queue` as a sender with the policy's key would.
async fn put_on_queue(bus: &ServiceBus, queue: &str, body: &Value) {
    use hmac::Mac as _;
    let url = format!("{}/{queue}/messages", bus.base_url());
    let expiry = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60;
    // The resource unencoded: it holds no `&` or `=`, and the bus signs `sr` as carried.
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(format!("{url}\n{expiry}").as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let token = format!(
        "SharedAccessSignature sr={url}&sig={signature}&se={expiry}&skn=MoveDPE-pilotPolicy"
    );
    let answer = reqwest::Client::new()
        .post(&url)
        .header("authorization", token)
        .header("BrokerProperties", "{}")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("an answer");
    assert_eq!(answer.status(), 201, "{}", answer.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_delays_delivery_once_and_a_message_over_2_mb_is_refused_before_sending() {
    let network = Network::start().await;
    let bus = bus(|_| {}).await;
    let sender = integration_point(&network, &bus, SENDER, "data").await;
    let receiver = integration_point(&network, &bus, RECEIVER, "innsyn").await;

    // Every request to the bus is answered 503 for a few seconds, the receiver's polls too.
    bus.faults()
        .add(
            Fault::Error {
                status: 503,
                share: 1.0,
            },
            Span::Window(Duration::from_secs(4)),
        )
        .expect("a fault rule");
    let document = order(10_000);
    let message_id = send_innsynskrav(&sender, &document).await;
    wait_until("a failed attempt", Duration::from_secs(30), async || {
        ip_tests::network::outbox_attempts(&sender.home, &message_id)
            .await
            .is_some_and(|attempts| attempts > 0)
    })
    .await;
    let received = receive(&receiver, &message_id).await;
    assert_eq!(sha256(&received), sha256(&document));
    assert_eq!(
        sender.outgoing_statuses(&message_id).await,
        ["OPPRETTET", "SENDT"]
    );
    assert!(bus.messages(RECEIVER_QUEUE).is_empty());
    assert!(bus.dead_letters(RECEIVER_QUEUE).is_empty());

    // 2 MB is DPE's limit; one byte more is refused at upload, as the real one refuses it.
    let sbd = innsynskrav_sbd();
    let big = ip_tests::network::message_id(&sbd);
    let created = sender.post_json("/api/messages/out", &sbd).await;
    assert_eq!(created.status(), 200);
    let refused = upload(&sender, &big, "order.xml", vec![b'x'; 2_000_001]).await;
    assert_eq!(refused.status(), 400);
    let error: Value =
        serde_json::from_slice(&refused.bytes().await.expect("a body")).expect("an error body");
    assert!(
        error["exception"]
            .as_str()
            .is_some_and(|e| e.ends_with("MaxFileSizeExceededException"))
            && error["message"]
                .as_str()
                .is_some_and(|m| m.contains("2000000 bytes")),
        "{error}"
    );
    sender.service.stop().await;
    receiver.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_of_the_bus_fails_the_message_with_its_reason() {
    let network = Network::start().await;
    let bus = bus(|config| config.max_message_size = 1000).await;
    let sender = integration_point(&network, &bus, SENDER, "data").await;
    let message_id = send_innsynskrav(&sender, &order(5_000)).await;
    let seen = sender
        .wait_for_status(&message_id, "FEIL", Duration::from_secs(60))
        .await;
    assert_eq!(seen, ["OPPRETTET", "FEIL"], "refused for good, never SENDT");
    let (_, conversation) = sender
        .get(&format!("/api/conversations/messageId/{message_id}"))
        .await;
    let reason = conversation["messageStatuses"][1]["description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        reason.contains("HTTP 413") && reason.contains("larger than the 1000 bytes"),
        "{reason}"
    );
    assert!(bus.messages(RECEIVER_QUEUE).is_empty());
    sender.service.stop().await;
}
