//! DPV end to end: an archive system sends through its integration point, the DPV plugin puts
//! the correspondence in the receiver's Altinn inbox through the correspondence agency
//! simulator (SOAP 1.2, WS-Security with the organisation's end-user system), and the statuses
//! follow Altinn's: Created gives LEVERT, Read gives LEST.

use std::path::Path;
use std::time::Duration;

use ip_tests::artifacts;
use ip_tests::channels::{self, Channel};
use ip_tests::network::{
    IntegrationPoint, Network, arkivmelding_sbd, arkivmelding_xml, message_id,
};
use reqwest::Method;
use sha2::{Digest, Sha256};
use simulators::altinn_correspondence::{
    AltinnCorrespondence, AltinnCorrespondenceConfig, Correspondence, CorrespondenceStatus,
};
use simulators::fixture::Fixture;

/// Registered in ELMA; sends with its Altinn 2 end-user system 20001.
const SENDER: &str = "910075918";
/// Neither in ELMA nor in SvarUt: arkivmelding to it goes by DPV.
const RECEIVER: &str = "910077309";

fn fixture() -> Fixture {
    Fixture::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../simulators/fixture.toml"))
        .expect("the fixture")
}

async fn agency(configure: impl FnOnce(&mut AltinnCorrespondenceConfig)) -> AltinnCorrespondence {
    let mut config = AltinnCorrespondenceConfig::new(fixture());
    configure(&mut config);
    AltinnCorrespondence::start(config)
        .await
        .expect("the correspondence agency")
}

async fn sender(network: &Network, agency: &AltinnCorrespondence) -> IntegrationPoint {
    let endpoints = format!("correspondence = \"{}\"", agency.service_url());
    let base = agency.base_url();
    let channel = Channel {
        name: "dpv",
        plugin: artifacts::DPV,
        provider: &base,
        endpoints: &endpoints,
        settings: "",
        secret: "[secrets.dpv]\nusername = \"20001\"\npassword = { file = \"dpv-password\" }",
        secret_files: &[("dpv-password", "lokal-testetat-passord")],
        timeout_seconds: 120,
    };
    channels::integration_point(network, SENDER, &channel).await
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A document that is not text and not small: base64 of it must be streamed right.
fn document(length: usize) -> Vec<u8> {
    (0..length).map(|i| (i * 7 % 251) as u8).collect()
}

fn the_correspondence(agency: &AltinnCorrespondence, message_id: &str) -> Vec<Correspondence> {
    agency
        .correspondences()
        .into_iter()
        .filter(|c| c.external_shipment_reference == message_id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correspondence_carries_the_documents_and_its_statuses_follow_altinn() {
    let network = Network::start().await;
    let agency = agency(|_| {}).await;
    let ip = sender(&network, &agency).await;

    let (status, capabilities) = ip.get(&format!("/api/capabilities/{RECEIVER}")).await;
    assert_eq!(status, 200, "{capabilities}");
    assert_eq!(capabilities["capabilities"][0]["serviceIdentifier"], "DPV");

    let sbd = arkivmelding_sbd(SENDER, RECEIVER, "vedtak.pdf");
    let message_id = message_id(&sbd);
    let pdf = document(1_000_001);
    ip.create_with_documents(&sbd, pdf.clone()).await;
    ip.send(&message_id).await;

    let seen = ip
        .wait_for_status(&message_id, "LEVERT", Duration::from_secs(60))
        .await;
    assert_eq!(seen, ["OPPRETTET", "SENDT", "LEVERT"]);

    let held = the_correspondence(&agency, &message_id);
    assert_eq!(held.len(), 1, "{held:?}");
    let correspondence = &held[0];
    assert_eq!(correspondence.sender, SENDER);
    assert_eq!(correspondence.system_user_code, "20001");
    assert_eq!(correspondence.reportee, RECEIVER);
    assert_eq!(
        (
            correspondence.service_code.as_str(),
            correspondence.service_edition.as_str()
        ),
        ("4255", "10"),
        "the registry's Altinn service"
    );
    assert_eq!(correspondence.language_code.as_deref(), Some("1044"));
    assert!(correspondence.due_date_time.is_some());
    assert!(correspondence.allow_system_delete_date_time.is_some());
    assert_eq!(correspondence.allow_forwarding, Some(true));
    let notification = &correspondence.notifications[0];
    assert_eq!(
        notification.from_address.as_deref(),
        Some("no-reply@altinn.no")
    );
    assert!(notification.shipment_date_time.is_some());
    assert_eq!(
        notification.receivers[0].transport_type.as_deref(),
        Some("Both")
    );
    assert!(notification.text_tokens[0].contains("$reporterName$"));

    let attachments: Vec<(&str, u64, &str)> = correspondence
        .attachments
        .iter()
        .map(|a| (a.file_name.as_str(), a.size, a.sha256.as_str()))
        .collect();
    let arkivmelding = arkivmelding_xml("Vedtak", &["vedtak.pdf"]);
    assert_eq!(
        attachments,
        [
            (
                "arkivmelding.xml",
                arkivmelding.len() as u64,
                sha256(arkivmelding.as_bytes()).as_str()
            ),
            ("vedtak.pdf", pdf.len() as u64, sha256(&pdf).as_str()),
        ],
        "the documents arrive byte for byte"
    );
    assert!(correspondence.attachments.iter().all(|a| !a.encrypted));

    agency
        .mark(SENDER, &message_id, CorrespondenceStatus::Read)
        .expect("the correspondence is there");
    let seen = ip
        .wait_for_status(&message_id, "LEST", Duration::from_secs(60))
        .await;
    assert_eq!(seen, ["OPPRETTET", "SENDT", "LEVERT", "LEST"]);
    ip.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_delays_delivery_once_and_a_message_over_30_mb_is_refused_before_sending() {
    let network = Network::start().await;
    let agency = agency(|_| {}).await;
    let ip = sender(&network, &agency).await;

    // The agency answers 503 to the first attempts, then recovers.
    agency.fail_next(3);
    let message_id = ip.send_arkivmelding(SENDER, RECEIVER).await;
    let seen = ip
        .wait_for_status(&message_id, "LEVERT", Duration::from_secs(60))
        .await;
    assert_eq!(seen, ["OPPRETTET", "SENDT", "LEVERT"]);
    assert_eq!(
        the_correspondence(&agency, &message_id).len(),
        1,
        "delivered once"
    );

    // 30 MB is DPV's limit; one byte more is refused at upload, as the real one refuses it.
    let sbd = arkivmelding_sbd(SENDER, RECEIVER, "big.pdf");
    let big = message_id_of_created(&ip, &sbd).await;
    let refused = ip
        .request(Method::PUT, &format!("/api/messages/out/{big}"))
        .header("content-type", "application/pdf")
        .header(
            "content-disposition",
            "attachment; name=\"big.pdf\"; filename=\"big.pdf\"",
        )
        .body(vec![0u8; 30_000_001])
        .send()
        .await
        .expect("an answer");
    assert_eq!(refused.status(), 400);
    let error: serde_json::Value =
        serde_json::from_slice(&refused.bytes().await.expect("a body")).expect("an error body");
    assert!(
        error["exception"]
            .as_str()
            .is_some_and(|e| e.ends_with("MaxFileSizeExceededException"))
            && error["message"]
                .as_str()
                .is_some_and(|m| m.contains("30000000 bytes")),
        "{error}"
    );
    assert_eq!(
        agency.correspondences().len(),
        1,
        "nothing more reached Altinn"
    );
    ip.service.stop().await;
}

async fn message_id_of_created(ip: &IntegrationPoint, sbd: &serde_json::Value) -> String {
    let created = ip.post_json("/api/messages/out", sbd).await;
    assert_eq!(created.status(), 200, "{}", created.text().await.unwrap());
    message_id(sbd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_of_the_agency_fails_the_message_with_altinns_reason() {
    let network = Network::start().await;
    let agency = agency(|config| config.max_correspondences = 0).await;
    let ip = sender(&network, &agency).await;
    let message_id = ip.send_arkivmelding(SENDER, RECEIVER).await;
    let seen = ip
        .wait_for_status(&message_id, "FEIL", Duration::from_secs(60))
        .await;
    assert_eq!(seen, ["OPPRETTET", "FEIL"], "refused for good, never SENDT");
    let (_, conversation) = ip
        .get(&format!("/api/conversations/messageId/{message_id}"))
        .await;
    let reason = conversation["messageStatuses"][1]["description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        reason.contains("Altinn fault 30020")
            && reason.contains("already holds its limit of 0 correspondences"),
        "{reason}"
    );
    ip.service.stop().await;
}
