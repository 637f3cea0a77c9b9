//! The DPF channel end to end: 910075918 sends an arkivmelding through the Next Move API, its
//! integration point hands it to SvarUt (SOAP 1.2, MTOM, each document CMS-encrypted to
//! SvarUt), and Testkommune's (910077201) integration point fetches it from SvarInn.

use std::time::Duration;

use ip_tests::channels::{dpf, pretend_size, upload};
use ip_tests::network::{
    IntegrationPoint, Network, arkivmelding_sbd, arkivmelding_xml, message_id, outbox_attempts,
    statuses, wait_until, zip_entry,
};
use reqwest::Method;
use serde_json::Value;
use sha2::{Digest, Sha256};

const SENDER: &str = "910075918";
const RECEIVER: &str = "910077201";
/// SvarUt's limit on a message, decimal.
const ONE_GB: i64 = 1_000_000_000;

/// A PDF-looking document of `size` bytes that no compression shrinks.
fn document(size: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.extend((0..size as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    bytes
}

/// The conversation of outgoing `message_id`.
async fn conversation(ip: &IntegrationPoint, message_id: &str) -> Value {
    ip.get(&format!("/api/conversations/messageId/{message_id}"))
        .await
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arkivmelding_goes_by_svarut_and_arrives_through_svarinn_byte_for_byte() {
    let network = Network::start().await;
    let svarut = dpf::start_svarut(&network).await;
    let sender = dpf::integration_point(&network, &svarut, SENDER).await;
    let receiver = dpf::integration_point(&network, &svarut, RECEIVER).await;

    let (status, capabilities) = sender.get(&format!("/api/capabilities/{RECEIVER}")).await;
    assert_eq!(status, 200, "{capabilities}");
    assert_eq!(capabilities["capabilities"][0]["serviceIdentifier"], "DPF");

    let sbd = arkivmelding_sbd(SENDER, RECEIVER, "vedtak.pdf");
    let message_id = message_id(&sbd);
    let content = document(2 << 20);
    sender.create_with_documents(&sbd, content.clone()).await;
    sender.send(&message_id).await;

    // SvarUt guarantees delivery once it has the forsendelse: LEVERT at once.
    let seen = sender
        .wait_for_status(&message_id, "LEVERT", Duration::from_secs(60))
        .await;
    assert_eq!(seen, ["OPPRETTET", "SENDT", "LEVERT"]);
    let received = svarut.received();
    assert_eq!(received.len(), 1);
    let forsendelse = &received[0];
    assert_eq!(forsendelse.id, message_id, "no SenderRef: the message id");
    assert_eq!(forsendelse.eksternref.as_deref(), Some(message_id.as_str()));
    assert_eq!(
        (forsendelse.sender.as_str(), forsendelse.receiver.as_str()),
        (SENDER, RECEIVER)
    );
    assert!(forsendelse.kryptert);
    assert_eq!(forsendelse.tittel, "Vedtak");
    assert_eq!(
        forsendelse.dokumenter.len(),
        1,
        "the arkivmelding travels as metadata"
    );
    assert_eq!(forsendelse.dokumenter[0].filnavn, "vedtak.pdf");
    assert_eq!(
        forsendelse.dokumenter[0].sha256,
        hex::encode(Sha256::digest(&content)),
        "SvarUt opened the document it was sent"
    );

    // Testkommune's archive system peeks, pops and deletes.
    let peeked = receiver.wait_for_incoming(Duration::from_secs(60)).await;
    let header = &peeked["standardBusinessDocumentHeader"];
    assert_eq!(
        header["documentIdentification"]["instanceIdentifier"],
        message_id.as_str()
    );
    assert_eq!(header["documentIdentification"]["type"], "arkivmelding");
    assert_eq!(
        header["sender"][0]["identifier"]["value"],
        format!("0192:{SENDER}")
    );
    assert_eq!(
        header["receiver"][0]["identifier"]["value"],
        format!("0192:{RECEIVER}")
    );
    let (_, mut archive) = receiver.pop(&message_id).await;
    let popped_document = zip_entry(&mut archive, "vedtak.pdf");
    assert!(
        popped_document == content,
        "the document arrives byte for byte"
    );
    let arkivmelding =
        String::from_utf8(zip_entry(&mut archive, "arkivmelding.xml")).expect("UTF-8 XML");
    assert!(
        arkivmelding.contains("<offentligTittel>Vedtak</offentligTittel>")
            && arkivmelding.contains("<referanseDokumentfil>vedtak.pdf</referanseDokumentfil>")
            && arkivmelding.contains("<journalpostnummer>7</journalpostnummer>"),
        "the arkivmelding is rebuilt from SvarUt's metadata: {arkivmelding}"
    );
    let deleted = receiver
        .request(Method::DELETE, &format!("/api/messages/in/{message_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);

    // SvarInn was told, so the sender's status polling finds LEST.
    let seen = sender
        .wait_for_status(&message_id, "LEST", Duration::from_secs(60))
        .await;
    assert_eq!(seen, ["OPPRETTET", "SENDT", "LEVERT", "LEST"]);
    assert_eq!(
        svarut.received()[0].statuses.last().map(String::as_str),
        Some("LEST")
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, _) = receiver.get("/api/messages/in/peek").await;
    assert_eq!(status, 204, "the receiver sees the forsendelse once");

    sender.service.stop().await;
    receiver.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn svarut_unavailable_for_a_while_delivers_once() {
    let network = Network::start().await;
    let svarut = dpf::start_svarut(&network).await;
    let sender = dpf::integration_point(&network, &svarut, SENDER).await;

    svarut.fail_next(u64::MAX);
    let sbd = arkivmelding_sbd(SENDER, RECEIVER, "vedtak.pdf");
    let message_id = message_id(&sbd);
    sender.create_with_documents(&sbd, document(1000)).await;
    sender.send(&message_id).await;
    wait_until(
        "two refused attempts",
        Duration::from_secs(60),
        async || outbox_attempts(&sender.home, &message_id).await >= Some(2),
    )
    .await;
    assert!(svarut.received().is_empty());
    assert_eq!(
        statuses(&conversation(&sender, &message_id).await),
        ["OPPRETTET"],
        "a 503 is no failure of the message"
    );

    svarut.fail_next(0);
    let seen = sender
        .wait_for_status(&message_id, "LEVERT", Duration::from_secs(60))
        .await;
    assert_eq!(seen, ["OPPRETTET", "SENDT", "LEVERT"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(svarut.received().len(), 1, "delivered once");
    sender.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forsendelse_svarut_refuses_is_feil_with_its_reason() {
    let network = Network::start().await;
    let svarut = dpf::start_svarut(&network).await;
    let sender = dpf::integration_point(&network, &svarut, SENDER).await;

    let sbd = arkivmelding_sbd(SENDER, RECEIVER, "vedtak.pdf");
    let message_id = message_id(&sbd);
    sender
        .create_with_documents(&sbd, b"not a PDF at all".to_vec())
        .await;
    sender.send(&message_id).await;
    let seen = sender
        .wait_for_status(&message_id, "FEIL", Duration::from_secs(60))
        .await;
    assert_eq!(seen, ["OPPRETTET", "FEIL"]);
    let conversation = conversation(&sender, &message_id).await;
    let description = conversation["messageStatuses"][1]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        description.contains("SvarUt") && description.contains("is not application/pdf content"),
        "{conversation}"
    );
    assert!(svarut.received().is_empty());
    sender.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_one_gigabyte_is_refused_before_sending() {
    let network = Network::start().await;
    let svarut = dpf::start_svarut(&network).await;
    let sender = dpf::integration_point(&network, &svarut, SENDER).await;

    let sbd = arkivmelding_sbd(SENDER, RECEIVER, "vedtak.pdf");
    let message_id = message_id(&sbd);
    sender.create_with_documents(&sbd, document(100)).await;
    // The stored document stands in for one that leaves exactly 1000 bytes of the decimal
    // gigabyte beside the arkivmelding.
    let arkivmelding = arkivmelding_xml("Vedtak", &["vedtak.pdf"]).len() as i64;
    pretend_size(
        &sender.home,
        &message_id,
        "vedtak.pdf",
        ONE_GB - arkivmelding - 1000,
    )
    .await;
    let (status, body) = upload(&sender, &message_id, "a.pdf", vec![b'a'; 1000]).await;
    assert_eq!(status, 200, "up to the limit is accepted: {body}");
    let (status, body) = upload(&sender, &message_id, "b.pdf", vec![b'b'; 1]).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["exception"]
            .as_str()
            .is_some_and(|e| e.ends_with("MaxFileSizeExceededException")),
        "{body}"
    );
    assert!(svarut.received().is_empty());
    sender.service.stop().await;
}
