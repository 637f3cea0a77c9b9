//! The Altinn 2 broker service (DPO v2/v3), driven over HTTP with hand-written SOAP and MTOM,
//! the way the integration point's JAX-WS client drives it, including requests a client
//! library would refuse to build. Download responses are read with `multer`, a general
//! multipart parser, as an independent check that the MTOM the simulator writes is sound.

use std::path::Path;

use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use simulators::altinn_broker::{AltinnBroker, AltinnBrokerConfig};
use simulators::fixture::Fixture;

const SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const BROKER: &str = "http://www.altinn.no/services/ServiceEngine/Broker/2015/06";
const DATA: &str = "http://schemas.altinn.no/services/ServiceEngine/Broker/2015/06";
const BASIC_ACTIONS: &str =
    "http://www.altinn.no/services/ServiceEngine/Broker/2015/06/IBrokerServiceExternalBasic";
const STREAMED_ACTIONS: &str = "http://www.altinn.no/services/ServiceEngine/Broker/2015/06/IBrokerServiceExternalBasicStreamed";
const POLL: &str = "http://schemas.altinn.no/services/ServiceEngine/Broker/2020/01";
const ARRAYS: &str = "http://schemas.microsoft.com/2003/10/Serialization/Arrays";
const TEST_ACTION: &str = "http://www.altinn.no/services/2009/10/IAltinnContractBase/Test";

/// The sender and its end-user system, from the shipped fixture.
const SENDER: (&str, &str, &str) = ("910075918", "20001", "lokal-testetat-passord");
/// The recipient and its end-user system.
const RECIPIENT: (&str, &str, &str) = ("910076787", "20002", "lokal-mottakeretat-passord");
/// An organisation that is neither.
const OUTSIDER: (&str, &str, &str) = ("910077201", "20003", "testkommune-passord");

fn fixture() -> Fixture {
    Fixture::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixture.toml")).unwrap()
}

async fn start(max_file_size: Option<u64>) -> AltinnBroker {
    start_in(max_file_size, None).await
}

async fn start_in(max_file_size: Option<u64>, data_dir: Option<&Path>) -> AltinnBroker {
    let mut config = AltinnBrokerConfig::new(fixture());
    if let Some(limit) = max_file_size {
        config.max_file_size = limit;
    }
    config.data_dir = data_dir.map(Path::to_path_buf);
    AltinnBroker::start(config).await.unwrap()
}

/// The names of the files in `dir`.
fn stored(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn envelope(header: &str, body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soap:Envelope xmlns:soap=\"{SOAP11}\">\
         <soap:Header>{header}</soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>"
    )
}

async fn basic(broker: &AltinnBroker, operation: &str, body: &str) -> (StatusCode, String) {
    let action = if operation == "Test" {
        TEST_ACTION.to_owned()
    } else {
        format!("{BASIC_ACTIONS}/{operation}")
    };
    post_xml(&broker.basic_url(), &action, envelope("", body)).await
}

async fn post_xml(url: &str, action: &str, xml: String) -> (StatusCode, String) {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "text/xml; charset=utf-8")
        .header("soapaction", format!("\"{action}\""))
        .body(xml)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

fn credentials(system: (&str, &str, &str)) -> String {
    format!(
        "<b:systemUserName>{}</b:systemUserName><b:systemPassword>{}</b:systemPassword>",
        system.1, system.2
    )
}

fn initiate_body(
    system: (&str, &str, &str),
    sender: &str,
    recipient: &str,
    reference: &str,
) -> String {
    format!(
        "<b:InitiateBrokerServiceBasic xmlns:b=\"{BROKER}\" xmlns:d=\"{DATA}\">{}\
         <b:brokerServiceInitiation><d:Manifest>\
         <d:ExternalServiceCode>4192</d:ExternalServiceCode>\
         <d:ExternalServiceEditionCode>270815</d:ExternalServiceEditionCode>\
         <d:FileList><d:File><d:FileName>sbd.zip</d:FileName></d:File></d:FileList>\
         <d:Reportee>{sender}</d:Reportee><d:SendersReference>{reference}</d:SendersReference>\
         </d:Manifest><d:RecipientList><d:Recipient><d:PartyNumber>{recipient}</d:PartyNumber>\
         </d:Recipient></d:RecipientList></b:brokerServiceInitiation></b:InitiateBrokerServiceBasic>",
        credentials(system)
    )
}

/// The text of the first element named `name` (any prefix) in `xml`.
fn element_text(xml: &str, name: &str) -> Option<String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut inside = false;
    let mut text = String::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            quick_xml::events::Event::Start(start) if start.local_name().as_ref() == name => {
                inside = true;
            }
            quick_xml::events::Event::Text(t) if inside => text.push_str(&t.xml10_content()),
            quick_xml::events::Event::End(end) if inside && end.local_name().as_ref() == name => {
                return Some(text);
            }
            quick_xml::events::Event::Eof => return None,
            _ => {}
        }
    }
}

/// How many `name` elements `xml` holds, as the simulator writes them (unprefixed).
fn count(xml: &str, name: &str) -> usize {
    xml.matches(&format!("<{name} ")).count() + xml.matches(&format!("<{name}>")).count()
}

async fn initiate(broker: &AltinnBroker, reference: &str) -> String {
    let (status, xml) = basic(
        broker,
        "InitiateBrokerServiceBasic",
        &initiate_body(SENDER, SENDER.0, RECIPIENT.0, reference),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    element_text(&xml, "InitiateBrokerServiceBasicResult").unwrap()
}

const BOUNDARY: &str = "uuid:7f3c9a2e-mtom-test";

/// An MTOM upload of `data` for `reference`, with the SOAP headers as the client sends them.
fn upload_body(
    system: (&str, &str, &str),
    reportee: &str,
    reference: &str,
    data: &[u8],
) -> Vec<u8> {
    let headers = format!(
        "<b:FileName xmlns:b=\"{BROKER}\">sbd.zip</b:FileName>\
         <b:Reference xmlns:b=\"{BROKER}\">{reference}</b:Reference>\
         <b:Reportee xmlns:b=\"{BROKER}\">{reportee}</b:Reportee>\
         <b:SystemPassword xmlns:b=\"{BROKER}\">{}</b:SystemPassword>\
         <b:SystemUserName xmlns:b=\"{BROKER}\">{}</b:SystemUserName>",
        system.2, system.1
    );
    let body = format!(
        "<b:StreamedPayloadBasicBE xmlns:b=\"{BROKER}\"><b:DataStream>\
         <xop:Include xmlns:xop=\"http://www.w3.org/2004/08/xop/include\" href=\"cid:payload%40test\"/>\
         </b:DataStream></b:StreamedPayloadBasicBE>"
    );
    let mut out = format!(
        "--{BOUNDARY}\r\nContent-Type: application/xop+xml; charset=UTF-8; type=\"text/xml\"\r\n\
         Content-Transfer-Encoding: binary\r\nContent-ID: <root.message@test>\r\n\r\n{}\r\n\
         --{BOUNDARY}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\
         Content-ID: <payload@test>\r\n\r\n",
        envelope(&headers, &body)
    )
    .into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    out
}

fn mtom_content_type() -> String {
    format!(
        "multipart/related; type=\"application/xop+xml\"; boundary=\"{BOUNDARY}\"; \
         start=\"<root.message@test>\"; start-info=\"text/xml\""
    )
}

async fn upload(broker: &AltinnBroker, body: Vec<u8>) -> (StatusCode, String) {
    let response = reqwest::Client::new()
        .post(broker.streamed_url())
        .header("content-type", mtom_content_type())
        .header(
            "soapaction",
            format!("\"{STREAMED_ACTIONS}/UploadFileStreamedBasic\""),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    soap_message(response).await
}

/// `envelope` as the only part of an MTOM message.
fn mtom_envelope(envelope: &str) -> String {
    format!(
        "--{BOUNDARY}\r\nContent-Type: application/xop+xml; charset=UTF-8; type=\"text/xml\"\r\n\
         Content-ID: <root.message@test>\r\n\r\n{envelope}\r\n--{BOUNDARY}--\r\n"
    )
}

/// A download request, MTOM-wrapped as a JAX-WS client with MTOM enabled sends it.
async fn download(
    broker: &AltinnBroker,
    system: (&str, &str, &str),
    reportee: &str,
    reference: &str,
) -> reqwest::Response {
    let body = envelope(
        "",
        &format!(
            "<b:DownloadFileStreamedBasic xmlns:b=\"{BROKER}\">{}<b:fileReference>{reference}</b:fileReference>\
             <b:reportee>{reportee}</b:reportee></b:DownloadFileStreamedBasic>",
            credentials(system)
        ),
    );
    let mtom = mtom_envelope(&body);
    reqwest::Client::new()
        .post(broker.streamed_url())
        .header("content-type", mtom_content_type())
        .header(
            "soapaction",
            format!("\"{STREAMED_ACTIONS}/DownloadFileStreamedBasic\""),
        )
        .body(mtom)
        .send()
        .await
        .unwrap()
}

/// The boundary of a `multipart/related` content type.
fn boundary(content_type: &str) -> String {
    // multer's own boundary helper insists on form-data; the parser itself does not care.
    content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .expect("a boundary")
        .trim_matches('"')
        .to_owned()
}

/// The status and SOAP envelope of a response from the streamed endpoint, which answers in
/// MTOM like a WCF endpoint with MTOM encoding: a multipart message of the envelope alone.
/// Status and size refusals come before SOAP and are plain text.
async fn soap_message(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    if !content_type.starts_with("multipart/related") {
        assert!(!content_type.contains("xml"), "not MTOM: {content_type}");
        return (status, response.text().await.unwrap());
    }
    assert!(
        content_type.contains("start-info=\"text/xml\""),
        "{content_type}"
    );
    let mut parts = multer::Multipart::new(response.bytes_stream(), boundary(&content_type));
    let root = parts.next_field().await.unwrap().expect("an envelope part");
    assert_eq!(
        root.content_type().unwrap().essence_str(),
        "application/xop+xml"
    );
    let xml = root.text().await.unwrap();
    assert!(
        parts.next_field().await.unwrap().is_none(),
        "more than the envelope"
    );
    (status, xml)
}

/// Reads an MTOM download with `multer`: the envelope must point at the attachment, whose
/// bytes are returned.
async fn read_mtom(response: reqwest::Response) -> Vec<u8> {
    assert_eq!(response.status(), StatusCode::OK);
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
    let mut parts = multer::Multipart::new(response.bytes_stream(), boundary(&content_type));
    let root = parts.next_field().await.unwrap().expect("an envelope part");
    assert_eq!(
        root.content_type().unwrap().essence_str(),
        "application/xop+xml"
    );
    let xml = root.text().await.unwrap();
    let href = xml
        .split("href=\"cid:")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("an xop:Include")
        .to_owned();
    assert!(
        element_text(&xml, "DownloadFileStreamedBasicResult").is_some(),
        "{xml}"
    );
    let attachment = parts
        .next_field()
        .await
        .unwrap()
        .expect("an attachment part");
    let id = attachment.headers()["content-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id, format!("<{href}>"));
    let data = attachment.bytes().await.unwrap().to_vec();
    assert!(parts.next_field().await.unwrap().is_none());
    data
}

fn list_body(system: (&str, &str, &str), reportee: &str, status: &str) -> String {
    format!(
        "<b:GetAvailableFilesBasic xmlns:b=\"{BROKER}\" xmlns:d=\"{DATA}\">{}<b:searchParameters>\
         <d:ExternalServiceCode>4192</d:ExternalServiceCode>\
         <d:ExternalServiceEditionCode>270815</d:ExternalServiceEditionCode>\
         <d:FileStatus>{status}</d:FileStatus><d:Reportee>{reportee}</d:Reportee>\
         </b:searchParameters></b:GetAvailableFilesBasic>",
        credentials(system)
    )
}

async fn list(broker: &AltinnBroker, system: (&str, &str, &str), status: &str) -> String {
    let (code, xml) = basic(
        broker,
        "GetAvailableFilesBasic",
        &list_body(system, system.0, status),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{xml}");
    xml
}

async fn files_waiting(broker: &AltinnBroker, system: (&str, &str, &str)) -> (StatusCode, String) {
    let body = format!(
        "<b:CheckIfAvailableFilesBasic xmlns:b=\"{BROKER}\" xmlns:p=\"{POLL}\" xmlns:a=\"{ARRAYS}\">{}\
         <b:pollParameters><p:ExternalServiceCode>4192</p:ExternalServiceCode>\
         <p:ExternalServiceEditionCode>270815</p:ExternalServiceEditionCode>\
         <p:Recipients><a:string>{}</a:string></p:Recipients></b:pollParameters>\
         </b:CheckIfAvailableFilesBasic>",
        credentials(system),
        system.0
    );
    basic(broker, "CheckIfAvailableFilesBasic", &body).await
}

fn confirm_body(system: (&str, &str, &str), reportee: &str, reference: &str) -> String {
    format!(
        "<b:ConfirmDownloadedBasic xmlns:b=\"{BROKER}\">{}<b:fileReference>{reference}</b:fileReference>\
         <b:reportee>{reportee}</b:reportee></b:ConfirmDownloadedBasic>",
        credentials(system)
    )
}

fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Asserts a SOAP 1.1 fault with HTTP 500 and `code`; returns the envelope.
fn assert_fault(status: StatusCode, xml: &str, code: &str) -> String {
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{xml}");
    assert!(xml.contains(SOAP11), "{xml}");
    assert_eq!(
        element_text(xml, "faultcode").as_deref(),
        Some(code),
        "{xml}"
    );
    xml.to_owned()
}

#[tokio::test]
async fn the_wsdls_are_served_and_name_this_endpoint() {
    let broker = start(None).await;
    for (url, operations) in [
        (
            broker.basic_url(),
            &[
                "InitiateBrokerServiceBasic",
                "GetAvailableFilesBasic",
                "CheckIfAvailableFilesBasic",
                "ConfirmDownloadedBasic",
                "Test",
            ][..],
        ),
        (
            broker.streamed_url(),
            &[
                "UploadFileStreamedBasic",
                "DownloadFileStreamedBasic",
                "Test",
            ][..],
        ),
    ] {
        let response = reqwest::get(format!("{url}?wsdl")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let wsdl = response.text().await.unwrap();
        let mut reader = quick_xml::Reader::from_str(&wsdl);
        while !matches!(
            reader.read_event().expect("the WSDL is well-formed"),
            quick_xml::events::Event::Eof
        ) {}
        assert!(wsdl.contains(&format!("location=\"{url}\"")), "{wsdl}");
        for operation in operations {
            assert!(
                wsdl.contains(&format!("<wsdl:operation name=\"{operation}\">")),
                "{operation}"
            );
        }
    }
    let plain = reqwest::get(broker.basic_url()).await.unwrap();
    assert_eq!(plain.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn test_answers_on_both_endpoints() {
    let broker = start(None).await;
    let body = "<Test xmlns=\"http://www.altinn.no/services/2009/10\"/>";
    let (status, xml) = basic(&broker, "Test", body).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert!(xml.contains("TestResponse"));
    let (status, xml) = post_xml(&broker.streamed_url(), TEST_ACTION, envelope("", body)).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert!(xml.contains("TestResponse"));
    // As an MTOM client sends it, answered in MTOM.
    let response = reqwest::Client::new()
        .post(broker.streamed_url())
        .header("content-type", mtom_content_type())
        .header("soapaction", format!("\"{TEST_ACTION}\""))
        .body(mtom_envelope(&envelope("", body)))
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("multipart/related")
    );
    let (status, xml) = soap_message(response).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert!(xml.contains("TestResponse"), "{xml}");
}

#[tokio::test]
async fn a_file_goes_from_sender_to_recipient_and_leaves_the_list_when_confirmed() {
    let broker = start(None).await;
    let reference = initiate(&broker, "b6f0d2a4-1c3e-4e5f-8a9b-0c1d2e3f4a5b").await;
    let data = payload(3 << 20);
    let (status, xml) = upload(&broker, upload_body(SENDER, SENDER.0, &reference, &data)).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert_eq!(
        element_text(&xml, "ReceiptStatusCode").as_deref(),
        Some("OK")
    );
    let receipt = element_text(&xml, "ReceiptId").unwrap();

    let listed = list(&broker, RECIPIENT, "Uploaded").await;
    assert_eq!(
        element_text(&listed, "FileReference").as_deref(),
        Some(reference.as_str())
    );
    assert_eq!(
        element_text(&listed, "SendersReference").as_deref(),
        Some("b6f0d2a4-1c3e-4e5f-8a9b-0c1d2e3f4a5b")
    );
    assert_eq!(
        element_text(&listed, "FileSize"),
        Some(data.len().to_string())
    );
    assert_eq!(
        element_text(&listed, "FileStatus").as_deref(),
        Some("Uploaded")
    );
    assert_eq!(element_text(&listed, "ReceiptID"), Some(receipt));
    assert_eq!(element_text(&listed, "Reportee").as_deref(), Some(SENDER.0));
    assert_eq!(
        element_text(&listed, "FileName").as_deref(),
        Some("sbd.zip")
    );
    assert!(element_text(&listed, "SentDate").is_some_and(|d| d.ends_with('Z')));

    let downloaded = read_mtom(download(&broker, RECIPIENT, RECIPIENT.0, &reference).await).await;
    assert_eq!(sha256(&downloaded), sha256(&data));
    let inspected = reqwest::get(format!("{}/_inspect/files", broker.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let inspected: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    assert_eq!(inspected[0]["sha256"], sha256(&data));
    assert_eq!(inspected[0]["recipients"][0]["downloads"], 1);

    let (status, xml) = basic(
        &broker,
        "ConfirmDownloadedBasic",
        &confirm_body(RECIPIENT, RECIPIENT.0, &reference),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert_eq!(
        count(
            &list(&broker, RECIPIENT, "Uploaded").await,
            "BrokerServiceAvailableFile"
        ),
        0
    );
    let confirmed = list(&broker, RECIPIENT, "Downloaded").await;
    assert_eq!(
        element_text(&confirmed, "FileReference").as_deref(),
        Some(reference.as_str())
    );
    assert!(broker.files()[0].recipients[0].confirmed);
    // The bytes are gone once every recipient has them.
    let again = download(&broker, RECIPIENT, RECIPIENT.0, &reference).await;
    let (status, xml) = soap_message(again).await;
    assert_fault(status, &xml, "s:Client");
}

#[tokio::test]
async fn a_file_is_visible_to_its_recipient_only() {
    let broker = start(None).await;
    let reference = initiate(&broker, "sender-ref-1").await;
    let (status, xml) = upload(
        &broker,
        upload_body(SENDER, SENDER.0, &reference, b"zip bytes"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert_eq!(
        count(
            &list(&broker, SENDER, "Uploaded").await,
            "BrokerServiceAvailableFile"
        ),
        0
    );
    assert_eq!(
        count(
            &list(&broker, OUTSIDER, "Uploaded").await,
            "BrokerServiceAvailableFile"
        ),
        0
    );
    assert_eq!(
        count(
            &list(&broker, RECIPIENT, "Uploaded").await,
            "BrokerServiceAvailableFile"
        ),
        1
    );
    for system in [SENDER, OUTSIDER] {
        let response = download(&broker, system, system.0, &reference).await;
        let (status, xml) = soap_message(response).await;
        let xml = assert_fault(status, &xml, "s:Client");
        assert!(xml.contains("AltinnFault"), "{xml}");
        let (status, xml) = basic(
            &broker,
            "ConfirmDownloadedBasic",
            &confirm_body(system, system.0, &reference),
        )
        .await;
        assert_fault(status, &xml, "s:Client");
    }
    // Another organisation's reportee with one's own credentials is refused too.
    let response = download(&broker, OUTSIDER, RECIPIENT.0, &reference).await;
    let (status, xml) = soap_message(response).await;
    assert_fault(status, &xml, "s:Client");
    assert_eq!(broker.files()[0].recipients[0].downloads, 0);
}

#[tokio::test]
async fn wrong_credentials_are_refused_as_altinn_refuses_them() {
    let broker = start(None).await;
    let wrong = (SENDER.0, SENDER.1, "not the password");
    let (status, xml) = basic(
        &broker,
        "InitiateBrokerServiceBasic",
        &initiate_body(wrong, SENDER.0, RECIPIENT.0, "r"),
    )
    .await;
    let xml = assert_fault(status, &xml, "s:Client");
    assert_eq!(element_text(&xml, "ErrorID").as_deref(), Some("989"));
    assert_eq!(
        element_text(&xml, "AltinnErrorMessage").as_deref(),
        Some("Incorrect username/password/pin given for user")
    );
    let (status, xml) = basic(
        &broker,
        "GetAvailableFilesBasic",
        &list_body(wrong, SENDER.0, "Uploaded"),
    )
    .await;
    assert_fault(status, &xml, "s:Client");
    // A sender acting for an organisation that is not its own.
    let (status, xml) = basic(
        &broker,
        "InitiateBrokerServiceBasic",
        &initiate_body(SENDER, RECIPIENT.0, SENDER.0, "r"),
    )
    .await;
    assert_fault(status, &xml, "s:Client");

    let reference = initiate(&broker, "r").await;
    let (status, xml) = upload(&broker, upload_body(wrong, SENDER.0, &reference, b"data")).await;
    let xml = assert_fault(status, &xml, "s:Client");
    assert_eq!(element_text(&xml, "ErrorID").as_deref(), Some("989"));
    // Only the sender uploads the file it initiated.
    let (status, xml) = upload(
        &broker,
        upload_body(RECIPIENT, RECIPIENT.0, &reference, b"data"),
    )
    .await;
    assert_fault(status, &xml, "s:Client");
    assert!(broker.files()[0].sha256.is_none());
}

#[tokio::test]
async fn malformed_requests_are_client_faults() {
    let broker = start(None).await;
    // Not XML.
    let (status, xml) = post_xml(
        &broker.basic_url(),
        &format!("{BASIC_ACTIONS}/GetAvailableFilesBasic"),
        "<soap:Envelope".into(),
    )
    .await;
    assert_fault(status, &xml, "s:Client");
    // A SOAP 1.2 envelope on the SOAP 1.1 binding.
    let soap12 = envelope("", &list_body(RECIPIENT, RECIPIENT.0, "Uploaded"))
        .replace(SOAP11, "http://www.w3.org/2003/05/soap-envelope");
    let (status, xml) = post_xml(
        &broker.basic_url(),
        &format!("{BASIC_ACTIONS}/GetAvailableFilesBasic"),
        soap12,
    )
    .await;
    assert_fault(status, &xml, "s:Client");
    // A missing field.
    let without_reference = initiate_body(SENDER, SENDER.0, RECIPIENT.0, "r")
        .replace("<d:SendersReference>r</d:SendersReference>", "");
    let (status, xml) = basic(&broker, "InitiateBrokerServiceBasic", &without_reference).await;
    let xml = assert_fault(status, &xml, "s:Client");
    assert!(xml.contains("SendersReference"), "{xml}");
    let without_status = list_body(RECIPIENT, RECIPIENT.0, "Uploaded")
        .replace("<d:FileStatus>Uploaded</d:FileStatus>", "");
    let (status, xml) = basic(&broker, "GetAvailableFilesBasic", &without_status).await;
    assert_fault(status, &xml, "s:Client");
    // The right element in the wrong namespace.
    let wrong_namespace = list_body(RECIPIENT, RECIPIENT.0, "Uploaded").replace(
        &format!("xmlns:d=\"{DATA}\""),
        &format!("xmlns:d=\"{BROKER}\""),
    );
    let (status, xml) = basic(&broker, "GetAvailableFilesBasic", &wrong_namespace).await;
    assert_fault(status, &xml, "s:Client");
    // An unknown service.
    let unknown_service =
        initiate_body(SENDER, SENDER.0, RECIPIENT.0, "r").replace(">4192<", ">4193<");
    let (status, xml) = basic(&broker, "InitiateBrokerServiceBasic", &unknown_service).await;
    assert_fault(status, &xml, "s:Client");
    // An action the endpoint does not have (the streamed endpoint's), and a body that does
    // not match the action.
    let (status, xml) = post_xml(
        &broker.basic_url(),
        &format!("{STREAMED_ACTIONS}/DownloadFileStreamedBasic"),
        envelope("", &list_body(RECIPIENT, RECIPIENT.0, "Uploaded")),
    )
    .await;
    assert_fault(status, &xml, "a:ActionNotSupported");
    let (status, xml) = basic(
        &broker,
        "ConfirmDownloadedBasic",
        &list_body(RECIPIENT, RECIPIENT.0, "Uploaded"),
    )
    .await;
    assert_fault(status, &xml, "s:Client");
    // Not SOAP 1.1's media type.
    let response = reqwest::Client::new()
        .post(broker.basic_url())
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // An upload whose attachment is not the one the envelope points at.
    let reference = initiate(&broker, "r").await;
    let body = upload_body(SENDER, SENDER.0, &reference, b"data");
    let mismatched = String::from_utf8(body)
        .unwrap()
        .replace("Content-ID: <payload@test>", "Content-ID: <other@test>");
    let (status, xml) = upload(&broker, mismatched.into_bytes()).await;
    assert_fault(status, &xml, "s:Client");
    // An upload without its SOAP headers.
    let body = String::from_utf8(upload_body(SENDER, SENDER.0, &reference, b"data")).unwrap();
    let start = body.find("<b:Reference").unwrap();
    let end = body.find("</b:Reference>").unwrap() + "</b:Reference>".len();
    let (status, xml) = upload(
        &broker,
        format!("{}{}", &body[..start], &body[end..]).into_bytes(),
    )
    .await;
    assert_fault(status, &xml, "s:Client");
    // After all that the file can still be uploaded.
    let (status, xml) = upload(&broker, upload_body(SENDER, SENDER.0, &reference, b"data")).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    // But only once.
    let (status, xml) = upload(&broker, upload_body(SENDER, SENDER.0, &reference, b"data")).await;
    assert_fault(status, &xml, "s:Client");
}

#[tokio::test]
async fn a_file_over_the_limit_is_refused_and_can_be_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_in(Some(64 << 10), Some(dir.path())).await;
    let reference = initiate(&broker, "r").await;
    let (status, _) = upload(
        &broker,
        upload_body(SENDER, SENDER.0, &reference, &payload(65 << 10)),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(stored(dir.path()).is_empty(), "{:?}", stored(dir.path()));
    assert_eq!(
        count(
            &list(&broker, RECIPIENT, "Uploaded").await,
            "BrokerServiceAvailableFile"
        ),
        0
    );
    let data = payload(64 << 10);
    let (status, xml) = upload(&broker, upload_body(SENDER, SENDER.0, &reference, &data)).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert_eq!(stored(dir.path()), [format!("{reference}.bin")]);
    let downloaded = read_mtom(download(&broker, RECIPIENT, RECIPIENT.0, &reference).await).await;
    assert_eq!(downloaded, data);
    let (status, xml) = basic(
        &broker,
        "ConfirmDownloadedBasic",
        &confirm_body(RECIPIENT, RECIPIENT.0, &reference),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert!(
        stored(dir.path()).is_empty(),
        "the confirmed file is kept: {:?}",
        stored(dir.path())
    );
}

#[tokio::test]
async fn injected_faults_answer_503() {
    let broker = start(None).await;
    broker.fail_next(1);
    let body = "<Test xmlns=\"http://www.altinn.no/services/2009/10\"/>";
    let (status, _) = basic(&broker, "Test", body).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = basic(&broker, "Test", body).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn polling_and_sent_date_bounds_find_the_waiting_files() {
    let broker = start(None).await;
    let (status, xml) = files_waiting(&broker, RECIPIENT).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert_eq!(
        element_text(&xml, "CheckIfAvailableFilesBasicResult").as_deref(),
        Some("false")
    );
    let reference = initiate(&broker, "r").await;
    let (status, xml) = upload(&broker, upload_body(SENDER, SENDER.0, &reference, b"data")).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    let (_, xml) = files_waiting(&broker, RECIPIENT).await;
    assert_eq!(
        element_text(&xml, "CheckIfAvailableFilesBasicResult").as_deref(),
        Some("true")
    );
    let (_, xml) = files_waiting(&broker, SENDER).await;
    assert_eq!(
        element_text(&xml, "CheckIfAvailableFilesBasicResult").as_deref(),
        Some("false")
    );
    // Polling for another organisation's files is refused.
    let (status, xml) = files_waiting(&broker, (RECIPIENT.0, SENDER.1, SENDER.2)).await;
    assert_fault(status, &xml, "s:Client");

    let bounded = |bound: &str, at: &str| {
        list_body(RECIPIENT, RECIPIENT.0, "Uploaded").replace(
            "<d:Reportee>",
            &format!("<d:{bound}>{at}</d:{bound}><d:Reportee>"),
        )
    };
    for (bound, at, expected) in [
        ("MinSentDateTime", "2000-01-01T00:00:00Z", 1),
        ("MinSentDateTime", "2999-01-01T00:00:00Z", 0),
        ("MaxSentDateTime", "2000-01-01T00:00:00Z", 0),
        ("MaxSentDateTime", "2999-01-01T00:00:00+01:00", 1),
    ] {
        let (status, xml) = basic(&broker, "GetAvailableFilesBasic", &bounded(bound, at)).await;
        assert_eq!(status, StatusCode::OK, "{xml}");
        assert_eq!(
            count(&xml, "BrokerServiceAvailableFile"),
            expected,
            "{bound} {at}"
        );
    }
    let (status, xml) = basic(
        &broker,
        "GetAvailableFilesBasic",
        &bounded("MinSentDateTime", "yesterday"),
    )
    .await;
    assert_fault(status, &xml, "s:Client");

    let (status, xml) = basic(
        &broker,
        "ConfirmDownloadedBasic",
        &confirm_body(RECIPIENT, RECIPIENT.0, &reference),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    let (_, xml) = files_waiting(&broker, RECIPIENT).await;
    assert_eq!(
        element_text(&xml, "CheckIfAvailableFilesBasicResult").as_deref(),
        Some("false")
    );
}

#[tokio::test]
async fn an_upload_broken_off_midway_can_be_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_in(None, Some(dir.path())).await;
    let reference = initiate(&broker, "r").await;
    let whole = upload_body(SENDER, SENDER.0, &reference, &payload(1 << 20));
    let half = whole[..whole.len() / 2].to_vec();
    let broken = futures::stream::iter([
        Ok::<_, std::io::Error>(half),
        Err(std::io::Error::other("the sender went away")),
    ]);
    let sent = reqwest::Client::new()
        .post(broker.streamed_url())
        .header("content-type", mtom_content_type())
        .header(
            "soapaction",
            format!("\"{STREAMED_ACTIONS}/UploadFileStreamedBasic\""),
        )
        .body(reqwest::Body::wrap_stream(broken))
        .send()
        .await;
    assert!(sent.is_err() || !sent.unwrap().status().is_success());
    // The simulator notices the broken request in its own time.
    let mut answer = None;
    for _ in 0..50 {
        let data = payload(1 << 10);
        let (status, xml) = upload(&broker, upload_body(SENDER, SENDER.0, &reference, &data)).await;
        if status == StatusCode::OK {
            answer = Some(xml);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(answer.is_some(), "the broken upload still holds the file");
    assert_eq!(stored(dir.path()), [format!("{reference}.bin")]);
    assert_eq!(broker.files()[0].size, 1 << 10);
}

#[tokio::test]
async fn undelivered_files_are_limited() {
    let mut config = AltinnBrokerConfig::new(fixture());
    config.max_undelivered_files = 1;
    let broker = AltinnBroker::start(config).await.unwrap();
    let reference = initiate(&broker, "first").await;
    let second = initiate_body(SENDER, SENDER.0, RECIPIENT.0, "second");
    let (status, xml) = basic(&broker, "InitiateBrokerServiceBasic", &second).await;
    assert_fault(status, &xml, "s:Client");
    let (status, xml) = upload(&broker, upload_body(SENDER, SENDER.0, &reference, b"data")).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    let (status, xml) = basic(&broker, "InitiateBrokerServiceBasic", &second).await;
    assert_fault(status, &xml, "s:Client");
    let (status, xml) = basic(
        &broker,
        "ConfirmDownloadedBasic",
        &confirm_body(RECIPIENT, RECIPIENT.0, &reference),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    let (status, xml) = basic(&broker, "InitiateBrokerServiceBasic", &second).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
}
