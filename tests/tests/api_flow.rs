//! The Next Move API end to end: an archive system sends through one integration point and
//! another organisation's archive system receives through its own, over the loopback channel
//! standing in for DPO, with the real registry routing, tokens and credentials in between.

use std::time::Duration;

use ip_tests::network::{
    IntegrationPoint, Network, arkivmelding_sbd, arkivmelding_xml, message_id, multipart_message,
    outbox_attempts, statuses, wait_until, zip_entry,
};
use reqwest::Method;
use sha2::{Digest, Sha256};

const SENDER: &str = "910075918";
const RECEIVER: &str = "910076787";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_travels_from_one_archive_to_another_byte_for_byte() {
    let network = Network::start().await;
    let sender = network.integration_point(SENDER).await;
    let receiver = network.integration_point(RECEIVER).await;

    // What the receiver accepts, and the registry's answer relayed.
    let (status, capabilities) = sender.get(&format!("/api/capabilities/{RECEIVER}")).await;
    assert_eq!(status, 200, "{capabilities}");
    let capability = &capabilities["capabilities"][0];
    assert_eq!(capability["serviceIdentifier"], "DPO");
    assert_eq!(capability["documentTypes"][0]["type"], "arkivmelding");
    let (status, relayed) = sender.get(&format!("/servicerecord/{RECEIVER}")).await;
    assert_eq!(status, 200, "{relayed}");
    assert_eq!(relayed["serviceRecord"]["service"]["identifier"], "DPO");
    let (status, _) = sender.get("/api/capabilities/999999999").await;
    assert_eq!(status, 404, "an identifier the registry does not know");

    // Create: the answer is the SBD with the defaults filled in.
    let sbd = arkivmelding_sbd(SENDER, RECEIVER, "vedtak.pdf");
    let created = sender.post_json("/api/messages/out", &sbd).await;
    assert_eq!(created.status(), 200, "{}", created.text().await.unwrap());
    let created: serde_json::Value =
        serde_json::from_slice(&created.bytes().await.unwrap()).unwrap();
    let message_id =
        created["standardBusinessDocumentHeader"]["documentIdentification"]["instanceIdentifier"]
            .as_str()
            .unwrap()
            .to_owned();
    assert!(
        created["standardBusinessDocumentHeader"]["documentIdentification"]["creationDateAndTime"]
            .is_string()
    );
    assert!(
        created["standardBusinessDocumentHeader"]["businessScope"]["scope"][0]["scopeInformation"]
            [0]["expectedResponseDateTime"]
            .is_string(),
        "the default lifetime is applied: {created}"
    );

    // Upload: the arkivmelding and the document it refers to (3 MiB, not text).
    let document: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let uploads = [
        (
            "arkivmelding.xml",
            "application/xml",
            arkivmelding_xml("Vedtak om byggesak", &["vedtak.pdf"]).into_bytes(),
        ),
        ("vedtak.pdf", "application/pdf", document.clone()),
    ];
    for (name, mime, bytes) in uploads {
        let uploaded = sender
            .request(Method::PUT, &format!("/api/messages/out/{message_id}"))
            .header("content-type", mime)
            .header(
                "content-disposition",
                format!("attachment; name=\"{name}\"; filename=\"{name}\""),
            )
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(uploaded.status(), 200, "{}", uploaded.text().await.unwrap());
    }
    let (_, conversation) = sender
        .get(&format!("/api/conversations/messageId/{message_id}"))
        .await;
    assert_eq!(conversation["messageTitle"], "Vedtak om byggesak");
    assert_eq!(
        conversation["messageReference"],
        "0f7d5f0e-5c5b-4d8f-a0b0-6f3f3c1d9a11-7"
    );
    assert_eq!(conversation["serviceIdentifier"], "DPO");

    // Send: only the outbox row is written; the engine does the rest.
    let sent = sender
        .request(Method::POST, &format!("/api/messages/out/{message_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200, "{}", sent.text().await.unwrap());

    // The receiver's archive system peeks, pops and deletes.
    let peeked = receiver.wait_for_incoming(Duration::from_secs(60)).await;
    assert_eq!(
        peeked["standardBusinessDocumentHeader"]["documentIdentification"]["instanceIdentifier"],
        message_id.as_str()
    );
    let (content_type, mut archive) = receiver.pop(&message_id).await;
    assert_eq!(content_type, "application/vnd.etsi.asic-e+zip");
    let received = zip_entry(&mut archive, "vedtak.pdf");
    assert_eq!(
        hex::encode(Sha256::digest(&received)),
        hex::encode(Sha256::digest(&document)),
        "the document arrives byte for byte"
    );
    receiver.delete_incoming(&message_id).await;

    // The receiver's side of the conversation.
    let (_, incoming) = receiver
        .get(&format!(
            "/api/conversations?messageId={message_id}&direction=INCOMING"
        ))
        .await;
    assert_eq!(incoming["totalElements"], 1, "{incoming}");
    assert_eq!(
        statuses(&incoming["content"][0]),
        ["OPPRETTET", "INNKOMMENDE_MOTTATT", "INNKOMMENDE_LEVERT"]
    );

    // The sender sees the status sequence the real integration point shows.
    let seen = sender
        .wait_for_status(&message_id, "LEVERT", Duration::from_secs(30))
        .await;
    assert_eq!(seen, ["OPPRETTET", "SENDT", "MOTTATT", "LEVERT"]);
    let (_, finished) = sender
        .get(&format!("/api/conversations/messageId/{message_id}"))
        .await;
    assert_eq!(finished["finished"], true);
    // After sending, the out-message and its files are gone; the conversation stays.
    let (status, _) = sender.get(&format!("/api/messages/out/{message_id}")).await;
    assert_eq!(status, 404);

    // The statuses API lists the same sequence, paged as Spring pages it.
    let (_, page) = sender
        .get(&format!("/api/statuses?messageId={message_id}&size=2"))
        .await;
    assert_eq!(page["totalElements"], 4, "{page}");
    assert_eq!(page["totalPages"], 2);
    assert_eq!(page["content"][0]["status"], "OPPRETTET");
    assert_eq!(page["content"][1]["status"], "SENDT");

    sender.service.stop().await;
    receiver.service.stop().await;
}

/// A multipart send with a document too large to keep in its row (over 256 KiB): the document
/// is kept as a blob once the message's rows are committed. An integration point restarted
/// before the send, which has nothing of it in memory any more, still sends it whole from what
/// it stored, and removes the blob once it is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_multipart_document_is_kept_until_sent_even_across_a_restart() {
    let network = Network::start().await;
    let receiver = network.integration_point(RECEIVER).await;
    let home = network.configure(SENDER, "");
    let sender = IntegrationPoint::start(&home).await;

    // The provider is down, so the first attempt, made from what the API had in hand, fails.
    network.peer.fail_next(u64::MAX / 2);
    let sbd = arkivmelding_sbd(SENDER, RECEIVER, "a.pdf");
    let message_id = message_id(&sbd);
    let document: Vec<u8> = (0..1024 * 1024u32).map(|i| (i * 13 % 251) as u8).collect();
    let (content_type, body) = multipart_message(&sbd, &document);
    let accepted = sender
        .request(Method::POST, "/api/messages/out/multipart")
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200, "{}", accepted.text().await.unwrap());
    wait_until("a refused attempt", Duration::from_secs(60), async || {
        outbox_attempts(&home, &message_id)
            .await
            .is_some_and(|attempts| attempts >= 1)
    })
    .await;
    sender.service.stop().await;

    // Restarted: the document is a blob of its own, the arkivmelding a row.
    let sender = IntegrationPoint::start(&home).await;
    // A second instance on the same SQLite database would send what the first has claimed.
    let refused = IntegrationPoint::try_start(&home)
        .await
        .err()
        .expect("a second instance is refused");
    assert!(
        format!("{refused:#}").contains("in use by another integration point"),
        "{refused:#}"
    );
    assert_eq!(
        sender.stored_files().await,
        2,
        "one blob and one inline file"
    );
    network.peer.fail_next(0);

    let peeked = receiver.wait_for_incoming(Duration::from_secs(60)).await;
    assert_eq!(
        peeked["standardBusinessDocumentHeader"]["documentIdentification"]["instanceIdentifier"],
        message_id.as_str()
    );
    let (_, mut archive) = receiver.pop(&message_id).await;
    assert_eq!(
        hex::encode(Sha256::digest(zip_entry(&mut archive, "a.pdf"))),
        hex::encode(Sha256::digest(&document)),
        "the document arrives byte for byte"
    );
    receiver.delete_incoming(&message_id).await;
    let seen = sender
        .wait_for_status(&message_id, "LEVERT", Duration::from_secs(30))
        .await;
    assert_eq!(seen, ["OPPRETTET", "SENDT", "MOTTATT", "LEVERT"]);
    wait_until(
        "the sent files removed",
        Duration::from_secs(30),
        async || sender.stored_files().await == 0,
    )
    .await;

    sender.service.stop().await;
    receiver.service.stop().await;
}
