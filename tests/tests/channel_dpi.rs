//! The DPI channel end to end: 910075918 sends vedtak to citizens through the Next Move API;
//! its integration point hands each to the corner-2 meldingsformidler as a signed
//! forretningsmelding and an encrypted XAdES dokumentpakke, digitally to Kari Digital's mailbox
//! and on paper for Per Papir, who is reserved, and follows the receipts.

use std::time::Duration;

use ip_tests::channels::dpi::{self, KARI_DIGITAL, PER_PAPIR};
use ip_tests::channels::{pretend_size, upload};
use ip_tests::network::{
    IntegrationPoint, Network, message_id, outbox_attempts, statuses, wait_until,
};
use serde_json::{Value, json};
use simulators::dpi::Meldingsformidler;

const SENDER: &str = "910075918";
const VEDTAK: &str = "urn:no:difi:profile:digitalpost:vedtak:ver1.0";
/// DPI's limit on a message, decimal.
const FIFTY_MB: i64 = 50_000_000;

/// A Next Move `digital` or `print` SBD of a vedtak to `citizen`.
fn sbd(citizen: &str, kind: &str) -> Value {
    let standard = match kind {
        "digital" => "urn:no:difi:digitalpost:xsd:digital::digital",
        _ => "urn:no:difi:digitalpost:xsd:fysisk::print",
    };
    let business = match kind {
        "digital" => json!({
            "hoveddokument": "vedtak.pdf", "sikkerhetsnivaa": 3, "tittel": "Vedtak",
            "spraak": "NO", "avsenderId": "vedtak-avdelingen",
            "digitalPostInfo": {"virkningsdato": "2024-01-01", "aapningskvittering": true},
            "varsler": {"epostTekst": "Du har fått post", "smsTekst": "Du har fått post"}
        }),
        _ => json!({
            "hoveddokument": "vedtak.pdf", "avsenderId": "vedtak-avdelingen",
            "utskriftsfarge": "SORT_HVIT", "posttype": "B_OEKONOMI",
            "retur": {"mottaker": {"navn": "Lokal testetat", "adresselinje1": "Testveien 1",
                "postnummer": "0150", "poststed": "Oslo", "land": "Norge"},
                "returhaandtering": "DIREKTE_RETUR"}
        }),
    };
    json!({
        "standardBusinessDocumentHeader": {
            "headerVersion": "1.0",
            "sender": [{"identifier": {"value": format!("0192:{SENDER}"), "authority": "iso6523-actorid-upis"}}],
            "receiver": [{"identifier": {"value": citizen, "authority": "iso6523-actorid-upis"}}],
            "documentIdentification": {
                "standard": standard,
                "typeVersion": "1.0",
                "instanceIdentifier": uuid::Uuid::new_v4().to_string(),
                "type": kind
            },
            "businessScope": {"scope": [{
                "type": "ConversationId",
                "instanceIdentifier": uuid::Uuid::new_v4().to_string(),
                "identifier": VEDTAK
            }]}
        },
        kind: business
    })
}

/// Creates the message `sbd` describes with its main document, `vedtak.pdf`.
async fn create(ip: &IntegrationPoint, sbd: &Value) -> String {
    let created = ip.post_json("/api/messages/out", sbd).await;
    assert_eq!(created.status(), 200, "{}", created.text().await.unwrap());
    let message_id = message_id(sbd);
    let (status, body) = upload(ip, &message_id, "vedtak.pdf", b"%PDF-1.7 vedtak".to_vec()).await;
    assert_eq!(status, 200, "{body}");
    message_id
}

async fn started() -> (Network, Meldingsformidler, IntegrationPoint) {
    let network = Network::start().await;
    let formidler = dpi::start_meldingsformidler(&network).await;
    let sender = dpi::integration_point(&network, &formidler, SENDER).await;
    (network, formidler, sender)
}

/// Waits until the meldingsformidler has no unread receipt left.
async fn all_receipts_read(formidler: &Meldingsformidler) {
    wait_until(
        "every receipt confirmed",
        Duration::from_secs(30),
        async || formidler.unread_receipts().is_empty(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digital_post_reaches_the_mailbox_and_is_opened() {
    let (_network, formidler, sender) = started().await;
    let (status, capabilities) = sender
        .get(&format!("/api/capabilities/{KARI_DIGITAL}"))
        .await;
    assert_eq!(status, 200, "{capabilities}");

    let sbd = sbd(KARI_DIGITAL, "digital");
    let message_id = create(&sender, &sbd).await;
    sender.send(&message_id).await;
    let seen = sender
        .wait_for_status(&message_id, "LEVERT", Duration::from_secs(60))
        .await;
    assert_eq!(seen, ["OPPRETTET", "SENDT", "MOTTATT", "LEVERT"]);

    let received = formidler.received();
    assert_eq!(received.len(), 1);
    let message = &received[0];
    assert_eq!(message.message_id, message_id);
    assert_eq!(message.message_type, "digital");
    assert_eq!(
        message.provider, "984661185",
        "encrypted to Kari's mailbox provider"
    );
    assert_eq!(message.sender, format!("0192:{SENDER}"));
    assert_eq!(
        message.avsenderidentifikator.as_deref(),
        Some("vedtak-avdelingen")
    );
    for entry in ["manifest.xml", "vedtak.pdf", "META-INF/signatures.xml"] {
        assert!(
            message.asic_entries.iter().any(|e| e == entry),
            "{entry}: {:?}",
            message.asic_entries
        );
    }
    let digital = &message.sbd["digital"];
    assert_eq!(digital["mottaker"]["postkasseadresse"], "kari.digital#4711");
    assert_eq!(digital["aapningskvittering"], true);
    assert!(
        digital["maskinportentoken"]
            .as_str()
            .is_some_and(|t| t.len() > 20)
    );
    assert_eq!(
        digital["varsler"]["smsvarsel"]["mobiltelefonnummer"],
        "+4799999901"
    );
    all_receipts_read(&formidler).await;

    // Kari opens it.
    formidler.mark_opened(&message_id).unwrap();
    let seen = sender
        .wait_for_status(&message_id, "LEST", Duration::from_secs(60))
        .await;
    assert_eq!(seen, ["OPPRETTET", "SENDT", "MOTTATT", "LEVERT", "LEST"]);
    all_receipts_read(&formidler).await;
    sender.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vedtak_to_a_reserved_citizen_goes_to_print() {
    let (_network, formidler, sender) = started().await;
    let sbd = sbd(PER_PAPIR, "print");
    let message_id = create(&sender, &sbd).await;
    sender.send(&message_id).await;
    let seen = sender
        .wait_for_status(&message_id, "LEVERT", Duration::from_secs(60))
        .await;
    assert_eq!(seen, ["OPPRETTET", "SENDT", "MOTTATT", "LEVERT"]);

    let received = formidler.received();
    assert_eq!(received.len(), 1);
    let message = &received[0];
    assert_eq!(message.message_type, "utskrift");
    assert_eq!(
        message.provider, "984661185",
        "encrypted to the print provider"
    );
    let utskrift = &message.sbd["utskrift"];
    assert_eq!(
        utskrift["mottaker"]["navn"], "Per Papir",
        "the registry's address"
    );
    assert_eq!(utskrift["mottaker"]["postnummer"], "5003");
    assert_eq!(utskrift["retur"]["mottaker"]["poststed"], "Oslo");
    assert_eq!(utskrift["posttype"], "B");
    all_receipts_read(&formidler).await;
    sender.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_meldingsformidler_unavailable_for_a_while_delivers_once() {
    let (_network, formidler, sender) = started().await;
    formidler.fail_next(u64::MAX);
    let sbd = sbd(KARI_DIGITAL, "digital");
    let message_id = create(&sender, &sbd).await;
    sender.send(&message_id).await;
    wait_until(
        "two refused attempts",
        Duration::from_secs(60),
        async || outbox_attempts(&sender.home, &message_id).await >= Some(2),
    )
    .await;
    assert!(formidler.received().is_empty());

    formidler.fail_next(0);
    let seen = sender
        .wait_for_status(&message_id, "LEVERT", Duration::from_secs(60))
        .await;
    assert_eq!(seen, ["OPPRETTET", "SENDT", "MOTTATT", "LEVERT"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(formidler.received().len(), 1, "delivered once");
    assert_eq!(formidler.received()[0].receipts, ["leveringskvittering"]);
    sender.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_failure_is_feil_with_its_reason() {
    let (_network, formidler, sender) = started().await;
    let sbd = sbd(KARI_DIGITAL, "digital");
    let message_id = create(&sender, &sbd).await;
    sender.send(&message_id).await;
    sender
        .wait_for_status(&message_id, "LEVERT", Duration::from_secs(60))
        .await;
    formidler
        .mark_failed(&message_id, "the mailbox is closed")
        .unwrap();
    let seen = sender
        .wait_for_status(&message_id, "FEIL", Duration::from_secs(60))
        .await;
    assert_eq!(seen.last().map(String::as_str), Some("FEIL"), "{seen:?}");
    let (_, conversation) = sender
        .get(&format!("/api/conversations/messageId/{message_id}"))
        .await;
    let feil = conversation["messageStatuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["status"] == "FEIL")
        .unwrap();
    assert_eq!(
        feil["description"], "the mailbox is closed",
        "{conversation}"
    );
    assert_eq!(
        statuses(&conversation)
            .iter()
            .filter(|s| *s == "FEIL")
            .count(),
        1
    );
    all_receipts_read(&formidler).await;
    sender.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_fifty_megabytes_is_refused_before_sending() {
    let (_network, formidler, sender) = started().await;
    let sbd = sbd(KARI_DIGITAL, "digital");
    let message_id = create(&sender, &sbd).await;
    // The main document stands in for one that leaves exactly 1000 bytes of the 50 MB.
    pretend_size(&sender.home, &message_id, "vedtak.pdf", FIFTY_MB - 1000).await;
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
    assert!(formidler.received().is_empty());
    sender.service.stop().await;
}
