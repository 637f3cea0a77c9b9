//! The simulators binary: it starts every service, prints the table of where they listen and how
//! long start-up took, serves on those addresses, and stops cleanly on SIGINT.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use sha2::Sha256;
use simulators::fixture::Fixture;

#[tokio::test]
async fn the_binary_serves_every_service_it_lists_and_stops_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_simulators"))
        .arg("--pki-dir")
        .arg(dir.path().join("pki"))
        .args(["--loopback-port", "0", "--maskinporten-port", "0"])
        .args(["--altinn-exchange-port", "0", "--config-service-port", "0"])
        .args(["--log-service-port", "0", "--registry-port", "0"])
        .args([
            "--elma-port",
            "0",
            "--krr-port",
            "0",
            "--virksert-port",
            "0",
        ])
        .args(["--brreg-port", "0", "--fiks-address-port", "0"])
        .args(["--service-bus-port", "0"])
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
    let mut started_in = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(elapsed) = line.strip_prefix("started in ") {
            started_in = Some(elapsed.to_owned());
            break;
        }
        let (name, url) = line.trim_end().rsplit_once(' ').unwrap();
        table.insert(name.trim().to_owned(), url.to_owned());
    }
    let started_in = started_in.expect("the start-up time is printed after the table");
    assert!(started_in.ends_with(" ms"), "{started_in}");
    for service in [
        "loopback peer",
        "Maskinporten",
        "Altinn token exchange",
        "configuration service",
        "log service (TCP)",
        "ServiceRegistry",
        "ELMA",
        "KRR",
        "Virksert",
        "Brreg",
        "FIKS address service",
        "DPE Service Bus",
        "SvarUt",
        "SvarInn",
        "DPI meldingsformidler",
        "KRR print certificate",
        "Altinn broker (basic)",
        "Altinn broker (streamed)",
        "Altinn correspondence",
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
    let svarut = client.post(&table["SvarUt"]).send().await.unwrap();
    assert_eq!(svarut.status(), StatusCode::UNAUTHORIZED);
    // The Altinn 2 services serve their WSDL, as JAX-WS clients fetch it.
    for service in [
        "Altinn broker (basic)",
        "Altinn broker (streamed)",
        "Altinn correspondence",
    ] {
        let wsdl = client
            .get(format!("{}?wsdl", table[service]))
            .send()
            .await
            .unwrap();
        assert_eq!(wsdl.status(), StatusCode::OK, "{service}");
    }

    // The registry answers its public key set, and nothing else without a token.
    let status = |url: String| {
        let client = client.clone();
        async move { client.get(url).send().await.unwrap().status() }
    };
    let registry = &table["ServiceRegistry"];
    assert_eq!(status(format!("{registry}/jwk")).await, StatusCode::OK);
    let lookup = format!("{registry}/identifier/910075918");
    assert_eq!(status(lookup).await, StatusCode::UNAUTHORIZED);
    // The registers answer from the fixture; Virksert the certificate of the keystore written.
    let brreg = format!("{}/enhetsregisteret/api/enheter/910075918", table["Brreg"]);
    assert_eq!(status(brreg).await, StatusCode::OK);
    let elma = format!("{}/iso6523-actorid-upis::0192:910075918", table["ELMA"]);
    assert_eq!(status(elma).await, StatusCode::OK);
    let certificate = client
        .get(format!("{}/api/v1/0192:910075918", table["Virksert"]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let written = std::fs::read_to_string(dir.path().join("pki/910075918.pem")).unwrap();
    assert!(written.starts_with(&certificate), "{certificate}");
    let fiks = format!("{}/api/v2/mottakersystem", table["FIKS address service"]);
    assert_eq!(status(fiks).await, StatusCode::UNAUTHORIZED);
    let krr = client
        .post(format!("{}/rest/v1/personer", table["KRR"]))
        .send()
        .await
        .unwrap();
    assert_eq!(krr.status(), StatusCode::UNAUTHORIZED);
    // The Service Bus takes a SAS signed with the fixture's key, and no other.
    let fixture =
        Fixture::load(concat!(env!("CARGO_MANIFEST_DIR"), "/fixture.toml").as_ref()).unwrap();
    let bus = &table["DPE Service Bus"];
    let queue = format!("{bus}/nextbestqueue910075918innsyn");
    let head = |key: String| {
        let client = client.clone();
        let signature = shared_access_signature(&queue, &fixture.service_bus.key_name, &key);
        let url = format!("{queue}/messages/head");
        async move {
            let request = client.post(url).header("Authorization", signature);
            request.send().await.unwrap().status()
        }
    };
    assert_eq!(
        head("not-the-key".to_owned()).await,
        StatusCode::UNAUTHORIZED
    );
    // The key the registry hands DPE is the one the Service Bus checks.
    let token = maskinporten_token(&client, &table["Maskinporten"], dir.path()).await;
    let sas_key = client
        .get(format!("{registry}/sastoken"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(sas_key, fixture.service_bus.key);
    // A DPF record carries the certificate SvarUt decrypts with, not the receiver's own.
    let token = maskinporten_token(&client, &table["Maskinporten"], dir.path()).await;
    let dpf = client
        .get(format!(
            "{registry}/identifier/910077201/process/urn:no:difi:profile:arkivmelding:administrasjon:ver1.0"
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&dpf.bytes().await.unwrap()).unwrap();
    let record = &answer["serviceRecords"][0];
    assert_eq!(record["service"]["identifier"], "DPF", "{answer}");
    let svarut_pem = std::fs::read_to_string(dir.path().join("pki/svarut.pem")).unwrap();
    let dpf_pem = record["pemCertificate"].as_str().unwrap();
    assert!(svarut_pem.starts_with(dpf_pem), "{dpf_pem}");
    assert_eq!(head(sas_key).await, StatusCode::NO_CONTENT);
    // Every HTTP service takes fault rules from another process.
    assert_eq!(status(format!("{bus}/_faults")).await, StatusCode::OK);

    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    // The CA and the keys are kept next to the PKI directory for the next start.
    for kept in [
        "ca.pem",
        "ca-key.pem",
        "910075918-key.pem",
        "971032146-key.pem",
        "910078402-key.pem",
    ] {
        assert!(dir.path().join("pki-keys").join(kept).exists(), "{kept}");
    }
}

/// A Service Bus SAS for `resource`, valid for a minute.
fn shared_access_signature(resource: &str, key_name: &str, key: &str) -> String {
    let expiry = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60;
    let resource = urlencoding::encode(resource);
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{resource}\n{expiry}").as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let signature = urlencoding::encode(&signature);
    format!("SharedAccessSignature sr={resource}&sig={signature}&se={expiry}&skn={key_name}")
}

/// A Maskinporten token with the DPE scope for 910075918, granted for an assertion signed with
/// the business certificate the binary wrote to `dir/pki`.
async fn maskinporten_token(
    client: &reqwest::Client,
    token_url: &str,
    dir: &std::path::Path,
) -> String {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let pem = std::fs::read(dir.join("pki/910075918.pem")).unwrap();
    let certificate = openssl::x509::X509::from_pem(&pem).unwrap();
    let key = std::fs::read(dir.join("pki/910075918-key.pem")).unwrap();
    let key = openssl::pkey::PKey::private_key_from_pem(&key).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({
        "alg": "RS256", "x5c": [STANDARD.encode(certificate.to_der().unwrap())],
    });
    let claims = serde_json::json!({
        "aud": "http://127.0.0.1:7111/", "iss": "MOVE_IP_910075918", "scope": "eformidling:dpe",
        "jti": uuid::Uuid::new_v4().to_string(), "iat": now, "exp": now + 60,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signer =
        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
    signer.update(input.as_bytes()).unwrap();
    let assertion = format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(signer.sign_to_vec().unwrap())
    );
    let granted = client
        .post(token_url)
        .form(&[
            ("grant_type", simulators::maskinporten::JWT_BEARER),
            ("assertion", assertion.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(granted.status(), StatusCode::OK);
    let granted: serde_json::Value =
        serde_json::from_slice(&granted.bytes().await.unwrap()).unwrap();
    granted["access_token"].as_str().unwrap().to_owned()
}
