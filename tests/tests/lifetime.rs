//! A message's lifetime and the provider's answers, end to end: what the engine makes of a
//! message that outlives its `expectedResponseDateTime`, of a provider that keeps failing, of
//! one that refuses a message for good, and of one that is down for a while.
//!
//! The real integration point drops an unsent message whose lifetime ran out with
//! LEVETID_UTLOPT, gives FEIL at once when the provider refuses for good, and retries while the
//! provider is only unavailable. The engine owns those decisions (plugins only classify), so
//! they are tested here through the whole service, against the loopback peer's real answers.

use std::time::Duration;

use integrasjonspunkt::store::now_millis;
use integrasjonspunkt::timefmt::format_millis;
use ip_tests::network::{IntegrationPoint, Network, arkivmelding_sbd, message_id, outbox_attempts};
use serde_json::Value;

const SENDER: &str = "910075918";
const RECEIVER: &str = "910076787";
const EXPIRED: &str = "Levetiden for meldingen er utgått. Må sendes på nytt";

/// An arkivmelding SBD whose lifetime ends `seconds` from now; its message id.
fn short_lived(seconds: i64) -> (Value, String) {
    let mut sbd = arkivmelding_sbd(SENDER, RECEIVER, "vedtak.pdf");
    sbd["standardBusinessDocumentHeader"]["businessScope"]["scope"][0]["scopeInformation"] = serde_json::json!([{"expectedResponseDateTime": format_millis(now_millis() + seconds * 1000)}]);
    let message_id = message_id(&sbd);
    (sbd, message_id)
}

/// The description of the last status `status` of outgoing message `message_id`.
async fn description(ip: &IntegrationPoint, message_id: &str, status: &str) -> Option<String> {
    let (_, conversation) = ip
        .get(&format!("/api/conversations/messageId/{message_id}"))
        .await;
    conversation["messageStatuses"]
        .as_array()?
        .iter()
        .rev()
        .find(|s| s["status"] == status)?["description"]
        .as_str()
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsent_message_expires_and_is_removed() {
    let network = Network::start().await;
    let ip = network.integration_point(SENDER).await;
    let (sbd, message_id) = short_lived(6);
    ip.create_with_documents(&sbd, b"%PDF-1.7 vedtak".to_vec())
        .await;
    let (status, _) = ip.get(&format!("/api/messages/out/{message_id}")).await;
    assert_eq!(status, 200, "the message waits to be sent");
    assert!(ip.stored_files().await > 0, "with its files stored");

    // Never sent: the lifetime sweep ends it.
    let seen = ip
        .wait_for_status(&message_id, "LEVETID_UTLOPT", Duration::from_secs(60))
        .await;
    assert_eq!(seen, ["OPPRETTET", "LEVETID_UTLOPT"]);
    assert_eq!(
        description(&ip, &message_id, "LEVETID_UTLOPT")
            .await
            .as_deref(),
        Some(EXPIRED)
    );
    let (status, _) = ip.get(&format!("/api/messages/out/{message_id}")).await;
    assert_eq!(status, 404, "the out-message is gone");
    let (_, conversation) = ip
        .get(&format!("/api/conversations/messageId/{message_id}"))
        .await;
    assert_eq!(conversation["finished"], true, "{conversation}");
    // The files go right after the status is committed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while ip.stored_files().await > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ip.stored_files().await, 0, "its files are gone");

    ip.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_provider_never_takes_expires_unsent() {
    let network = Network::start().await;
    let ip = network.integration_point(SENDER).await;
    // Every request to the provider fails with 503 from now on.
    network.peer.fail_next(1_000_000);
    let (sbd, message_id) = short_lived(8);
    ip.create_with_documents(&sbd, b"%PDF-1.7 vedtak".to_vec())
        .await;
    ip.send(&message_id).await;

    let seen = ip
        .wait_for_status(&message_id, "LEVETID_UTLOPT", Duration::from_secs(60))
        .await;
    assert_eq!(seen, ["OPPRETTET", "LEVETID_UTLOPT"], "never SENDT");
    assert_eq!(
        description(&ip, &message_id, "LEVETID_UTLOPT")
            .await
            .as_deref(),
        Some(EXPIRED)
    );
    assert!(
        network.peer.refusals().unavailable > 0,
        "the provider was tried"
    );
    assert!(network.peer.received().is_empty());
    let (status, _) = ip.get(&format!("/api/messages/out/{message_id}")).await;
    assert_eq!(status, 404);
    assert_eq!(
        outbox_attempts(&ip.home, &message_id).await,
        None,
        "out of the outbox"
    );

    ip.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_gives_feil_at_once() {
    // The provider takes packages of at most 4 KiB and answers a larger one 413.
    let network = Network::start_with(|peer| peer.max_package_size = 4096).await;
    let ip = network.integration_point(SENDER).await;
    let (sbd, message_id) = short_lived(3600);
    let document: Vec<u8> = (0..16 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    ip.create_with_documents(&sbd, document).await;
    ip.send(&message_id).await;

    let seen = ip
        .wait_for_status(&message_id, "FEIL", Duration::from_secs(60))
        .await;
    assert_eq!(seen, ["OPPRETTET", "FEIL"], "refused, never SENDT");
    let reason = description(&ip, &message_id, "FEIL").await;
    assert!(
        reason
            .as_deref()
            .is_some_and(|r| r.contains("larger than") && !r.contains("limit of 0 bytes")),
        "the provider's reason: {reason:?}"
    );
    assert_eq!(
        network.peer.refusals().too_large,
        1,
        "refused once, not retried"
    );
    assert!(network.peer.received().is_empty());
    let (_, conversation) = ip
        .get(&format!("/api/conversations/messageId/{message_id}"))
        .await;
    assert_eq!(conversation["finished"], true, "{conversation}");
    assert_eq!(
        outbox_attempts(&ip.home, &message_id).await,
        None,
        "out of the outbox"
    );

    ip.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_outage_is_waited_out_and_the_message_sent_once() {
    let network = Network::start().await;
    let ip = network.integration_point(SENDER).await;
    network.peer.fail_next(1_000_000);
    let (sbd, message_id) = short_lived(3600);
    ip.create_with_documents(&sbd, b"%PDF-1.7 vedtak".to_vec())
        .await;
    ip.send(&message_id).await;

    // The outbox retries while the provider is down.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if outbox_attempts(&ip.home, &message_id).await.unwrap_or(0) >= 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the outbox never retried"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(ip.outgoing_statuses(&message_id).await, ["OPPRETTET"]);

    // The provider recovers.
    network.peer.fail_next(0);
    let seen = ip
        .wait_for_status(&message_id, "MOTTATT", Duration::from_secs(60))
        .await;
    assert_eq!(seen, ["OPPRETTET", "SENDT", "MOTTATT"]);
    let held: Vec<_> = network
        .peer
        .received()
        .into_iter()
        .filter(|m| m.message_id == message_id)
        .collect();
    assert_eq!(held.len(), 1, "the provider holds the message once");
    assert_eq!(
        outbox_attempts(&ip.home, &message_id).await,
        None,
        "out of the outbox"
    );

    ip.service.stop().await;
}
