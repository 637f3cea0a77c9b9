//! The shipper against a TCP (and a TLS) sink standing in for the Logstash input.

use std::pin::Pin;
use std::time::Duration;

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::ssl::{Ssl, SslAcceptor, SslMethod, SslVerifyMode};
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509, X509Builder, X509NameBuilder};
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::net::TcpListener;
use tracing_subscriber::layer::SubscriberExt as _;

use super::*;
use crate::crypto::testpki::TestPki;

/// How long a test waits for something that should happen at once, before failing.
const PATIENCE: Duration = Duration::from_secs(10);

fn config(destination: &str) -> LogShipConfig {
    LogShipConfig {
        reconnect_first: Duration::from_millis(10),
        reconnect_max: Duration::from_millis(20),
        ..LogShipConfig::new(destination)
    }
}

fn event(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("an event is an object"),
    }
}

/// A sink's lines as JSON, one connection at a time.
struct Lines<R>(tokio::io::Lines<BufReader<R>>);

impl<R: AsyncRead + Unpin> Lines<R> {
    fn new(reader: R) -> Self {
        Self(BufReader::new(reader).lines())
    }

    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(PATIENCE, self.0.next_line())
            .await
            .expect("a line in time")
            .expect("readable")
            .expect("a line, not the end");
        serde_json::from_str(&line).unwrap_or_else(|error| panic!("{error}: {line}"))
    }
}

async fn accept(listener: &TcpListener) -> Lines<tokio::net::TcpStream> {
    let (stream, _) = tokio::time::timeout(PATIENCE, listener.accept())
        .await
        .expect("a connection in time")
        .unwrap();
    Lines::new(stream)
}

/// An address nobody listens on (until a test binds it again).
async fn vacant_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().to_string()
}

#[tokio::test]
async fn events_arrive_as_json_lines_with_identity_numbers_masked() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = config(&listener.local_addr().unwrap().to_string());
    config.fields = event(json!({"appname": "integrasjonspunkt", "orgnr": "910075918"}));
    let shipper = LogShipper::start(config).unwrap();
    shipper.event(event(json!({
        "message": "receiver 06068512345 looked up",
        "receiver": 6068512345_u64,
        "fnr": 16068512345_u64,
        "size": 123456789012_u64,
        "details": {"06068512345": ["06068512345", true]},
        "appname": "overridden",
    })));
    let mut lines = accept(&listener).await;
    let line = lines.next().await;
    assert_eq!(line["message"], "receiver 060685***** looked up");
    assert_eq!(
        line["receiver"], 6068512345_u64,
        "ten digits are not an identity number"
    );
    assert_eq!(
        line["fnr"], "160685*****",
        "an 11-digit number is masked, as text"
    );
    assert_eq!(line["size"], 123456789012_u64);
    assert_eq!(
        line["details"],
        json!({"060685*****": ["060685*****", true]})
    );
    assert_eq!(line["orgnr"], "910075918");
    assert_eq!(line["appname"], "overridden", "the event's own field wins");
    assert_eq!(shipper.shipped(), 1);
}

#[tokio::test]
async fn the_layer_ships_what_the_host_logs_with_its_spans_fields() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shipper = LogShipper::start(config(&listener.local_addr().unwrap().to_string())).unwrap();
    let subscriber = tracing_subscriber::registry().with(shipper.layer(tracing::Level::INFO));
    let _guard = tracing::subscriber::set_default(subscriber);
    let span = tracing::info_span!(
        "send",
        conversation_id = "c-1",
        message_id = tracing::field::Empty
    );
    span.record("message_id", "m-1");
    span.in_scope(|| {
        tracing::info!(target: "STATUS", status = "SENDT", attempt = 2, "sent to 06068512345");
        tracing::debug!("below the shipped level");
    });
    tracing::warn!("done");
    let mut lines = accept(&listener).await;
    let status = lines.next().await;
    assert_eq!(status["logger_name"], "STATUS");
    assert_eq!(status["level"], "INFO");
    assert_eq!(status["@version"], "1");
    assert!(
        status["@timestamp"].as_str().unwrap().ends_with('Z'),
        "{status}"
    );
    assert_eq!(status["message"], "sent to 060685*****");
    assert_eq!(status["status"], "SENDT");
    assert_eq!(status["attempt"], 2);
    assert_eq!(status["conversation_id"], "c-1");
    assert_eq!(status["message_id"], "m-1");
    let done = lines.next().await;
    assert_eq!(done["message"], "done", "the debug event was not shipped");
    assert_eq!(done["level"], "WARN");
    assert!(done.get("conversation_id").is_none(), "outside the span");
}

#[tokio::test]
async fn a_sink_that_goes_away_and_comes_back_is_reconnected() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let shipper = LogShipper::start(config(&address)).unwrap();
    shipper.event(event(json!({"message": "before"})));
    let mut lines = accept(&listener).await;
    assert_eq!(lines.next().await["message"], "before");

    drop(lines);
    drop(listener);
    let listener = TcpListener::bind(&address).await.unwrap();
    let mut lines = accept(&listener).await;
    shipper.event(event(json!({"message": "after"})));
    assert_eq!(lines.next().await["message"], "after");
    assert_eq!(shipper.shipped(), 2);
}

#[tokio::test]
async fn events_wait_while_the_sink_is_away() {
    let address = vacant_address().await;
    let shipper = LogShipper::start(config(&address)).unwrap();
    shipper.event(event(json!({"n": 1})));
    shipper.event(event(json!({"n": 2})));
    let listener = TcpListener::bind(&address).await.unwrap();
    let mut lines = accept(&listener).await;
    assert_eq!(lines.next().await["n"], 1);
    assert_eq!(lines.next().await["n"], 2);
    assert_eq!(shipper.dropped(), 0);
}

#[tokio::test]
async fn a_full_buffer_drops_and_counts_without_waiting() {
    let captured = crate::logmask::tests::Captured::default();
    let _guard = tracing::subscriber::set_default(captured.subscriber());
    let address = vacant_address().await;
    let mut config = config(&address);
    config.buffer = 4;
    let shipper = LogShipper::start(config).unwrap();
    // No await between these: were `event` to wait for room, this would never finish.
    for n in 0..10 {
        shipper.event(event(json!({"n": n})));
    }
    assert_eq!(shipper.dropped(), 6);

    let listener = TcpListener::bind(&address).await.unwrap();
    let mut lines = accept(&listener).await;
    for n in 0..4 {
        assert_eq!(lines.next().await["n"], n, "the first four were kept");
    }
    let deadline = Instant::now() + PATIENCE;
    while !captured.text().contains("dropped_since_last_report=6") {
        assert!(
            Instant::now() < deadline,
            "no drop report: {}",
            captured.text()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn tls_presents_the_client_certificate_and_checks_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let client_pki = TestPki::new(dir.path(), 365);
    let (server_key, server_certificate) = self_signed_for_loopback();
    let ca_file = dir.path().join("log-service-ca.pem");
    std::fs::write(&ca_file, server_certificate.to_pem().unwrap()).unwrap();

    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    acceptor.set_private_key(&server_key).unwrap();
    acceptor.set_certificate(&server_certificate).unwrap();
    acceptor.set_ca_file(client_pki.ca_pem()).unwrap();
    acceptor.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    let acceptor = acceptor.build();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = config(&listener.local_addr().unwrap().to_string());
    config.tls = Some(LogTls {
        client: Some(client_pki.business_certificate()),
        ca_file: Some(ca_file),
    });
    let shipper = LogShipper::start(config).unwrap();
    shipper.event(event(json!({"message": "over TLS"})));

    let (tcp, _) = listener.accept().await.unwrap();
    let mut tls =
        tokio_openssl::SslStream::new(Ssl::new(acceptor.context()).unwrap(), tcp).unwrap();
    Pin::new(&mut tls).accept().await.expect("handshake");
    let peer = tls.ssl().peer_certificate().expect("a client certificate");
    assert_eq!(peer.to_der().unwrap(), client_pki.leaf.to_der().unwrap());
    let mut lines = Lines::new(tls);
    assert_eq!(lines.next().await["message"], "over TLS");
}

#[tokio::test]
async fn tls_refuses_a_service_it_does_not_trust() {
    let (server_key, server_certificate) = self_signed_for_loopback();
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    acceptor.set_private_key(&server_key).unwrap();
    acceptor.set_certificate(&server_certificate).unwrap();
    let acceptor = acceptor.build();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let captured = crate::logmask::tests::Captured::default();
    let _guard = tracing::subscriber::set_default(captured.subscriber());
    let mut config = config(&listener.local_addr().unwrap().to_string());
    config.tls = Some(LogTls::default());
    let shipper = LogShipper::start(config).unwrap();
    shipper.event(event(json!({"message": "secret"})));
    let (tcp, _) = listener.accept().await.unwrap();
    let mut tls =
        tokio_openssl::SslStream::new(Ssl::new(acceptor.context()).unwrap(), tcp).unwrap();
    assert!(
        Pin::new(&mut tls).accept().await.is_err(),
        "the client hung up"
    );
    let deadline = Instant::now() + PATIENCE;
    while !captured.text().contains("certificate verify failed") {
        assert!(Instant::now() < deadline, "{}", captured.text());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(shipper.shipped(), 0);
}

/// A self-signed certificate for 127.0.0.1, as a test log service's.
fn self_signed_for_loopback() -> (PKey<Private>, X509) {
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "log service").unwrap();
    let name = name.build();
    let mut builder = X509Builder::new().unwrap();
    builder.set_version(2).unwrap();
    let serial = BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap();
    builder.set_serial_number(&serial).unwrap();
    builder.set_subject_name(&name).unwrap();
    builder.set_issuer_name(&name).unwrap();
    builder.set_pubkey(&key).unwrap();
    builder
        .set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    builder
        .set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .ip("127.0.0.1")
        .build(&builder.x509v3_context(None, None))
        .unwrap();
    builder.append_extension(san).unwrap();
    builder.sign(&key, MessageDigest::sha256()).unwrap();
    (key, builder.build())
}
