//! No message accepted is lost and none is delivered twice, even when the sending integration
//! point is killed (SIGKILL, no chance to clean up) while it sends: 2,000 messages, a kill
//! half-way, a restart on the same data.

use std::collections::HashSet;
use std::time::Duration;

use ip_tests::network::{Network, arkivmelding_sbd, multipart_message, wait_healthy, wait_until};
use ip_tests::process::{binary, free_port, start};

const SENDER: &str = "910075918";
const RECEIVER: &str = "910076787";
const MESSAGES: usize = 2000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sender_loses_nothing_and_sends_nothing_twice() {
    let binary = binary();
    let network = Network::start().await;
    let receiver = network.integration_point(RECEIVER).await;
    let home = network.configure(SENDER, "");
    let port = free_port();
    let mut sender = start(&binary, &home, port);
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_healthy(&client, &url, Duration::from_secs(60)).await;

    // The provider is down while the messages go in, so that sending is still under way when
    // the kill comes, however fast the sender is.
    network.peer.fail_next(u64::MAX / 2);

    // Load every message through the API, a few clients at a time.
    let sbds: Vec<serde_json::Value> = (0..MESSAGES)
        .map(|_| arkivmelding_sbd(SENDER, RECEIVER, "a.pdf"))
        .collect();
    let ids: HashSet<String> = sbds
        .iter()
        .map(|sbd| {
            sbd["standardBusinessDocumentHeader"]["documentIdentification"]["instanceIdentifier"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut accepted = 0;
    for chunk in sbds.chunks(8) {
        let sends = chunk.iter().map(|sbd| {
            let (content_type, body) = multipart_message(sbd, &[b'x'; 1024]);
            client
                .post(format!("{url}/api/messages/out/multipart"))
                .basic_auth(
                    ip_tests::network::API_USER,
                    Some(ip_tests::network::API_PASSWORD),
                )
                .header("content-type", content_type)
                .body(body)
                .send()
        });
        for answer in futures::future::join_all(sends).await {
            let answer = answer.expect("the sender answers while loading");
            assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
            accepted += 1;
        }
    }
    assert_eq!(accepted, MESSAGES);

    // The provider recovers; kill the sender half-way through sending.
    network.peer.fail_next(0);
    wait_until(
        "half the messages at the provider",
        Duration::from_secs(300),
        async || network.peer.received_count() >= MESSAGES / 2,
    )
    .await;
    sender.kill().expect("SIGKILL");
    sender.wait().expect("the killed sender is reaped");
    let at_kill = network.peer.received_count();
    assert!(
        at_kill < MESSAGES,
        "the kill came before the end ({at_kill} sent)"
    );

    // Restart on the same data: the outbox resumes.
    let mut sender = start(&binary, &home, port);
    wait_until(
        "every message at the provider",
        Duration::from_secs(600),
        async || network.peer.received_count() >= MESSAGES,
    )
    .await;
    let at_provider: Vec<String> = network
        .peer
        .received()
        .into_iter()
        .map(|m| m.message_id)
        .collect();
    let unique: HashSet<&String> = at_provider.iter().collect();
    assert_eq!(
        unique.len(),
        at_provider.len(),
        "the provider holds each message once"
    );
    assert_eq!(unique.len(), MESSAGES);
    assert!(at_provider.iter().all(|id| ids.contains(id)));

    // The receiving integration point has each message once, and its archive sees each once.
    wait_until(
        "every message at the receiver",
        Duration::from_secs(600),
        async || {
            let (_, page) = receiver.get("/api/messages/in?size=1").await;
            page["totalElements"].as_u64() == Some(MESSAGES as u64)
        },
    )
    .await;
    let mut seen = HashSet::new();
    let mut page = 0;
    loop {
        let (_, listing) = receiver
            .get(&format!("/api/messages/in?size=500&page={page}"))
            .await;
        let content = listing["content"].as_array().unwrap().clone();
        if content.is_empty() {
            break;
        }
        for sbd in content {
            let id = sbd["standardBusinessDocumentHeader"]["documentIdentification"]["instanceIdentifier"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(seen.insert(id), "a message is waiting twice");
        }
        page += 1;
    }
    assert_eq!(seen, ids, "every message accepted arrived, none twice");
    let (_, incoming) = receiver
        .get("/api/conversations?direction=INCOMING&size=1")
        .await;
    assert_eq!(
        incoming["totalElements"], MESSAGES,
        "one conversation per message"
    );

    sender.kill().expect("stopping the sender");
    sender.wait().unwrap();
    receiver.service.stop().await;
}
