//! The example channel of the plugin author guide (`plugins/example`), end to end: pinned and
//! loaded by an integration point from an environment file, it carries a message to the loopback
//! peer, and the statuses the peer reports reach the archive system. A second test keeps the
//! guide honest: every Rust and TOML block in it is quoted from files that are built and tested.

use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use ip_tests::artifacts;
use ip_tests::harness::file_sha256;
use ip_tests::network::{
    API_PASSWORD, API_USER, IntegrationPoint, KEYSTORE_PASSWORD, Network, PEER_PASSWORD, PEER_USER,
    arkivmelding_sbd, message_id,
};
use simulators::loopback_peer::PeerStatus;

const SENDER: &str = "910075918";
const RECEIVER: &str = "910076787";

/// The channel's part of the environment file, as the guide shows it; the test fills in
/// `PEER_URL`, `PLUGIN_FILE` and `PLUGIN_SHA256`. `service = "DPO"` makes the registry's routing
/// pick this channel for the receiver, who is registered for DPO.
const CHANNEL: &str = r#"
[endpoints.channels.example]
endpoint = "PEER_URL"

[plugins.example]
file = "PLUGIN_FILE"
sha256 = "PLUGIN_SHA256"
allowed-hosts = ["PEER_URL"]
secrets = ["peer"]
limits = { memory-mib = 32, timeout-seconds = 60, concurrency = 2 }
settings = { credentials = "peer", service = "DPO" }
"#;

/// The operator's part: enable the channel and define the secret it names.
const OPERATOR: &str = r#"
[channels]
enabled = ["example"]

[secrets.peer]
username = "PEER_USER"
password = { file = "peer-password" }
"#;

/// Writes the configuration of the sender's integration point running only the example
/// channel, pinned to the digest of the built file; returns its directory.
fn configure(network: &Network) -> std::path::PathBuf {
    let home = network.dir.path().join("example");
    std::fs::create_dir_all(home.join("config")).unwrap();
    let peer = network.peer.base_url();
    let channel = CHANNEL
        .replace("PEER_URL", &peer)
        .replace("PLUGIN_FILE", artifacts::EXAMPLE)
        .replace("PLUGIN_SHA256", &file_sha256(Path::new(artifacts::EXAMPLE)));
    let environment = format!(
        "[environment]\nname = \"e2e\"\n\n[endpoints]\nservice-registry = \"{}\"\n\
         maskinporten = \"{}\"\nmaskinporten-audience = \"http://127.0.0.1/maskinporten/\"\n\
         altinn-token-exchange = \"http://127.0.0.1:9/exchange\"\nlog-service = \"127.0.0.1:9\"\n\
         {channel}",
        network.registry.base_url(),
        network.maskinporten.token_url(),
    );
    std::fs::write(home.join("config/e2e.toml"), environment).unwrap();
    let hash = integrasjonspunkt::api::hash_password(API_PASSWORD).unwrap();
    let keystore = network.dir.path().join(format!("pki/{SENDER}.p12"));
    let operator = format!(
        "[organisation]\nnumber = \"{SENDER}\"\n\n[keystore]\npath = \"{}\"\n\
         password = {{ file = \"keystore-password\" }}\n\n[api]\nlisten = \"127.0.0.1:0\"\n\n\
         [api.users.{API_USER}]\npassword-hash = \"{hash}\"\n\n[polling]\nstatuses-seconds = 1\n\
         {}",
        keystore.display(),
        OPERATOR.replace("PEER_USER", PEER_USER),
    );
    std::fs::write(home.join("integrasjonspunkt.toml"), operator).unwrap();
    std::fs::write(home.join("keystore-password"), KEYSTORE_PASSWORD).unwrap();
    std::fs::write(home.join("peer-password"), PEER_PASSWORD).unwrap();
    home
}

/// The package as the peer stored it, fetched the way a receiving channel would.
async fn package_at_peer(network: &Network, reference: &str) -> Vec<u8> {
    let url = format!(
        "{}/inbox/0192:{RECEIVER}/{reference}/package",
        network.peer.base_url()
    );
    let answer = reqwest::Client::new()
        .get(url)
        .basic_auth(PEER_USER, Some(PEER_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    answer.bytes().await.unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_channel_carries_a_message_and_its_statuses() {
    let network = Network::start().await;
    let sender = IntegrationPoint::start(&configure(&network)).await;

    let sbd = arkivmelding_sbd(SENDER, RECEIVER, "vedtak.pdf");
    let message_id = message_id(&sbd);
    let document: Vec<u8> = (0..256 * 1024u32).map(|i| (i * 31 % 253) as u8).collect();
    sender.create_with_documents(&sbd, document.clone()).await;
    sender.send(&message_id).await;

    // The peer accepts it and records `mottatt`, which the channel's status poll reports.
    let seen = sender
        .wait_for_status(&message_id, "MOTTATT", Duration::from_secs(30))
        .await;
    assert_eq!(seen, ["OPPRETTET", "SENDT", "MOTTATT"]);

    // What arrived: the envelope with the SBD, and a zip of exactly the documents.
    let received = network.peer.received();
    assert_eq!(received.len(), 1);
    let arrived = &received[0];
    assert_eq!(arrived.message_id, message_id);
    assert_eq!(arrived.receiver, format!("0192:{RECEIVER}"));
    let arrived_sbd: serde_json::Value = serde_json::from_str(&arrived.sbd).unwrap();
    assert_eq!(ip_tests::network::message_id(&arrived_sbd), message_id);
    assert_eq!(arrived.entries, ["arkivmelding.xml", "vedtak.pdf"]);
    let package = package_at_peer(&network, &arrived.reference).await;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(package)).unwrap();
    let mut entry = zip.by_name("vedtak.pdf").unwrap();
    assert_eq!(entry.compression(), zip::CompressionMethod::Deflated);
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).unwrap();
    assert!(bytes == document, "the document arrives byte for byte");

    // A status the provider records later reaches the archive system too.
    network
        .peer
        .mark(&arrived.reference, PeerStatus::Levert, None)
        .unwrap();
    let seen = sender
        .wait_for_status(&message_id, "LEVERT", Duration::from_secs(30))
        .await;
    assert_eq!(seen, ["OPPRETTET", "SENDT", "MOTTATT", "LEVERT"]);

    sender.service.stop().await;
}

/// The files the guide may quote: the example crate and this test.
const QUOTED: &[&str] = &[
    "plugins/example/src/lib.rs",
    "plugins/example/Cargo.toml",
    "tests/tests/example_plugin.rs",
];

#[test]
fn the_guide_quotes_only_code_that_is_built_and_tested() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let sources: Vec<String> = QUOTED
        .iter()
        .map(|file| std::fs::read_to_string(root.join(file)).unwrap())
        .collect();
    let guide = std::fs::read_to_string(root.join("docs/plugin-guide.md")).unwrap();
    let mut checked = 0;
    let mut lines = guide.lines();
    while let Some(line) = lines.next() {
        let Some(language) = line.strip_prefix("```") else {
            continue;
        };
        let block: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        if !matches!(language, "rust" | "toml") {
            continue;
        }
        let block = block.join("\n");
        assert!(
            sources.iter().any(|source| source.contains(&block)),
            "this {language} block of the guide is not in {QUOTED:?}:\n{block}"
        );
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} blocks were checked");
}
