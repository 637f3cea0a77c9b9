//! The simulators binary: it starts every service, prints the table of where they listen, serves
//! on those addresses, and stops cleanly on SIGINT.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use reqwest::StatusCode;

#[tokio::test]
async fn the_binary_serves_every_service_it_lists_and_stops_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_simulators"))
        .arg("--pki-dir")
        .arg(dir.path().join("pki"))
        .args(["--loopback-port", "0", "--maskinporten-port", "0"])
        .args(["--altinn-exchange-port", "0", "--config-service-port", "0"])
        .args(["--log-service-port", "0", "--registry-port", "0"])
        .args(["--dpi-port", "0", "--svarut-port", "0"])
        .args([
            "--altinn-broker-port",
            "0",
            "--altinn-correspondence-port",
            "0",
        ])
        .arg("--fixture")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/fixture.toml"))
        .env("SIMULATORS_LOOPBACK_PASSWORD", "pw")
        .env("SIMULATORS_KEYSTORE_PASSWORD", "pw")
        .env("RUST_LOG", "off")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut table = HashMap::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let (name, url) = line.trim_end().rsplit_once(' ').unwrap();
        table.insert(name.trim().to_owned(), url.to_owned());
        if table.contains_key("log service (TCP)") && table.contains_key("KRR print certificate") {
            break;
        }
    }
    for service in [
        "loopback peer",
        "Maskinporten",
        "Altinn token exchange",
        "configuration service",
        "log service (TCP)",
    ] {
        assert!(table.contains_key(service), "{service} missing: {table:?}");
    }

    let client = reqwest::Client::new();
    let token = client
        .post(&table["Maskinporten"])
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::BAD_REQUEST);
    let exchange = client
        .get(&table["Altinn token exchange"])
        .send()
        .await
        .unwrap();
    assert_eq!(exchange.status(), StatusCode::UNAUTHORIZED);
    let config = client
        .get(format!(
            "{}/integrasjonspunkt/local",
            table["configuration service"]
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(config.status(), StatusCode::OK);
    tokio::net::TcpStream::connect(&table["log service (TCP)"])
        .await
        .unwrap();
    let dpi = client
        .get(format!("{}/messages/in", table["DPI meldingsformidler"]))
        .send()
        .await
        .unwrap();
    assert_eq!(dpi.status(), StatusCode::UNAUTHORIZED);
    let svarinn = client
        .get(format!("{}/mottaker/hentNyeForsendelser", table["SvarInn"]))
        .basic_auth("910077201", Some("svarut-910077201"))
        .send()
        .await
        .unwrap();
    assert_eq!(svarinn.status(), StatusCode::OK);
    let print = client
        .get(&table["KRR print certificate"])
        .send()
        .await
        .unwrap();
    assert_eq!(print.status(), StatusCode::OK);

    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}
