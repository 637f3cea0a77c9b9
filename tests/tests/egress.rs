//! The egress chokepoint, driven directly: it attaches the credentials a request names, fills
//! secret placeholders, streams blob and multipart bodies with their exact length, caps buffered
//! responses, and refuses what the policy does not allow before anything leaves the host.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures::future::BoxFuture;
use integrasjonspunkt::blobs::{BlobStore, FileBlobStore};
use integrasjonspunkt::plugins::AllowList;
use integrasjonspunkt::plugins::egress::{
    Body, Content, Credentials, Egress, EgressError, EgressPolicy, Part, Request, ResponseBody,
    ResponseTarget, Segment,
};
use integrasjonspunkt::secrets::{Secret, Secrets};
use integrasjonspunkt::tokens::TokenSource;
use ip_tests::harness::{Sink, blob_sha256};
use sha2::{Digest, Sha256};

/// Answers every scope set with a token naming the scopes, as a Maskinporten stand-in would.
struct ScopedTokens;

impl TokenSource for ScopedTokens {
    fn maskinporten<'a>(&'a self, scopes: &'a [String]) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move { Ok(format!("mp-{}", scopes.join("+"))) })
    }

    fn altinn<'a>(&'a self, scopes: &'a [String]) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move { Ok(format!("altinn-{}", scopes.join("+"))) })
    }
}

struct Fixture {
    egress: Egress,
    policy: EgressPolicy,
    blobs: Arc<dyn BlobStore>,
    sink: Sink,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let mut secrets = Secrets::new();
    secrets.insert(
        "peer",
        Secret::UsernamePassword {
            username: "agency".into(),
            password: "s3<c>ret".into(),
        },
    );
    secrets.insert(
        "other",
        Secret::UsernamePassword {
            username: "someone".into(),
            password: "else".into(),
        },
    );
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let blobs: Arc<dyn BlobStore> = Arc::new(FileBlobStore::open(dir.path()).unwrap());
    let policy = EgressPolicy {
        plugin: "test".into(),
        allowed: AllowList::parse(std::slice::from_ref(&sink.url)).unwrap(),
        secrets: BTreeSet::from(["peer".to_owned()]),
        scopes: BTreeSet::from(["digdir:dpo".to_owned()]),
        request_timeout: Duration::from_secs(10),
        download_limit: 1 << 20,
    };
    Fixture {
        egress: Egress::new(Arc::new(secrets), Arc::new(ScopedTokens)).unwrap(),
        policy,
        blobs,
        sink,
        _dir: dir,
    }
}

fn post(url: String, body: Body, credentials: Credentials) -> Request {
    Request {
        method: http::Method::POST,
        url,
        headers: vec![("x-correlation".into(), "1".into())],
        body,
        credentials,
        timeout: None,
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test]
async fn basic_credentials_are_attached_and_placeholders_filled_xml_escaped() {
    let f = fixture().await;
    let body = Body::Single(Content::Bytes(
        b"<pw>{{secret:peer.password}}</pw>".to_vec(),
    ));
    let response = f
        .egress
        .send(
            &f.policy,
            post(
                format!("{}/soap", f.sink.url),
                body,
                Credentials::Basic("peer".into()),
            ),
            ResponseTarget::Memory(1024),
        )
        .await
        .unwrap();
    assert_eq!(response.status, 201);
    let received = &f.sink.received()[0];
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("agency:s3<c>ret")
    );
    assert_eq!(received.headers["authorization"], expected);
    assert_eq!(received.headers["x-correlation"], "1");
    assert_eq!(received.sha256, sha256(b"<pw>s3&lt;c&gt;ret</pw>"));
}

#[tokio::test]
async fn tokens_carry_only_granted_scopes() {
    let f = fixture().await;
    let url = format!("{}/api", f.sink.url);
    let granted = Credentials::Maskinporten(vec!["digdir:dpo".into()]);
    f.egress
        .send(
            &f.policy,
            post(url.clone(), Body::Empty, granted),
            ResponseTarget::Memory(1024),
        )
        .await
        .unwrap();
    assert_eq!(
        f.sink.received()[0].headers["authorization"],
        "Bearer mp-digdir:dpo"
    );

    let exchange = Credentials::AltinnExchange(vec!["digdir:dpo".into()]);
    f.egress
        .send(
            &f.policy,
            post(url.clone(), Body::Empty, exchange),
            ResponseTarget::Memory(1024),
        )
        .await
        .unwrap();
    assert_eq!(
        f.sink.received()[1].headers["authorization"],
        "Bearer altinn-digdir:dpo"
    );

    let ungranted = Credentials::Maskinporten(vec!["digdir:dpo".into(), "altinn:admin".into()]);
    let error = f
        .egress
        .send(
            &f.policy,
            post(url, Body::Empty, ungranted),
            ResponseTarget::Memory(1024),
        )
        .await
        .unwrap_err();
    assert_eq!(
        error,
        EgressError::Denied("scope \"altinn:admin\" is not granted to plugin test".into())
    );
    assert_eq!(f.sink.received().len(), 2, "the refused request never left");
}

#[tokio::test]
async fn blob_and_multipart_bodies_stream_with_their_exact_length() {
    let f = fixture().await;
    let mut writer = f.blobs.create().unwrap();
    std::io::Write::write_all(&mut writer, &vec![42u8; 3 << 20]).unwrap();
    let (id, size) = writer.commit().unwrap();
    let blob = integrasjonspunkt::blobs::Blob::temporary(f.blobs.clone(), id, size);

    let body = Body::Single(Content::Blob(blob.clone()));
    f.egress
        .send(
            &f.policy,
            post(format!("{}/blob", f.sink.url), body, Credentials::None),
            ResponseTarget::Memory(1024),
        )
        .await
        .unwrap();
    let received = &f.sink.received()[0];
    assert_eq!(received.length, 3 << 20);
    assert_eq!(received.headers["content-length"], (3u64 << 20).to_string());
    assert_eq!(received.sha256, blob_sha256(&blob));

    let body = Body::Multipart {
        subtype: "related".into(),
        parameters: vec![
            ("type".into(), "application/xop+xml".into()),
            ("start".into(), "<root>".into()),
        ],
        parts: vec![
            Part {
                headers: vec![("content-id".into(), "<root>".into())],
                content: Content::Bytes(b"<user>{{secret:peer.username}}</user>".to_vec()),
            },
            Part {
                headers: vec![("content-id".into(), "<file>".into())],
                content: Content::Blob(blob),
            },
        ],
    };
    f.egress
        .send(
            &f.policy,
            post(format!("{}/mtom", f.sink.url), body, Credentials::None),
            ResponseTarget::Memory(1024),
        )
        .await
        .unwrap();
    let received = &f.sink.received()[1];
    let content_type = &received.headers["content-type"];
    assert!(
        content_type.starts_with("multipart/related; boundary=\""),
        "{content_type}"
    );
    assert!(
        content_type.ends_with("; type=\"application/xop+xml\"; start=\"<root>\""),
        "{content_type}"
    );
    assert_eq!(
        received.headers["content-length"],
        received.length.to_string()
    );
    let boundary = content_type.split('"').nth(1).unwrap();
    let head = format!(
        "--{boundary}\r\ncontent-id: <root>\r\n\r\n<user>agency</user>\r\n--{boundary}\r\ncontent-id: <file>\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    assert_eq!(
        received.length,
        (head.len() + tail.len()) as u64 + (3 << 20)
    );
}

#[tokio::test]
async fn composed_bodies_carry_blobs_base64_encoded_and_fill_only_inline_placeholders() {
    let f = fixture().await;
    let document: Vec<u8> = b"{{secret:peer.password}}"
        .iter()
        .copied()
        .chain((0..200_000u32).map(|i| (i * 7 % 251) as u8))
        .collect();
    let blob = integrasjonspunkt::blobs::Blob::from_bytes(&f.blobs, &document).unwrap();
    let body = Body::Single(Content::Composed(vec![
        Segment::Bytes(b"<pw>{{secret:peer.password}}</pw><raw>".to_vec()),
        Segment::Blob(blob.clone()),
        Segment::Bytes(b"</raw><once>".to_vec()),
        Segment::Base64(blob.clone(), 1),
        Segment::Bytes(b"</once><twice>".to_vec()),
        Segment::Base64(blob.clone(), 2),
        Segment::Bytes(b"</twice>".to_vec()),
    ]));
    f.egress
        .send(
            &f.policy,
            post(format!("{}/composed", f.sink.url), body, Credentials::None),
            ResponseTarget::Memory(1024),
        )
        .await
        .unwrap();
    let base64 = base64::engine::general_purpose::STANDARD;
    let once = base64.encode(&document);
    let twice = base64.encode(&once);
    let mut expected = b"<pw>s3&lt;c&gt;ret</pw><raw>".to_vec();
    expected.extend_from_slice(&document);
    expected
        .extend_from_slice(format!("</raw><once>{once}</once><twice>{twice}</twice>").as_bytes());
    let received = &f.sink.received()[0];
    assert_eq!(received.length, expected.len() as u64);
    assert_eq!(
        received.headers["content-length"],
        expected.len().to_string()
    );
    assert_eq!(
        received.sha256,
        sha256(&expected),
        "the blob's placeholder is kept as is"
    );

    // A multipart part may be composed too; rounds outside 1 to 4 are refused before sending.
    for rounds in [0, 5] {
        let body = Body::Multipart {
            subtype: "form-data".into(),
            parameters: Vec::new(),
            parts: vec![Part {
                headers: Vec::new(),
                content: Content::Composed(vec![Segment::Base64(blob.clone(), rounds)]),
            }],
        };
        let error = f
            .egress
            .send(
                &f.policy,
                post(format!("{}/composed", f.sink.url), body, Credentials::None),
                ResponseTarget::Memory(1024),
            )
            .await
            .unwrap_err();
        assert_eq!(
            error,
            EgressError::Invalid(format!("{rounds} base64 rounds; a segment takes 1 to 4"))
        );
    }
    assert_eq!(f.sink.received().len(), 1);
}

#[tokio::test]
async fn buffered_responses_are_capped_and_downloads_limited() {
    let f = fixture().await;
    let url = format!("{}/answer", f.sink.url);
    let error = f
        .egress
        .send(
            &f.policy,
            post(url.clone(), Body::Empty, Credentials::None),
            ResponseTarget::Memory(8),
        )
        .await
        .unwrap_err();
    assert_eq!(error, EgressError::TooLarge(8));

    let response = f
        .egress
        .send(
            &f.policy,
            post(url, Body::Empty, Credentials::None),
            ResponseTarget::Blob(f.blobs.clone()),
        )
        .await
        .unwrap();
    match response.body {
        ResponseBody::Blob(blob) => {
            let text = String::from_utf8(blob.read_at(0, 1024).unwrap()).unwrap();
            assert!(text.starts_with("{\"reference\":"), "{text}");
        }
        ResponseBody::Bytes(_) => panic!("a download must land in a blob"),
    }
}

#[tokio::test]
async fn the_policy_refuses_before_anything_leaves() {
    let f = fixture().await;
    let cases = [
        (
            post(
                format!("{}/x", f.sink.url),
                Body::Empty,
                Credentials::Basic("other".into()),
            ),
            "secret \"other\" is not granted to plugin test",
        ),
        (
            post(
                f.sink.url.replace("http://", "http://user:pw@"),
                Body::Empty,
                Credentials::None,
            ),
            "credentials in the URL are not allowed",
        ),
        (
            post(
                "http://127.0.0.1:1/x".into(),
                Body::Empty,
                Credentials::None,
            ),
            "is not on the allow-list of plugin test",
        ),
        (
            post("file:///etc/passwd".into(), Body::Empty, Credentials::None),
            "scheme \"file\" is not allowed",
        ),
    ];
    for (request, reason) in cases {
        match f
            .egress
            .send(&f.policy, request, ResponseTarget::Memory(1024))
            .await
        {
            Err(EgressError::Denied(text)) => {
                assert!(text.contains(reason), "{text} lacks {reason}")
            }
            other => panic!("expected a denial ({reason}), got {other:?}"),
        }
    }
    let mut own_header = post(format!("{}/x", f.sink.url), Body::Empty, Credentials::None);
    own_header
        .headers
        .push(("content-length".into(), "5".into()));
    assert!(matches!(
        f.egress.send(&f.policy, own_header, ResponseTarget::Memory(1024)).await,
        Err(EgressError::Invalid(text)) if text.contains("content-length")
    ));
    assert!(f.sink.received().is_empty());
}
