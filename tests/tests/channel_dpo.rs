//! DPO end to end over the Altinn 2 broker service simulator: two integration points carrying
//! the real `dpo` plugin, the registry routing arkivmelding to DPO, the receiver's integration
//! point sending MOTTATT and LEVERT back as status messages over the broker.

use std::time::Duration;

use ip_tests::channels::dpo::DpoNetwork;
use ip_tests::network::{IntegrationPoint, arkivmelding_sbd, message_id, statuses, zip_entry};
use reqwest::Method;
use serde_json::Value;
use sha2::{Digest, Sha256};
use simulators::altinn_broker::FileState;

const SENDER: &str = "910075918";
const RECEIVER: &str = "910076787";

/// A document of a few MiB that is not text.
fn document(mib: u32) -> Vec<u8> {
    (0..mib * 1024 * 1024)
        .map(|i| (i * 7 % 251) as u8)
        .collect()
}

/// Waits for a message at `receiver`, pops it, checks `vedtak.pdf` is `document` byte for
/// byte, and deletes it.
async fn receive(receiver: &IntegrationPoint, message_id: &str, document: &[u8]) {
    let peeked = receiver.wait_for_incoming(Duration::from_secs(90)).await;
    assert_eq!(
        peeked["standardBusinessDocumentHeader"]["documentIdentification"]["instanceIdentifier"],
        message_id
    );
    let (_, mut archive) = receiver.pop(message_id).await;
    let received = zip_entry(&mut archive, "vedtak.pdf");
    assert_eq!(
        hex::encode(Sha256::digest(&received)),
        hex::encode(Sha256::digest(document)),
        "the document arrives byte for byte"
    );
    assert!(
        archive.by_name("arkivmelding.xml").is_ok(),
        "the arkivmelding travels too"
    );
    receiver.delete_incoming(message_id).await;
}

/// The description of status `status` of outgoing message `message_id`.
async fn status_description(ip: &IntegrationPoint, message_id: &str, status: &str) -> String {
    let (_, conversation) = ip
        .get(&format!("/api/conversations/messageId/{message_id}"))
        .await;
    conversation["messageStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["status"] == status)
        .and_then(|s| s["description"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_goes_over_the_broker_and_mottatt_and_levert_come_back() {
    let dpo = DpoNetwork::start().await;
    let sender = dpo.integration_point(SENDER, "").await;
    let receiver = dpo.integration_point(RECEIVER, "").await;

    let sbd = arkivmelding_sbd(SENDER, RECEIVER, "vedtak.pdf");
    let message_id = message_id(&sbd);
    let document = document(3);
    sender.create_with_documents(&sbd, document.clone()).await;
    sender.send(&message_id).await;

    receive(&receiver, &message_id, &document).await;

    let seen = sender
        .wait_for_status(&message_id, "LEVERT", Duration::from_secs(60))
        .await;
    assert_eq!(seen, ["OPPRETTET", "SENDT", "MOTTATT", "LEVERT"]);
    let (_, incoming) = receiver
        .get(&format!(
            "/api/conversations?messageId={message_id}&direction=INCOMING"
        ))
        .await;
    assert_eq!(
        statuses(&incoming["content"][0]),
        ["OPPRETTET", "INNKOMMENDE_MOTTATT", "INNKOMMENDE_LEVERT"]
    );

    // The broker saw the message and the two status messages, each from the right party,
    // and every file was taken and confirmed by its recipient.
    let files = dpo.broker.files();
    let to_receiver: Vec<_> = files.iter().filter(|f| f.sender == SENDER).collect();
    let to_sender: Vec<_> = files.iter().filter(|f| f.sender == RECEIVER).collect();
    assert_eq!(to_receiver.len(), 1, "{files:?}");
    assert_eq!(to_sender.len(), 2, "MOTTATT and LEVERT: {files:?}");
    for file in &files {
        assert_eq!(file.state, FileState::Uploaded);
        assert_eq!(file.file_name.as_deref(), Some("sbd.zip"));
        assert!(file.recipients.iter().all(|r| r.confirmed), "{file:?}");
    }
    assert!(
        to_sender
            .iter()
            .all(|status| to_receiver[0].size > status.size),
        "the documents travel in the message's file, not in the status messages': {files:?}"
    );
    // The receiver keeps no message of its own for the status messages it sent.
    let (_, outgoing) = receiver.get("/api/conversations?direction=OUTGOING").await;
    assert_eq!(outgoing["totalElements"], 0, "{outgoing}");

    sender.service.stop().await;
    receiver.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_delays_the_message_but_loses_and_doubles_nothing() {
    let dpo = DpoNetwork::start().await;
    let sender = dpo.integration_point(SENDER, "").await;
    let receiver = dpo.integration_point(RECEIVER, "").await;

    let sbd = arkivmelding_sbd(SENDER, RECEIVER, "vedtak.pdf");
    let message_id = message_id(&sbd);
    let document = document(2);
    sender.create_with_documents(&sbd, document.clone()).await;
    dpo.broker.fail_next(8);
    sender.send(&message_id).await;

    receive(&receiver, &message_id, &document).await;
    let seen = sender
        .wait_for_status(&message_id, "LEVERT", Duration::from_secs(60))
        .await;
    assert_eq!(seen, ["OPPRETTET", "SENDT", "MOTTATT", "LEVERT"]);
    let uploaded: Vec<_> = dpo
        .broker
        .files()
        .into_iter()
        .filter(|f| f.sender == SENDER && f.state == FileState::Uploaded)
        .collect();
    assert_eq!(uploaded.len(), 1, "uploaded once: {uploaded:?}");

    sender.service.stop().await;
    receiver.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_by_altinn_is_feil_with_altinns_reason() {
    // A broker whose service edition is not the one the registry names refuses every file.
    let dpo = DpoNetwork::start_with(|broker| broker.service_edition = 1).await;
    let sender = dpo.integration_point(SENDER, "").await;

    let sbd = arkivmelding_sbd(SENDER, RECEIVER, "vedtak.pdf");
    let message_id = message_id(&sbd);
    sender.create_with_documents(&sbd, document(1)).await;
    sender.send(&message_id).await;

    let seen = sender
        .wait_for_status(&message_id, "FEIL", Duration::from_secs(60))
        .await;
    assert_eq!(seen, ["OPPRETTET", "FEIL"]);
    let reason = status_description(&sender, &message_id, "FEIL").await;
    assert!(
        reason.contains(
            "No broker service exists with external service code 4192 and edition 270815"
        ),
        "{reason}"
    );
    assert!(dpo.broker.files().is_empty());
    sender.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_channel_limit_is_refused_before_sending() {
    let dpo = DpoNetwork::start().await;

    // DPO's own limit, as the channel reports it to the host.
    let sender = dpo.integration_point(SENDER, "").await;
    let (status, plugins) = sender.get("/manage/plugins").await;
    assert_eq!(status, 200, "{plugins}");
    assert_eq!(plugins["plugins"][0]["service"], "DPO");
    assert_eq!(plugins["plugins"][0]["maxMessageSize"], 1_000_000_000u64);
    sender.service.stop().await;

    // The same limit, doubled by a small one so no gigabyte is uploaded: refused at upload.
    let sender = dpo
        .integration_point(SENDER, r#", max-message-size = "1048576""#)
        .await;
    let sbd = arkivmelding_sbd(SENDER, RECEIVER, "vedtak.pdf");
    let message_id = message_id(&sbd);
    let created = sender.post_json("/api/messages/out", &sbd).await;
    assert_eq!(created.status(), 200);
    let uploaded = sender
        .request(Method::PUT, &format!("/api/messages/out/{message_id}"))
        .header("content-type", "application/pdf")
        .header(
            "content-disposition",
            "attachment; name=\"vedtak.pdf\"; filename=\"vedtak.pdf\"",
        )
        .body(document(2))
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 400);
    let error: Value = serde_json::from_slice(&uploaded.bytes().await.unwrap()).unwrap();
    assert!(
        error["exception"]
            .as_str()
            .is_some_and(|e| e.ends_with("MaxFileSizeExceededException")),
        "{error}"
    );
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("1048576")),
        "{error}"
    );
    assert!(dpo.broker.files().is_empty(), "nothing reached the broker");
    sender.service.stop().await;
}
