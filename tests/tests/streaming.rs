//! Payloads travel by handle: a 256 MiB document goes out through a plugin whose memory is capped
//! at 16 MiB, as an HTTP body streamed by the host, arrives whole at the peer, and comes back
//! through the receiving plugin's download into a blob, byte for byte.

use std::sync::Arc;

use integrasjonspunkt::archive;
use integrasjonspunkt::plugins::PluginSpec;
use integrasjonspunkt::plugins::bindings::{Pending, Status};
use integrasjonspunkt::secrets::{Secret, Secrets};
use integrasjonspunkt::tokens::NoTokenService;
use ip_tests::artifacts;
use ip_tests::harness::{TestHost, blob_sha256, outgoing, spec};
use simulators::loopback_peer::{LoopbackPeer, LoopbackPeerConfig};

const DOCUMENT_SIZE: u64 = 256 << 20;

fn loopback(peer: &LoopbackPeer, identifier: &str) -> PluginSpec {
    let mut plugin = spec(artifacts::LOOPBACK);
    plugin.allowed_hosts = vec![peer.base_url()];
    plugin.secrets = vec!["peer".into()];
    plugin.limits.memory_mib = 16;
    plugin.settings = [
        ("endpoint", peer.base_url()),
        ("identifier", identifier.to_owned()),
        ("credentials", "peer".to_owned()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect();
    plugin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_256_mib_document_passes_a_16_mib_plugin_whole_both_ways() {
    let mut secrets = Secrets::new();
    secrets.insert(
        "peer",
        Secret::UsernamePassword {
            username: "agency".into(),
            password: "s3cret".into(),
        },
    );
    let host = TestHost::new(secrets, Arc::new(NoTokenService));
    let mut config = LoopbackPeerConfig::new("agency", "s3cret");
    config.max_package_size = 1 << 30;
    let peer = LoopbackPeer::start(config).await.unwrap();
    host.load(vec![
        ("sender", loopback(&peer, "0192:910075918")),
        ("receiver", loopback(&peer, "0192:910076787")),
    ])
    .await
    .unwrap();

    let document = host.blob(DOCUMENT_SIZE);
    let digest = blob_sha256(&document);
    let message = outgoing(vec![("large.pdf", document)]);
    let sender = host.plugins.plugin("sender").unwrap();
    let sent = sender
        .send(&message)
        .await
        .unwrap()
        .expect("the peer accepted the message");

    let received = peer.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].message_id, message.message_id);
    assert_eq!(received[0].entries, vec!["large.pdf".to_owned()]);
    assert!(
        received[0].package_size > DOCUMENT_SIZE,
        "the whole package arrived"
    );

    let receiver = host.plugins.plugin("receiver").unwrap();
    let mut incoming = receiver
        .poll_incoming(10)
        .await
        .unwrap()
        .expect("the inbox is readable");
    assert_eq!(incoming.len(), 1);
    let incoming = incoming.remove(0);
    assert_eq!(incoming.reference, sent.reference);
    let package = incoming
        .package
        .expect("the package was downloaded into a blob");
    let store = host.blobs.clone();
    let document =
        tokio::task::spawn_blocking(move || archive::open(&store, &package, "large.pdf"))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(document.size(), DOCUMENT_SIZE);
    assert_eq!(
        blob_sha256(&document),
        digest,
        "the document came back byte for byte"
    );

    receiver
        .confirm_incoming(&incoming.reference)
        .await
        .unwrap()
        .unwrap();
    let pending = [Pending {
        message_id: message.message_id.clone(),
        reference: sent.reference.clone(),
        sent_at: 0,
    }];
    let statuses = sender.poll_statuses(&pending).await.unwrap().unwrap();
    let statuses: Vec<Status> = statuses.iter().map(|event| event.status).collect();
    assert!(
        statuses.contains(&Status::Mottatt) && statuses.contains(&Status::Levert),
        "{statuses:?}"
    );
    assert!(
        receiver
            .poll_incoming(10)
            .await
            .unwrap()
            .unwrap()
            .is_empty(),
        "confirmed messages leave the inbox"
    );
}
