//! Several instances of one organisation's integration point on one PostgreSQL database: two
//! sending processes share one outbox and send every message exactly once, and two receiving
//! processes share one inbox from which the archive systems of both take every message once.

use std::collections::HashSet;
use std::time::Duration;

use ip_tests::network::{
    API_PASSWORD, API_USER, Network, arkivmelding_sbd, multipart_message, wait_healthy, wait_until,
};
use ip_tests::postgres::FreshDatabase;
use ip_tests::process::{binary, free_port, start};
use reqwest::Client;

const SENDER: &str = "910075918";
const RECEIVER: &str = "910076787";
const MESSAGES: usize = 200;

async fn get(client: &Client, url: &str) -> (u16, String) {
    let answer = client
        .get(url)
        .basic_auth(API_USER, Some(API_PASSWORD))
        .send()
        .await
        .expect("an answer");
    let status = answer.status().as_u16();
    (status, answer.text().await.unwrap_or_default())
}

/// How many `send` calls the instance's channel plugin has served, from its metrics.
async fn sends(client: &Client, url: &str) -> u64 {
    let (status, text) = get(client, &format!("{url}/manage/prometheus")).await;
    assert_eq!(status, 200, "{text}");
    text.lines()
        .filter(|line| {
            line.starts_with("integrasjonspunkt_plugin_call_duration_seconds_count")
                && line.contains("operation=\"send\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_on_one_postgresql_share_the_outbox_and_the_inbox() {
    let binary = binary();
    let network = Network::start().await;
    let sending = FreshDatabase::create("ip_senders").await;
    let receiving = FreshDatabase::create("ip_receivers").await;
    let client = Client::new();

    let mut processes = Vec::new();
    let mut urls = Vec::new();
    for (orgnr, database) in [(SENDER, &sending), (RECEIVER, &receiving)] {
        for instance in ["-a", "-b"] {
            let home = network.configure_instance(orgnr, instance, &database.url, "", "");
            let port = free_port();
            processes.push(start(&binary, &home, port));
            urls.push(format!("http://127.0.0.1:{port}"));
        }
    }
    for url in &urls {
        wait_healthy(&client, url, Duration::from_secs(60)).await;
    }
    let (senders, receivers) = urls.split_at(2);

    // Messages go in through both sending instances, alternately.
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
    for (index, sbd) in sbds.iter().enumerate() {
        let (content_type, body) = multipart_message(sbd, &[b'x'; 1024]);
        let answer = client
            .post(format!("{}/api/messages/out/multipart", senders[index % 2]))
            .basic_auth(API_USER, Some(API_PASSWORD))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    }

    // Every message reaches the provider once, and the two instances together called the
    // channel's send exactly once per message.
    wait_until(
        "every message at the provider",
        Duration::from_secs(300),
        async || network.peer.received_count() >= MESSAGES,
    )
    .await;
    let at_provider: Vec<String> = network
        .peer
        .received()
        .into_iter()
        .map(|m| m.message_id)
        .collect();
    assert_eq!(at_provider.iter().collect::<HashSet<_>>().len(), MESSAGES);
    assert!(at_provider.iter().all(|id| ids.contains(id)));
    let sent_by_each = [
        sends(&client, &senders[0]).await,
        sends(&client, &senders[1]).await,
    ];
    assert_eq!(
        sent_by_each.iter().sum::<u64>(),
        MESSAGES as u64,
        "no message was sent twice (sends per instance: {sent_by_each:?})"
    );
    assert!(
        sent_by_each.iter().all(|sent| *sent > 0),
        "both instances took part in sending: {sent_by_each:?}"
    );

    // Both receiving instances see one shared inbox of every message.
    wait_until(
        "every message at the receiver",
        Duration::from_secs(300),
        async || {
            let (_, text) = get(&client, &format!("{}/api/messages/in?size=1", receivers[0])).await;
            serde_json::from_str::<serde_json::Value>(&text)
                .is_ok_and(|page| page["totalElements"].as_u64() == Some(MESSAGES as u64))
        },
    )
    .await;
    let (_, text) = get(&client, &format!("{}/api/messages/in?size=1", receivers[1])).await;
    let page: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(page["totalElements"], MESSAGES);

    // Two archive systems, one at each instance, take messages at the same time: each message
    // goes to exactly one of them.
    let consume = |base: String| {
        let client = client.clone();
        async move {
            let mut taken = Vec::new();
            loop {
                let (status, body) = get(&client, &format!("{base}/api/messages/in/peek")).await;
                if status == 204 {
                    return taken;
                }
                assert_eq!(status, 200, "{body}");
                let sbd: serde_json::Value = serde_json::from_str(&body).unwrap();
                let id = sbd["standardBusinessDocumentHeader"]["documentIdentification"]
                    ["instanceIdentifier"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let (status, _) = get(&client, &format!("{base}/api/messages/in/pop/{id}")).await;
                assert_eq!(status, 200);
                let deleted = client
                    .delete(format!("{base}/api/messages/in/{id}"))
                    .basic_auth(API_USER, Some(API_PASSWORD))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    deleted.status(),
                    200,
                    "the lock of the peek holds for the delete"
                );
                taken.push(id);
            }
        }
    };
    let (first, second) =
        tokio::join!(consume(receivers[0].clone()), consume(receivers[1].clone()));
    let all: Vec<&String> = first.iter().chain(&second).collect();
    let unique: HashSet<&String> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "no message was taken twice");
    assert_eq!(unique.len(), MESSAGES, "every message was taken");
    assert!(
        !first.is_empty() && !second.is_empty(),
        "both archive systems took messages"
    );

    for mut process in processes {
        process.kill().ok();
        process.wait().ok();
    }
}
