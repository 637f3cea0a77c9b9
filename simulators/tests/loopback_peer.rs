//! The loopback peer, driven over HTTP the way the loopback channel drives it.
//!
//! Multipart bodies are written by hand here, so a test can also send the malformed ones a
//! client library would refuse to build.

use std::io::{Cursor, Write as _};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use simulators::loopback_peer::{
    LoopbackPeer, LoopbackPeerConfig, PeerStatus, Refusals, UnknownReference,
};
use zip::write::SimpleFileOptions;

const USERNAME: &str = "loopback";
const PASSWORD: &str = "correct horse";
const SENDER: &str = "0192:987654321";
const RECEIVER: &str = "0192:123456789";

async fn start_peer(max_package_size: u64, data_dir: Option<&std::path::Path>) -> LoopbackPeer {
    let mut config = LoopbackPeerConfig::new(USERNAME, PASSWORD);
    config.max_package_size = max_package_size;
    config.data_dir = data_dir.map(std::path::Path::to_path_buf);
    LoopbackPeer::start(config).await.expect("peer starts")
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn envelope(message_id: &str, receiver: &str, documents: &[&str]) -> Value {
    json!({
        "messageId": message_id,
        "conversationId": "6b1f4c3e-1d1a-4f57-9f53-0d6b5e8a2c11",
        "sender": SENDER,
        "receiver": receiver,
        "process": "urn:no:difi:profile:arkivmelding:administrasjon:ver1.0",
        "documentType": "urn:no:difi:arkivmelding:xsd::arkivmelding",
        "sbd": json!({"standardBusinessDocumentHeader": {"businessScope": {}}}).to_string(),
        "expiresAt": 1_900_000_000_000u64,
        "documents": documents.iter().enumerate().map(|(i, name)| json!({
            "name": name,
            "title": format!("Document {i}"),
            "mimeType": "application/pdf",
            "primary": i == 0,
        })).collect::<Vec<_>>(),
    })
}

struct Part<'a> {
    disposition: &'a str,
    content_type: &'a str,
    data: Vec<u8>,
}

fn envelope_part(envelope: &Value) -> Part<'static> {
    Part {
        disposition: "form-data; name=\"envelope\"",
        content_type: "application/json",
        data: serde_json::to_vec(envelope).unwrap(),
    }
}

fn package_part(data: Vec<u8>) -> Part<'static> {
    Part {
        disposition: "form-data; name=\"package\"; filename=\"package.zip\"",
        content_type: "application/zip",
        data,
    }
}

const BOUNDARY: &str = "loopback-test-boundary-7d3f";

fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        write!(
            body,
            "--{BOUNDARY}\r\ncontent-disposition: {}\r\ncontent-type: {}\r\n\r\n",
            part.disposition, part.content_type
        )
        .unwrap();
        body.extend_from_slice(&part.data);
        body.extend_from_slice(b"\r\n");
    }
    write!(body, "--{BOUNDARY}--\r\n").unwrap();
    body
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(peer: &LoopbackPeer) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: peer.base_url(),
        }
    }

    async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.expect("request completes");
        let status = response.status();
        let body = response.bytes().await.expect("body arrives");
        let value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).expect("the peer answers JSON")
        };
        (status, value)
    }

    async fn post_as(&self, username: &str, password: &str, body: Vec<u8>) -> (StatusCode, Value) {
        Self::answer(
            self.http
                .post(format!("{}/messages", self.base))
                .basic_auth(username, Some(password))
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(body),
        )
        .await
    }

    async fn post(&self, body: Vec<u8>) -> (StatusCode, Value) {
        self.post_as(USERNAME, PASSWORD, body).await
    }

    async fn send(&self, message_id: &str, receiver: &str, package: Vec<u8>) -> String {
        let names: Vec<String> = {
            let mut archive = zip::ZipArchive::new(Cursor::new(package.clone())).unwrap();
            (0..archive.len())
                .map(|i| archive.by_index(i).unwrap().name().unwrap().into_owned())
                .collect()
        };
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let envelope = envelope(message_id, receiver, &names);
        let (status, answer) = self
            .post(multipart(&[
                envelope_part(&envelope),
                package_part(package),
            ]))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        answer["reference"]
            .as_str()
            .expect("a reference")
            .to_owned()
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        Self::answer(
            self.http
                .get(format!("{}{path}", self.base))
                .basic_auth(USERNAME, Some(PASSWORD)),
        )
        .await
    }

    async fn get_bytes(&self, path: &str) -> (StatusCode, Vec<u8>) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .basic_auth(USERNAME, Some(PASSWORD))
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.bytes().await.unwrap().to_vec())
    }

    async fn delete(&self, path: &str) -> StatusCode {
        self.http
            .delete(format!("{}{path}", self.base))
            .basic_auth(USERNAME, Some(PASSWORD))
            .send()
            .await
            .unwrap()
            .status()
    }
}

const MESSAGE_A: &str = "0d3c2f6e-6b1e-4a43-8a39-1c8b8f1b3e01";
const MESSAGE_B: &str = "1f5a7c9e-2d4b-4c6e-9f8a-0b1c2d3e4f50";

fn error_text(answer: &Value) -> &str {
    answer["error"].as_str().expect("a JSON error")
}

#[tokio::test]
async fn accepts_a_message_and_records_what_it_received() {
    let peer = start_peer(1 << 20, None).await;
    let client = Client::new(&peer);
    let package = zip_of(&[("brev.pdf", b"%PDF-1.7 letter"), ("vedlegg.xml", b"<a/>")]);

    let reference = client.send(MESSAGE_A, RECEIVER, package.clone()).await;

    let received = peer.received();
    assert_eq!(received.len(), 1);
    let message = &received[0];
    assert_eq!(message.message_id, MESSAGE_A);
    assert_eq!(message.reference, reference);
    assert_eq!(message.sender, SENDER);
    assert_eq!(message.receiver, RECEIVER);
    assert_eq!(message.entries, ["brev.pdf", "vedlegg.xml"]);
    assert_eq!(message.documents[0].title.as_deref(), Some("Document 0"));
    assert!(message.documents[0].primary && !message.documents[1].primary);
    assert_eq!(message.expires_at, Some(1_900_000_000_000));
    assert_eq!(message.package_size, package.len() as u64);
    assert_eq!(
        message.package_sha256,
        hex::encode(Sha256::digest(&package))
    );
    assert_eq!(message.statuses, [PeerStatus::Mottatt]);

    let (status, statuses) = client
        .get(&format!("/statuses?reference={reference}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(statuses.as_array().unwrap().len(), 1);
    assert_eq!(statuses[0]["messageId"], MESSAGE_A);
    assert_eq!(statuses[0]["status"], "mottatt");
    assert!(statuses[0]["at"].as_u64().unwrap() > 1_600_000_000_000);
    assert_eq!(peer.refusals(), Refusals::default());
}

#[tokio::test]
async fn refuses_missing_and_wrong_credentials() {
    let peer = start_peer(1 << 20, None).await;
    let client = Client::new(&peer);
    let body = || {
        multipart(&[
            envelope_part(&envelope(MESSAGE_A, RECEIVER, &["a.txt"])),
            package_part(zip_of(&[("a.txt", b"a")])),
        ])
    };

    let (status, answer) = client.post_as(USERNAME, "wrong", body()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_text(&answer), "wrong username or password");

    let (status, answer) =
        Client::answer(client.http.get(format!("{}/inbox/{RECEIVER}", client.base))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_text(&answer), "HTTP Basic credentials required");

    assert!(peer.received().is_empty());
    assert_eq!(
        peer.refusals(),
        Refusals {
            unauthorized: 2,
            ..Refusals::default()
        }
    );
}

#[tokio::test]
async fn refuses_a_bad_envelope_and_stores_nothing() {
    let data_dir = tempfile::tempdir().unwrap();
    let peer = start_peer(1 << 20, Some(data_dir.path())).await;
    let client = Client::new(&peer);
    let package = || package_part(zip_of(&[("a.txt", b"a")]));

    let mut not_a_uuid = envelope("not-a-uuid", RECEIVER, &["a.txt"]);
    not_a_uuid["receiver"] = json!(" ");
    not_a_uuid["sbd"] = json!("{not json");
    let (status, answer) = client
        .post(multipart(&[envelope_part(&not_a_uuid), package()]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let error = error_text(&answer);
    assert!(
        error.contains("messageId \"not-a-uuid\" is not a UUID"),
        "{error}"
    );
    assert!(error.contains("receiver is empty"), "{error}");
    assert!(error.contains("sbd is not JSON"), "{error}");

    let (status, answer) = client
        .post(multipart(&[
            Part {
                disposition: "form-data; name=\"envelope\"",
                content_type: "application/json",
                data: b"{\"messageId\":".to_vec(),
            },
            package(),
        ]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_text(&answer).starts_with("the envelope is not valid"));

    let (status, answer) = client
        .post(multipart(&[envelope_part(&envelope(
            MESSAGE_A,
            RECEIVER,
            &["a.txt"],
        ))]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_text(&answer), "the package part is missing");

    let (status, answer) = client
        .post(multipart(&[
            envelope_part(&envelope(MESSAGE_A, RECEIVER, &["a.txt", "b.txt"])),
            package(),
        ]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error_text(&answer).contains("the envelope names"),
        "{answer}"
    );

    let (status, answer) = client
        .post(multipart(&[
            envelope_part(&envelope(MESSAGE_A, RECEIVER, &["a.txt"])),
            package_part(b"PK but not really a zip".to_vec()),
        ]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error_text(&answer).starts_with("the package is not a readable zip"),
        "{answer}"
    );

    let (status, answer) = client
        .post(multipart(&[
            envelope_part(&envelope(MESSAGE_A, RECEIVER, &["a.txt"])),
            package(),
            Part {
                disposition: "form-data; name=\"extra\"",
                content_type: "text/plain",
                data: b"x".to_vec(),
            },
        ]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_text(&answer), "unexpected part \"extra\"");

    assert!(peer.received().is_empty());
    assert_eq!(
        peer.refusals(),
        Refusals {
            bad_request: 6,
            ..Refusals::default()
        }
    );
    let leftovers: Vec<_> = std::fs::read_dir(data_dir.path().join("packages"))
        .unwrap()
        .collect();
    assert!(
        leftovers.is_empty(),
        "refused packages left behind: {leftovers:?}"
    );
}

#[tokio::test]
async fn refuses_a_package_over_the_limit() {
    let data_dir = tempfile::tempdir().unwrap();
    let peer = start_peer(4096, Some(data_dir.path())).await;
    let client = Client::new(&peer);
    let big = vec![7u8; 8192];

    let (status, answer) = client
        .post(multipart(&[
            envelope_part(&envelope(MESSAGE_A, RECEIVER, &["big.bin"])),
            package_part(zip_of(&[("big.bin", &big)])),
        ]))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_text(&answer), "the package exceeds 4096 bytes");
    assert!(peer.received().is_empty());
    assert_eq!(peer.refusals().too_large, 1);
    assert_eq!(
        std::fs::read_dir(data_dir.path().join("packages"))
            .unwrap()
            .count(),
        0
    );

    // Just under the limit is fine.
    client
        .send(MESSAGE_B, RECEIVER, zip_of(&[("small.bin", &big[..1024])]))
        .await;
    assert_eq!(peer.received().len(), 1);
}

#[tokio::test]
async fn the_same_message_id_gets_the_same_reference() {
    let peer = start_peer(1 << 20, None).await;
    let client = Client::new(&peer);
    let body = || {
        multipart(&[
            envelope_part(&envelope(MESSAGE_A, RECEIVER, &["a.txt"])),
            package_part(zip_of(&[("a.txt", b"a")])),
        ])
    };

    let (first_status, first) = client.post(body()).await;
    let (again_status, again) = client.post(body()).await;
    assert_eq!(first_status, StatusCode::CREATED);
    assert_eq!(again_status, StatusCode::OK);
    assert_eq!(first["reference"], again["reference"]);
    assert_eq!(peer.received().len(), 1);

    let other = client
        .send(MESSAGE_B, RECEIVER, zip_of(&[("a.txt", b"a")]))
        .await;
    assert_ne!(json!(other), first["reference"]);
    assert_eq!(peer.received().len(), 2);
}

#[tokio::test]
async fn a_receiver_lists_downloads_and_confirms_its_messages() {
    let peer = start_peer(1 << 20, None).await;
    let client = Client::new(&peer);
    let package_a = zip_of(&[("a.txt", b"first")]);
    let reference_a = client.send(MESSAGE_A, RECEIVER, package_a.clone()).await;
    let reference_b = client
        .send(MESSAGE_B, RECEIVER, zip_of(&[("b.txt", b"second")]))
        .await;
    let inbox = format!("/inbox/{RECEIVER}");

    let (status, waiting) = client.get(&inbox).await;
    assert_eq!(status, StatusCode::OK);
    let references: Vec<&str> = waiting
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["reference"].as_str().unwrap())
        .collect();
    assert_eq!(references, [reference_a.as_str(), reference_b.as_str()]);
    let sbd: Value = serde_json::from_str(waiting[0]["sbd"].as_str().unwrap()).unwrap();
    assert!(sbd["standardBusinessDocumentHeader"].is_object());

    let (_, limited) = client.get(&format!("{inbox}?max=1")).await;
    assert_eq!(limited.as_array().unwrap().len(), 1);
    let (status, _) = client.get(&format!("{inbox}?max=0")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, elsewhere) = client.get("/inbox/0192:111111111").await;
    assert_eq!(elsewhere, json!([]));

    let (status, bytes) = client
        .get_bytes(&format!("{inbox}/{reference_a}/package"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, package_a);
    let (status, _) = client
        .get_bytes(&format!("/inbox/0192:111111111/{reference_a}/package"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    assert_eq!(
        client.delete(&format!("{inbox}/{reference_a}")).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        client.delete(&format!("{inbox}/{reference_a}")).await,
        StatusCode::NO_CONTENT,
        "confirming again is harmless"
    );
    assert_eq!(
        client.delete(&format!("{inbox}/not-a-reference")).await,
        StatusCode::NOT_FOUND
    );

    let (_, waiting) = client.get(&inbox).await;
    assert_eq!(waiting.as_array().unwrap().len(), 1);
    assert_eq!(waiting[0]["reference"], reference_b.as_str());
    let (status, _) = client
        .get_bytes(&format!("{inbox}/{reference_a}/package"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, statuses) = client
        .get(&format!(
            "/statuses?reference={reference_a}&reference={reference_b}"
        ))
        .await;
    let seen: Vec<(&str, &str)> = statuses
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["messageId"].as_str().unwrap(),
                s["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (MESSAGE_A, "mottatt"),
            (MESSAGE_A, "levert"),
            (MESSAGE_B, "mottatt")
        ]
    );
    assert_eq!(peer.refusals().not_found, 3);
}

#[tokio::test]
async fn a_test_can_mark_statuses() {
    let peer = start_peer(1 << 20, None).await;
    let client = Client::new(&peer);
    let reference = client
        .send(MESSAGE_A, RECEIVER, zip_of(&[("a.txt", b"a")]))
        .await;

    peer.mark(&reference, PeerStatus::Lest, None).unwrap();
    peer.mark(&reference, PeerStatus::Feil, Some("mottaker nekter"))
        .unwrap();
    assert_eq!(
        peer.mark("nope", PeerStatus::Lest, None),
        Err(UnknownReference("nope".to_owned()))
    );

    let (_, statuses) = client
        .get(&format!("/statuses?reference={reference}"))
        .await;
    let statuses = statuses.as_array().unwrap();
    assert_eq!(statuses.len(), 3);
    assert_eq!(statuses[1]["status"], "lest");
    assert!(statuses[1].get("description").is_none());
    assert_eq!(statuses[2]["status"], "feil");
    assert_eq!(statuses[2]["description"], "mottaker nekter");
    assert_eq!(
        peer.received()[0].statuses,
        [PeerStatus::Mottatt, PeerStatus::Lest, PeerStatus::Feil]
    );

    let (status, answer) = client.get("/statuses").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_text(&answer), "at least one reference is required");
}

#[tokio::test]
async fn injected_faults_answer_503_then_recover() {
    let peer = start_peer(1 << 20, None).await;
    let client = Client::new(&peer);
    peer.fail_next(2);

    let body = || {
        multipart(&[
            envelope_part(&envelope(MESSAGE_A, RECEIVER, &["a.txt"])),
            package_part(zip_of(&[("a.txt", b"a")])),
        ])
    };
    let (first, _) = client.post(body()).await;
    let (second, answer) = client.get(&format!("/inbox/{RECEIVER}")).await;
    let (third, _) = client.post(body()).await;

    assert_eq!(first, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(second, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_text(&answer), "unavailable (injected fault)");
    assert_eq!(third, StatusCode::CREATED);
    assert_eq!(peer.received().len(), 1);
    assert_eq!(peer.refusals().unavailable, 2);
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let peer = start_peer(1 << 20, None).await;
    let address = peer.address();
    let client = Client::new(&peer);
    let (status, _) = client.get(&format!("/inbox/{RECEIVER}")).await;
    assert_eq!(status, StatusCode::OK);

    peer.shutdown().await;
    assert!(tokio::net::TcpStream::connect(address).await.is_err());
}
