//! The DPI meldingsformidler (corner 2): a message sent the way the integration point sends it
//! is accepted and receipted with signed JWTs; a missing or weak token, an untrusted signature,
//! a wrong fingerprint or a package for the wrong key is refused with problem JSON.

use std::io::Write as _;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::{Signer, Verifier};
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::X509;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use simulators::dpi::{
    DEFAULT_MAX_PACKAGE_SIZE, Meldingsformidler, MeldingsformidlerConfig, Provider, ReceiptKind,
    providers_from_fixture,
};
use simulators::fixture::Fixture;
use simulators::maskinporten::{JWT_BEARER, Maskinporten, MaskinportenConfig};
use simulators::pki::{Issued, TestPki};

const AUDIENCE: &str = "http://maskinporten.test/";
const SENDER: &str = "910075918";
const PROVIDER: &str = "984661185";

struct Setup {
    dir: tempfile::TempDir,
    sender: Issued,
    provider: Issued,
    formidler_certificate: X509,
    maskinporten: Maskinporten,
    dpi: Meldingsformidler,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path()).unwrap();
    let sender = pki.issue(SENDER, "Avsender", -1, 365, "pw").unwrap();
    let provider = pki.issue(PROVIDER, "Postkasse", -1, 365, "pw").unwrap();
    let formidler = pki.issue_meldingsformidler("pw").unwrap();
    let maskinporten = Maskinporten::start(MaskinportenConfig::new(
        pki.ca().clone(),
        AUDIENCE,
        ["digitalpostinnbygger:send", "eformidling:dpv"],
    ))
    .await
    .unwrap();
    let dpi = Meldingsformidler::start(MeldingsformidlerConfig {
        port: 0,
        maskinporten: maskinporten.verifier(),
        ca: pki.ca().clone(),
        receipt_certificate: formidler.certificate.clone(),
        receipt_key: formidler.key.clone(),
        providers: vec![Provider {
            orgnr: PROVIDER.into(),
            certificate: provider.certificate.clone(),
            key: provider.key.clone(),
        }],
        print_provider: PROVIDER.into(),
        max_package_size: DEFAULT_MAX_PACKAGE_SIZE,
        data_dir: Some(dir.path().join("dpi")),
    })
    .await
    .unwrap();
    Setup {
        dir,
        sender,
        provider,
        formidler_certificate: formidler.certificate,
        maskinporten,
        dpi,
    }
}

fn sign(header: &Value, claims: &Value, key: &PKey<Private>) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signer = Signer::new(MessageDigest::sha256(), key).unwrap();
    signer.update(input.as_bytes()).unwrap();
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(signer.sign_to_vec().unwrap())
    )
}

/// The body of `response` as JSON; `null` when it is not JSON.
async fn json_of(response: reqwest::Response) -> Value {
    serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null)
}

fn x5c(certificate: &X509) -> Value {
    json!([STANDARD.encode(certificate.to_der().unwrap())])
}

/// A Maskinporten token for `scope`, obtained the real way.
async fn token(setup: &Setup, scope: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"aud": AUDIENCE, "iss": "MOVE_IP_910075918", "scope": scope,
                        "jti": uuid::Uuid::new_v4().to_string(), "iat": now, "exp": now + 120});
    let assertion = sign(
        &json!({"alg": "RS256", "x5c": x5c(&setup.sender.certificate)}),
        &claims,
        &setup.sender.key,
    );
    let answer = json_of(
        reqwest::Client::new()
            .post(setup.maskinporten.token_url())
            .form(&[("grant_type", JWT_BEARER), ("assertion", &assertion)])
            .send()
            .await
            .unwrap(),
    )
    .await;
    answer["access_token"].as_str().unwrap().to_owned()
}

/// An ASiC-E as the DPI client builds it (XAdES: `META-INF/signatures.xml`).
fn asic() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, content) in [
        ("mimetype", &b"application/vnd.etsi.asic-e+zip"[..]),
        ("manifest.xml", b"<manifest/>"),
        ("vedtak.pdf", b"%PDF-1.7 vedtak"),
        ("META-INF/signatures.xml", b"<XAdESSignatures/>"),
    ] {
        zip.start_file(name, stored).unwrap();
        zip.write_all(content).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// `content` encrypted to `certificate` with RSAES-OAEP (SHA-256), as the integration point
/// encrypts, by the `openssl` command line.
fn encrypt_oaep(dir: &std::path::Path, certificate: &X509, content: &[u8]) -> Vec<u8> {
    let (plain, recipient, out) = (
        dir.join("asic.zip"),
        dir.join("recipient.pem"),
        dir.join("asic.cms"),
    );
    std::fs::write(&plain, content).unwrap();
    std::fs::write(&recipient, certificate.to_pem().unwrap()).unwrap();
    let status = Command::new("openssl")
        .args([
            "cms",
            "-encrypt",
            "-binary",
            "-aes-256-cbc",
            "-outform",
            "DER",
        ])
        .args([
            "-in",
            plain.to_str().unwrap(),
            "-out",
            out.to_str().unwrap(),
        ])
        .args(["-recip", recipient.to_str().unwrap()])
        .args([
            "-keyopt",
            "rsa_padding_mode:oaep",
            "-keyopt",
            "rsa_oaep_md:sha256",
        ])
        .args(["-keyopt", "rsa_mgf1_md:sha256"])
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(out).unwrap()
}

/// `content` encrypted to `certificate` with RSA PKCS#1 v1.5.
fn encrypt_pkcs1(certificate: &X509, content: &[u8]) -> Vec<u8> {
    let mut recipients = Stack::new().unwrap();
    recipients.push(certificate.clone()).unwrap();
    CmsContentInfo::encrypt(
        &recipients,
        content,
        Cipher::aes_256_cbc(),
        CMSOptions::BINARY,
    )
    .unwrap()
    .to_der()
    .unwrap()
}

/// The forretningsmelding of a `digital` message with `message_id` for `package`.
fn forretningsmelding(message_id: &str, package: &[u8]) -> Value {
    json!({"standardBusinessDocument": {
        "standardBusinessDocumentHeader": {
            "headerVersion": "1.0",
            "sender": [{"identifier": {"authority": "iso6523-actorid-upis", "value": "0192:910075918"}}],
            "receiver": [{"identifier": {"authority": "iso6523-actorid-upis", "value": "01818012337"}}],
            "documentIdentification": {
                "standard": "urn:fdc:digdir.no:2020:innbyggerpost:xsd::innbyggerpost##urn:fdc:digdir.no:2020:innbyggerpost:schema:digital::1.0",
                "typeVersion": "1.0",
                "instanceIdentifier": message_id,
                "type": "digital",
                "creationDateAndTime": "2026-01-01T12:00:00Z",
            },
            "businessScope": {"scope": [{
                "type": "ConversationId",
                "instanceIdentifier": "c0ffee00-0000-4000-8000-000000000001",
                "identifier": "urn:fdc:digdir.no:2020:profile:egovernment:innbyggerpost:digital:ver1.0",
            }]},
        },
        "digital": {
            "avsender": {
                "virksomhetsidentifikator": {"authority": "iso6523-actorid-upis", "value": "0192:910075918"},
                "avsenderidentifikator": "kommune-a",
            },
            "mottaker": {"postkasseadresse": "kari.digital#4711"},
            "dokumentpakkefingeravtrykk": {
                "digestMethod": "http://www.w3.org/2001/04/xmlenc#sha256",
                "digestValue": STANDARD.encode(Sha256::digest(package)),
            },
            "maskinportentoken": "token",
            "sikkerhetsnivaa": 3,
            "ikkesensitivtittel": "Vedtak",
            "spraak": "NO",
        },
    }})
}

/// `payload` turned into an `utskrift` (print) message: its type, standard and process, and
/// the body under `utskrift` with a postal address instead of a mailbox.
fn as_utskrift(mut payload: Value) -> Value {
    let sbd = &mut payload["standardBusinessDocument"];
    let header = &mut sbd["standardBusinessDocumentHeader"];
    header["documentIdentification"]["type"] = json!("utskrift");
    header["documentIdentification"]["standard"] = json!(
        "urn:fdc:digdir.no:2020:innbyggerpost:xsd::innbyggerpost##urn:fdc:digdir.no:2020:innbyggerpost:schema:utskrift::1.0"
    );
    header["businessScope"]["scope"][0]["identifier"] =
        json!("urn:fdc:digdir.no:2020:profile:egovernment:innbyggerpost:utskrift:ver1.0");
    let object = sbd.as_object_mut().unwrap();
    let mut body = object.remove("digital").unwrap();
    body["mottaker"] = json!({"navn": "Per Papir", "adresselinje1": "Brevveien 5",
                              "postnummer": "5003", "poststed": "Bergen"});
    body["utskriftstype"] = json!("SORT_HVIT");
    body["retur"] =
        json!({"mottaker": {"navn": "Lokal testetat"}, "returposthaandtering": "DIREKTE_RETUR"});
    object.insert("utskrift".into(), body);
    payload
}

fn jws(payload: &Value, signer: &Issued) -> String {
    sign(
        &json!({"alg": "RS256", "x5c": x5c(&signer.certificate)}),
        payload,
        &signer.key,
    )
}

/// A multipart/form-data body with the given parts `(name, filename, content type, bytes)`.
fn multipart(parts: &[(&str, &str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "dpi-test-boundary-7c1e";
    let mut body = Vec::new();
    for (name, filename, content_type, bytes) in parts {
        write!(
            body,
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .unwrap();
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    write!(body, "--{boundary}--\r\n").unwrap();
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn send(setup: &Setup, token: Option<&str>, jwt: &str, package: &[u8]) -> reqwest::Response {
    let (content_type, body) = multipart(&[
        (
            "forretningsmelding",
            "sbd.jwt",
            "application/jwt",
            jwt.as_bytes(),
        ),
        ("dokumentpakke", "asic.cms", "application/cms", package),
    ]);
    let mut request = reqwest::Client::new()
        .post(format!(
            "{}/messages/out?kanal=integrasjonspunkt_0",
            setup.dpi.api_url()
        ))
        .header("content-type", content_type)
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn get_json(url: String, token: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, json_of(response).await)
}

/// The verified payload of a receipt JWT signed by `certificate` (in `x5c`).
fn verified_receipt(jwt: &str, certificate: &X509) -> Value {
    let parts: Vec<&str> = jwt.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["x5c"].as_array().unwrap().len(), 2, "signer and CA");
    let signer =
        X509::from_der(&STANDARD.decode(header["x5c"][0].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(signer.to_der().unwrap(), certificate.to_der().unwrap());
    let key = signer.public_key().unwrap();
    let mut verifier = Verifier::new(MessageDigest::sha256(), &key).unwrap();
    verifier
        .update(format!("{}.{}", parts[0], parts[1]).as_bytes())
        .unwrap();
    assert!(
        verifier
            .verify(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap())
            .unwrap()
    );
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap()
}

async fn receipts(setup: &Setup, token: &str, query: &str) -> Vec<Value> {
    let (status, list) = get_json(
        format!("{}/messages/in?{query}", setup.dpi.api_url()),
        token,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| {
            verified_receipt(
                item["forretningsmelding"].as_str().unwrap(),
                &setup.formidler_certificate,
            )
        })
        .collect()
}

#[tokio::test]
async fn a_message_is_accepted_receipted_and_its_receipts_confirmed() {
    let setup = setup().await;
    let token = token(&setup, "digitalpostinnbygger:send").await;
    let message_id = uuid::Uuid::new_v4().to_string();
    let package = encrypt_oaep(setup.dir.path(), &setup.provider.certificate, &asic());
    let jwt = jws(&forretningsmelding(&message_id, &package), &setup.sender);

    let response = send(&setup, Some(&token), &jwt, &package).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
    // A retry of the same message is answered the same and not stored twice.
    assert_eq!(
        send(&setup, Some(&token), &jwt, &package).await.status(),
        StatusCode::OK
    );
    let received = setup.dpi.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].message_id, message_id);
    assert_eq!(received[0].provider, PROVIDER);
    assert_eq!(received[0].kanal.as_deref(), Some("integrasjonspunkt_0"));
    assert!(received[0].asic_entries.contains(&"vedtak.pdf".to_owned()));
    assert_eq!(
        received[0].dokumentpakke_sha256,
        hex::encode(Sha256::digest(&package))
    );

    let (status, statuses) = get_json(
        format!("{}/messages/out/{message_id}/statuses", setup.dpi.api_url()),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = statuses
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["OPPRETTET", "SENDT"]);
    assert!(statuses[0]["timestamp"].as_str().unwrap().ends_with('Z'));

    let waiting = receipts(
        &setup,
        &token,
        "avsenderidentifikator=kommune-a&kanal=integrasjonspunkt_0&page_size=100",
    )
    .await;
    assert_eq!(waiting.len(), 1);
    let sbd = &waiting[0]["standardBusinessDocument"];
    let header = &sbd["standardBusinessDocumentHeader"];
    assert_eq!(
        header["documentIdentification"]["type"],
        "leveringskvittering"
    );
    assert_eq!(
        header["businessScope"]["scope"][0]["instanceIdentifier"],
        "c0ffee00-0000-4000-8000-000000000001"
    );
    assert_eq!(
        sbd["leveringskvittering"]["avsender"]["avsenderidentifikator"],
        "kommune-a"
    );
    assert_eq!(
        sbd["leveringskvittering"]["mottaker"]["virksomhetsidentifikator"]["value"],
        "0192:984661185"
    );
    // Filters that match nothing leave it out.
    assert!(
        receipts(&setup, &token, "avsenderidentifikator=kommune-b")
            .await
            .is_empty()
    );
    assert!(receipts(&setup, &token, "kanal=annen").await.is_empty());

    setup.dpi.mark_opened(&message_id).unwrap();
    assert!(
        setup
            .dpi
            .mark_opened("00000000-0000-4000-8000-000000000000")
            .is_err()
    );
    let waiting = receipts(&setup, &token, "").await;
    let types: Vec<&str> = waiting
        .iter()
        .map(|r| r["standardBusinessDocument"]["standardBusinessDocumentHeader"]["documentIdentification"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["leveringskvittering", "aapningskvittering"]);

    let levering = waiting[0]["standardBusinessDocument"]["standardBusinessDocumentHeader"]["documentIdentification"]["instanceIdentifier"].as_str().unwrap();
    let client = reqwest::Client::new();
    let read = |id: String| {
        client
            .post(format!("{}/messages/in/{id}/read", setup.dpi.api_url()))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(
        read(levering.to_owned()).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        read(levering.to_owned()).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let waiting = receipts(&setup, &token, "").await;
    assert_eq!(waiting.len(), 1);
    assert_eq!(
        waiting[0]["standardBusinessDocument"]["standardBusinessDocumentHeader"]["documentIdentification"]
            ["type"],
        "aapningskvittering"
    );

    let inspection = json_of(
        reqwest::get(format!("{}/simulator/messages", setup.dpi.base_url()))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(inspection[0]["messageId"], message_id.as_str());
    assert_eq!(
        inspection[0]["receipts"],
        json!(["leveringskvittering", "aapningskvittering"])
    );
}

#[tokio::test]
async fn a_failure_is_a_status_and_a_feil_receipt_and_outages_are_injected() {
    let setup = setup().await;
    let token = token(&setup, "digitalpostinnbygger:send").await;
    let message_id = uuid::Uuid::new_v4().to_string();
    let package = encrypt_pkcs1(&setup.provider.certificate, &asic());
    let jwt = jws(&forretningsmelding(&message_id, &package), &setup.sender);

    setup.dpi.fail_next(1);
    assert_eq!(
        send(&setup, Some(&token), &jwt, &package).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(setup.dpi.received().is_empty());
    assert_eq!(
        send(&setup, Some(&token), &jwt, &package).await.status(),
        StatusCode::OK
    );

    setup
        .dpi
        .mark_failed(&message_id, "postkassen er slettet")
        .unwrap();
    let (_, statuses) = get_json(
        format!("{}/messages/out/{message_id}/statuses", setup.dpi.api_url()),
        &token,
    )
    .await;
    assert_eq!(statuses[2]["status"], "FEILET");
    assert_eq!(statuses[2]["beskrivelse"], "postkassen er slettet");
    let waiting = receipts(&setup, &token, "").await;
    let feil = &waiting[1]["standardBusinessDocument"]["feil"];
    assert_eq!(feil["feiltype"], "KLIENT");
    assert_eq!(feil["detaljer"], "postkassen er slettet");

    // Every other receipt kind, to the schema of its type.
    for kind in [
        ReceiptKind::Mottakskvittering,
        ReceiptKind::Varslingfeiletkvittering,
        ReceiptKind::Returpostkvittering,
    ] {
        setup
            .dpi
            .send_receipt(&message_id, kind, Some("ingen e-postadresse"))
            .unwrap();
    }
    let waiting = receipts(&setup, &token, "").await;
    let types: Vec<&str> = waiting
        .iter()
        .map(|r| {
            r["standardBusinessDocument"]["standardBusinessDocumentHeader"]
                ["documentIdentification"]["type"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        types,
        [
            "leveringskvittering",
            "feil",
            "mottakskvittering",
            "varslingfeiletkvittering",
            "returpostkvittering"
        ]
    );
    let varsling = &waiting[3]["standardBusinessDocument"]["varslingfeiletkvittering"];
    assert_eq!(varsling["varslingskanal"], "epost");
    assert_eq!(varsling["beskrivelse"], "ingen e-postadresse");
    assert!(
        waiting[4]["standardBusinessDocument"]["returpostkvittering"]
            .get("beskrivelse")
            .is_none()
    );

    // A print message is checked against its own standard and process.
    let print_id = uuid::Uuid::new_v4().to_string();
    let print = as_utskrift(forretningsmelding(&print_id, &package));
    let response = send(&setup, Some(&token), &jws(&print, &setup.sender), &package).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(setup.dpi.received()[1].message_type, "utskrift");
    let mut mixed = as_utskrift(forretningsmelding(
        &uuid::Uuid::new_v4().to_string(),
        &package,
    ));
    mixed["standardBusinessDocument"]["standardBusinessDocumentHeader"]["businessScope"]["scope"]
        [0]["identifier"] =
        json!("urn:fdc:digdir.no:2020:profile:egovernment:innbyggerpost:digital:ver1.0");
    let response = send(&setup, Some(&token), &jws(&mixed, &setup.sender), &package).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        json_of(response).await["detail"]
            .as_str()
            .unwrap()
            .contains("innbyggerpost:utskrift:ver1.0")
    );

    let (status, unknown) = get_json(
        format!(
            "{}/messages/out/{}/statuses",
            setup.dpi.api_url(),
            uuid::Uuid::new_v4()
        ),
        &token,
    )
    .await;
    assert_eq!((status, unknown), (StatusCode::OK, json!([])));
}

#[tokio::test]
async fn calls_without_a_valid_token_with_the_scope_are_refused() {
    let setup = setup().await;
    let message_id = uuid::Uuid::new_v4().to_string();
    let package = encrypt_pkcs1(&setup.provider.certificate, &asic());
    let jwt = jws(&forretningsmelding(&message_id, &package), &setup.sender);

    let response = send(&setup, None, &jwt, &package).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(
        send(&setup, Some("not.a.token"), &jwt, &package)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let wrong_scope = token(&setup, "eformidling:dpv").await;
    let response = send(&setup, Some(&wrong_scope), &jwt, &package).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let problem = json_of(response).await;
    assert_eq!(problem["status"], 403);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("digitalpostinnbygger:send")
    );
    let (status, _) = get_json(format!("{}/messages/in", setup.dpi.api_url()), &wrong_scope).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(setup.dpi.received().is_empty());

    // KRR's print certificate needs no token.
    let print = json_of(
        reqwest::get(setup.dpi.print_certificate_url())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(print["postkasseleverandoerAdresse"], PROVIDER);
    let pem = print["x509Sertifikat"].as_str().unwrap();
    assert_eq!(
        X509::from_pem(pem.as_bytes()).unwrap().to_der().unwrap(),
        setup.provider.certificate.to_der().unwrap()
    );
}

#[tokio::test]
async fn malformed_or_misaddressed_messages_are_refused_with_problem_json() {
    let setup = setup().await;
    let token = token(&setup, "digitalpostinnbygger:send").await;
    let message_id = uuid::Uuid::new_v4().to_string();
    let package = encrypt_pkcs1(&setup.provider.certificate, &asic());
    let payload = forretningsmelding(&message_id, &package);

    let refused = |response: reqwest::Response| async move {
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let problem = json_of(response).await;
        problem["detail"].as_str().unwrap().to_owned()
    };

    // Signed by a certificate of another CA.
    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger = TestPki::new(stranger_dir.path())
        .unwrap()
        .issue(SENDER, "Falsk", -1, 365, "pw")
        .unwrap();
    let detail =
        refused(send(&setup, Some(&token), &jws(&payload, &stranger), &package).await).await;
    assert!(detail.contains("not trusted"), "{detail}");

    // A signature that does not match the payload.
    let good = jws(&payload, &setup.sender);
    let other = jws(
        &forretningsmelding(&uuid::Uuid::new_v4().to_string(), &package),
        &setup.sender,
    );
    let forged = format!(
        "{}.{}.{}",
        good.split('.').next().unwrap(),
        other.split('.').nth(1).unwrap(),
        good.split('.').nth(2).unwrap()
    );
    let detail = refused(send(&setup, Some(&token), &forged, &package).await).await;
    assert!(detail.contains("signature"), "{detail}");

    // The fingerprint names other bytes.
    let other_package = encrypt_pkcs1(&setup.provider.certificate, &asic());
    let detail = refused(send(&setup, Some(&token), &good, &other_package).await).await;
    assert!(detail.contains("dokumentpakkefingeravtrykk"), "{detail}");

    // Encrypted to the sender instead of the mailbox provider.
    let misaddressed = encrypt_pkcs1(&setup.sender.certificate, &asic());
    let jwt = jws(
        &forretningsmelding(&message_id, &misaddressed),
        &setup.sender,
    );
    let detail = refused(send(&setup, Some(&token), &jwt, &misaddressed).await).await;
    assert!(detail.contains("decrypts"), "{detail}");

    // Not an innbyggerpost SBD.
    let mut wrong_type = payload.clone();
    wrong_type["standardBusinessDocument"]["standardBusinessDocumentHeader"]["documentIdentification"]
        ["type"] = json!("arkivmelding");
    let detail = refused(
        send(
            &setup,
            Some(&token),
            &jws(&wrong_type, &setup.sender),
            &package,
        )
        .await,
    )
    .await;
    assert!(detail.contains("documentIdentification.type"), "{detail}");

    // A part missing, and not multipart at all.
    let (content_type, body) = multipart(&[(
        "forretningsmelding",
        "sbd.jwt",
        "application/jwt",
        good.as_bytes(),
    )]);
    let response = reqwest::Client::new()
        .post(format!("{}/messages/out", setup.dpi.api_url()))
        .bearer_auth(&token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(
        refused(response)
            .await
            .contains("dokumentpakke part is missing")
    );
    let response = reqwest::Client::new()
        .post(format!("{}/messages/out", setup.dpi.api_url()))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert!(refused(response).await.contains("multipart"));

    assert!(setup.dpi.received().is_empty());
    let kept = std::fs::read_dir(setup.dir.path().join("dpi/packages")).unwrap();
    assert_eq!(kept.count(), 0, "a refused dokumentpakke was kept");
}

#[test]
fn the_fixture_names_the_providers_whose_keys_open_packages() {
    let fixture = Fixture::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixture.toml"
    )))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path()).unwrap();
    // Until the provider's certificate is issued there is no key to open packages with.
    assert!(providers_from_fixture(&fixture, &pki).is_err());
    let issued = pki.issue(PROVIDER, "Posten", -1, 365, "pw").unwrap();
    let providers = providers_from_fixture(&fixture, &pki).unwrap();
    assert_eq!(
        providers.len(),
        1,
        "the mailbox provider is also the print provider"
    );
    assert_eq!(providers[0].orgnr, PROVIDER);
    assert!(providers[0].key.public_eq(&issued.key));
}
