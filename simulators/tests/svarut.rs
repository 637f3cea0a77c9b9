//! SvarUt and SvarInn (DPF): a forsendelse sent over SOAP 1.2 with MTOM, each document
//! CMS-encrypted to SvarUt, is opened, checked and handed to the receiver through SvarInn as a
//! zip encrypted to the receiver's certificate, which the `openssl cms` command line opens.
//! Wrong credentials get 401; a document that does not open or is not what it says, a SOAP 1.1
//! envelope or an unknown operation gets a SOAP fault, and nothing is stored.

use std::io::{Read as _, Write as _};
use std::process::Command;

use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::X509;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use simulators::fixture::Fixture;
use simulators::pki::{Issued, TestPki};
use simulators::svarut::{
    Account, DEFAULT_MAX_DOCUMENT_SIZE, SvarUt, SvarUtConfig, accounts_from_fixture,
};

const SENDER: &str = "910075918";
const RECEIVER: &str = "910077201";
const SENDER_PASSWORD: &str = "ut-passord";
const RECEIVER_PASSWORD: &str = "inn-passord";
const PDF: &[u8] = b"%PDF-1.7\nvedtak i sak 12\n%%EOF\n";
const XML: &[u8] = b"<?xml version=\"1.0\"?><arkivmelding/>";

struct Setup {
    dir: tempfile::TempDir,
    svarut_certificate: X509,
    sender: Issued,
    receiver: Issued,
    svarut: SvarUt,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(&dir.path().join("pki")).unwrap();
    let svarut_identity = pki.issue_svarut("pw").unwrap();
    let sender = pki.issue(SENDER, "Lokal testetat", -1, 365, "pw").unwrap();
    let receiver = pki.issue(RECEIVER, "Testkommune", -1, 365, "pw").unwrap();
    let svarut = SvarUt::start(SvarUtConfig {
        port: 0,
        certificate: svarut_identity.certificate.clone(),
        key: svarut_identity.key.clone(),
        accounts: vec![
            Account {
                orgnr: SENDER.into(),
                name: "Lokal testetat".into(),
                username: SENDER.into(),
                password: SENDER_PASSWORD.into(),
                certificate: None,
            },
            Account {
                orgnr: RECEIVER.into(),
                name: "Testkommune".into(),
                username: RECEIVER.into(),
                password: RECEIVER_PASSWORD.into(),
                certificate: Some(receiver.certificate.clone()),
            },
        ],
        max_document_size: DEFAULT_MAX_DOCUMENT_SIZE,
        data_dir: Some(dir.path().join("svarut")),
    })
    .await
    .unwrap();
    Setup {
        dir,
        svarut_certificate: svarut_identity.certificate,
        sender,
        receiver,
        svarut,
    }
}

/// `content` encrypted to `certificate` with RSAES-OAEP (SHA-256), as the integration point
/// encrypts DPF documents, by the `openssl` command line.
fn encrypt_oaep(dir: &std::path::Path, certificate: &X509, content: &[u8]) -> Vec<u8> {
    let (plain, recipient, out) = (
        dir.join("document"),
        dir.join("recipient.pem"),
        dir.join("document.cms"),
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

/// A document of a forsendelse: file name, mime type, Content-ID and the bytes sent.
struct Document<'a> {
    filnavn: &'a str,
    mimetype: &'a str,
    content_id: String,
    bytes: Vec<u8>,
}

fn document<'a>(filnavn: &'a str, mimetype: &'a str, bytes: Vec<u8>) -> Document<'a> {
    Document {
        filnavn,
        mimetype,
        content_id: format!("{}@svarut.test", uuid::Uuid::new_v4()),
        bytes,
    }
}

fn envelope(operation: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <soap:Envelope xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\"><soap:Header/>\
         <soap:Body>{operation}</soap:Body></soap:Envelope>"
    )
}

/// A `sendForsendelseMedId` body as the integration point's client writes it.
fn send_operation(id: &str, eksternref: &str, documents: &[Document<'_>]) -> String {
    let dokumenter: String = documents
        .iter()
        .map(|d| {
            format!(
                "<dokumenter><data><xop:Include xmlns:xop=\"http://www.w3.org/2004/08/xop/include\" \
                 href=\"cid:{}\"/></data><ekskluderesFraPrint>false</ekskluderesFraPrint>\
                 <filnavn>{}</filnavn><mimetype>{}</mimetype><skalSigneres>false</skalSigneres></dokumenter>",
                d.content_id.replace('@', "%40"),
                d.filnavn,
                d.mimetype
            )
        })
        .collect();
    format!(
        "<ns2:sendForsendelseMedId xmlns:ns2=\"http://www.ks.no/svarut/servicesV9\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><forsendelse>{dokumenter}\
         <eksternref>{eksternref}</eksternref><krevNiva4Innlogging>false</krevNiva4Innlogging>\
         <kryptert>true</kryptert><kunDigitalLevering>false</kunDigitalLevering>\
         <metadataFraAvleverendeSystem><journalaar>2026</journalaar><journalpostnummer>3</journalpostnummer>\
         <journalsekvensnummer>7</journalsekvensnummer><saksaar>2026</saksaar>\
         <sakssekvensnummer>12</sakssekvensnummer><tittel>Vedtak</tittel></metadataFraAvleverendeSystem>\
         <mottaker><digitalAdresse xsi:type=\"ns2:organisasjonDigitalAdresse\"><orgnr>{RECEIVER}</orgnr>\
         </digitalAdresse><postAdresse><navn>Testkommune</navn><postnr>7010</postnr>\
         <poststed>Trondheim</poststed></postAdresse></mottaker>\
         <signaturtype xsi:nil=\"true\"/><signeringUtloper xsi:nil=\"true\"/>\
         <svarPaForsendelseLink>false</svarPaForsendelseLink>\
         <svarSendesTil><digitalAdresse xsi:type=\"ns2:organisasjonDigitalAdresse\"><orgnr>{SENDER}</orgnr>\
         </digitalAdresse><postAdresse><adresse1>Testveien 1</adresse1><navn>Lokal testetat</navn>\
         <postnr>0150</postnr><poststed>Oslo</poststed></postAdresse></svarSendesTil>\
         <tittel>Vedtak i sak 12</tittel></forsendelse><forsendelsesid>{id}</forsendelsesid>\
         </ns2:sendForsendelseMedId>"
    )
}

/// An MTOM request: the envelope as the xop+xml root part, then each document's bytes.
fn mtom(envelope: &str, documents: &[Document<'_>]) -> (String, Vec<u8>) {
    let boundary = "uuid:6b62cda1-1c2c-4d6e-9d7c-0d5c2b3b4a10";
    let mut body = Vec::new();
    write!(
        body,
        "--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; type=\"application/soap+xml\"\r\n\
         Content-Transfer-Encoding: binary\r\nContent-ID: <root.message@test>\r\n\r\n{envelope}\r\n"
    )
    .unwrap();
    for document in documents {
        write!(
            body,
            "--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\
             Content-ID: <{}>\r\n\r\n",
            document.content_id
        )
        .unwrap();
        body.extend_from_slice(&document.bytes);
        body.extend_from_slice(b"\r\n");
    }
    write!(body, "--{boundary}--\r\n").unwrap();
    let content_type = format!(
        "multipart/related; type=\"application/xop+xml\"; boundary=\"{boundary}\"; \
         start=\"<root.message@test>\"; start-info=\"application/soap+xml\""
    );
    (content_type, body)
}

async fn post_soap(
    setup: &Setup,
    credentials: Option<(&str, &str)>,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(setup.svarut.forsendelse_service_url())
        .header("content-type", content_type)
        .body(body);
    if let Some((username, password)) = credentials {
        request = request.basic_auth(username, Some(password));
    }
    request.send().await.unwrap()
}

async fn send(
    setup: &Setup,
    id: &str,
    eksternref: &str,
    documents: &[Document<'_>],
) -> reqwest::Response {
    let (content_type, body) = mtom(
        &envelope(&send_operation(id, eksternref, documents)),
        documents,
    );
    post_soap(setup, Some((SENDER, SENDER_PASSWORD)), &content_type, body).await
}

/// A plain SOAP 1.2 call of `operation` as the sender.
async fn call(setup: &Setup, operation: &str) -> (StatusCode, String) {
    let response = post_soap(
        setup,
        Some((SENDER, SENDER_PASSWORD)),
        "application/soap+xml; charset=utf-8",
        envelope(operation).into_bytes(),
    )
    .await;
    (response.status(), response.text().await.unwrap())
}

/// The envelope of an MTOM answer, read with `multer`.
async fn mtom_envelope(response: reqwest::Response) -> String {
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("multipart/related"),
        "{content_type}"
    );
    assert!(
        content_type.contains("type=\"application/xop+xml\""),
        "{content_type}"
    );
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let mut parts = multer::Multipart::new(response.bytes_stream(), boundary);
    let root = parts.next_field().await.unwrap().unwrap();
    assert_eq!(
        root.content_type().unwrap().essence_str(),
        "application/xop+xml"
    );
    let text = root.text().await.unwrap();
    assert!(parts.next_field().await.unwrap().is_none());
    text
}

/// The texts of every `<return>` element of an answer.
fn returns(envelope: &str) -> Vec<String> {
    envelope
        .split("<return>")
        .skip(1)
        .map(|part| part.split("</return>").next().unwrap().to_owned())
        .collect()
}

/// The fault code and reason of a SOAP 1.2 fault answer.
async fn fault(response: reqwest::Response) -> (String, String) {
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/soap+xml")
    );
    let text = response.text().await.unwrap();
    let between = |open: &str, close: &str| {
        text.split(open)
            .nth(1)
            .unwrap()
            .split(close)
            .next()
            .unwrap()
            .to_owned()
    };
    (
        between("<soap:Value>", "</soap:Value>"),
        between("<soap:Text xml:lang=\"en\">", "</soap:Text>"),
    )
}

async fn svarinn_get(url: &str, password: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .basic_auth(RECEIVER, Some(password))
        .send()
        .await
        .unwrap()
}

async fn svarinn_list(setup: &Setup) -> Vec<Value> {
    let url = format!(
        "{}/mottaker/hentNyeForsendelser",
        setup.svarut.svarinn_url()
    );
    let response = svarinn_get(&url, RECEIVER_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    serde_json::from_str::<Value>(&response.text().await.unwrap())
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

async fn svarinn_post(setup: &Setup, path: &str, body: Option<&str>) -> StatusCode {
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", setup.svarut.svarinn_url()))
        .basic_auth(RECEIVER, Some(RECEIVER_PASSWORD));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    request.send().await.unwrap().status()
}

async fn status_of(setup: &Setup, id: &str) -> String {
    let (status, text) = call(
        setup,
        &format!("<ns2:retrieveForsendelseStatuser xmlns:ns2=\"http://www.ks.no/svarut/servicesV9\"><forsendelseider>{id}</forsendelseider></ns2:retrieveForsendelseStatuser>"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(
        text.contains(&format!("<forsendelsesid>{id}</forsendelsesid>")),
        "{text}"
    );
    assert!(text.contains("<sisteStatusEndring>20"), "{text}");
    text.split("<forsendelseStatus>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_forsendelse_reaches_svarinn_as_a_zip_openssl_cms_opens() {
    let setup = setup().await;
    let id = uuid::Uuid::new_v4().to_string();
    let documents = [
        document(
            "vedtak.pdf",
            "application/pdf",
            encrypt_oaep(setup.dir.path(), &setup.svarut_certificate, PDF),
        ),
        document(
            "arkivmelding.xml",
            "application/xml",
            encrypt_pkcs1(&setup.svarut_certificate, XML),
        ),
    ];
    let response = send(&setup, &id, "melding-1", &documents).await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer = mtom_envelope(response).await;
    assert!(answer.contains("sendForsendelseMedIdResponse"), "{answer}");
    assert_eq!(returns(&answer), [id.as_str()]);
    // A retry of the same id is answered the same and stored once.
    let again = send(&setup, &id, "melding-1", &documents).await;
    assert_eq!(returns(&mtom_envelope(again).await), [id.as_str()]);

    let received = setup.svarut.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        (received[0].sender.as_str(), received[0].receiver.as_str()),
        (SENDER, RECEIVER)
    );
    assert_eq!(
        received[0].dokumenter[0].sha256,
        hex::encode(Sha256::digest(PDF))
    );
    assert_eq!(received[0].dokumenter[1].size, XML.len() as u64);
    assert_eq!(
        received[0].statuses,
        ["MOTTATT", "AKSEPTERT", "KLAR_FOR_MOTTAK"]
    );
    assert_eq!(status_of(&setup, &id).await, "KLAR_FOR_MOTTAK");
    let (_, by_ref) = call(&setup, "<ns2:retrieveForsendelseIdByEksternRef xmlns:ns2=\"http://www.ks.no/svarut/servicesV9\"><eksternRef>melding-1</eksternRef></ns2:retrieveForsendelseIdByEksternRef>").await;
    assert_eq!(returns(&by_ref), [id.as_str()]);

    let listed = svarinn_list(&setup).await;
    assert_eq!(listed.len(), 1);
    let forsendelse = &listed[0];
    assert_eq!(forsendelse["id"], id.as_str());
    assert_eq!(forsendelse["tittel"], "Vedtak i sak 12");
    assert_eq!(forsendelse["mottaker"]["orgnr"], RECEIVER);
    assert_eq!(forsendelse["svarSendesTil"]["orgnr"], SENDER);
    assert_eq!(
        forsendelse["metadataFraAvleverendeSystem"]["sakssekvensnummer"],
        "12"
    );
    assert_eq!(forsendelse["filmetadata"][0]["filnavn"], "vedtak.pdf");
    assert_eq!(
        forsendelse["filmetadata"][0]["sha256hash"],
        hex::encode(Sha256::digest(PDF))
    );
    let download_url = forsendelse["downloadUrl"].as_str().unwrap();
    assert!(
        download_url.starts_with(&setup.svarut.base_url()),
        "{download_url}"
    );

    let download = svarinn_get(download_url, RECEIVER_PASSWORD).await;
    assert_eq!(download.status(), StatusCode::OK);
    let encrypted = setup.dir.path().join("forsendelse.cms");
    std::fs::write(&encrypted, download.bytes().await.unwrap()).unwrap();
    let (cert, key, zip) = (
        setup.dir.path().join("receiver.pem"),
        setup.dir.path().join("receiver-key.pem"),
        setup.dir.path().join("forsendelse.zip"),
    );
    std::fs::write(&cert, setup.receiver.certificate.to_pem().unwrap()).unwrap();
    std::fs::write(&key, setup.receiver.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let opened = Command::new("openssl")
        .args(["cms", "-decrypt", "-inform", "DER"])
        .args([
            "-in",
            encrypted.to_str().unwrap(),
            "-out",
            zip.to_str().unwrap(),
        ])
        .args([
            "-recip",
            cert.to_str().unwrap(),
            "-inkey",
            key.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(opened.success());
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).unwrap();
    for (name, original) in [("vedtak.pdf", PDF), ("arkivmelding.xml", XML)] {
        let mut content = Vec::new();
        archive
            .by_name(name)
            .unwrap()
            .read_to_end(&mut content)
            .unwrap();
        assert_eq!(content, original, "{name}");
    }
    // The sender's key does not open it.
    let sender_key = setup.dir.path().join("sender-key.pem");
    let sender_cert = setup.dir.path().join("sender.pem");
    std::fs::write(
        &sender_key,
        setup.sender.key.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
    std::fs::write(&sender_cert, setup.sender.certificate.to_pem().unwrap()).unwrap();
    let refused = Command::new("openssl")
        .args([
            "cms",
            "-decrypt",
            "-inform",
            "DER",
            "-in",
            encrypted.to_str().unwrap(),
        ])
        .args(["-out", setup.dir.path().join("nope").to_str().unwrap()])
        .args([
            "-recip",
            sender_cert.to_str().unwrap(),
            "-inkey",
            sender_key.to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!refused.success());

    assert_eq!(
        svarinn_post(&setup, &format!("/kvitterMottak/forsendelse/{id}"), None).await,
        StatusCode::OK
    );
    assert!(svarinn_list(&setup).await.is_empty());
    assert_eq!(
        svarinn_get(download_url, RECEIVER_PASSWORD).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(status_of(&setup, &id).await, "LEST");

    let inspection: Value = serde_json::from_str(
        &reqwest::get(format!(
            "{}/simulator/forsendelser",
            setup.svarut.base_url()
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(inspection[0]["id"], id.as_str());
    assert_eq!(inspection[0]["statuses"][3], "LEST");
}

#[tokio::test]
async fn receivers_report_failures_and_tests_mark_forsendelser_read() {
    let setup = setup().await;
    let (first, second) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    for id in [&first, &second] {
        let documents = [document(
            "vedtak.pdf",
            "application/pdf",
            encrypt_pkcs1(&setup.svarut_certificate, PDF),
        )];
        assert_eq!(
            send(&setup, id, id, &documents).await.status(),
            StatusCode::OK
        );
    }

    let path = format!("/mottakFeilet/forsendelse/{first}");
    assert_eq!(
        svarinn_post(
            &setup,
            &path,
            Some("{\"feilmelding\": \"arkivet er nede\", \"permanent\": false}")
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(svarinn_list(&setup).await.len(), 2);
    assert_eq!(
        svarinn_post(
            &setup,
            &path,
            Some("{\"feilmelding\": \"ukjent sak\", \"permanent\": true}")
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        svarinn_post(
            &setup,
            &path,
            Some("{\"feilmelding\": \"igjen\", \"permanent\": true}")
        )
        .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        svarinn_post(
            &setup,
            &format!("/mottakFeilet/forsendelse/{second}"),
            Some("{\"permanent\": true}")
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    let listed = svarinn_list(&setup).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], second.as_str());
    assert_eq!(status_of(&setup, &first).await, "IKKE_LEVERT");
    assert_eq!(
        setup.svarut.received()[0].mottak_feilet,
        ["ukjent sak", "arkivet er nede"]
    );

    setup.svarut.mark_read(&second).unwrap();
    assert_eq!(status_of(&setup, &second).await, "LEST");
    assert!(
        setup
            .svarut
            .mark_read("00000000-0000-4000-8000-000000000000")
            .is_err()
    );

    // The startup check, plain SOAP 1.2 in and out.
    let (status, types) = call(
        &setup,
        "<ns2:retreiveForsendelseTyper xmlns:ns2=\"http://www.ks.no/svarut/servicesV9\"/>",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        types.contains("retreiveForsendelseTyperResponse"),
        "{types}"
    );
    assert!(!returns(&types).is_empty());

    setup.svarut.fail_next(1);
    assert_eq!(
        call(
            &setup,
            "<ns2:retreiveForsendelseTyper xmlns:ns2=\"http://www.ks.no/svarut/servicesV9\"/>"
        )
        .await
        .0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        call(
            &setup,
            "<ns2:retreiveForsendelseTyper xmlns:ns2=\"http://www.ks.no/svarut/servicesV9\"/>"
        )
        .await
        .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn calls_without_valid_credentials_are_refused_with_401() {
    let setup = setup().await;
    let types = envelope(
        "<ns2:retreiveForsendelseTyper xmlns:ns2=\"http://www.ks.no/svarut/servicesV9\"/>",
    );
    for credentials in [
        None,
        Some((SENDER, "feil")),
        Some(("ukjent", SENDER_PASSWORD)),
    ] {
        let response = post_soap(
            &setup,
            credentials,
            "application/soap+xml",
            types.clone().into_bytes(),
        )
        .await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{credentials:?}"
        );
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
    }
    let url = format!(
        "{}/mottaker/hentNyeForsendelser",
        setup.svarut.svarinn_url()
    );
    let response = svarinn_get(&url, "feil").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let error: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert!(error["error"].as_str().unwrap().contains("credentials"));
}

#[tokio::test]
async fn malformed_forsendelser_get_soap_faults_and_are_not_stored() {
    let setup = setup().await;
    let id = uuid::Uuid::new_v4().to_string();

    // Encrypted to the receiver instead of SvarUt.
    let documents = [document(
        "vedtak.pdf",
        "application/pdf",
        encrypt_pkcs1(&setup.receiver.certificate, PDF),
    )];
    let (code, reason) = fault(send(&setup, &id, "x", &documents).await).await;
    assert_eq!(code, "soap:Sender");
    assert!(
        reason.contains("decrypts") && reason.contains("vedtak.pdf"),
        "{reason}"
    );

    // Not encrypted at all.
    let documents = [document("vedtak.pdf", "application/pdf", PDF.to_vec())];
    let (_, reason) = fault(send(&setup, &id, "x", &documents).await).await;
    assert!(reason.contains("not a DER-encoded CMS"), "{reason}");

    // Opens, but is not what it says it is.
    let documents = [document(
        "vedtak.pdf",
        "application/pdf",
        encrypt_pkcs1(&setup.svarut_certificate, XML),
    )];
    let (_, reason) = fault(send(&setup, &id, "x", &documents).await).await;
    assert!(reason.contains("not application/pdf content"), "{reason}");
    let documents = [document(
        "vedtak.txt",
        "application/pdf",
        encrypt_pkcs1(&setup.svarut_certificate, PDF),
    )];
    let (_, reason) = fault(send(&setup, &id, "x", &documents).await).await;
    assert!(reason.contains("file name"), "{reason}");

    // An attachment the envelope points at is missing.
    let documents = [document(
        "vedtak.pdf",
        "application/pdf",
        encrypt_pkcs1(&setup.svarut_certificate, PDF),
    )];
    let (content_type, body) = mtom(&envelope(&send_operation(&id, "x", &documents)), &[]);
    let response = post_soap(&setup, Some((SENDER, SENDER_PASSWORD)), &content_type, body).await;
    assert!(
        fault(response)
            .await
            .1
            .contains("no attachment with Content-ID")
    );

    // Not a UUID.
    let (content_type, body) = mtom(
        &envelope(&send_operation("msg-1", "x", &documents)),
        &documents,
    );
    let response = post_soap(&setup, Some((SENDER, SENDER_PASSWORD)), &content_type, body).await;
    assert!(
        fault(response)
            .await
            .1
            .contains("forsendelsesid must be a UUID")
    );

    // SOAP 1.1, an unknown operation, and no XML at all.
    let soap11 =
        "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body/></s:Envelope>";
    let response = post_soap(
        &setup,
        Some((SENDER, SENDER_PASSWORD)),
        "text/xml",
        soap11.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(fault(response).await.0, "soap:VersionMismatch");
    let response = post_soap(
        &setup,
        Some((SENDER, SENDER_PASSWORD)),
        "application/soap+xml",
        soap11.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(fault(response).await.0, "soap:VersionMismatch");
    let response = post_soap(
        &setup,
        Some((SENDER, SENDER_PASSWORD)),
        "application/soap+xml",
        envelope("<ns2:slettAlt xmlns:ns2=\"http://www.ks.no/svarut/servicesV9\"/>").into_bytes(),
    )
    .await;
    assert!(
        fault(response)
            .await
            .1
            .contains("unknown operation slettAlt")
    );
    let response = post_soap(
        &setup,
        Some((SENDER, SENDER_PASSWORD)),
        "application/soap+xml",
        b"not xml <".to_vec(),
    )
    .await;
    assert_eq!(fault(response).await.0, "soap:Sender");

    assert!(setup.svarut.received().is_empty());
    assert!(svarinn_list(&setup).await.is_empty());
    // Neither the attachments nor any opened document was kept.
    for kept in ["uploads", "documents"] {
        let entries = std::fs::read_dir(setup.dir.path().join("svarut").join(kept)).unwrap();
        assert_eq!(entries.count(), 0, "{kept}");
    }
}

#[test]
fn the_fixture_gives_accounts_and_svarinn_certificates_to_its_svarut_organisations() {
    let fixture = Fixture::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixture.toml"
    )))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let certificate = TestPki::new(dir.path())
        .unwrap()
        .issue(RECEIVER, "Testkommune", -1, 365, "pw")
        .unwrap()
        .certificate;
    let accounts = accounts_from_fixture(&fixture, |_| Some(certificate.clone()));
    let summary: Vec<(&str, bool)> = accounts
        .iter()
        .map(|a| (a.orgnr.as_str(), a.certificate.is_some()))
        .collect();
    // The sender has no SvarInn receiving system; the municipality has.
    assert_eq!(summary, [(SENDER, false), (RECEIVER, true)]);
    assert!(accounts.iter().all(|a| !a.password.is_empty()));
}
