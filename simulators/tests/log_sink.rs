//! The log sink, fed JSON lines over plain TCP and over TLS with and without a client
//! certificate.
//!
//! A connection's end is made observable without sleeping: a line that is not JSON makes the
//! sink close the connection, so once the client reads end-of-stream every earlier line has been
//! handled.

use std::pin::Pin;
use std::time::Duration;

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use simulators::log_sink::{LogSink, LogSinkConfig, LogSinkTls};
use simulators::pki::{Issued, TestPki};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Writes `lines`, then a line that is not JSON, and reads until the sink closes.
async fn send_then_break(mut stream: impl AsyncRead + AsyncWrite + Unpin, lines: &[&str]) {
    for line in lines {
        stream.write_all(line.as_bytes()).await.unwrap();
        stream.write_all(b"\n").await.unwrap();
    }
    stream.write_all(b"this is not json\n").await.unwrap();
    stream.flush().await.unwrap();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest).await;
    assert!(rest.is_empty());
}

#[tokio::test]
async fn json_lines_are_kept_in_order_and_a_non_json_line_closes_the_connection() {
    let sink = LogSink::start(LogSinkConfig::default()).await.unwrap();
    let tcp = TcpStream::connect(sink.destination()).await.unwrap();
    send_then_break(
        tcp,
        &[
            r#"{"message":"first","appname":"integrasjonspunkt"}"#,
            "",
            r#"{"message":"second","orgnr":"910075918"}"#,
        ],
    )
    .await;
    let received = sink.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0]["message"], "first");
    assert_eq!(received[1]["orgnr"], "910075918");
    assert_eq!(sink.rejected(), 1);

    let tcp = TcpStream::connect(sink.destination()).await.unwrap();
    send_then_break(tcp, &["[1, 2]"]).await;
    assert_eq!(sink.rejected(), 2, "a JSON array is not an event");
    assert_eq!(sink.received().len(), 2);
}

#[tokio::test]
async fn events_beyond_the_limit_are_counted_not_kept() {
    let sink = LogSink::start(LogSinkConfig {
        max_events: 2,
        ..LogSinkConfig::default()
    })
    .await
    .unwrap();
    let tcp = TcpStream::connect(sink.destination()).await.unwrap();
    send_then_break(tcp, &[r#"{"n":1}"#, r#"{"n":2}"#, r#"{"n":3}"#]).await;
    assert_eq!(
        sink.received(),
        [serde_json::json!({"n": 1}), serde_json::json!({"n": 2})]
    );
    assert_eq!(sink.dropped(), 1);
}

#[tokio::test]
async fn an_injected_fault_drops_the_next_connection() {
    let sink = LogSink::start(LogSinkConfig::default()).await.unwrap();
    sink.drop_next_connections(1);
    let mut dropped = TcpStream::connect(sink.destination()).await.unwrap();
    let mut rest = Vec::new();
    let _ = dropped.read_to_end(&mut rest).await;
    let tcp = TcpStream::connect(sink.destination()).await.unwrap();
    send_then_break(tcp, &[r#"{"after":"fault"}"#]).await;
    assert_eq!(sink.received(), [serde_json::json!({"after": "fault"})]);
}

struct TlsSetup {
    _dir: tempfile::TempDir,
    pki: TestPki,
    client: Issued,
    sink: LogSink,
}

async fn tls_sink() -> TlsSetup {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path()).unwrap();
    let server = pki
        .issue("999999999", "Logtjeneste", -1, 365, "pw")
        .unwrap();
    let client = pki.issue("910075918", "Testetat", -1, 365, "pw").unwrap();
    let sink = LogSink::start(LogSinkConfig {
        tls: Some(LogSinkTls {
            certificate: server.certificate,
            key: server.key,
            client_ca: pki.ca().clone(),
        }),
        ..LogSinkConfig::default()
    })
    .await
    .unwrap();
    TlsSetup {
        _dir: dir,
        pki,
        client,
        sink,
    }
}

/// A TLS connection to the sink presenting `client`, if given; the sink's own certificate is
/// not what these tests check.
async fn connect_tls(
    sink: &LogSink,
    client: Option<&Issued>,
) -> Result<tokio_openssl::SslStream<TcpStream>, openssl::ssl::Error> {
    let mut builder = SslConnector::builder(SslMethod::tls_client()).unwrap();
    builder.set_verify(SslVerifyMode::NONE);
    if let Some(client) = client {
        builder.set_certificate(&client.certificate).unwrap();
        builder.set_private_key(&client.key).unwrap();
    }
    let ssl = builder
        .build()
        .configure()
        .unwrap()
        .into_ssl("localhost")
        .unwrap();
    let tcp = TcpStream::connect(sink.destination()).await.unwrap();
    let mut stream = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
    Pin::new(&mut stream).connect().await?;
    Ok(stream)
}

/// Waits, up to a generous bound, for the sink to count `expected` refused handshakes.
async fn refused_handshakes_reach(sink: &LogSink, expected: u64) {
    for _ in 0..500 {
        if sink.refused_handshakes() >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sink.refused_handshakes(), expected);
}

#[tokio::test]
async fn over_tls_a_client_certificate_from_the_ca_is_accepted() {
    let setup = tls_sink().await;
    let stream = connect_tls(&setup.sink, Some(&setup.client)).await.unwrap();
    send_then_break(stream, &[r#"{"message":"over tls"}"#]).await;
    assert_eq!(setup.sink.received()[0]["message"], "over tls");
    assert_eq!(setup.sink.refused_handshakes(), 0);
}

#[tokio::test]
async fn over_tls_no_client_certificate_or_a_foreign_one_is_refused() {
    let setup = tls_sink().await;
    let elsewhere = tempfile::tempdir().unwrap();
    let stranger = TestPki::new(elsewhere.path())
        .unwrap()
        .issue("910075918", "Fake", -1, 365, "pw")
        .unwrap();
    for (client, expected) in [(None, 1), (Some(&stranger), 2)] {
        // With TLS 1.3 the client may finish its side before the sink refuses; then the
        // refusal arrives on the first read, and nothing is kept.
        if let Ok(mut stream) = connect_tls(&setup.sink, client).await {
            let _ = stream.write_all(b"{\"sneaked\":true}\n").await;
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest).await;
        }
        refused_handshakes_reach(&setup.sink, expected).await;
    }
    assert!(setup.sink.received().is_empty());
    // The PKI's own certificates still work after the refusals.
    let again = setup
        .pki
        .issue("910076787", "Mottaker", -1, 365, "pw")
        .unwrap();
    let stream = connect_tls(&setup.sink, Some(&again)).await.unwrap();
    send_then_break(stream, &[r#"{"ok":1}"#]).await;
    assert_eq!(setup.sink.received().len(), 1);
}
