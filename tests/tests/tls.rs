//! The API served over TLS from a configured certificate and key: a client that trusts the
//! certificate gets answers, a plain-HTTP client does not, and a key that does not belong to the
//! certificate stops the start with a message naming both files.

use integrasjonspunkt::plugins::Compiler;
use ip_tests::network::{API_PASSWORD, API_USER, IntegrationPoint, Network};
use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509, X509NameBuilder};

/// A self-signed certificate for 127.0.0.1 and its key, PEM.
fn certificate_for_localhost() -> (Vec<u8>, Vec<u8>) {
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "127.0.0.1").unwrap();
    let name = name.build();
    let mut builder = X509::builder().unwrap();
    builder.set_version(2).unwrap();
    builder.set_subject_name(&name).unwrap();
    builder.set_issuer_name(&name).unwrap();
    builder.set_pubkey(&key).unwrap();
    builder
        .set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    builder
        .set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .ip("127.0.0.1")
        .build(&builder.x509v3_context(None, None))
        .unwrap();
    builder.append_extension(san).unwrap();
    builder.sign(&key, MessageDigest::sha256()).unwrap();
    (
        builder.build().to_pem().unwrap(),
        key.private_key_to_pem_pkcs8().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_is_served_over_tls_from_the_configured_certificate() {
    let network = Network::start().await;
    let (certificate, key) = certificate_for_localhost();
    let home = network.configure(
        "910075918",
        "\n[api.tls]\ncertificate = \"tls-certificate.pem\"\nkey = \"tls-key.pem\"\n",
    );
    std::fs::write(home.join("tls-certificate.pem"), &certificate).unwrap();
    std::fs::write(home.join("tls-key.pem"), &key).unwrap();
    let ip = IntegrationPoint::start(&home).await;
    let port = ip.service.address().port();

    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&certificate).unwrap())
        .build()
        .unwrap();
    let answer = trusting
        .get(format!("https://127.0.0.1:{port}/api/conversations"))
        .basic_auth(API_USER, Some(API_PASSWORD))
        .send()
        .await
        .expect("an answer over TLS");
    assert_eq!(answer.status(), 200);

    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/manage/health"))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP is not served: {plain:?}");
    ip.service.stop().await;

    // A key of another certificate is refused at start, naming both files.
    let (_, other_key) = certificate_for_localhost();
    std::fs::write(home.join("tls-key.pem"), &other_key).unwrap();
    let options = ip_tests::network::load_options(&home);
    let config = integrasjonspunkt::config::Config::load(&options)
        .await
        .unwrap();
    let refused = integrasjonspunkt::service::start(config, options, Compiler::InProcess)
        .await
        .err()
        .expect("the start is refused");
    let message = format!("{refused:#}");
    assert!(
        message.contains("tls-key.pem") && message.contains("tls-certificate.pem"),
        "{message}"
    );
}
