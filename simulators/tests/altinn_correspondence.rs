//! The Altinn 2 correspondence agency (DPV v2/v3), driven over HTTP with hand-written SOAP 1.2,
//! WS-Addressing and WS-Security headers, as the integration point's Spring WS client sends
//! them, including the broken requests a client library would refuse to build.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use simulators::altinn_correspondence::{
    AltinnCorrespondence, AltinnCorrespondenceConfig, CorrespondenceStatus, UnknownShipment,
};
use simulators::fixture::Fixture;

const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
const WSA: &str = "http://www.w3.org/2005/08/addressing";
const WSSE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
const WSU: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
const PASSWORD_TEXT: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText";
const CORRESPONDENCE: &str = "http://www.altinn.no/services/ServiceEngine/Correspondence/2009/10";
const ACTIONS: &str = "http://www.altinn.no/services/ServiceEngine/Correspondence/2009/10/ICorrespondenceAgencyExternal/";
const V2: &str = "http://schemas.altinn.no/services/ServiceEngine/Correspondence/2010/10";
const ATTACHMENTS: &str = "http://www.altinn.no/services/ServiceEngine/ReporteeElementList/2010/10";
const NOTIFICATIONS: &str = "http://schemas.altinn.no/services/ServiceEngine/Notification/2009/10";
const ARRAYS: &str = "http://schemas.microsoft.com/2003/10/Serialization/Arrays";
const TEST_ACTION: &str = "http://www.altinn.no/services/2009/10/IAltinnContractBase/Test";

/// The sending organisation's end-user system, from the shipped fixture.
const SENDER: (&str, &str, &str) = ("910075918", "20001", "lokal-testetat-passord");
/// Another organisation's.
const OTHER: (&str, &str, &str) = ("910076787", "20002", "lokal-mottakeretat-passord");
/// The recipient: an organisation with no channel but Altinn.
const REPORTEE: &str = "910077309";

async fn start() -> AltinnCorrespondence {
    let fixture =
        Fixture::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixture.toml")).unwrap();
    AltinnCorrespondence::start(AltinnCorrespondenceConfig::new(fixture))
        .await
        .unwrap()
}

/// `time` as an `xs:dateTime` in UTC.
fn xs_datetime(time: SystemTime) -> String {
    let seconds = time.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let days = seconds.div_euclid(86_400) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let of_day = seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// The WS-Security header for `system`, created at `created`.
fn security(system: (&str, &str, &str), created: SystemTime) -> String {
    format!(
        "<wsse:Security xmlns:wsse=\"{WSSE}\" xmlns:wsu=\"{WSU}\" soap:mustUnderstand=\"true\">\
         <wsse:UsernameToken wsu:Id=\"UsernameToken-1\"><wsse:Username>{}</wsse:Username>\
         <wsse:Password Type=\"{PASSWORD_TEXT}\">{}</wsse:Password>\
         <wsse:Nonce EncodingType=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary\">c2ltdWxhdG9yIG5vbmNl</wsse:Nonce>\
         <wsu:Created>{}</wsu:Created></wsse:UsernameToken></wsse:Security>",
        system.1,
        system.2,
        xs_datetime(created)
    )
}

fn addressing(action: &str) -> String {
    format!(
        "<wsa:Action xmlns:wsa=\"{WSA}\">{action}</wsa:Action>\
         <wsa:MessageID xmlns:wsa=\"{WSA}\">urn:uuid:2c9f0a1e-test</wsa:MessageID>\
         <wsa:To xmlns:wsa=\"{WSA}\">http://127.0.0.1/ServiceEngineExternal/CorrespondenceAgencyExternal.svc</wsa:To>"
    )
}

fn envelope(header: &str, body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soap:Envelope xmlns:soap=\"{SOAP12}\">\
         <soap:Header>{header}</soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>"
    )
}

/// A request as the integration point sends it: addressing, then security, then the body.
fn request(action: &str, system: (&str, &str, &str), body: &str) -> String {
    envelope(
        &format!(
            "{}{}",
            addressing(action),
            security(system, SystemTime::now())
        ),
        body,
    )
}

async fn post(
    agency: &AltinnCorrespondence,
    content_type: &str,
    xml: String,
) -> (StatusCode, String) {
    let response = reqwest::Client::new()
        .post(agency.service_url())
        .header("content-type", content_type)
        .body(xml)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

async fn call(agency: &AltinnCorrespondence, xml: String) -> (StatusCode, String) {
    post(agency, "application/soap+xml; charset=utf-8", xml).await
}

fn insert_body(system: (&str, &str, &str), reference: &str, attachment: &[u8]) -> String {
    let now = xs_datetime(SystemTime::now());
    let due = xs_datetime(SystemTime::now() + Duration::from_secs(7 * 86_400));
    format!(
        "<ns:InsertCorrespondenceV2 xmlns:ns=\"{CORRESPONDENCE}\" xmlns:c=\"{V2}\" xmlns:r=\"{ATTACHMENTS}\" xmlns:n=\"{NOTIFICATIONS}\">\
         <ns:SystemUserCode>{}</ns:SystemUserCode><ns:ExternalShipmentReference>{reference}</ns:ExternalShipmentReference>\
         <ns:Correspondence><c:ServiceCode>4255</c:ServiceCode><c:ServiceEdition>10</c:ServiceEdition>\
         <c:Reportee>{REPORTEE}</c:Reportee><c:Content><c:LanguageCode>1044</c:LanguageCode>\
         <c:MessageTitle>Vedtak &amp; melding</c:MessageTitle><c:MessageSummary>Kort om saken</c:MessageSummary>\
         <c:MessageBody>Hele teksten</c:MessageBody><c:Attachments><c:BinaryAttachments><r:BinaryAttachmentV2>\
         <r:FunctionType>Unspecified</r:FunctionType><r:FileName>vedtak.pdf</r:FileName><r:Name>Vedtak</r:Name>\
         <r:Encrypted>false</r:Encrypted><r:Data>{}</r:Data><r:SendersReference>AttachmentReference_as123452</r:SendersReference>\
         </r:BinaryAttachmentV2></c:BinaryAttachments></c:Attachments></c:Content>\
         <c:VisibleDateTime>{now}</c:VisibleDateTime><c:AllowSystemDeleteDateTime>{now}</c:AllowSystemDeleteDateTime>\
         <c:DueDateTime>{due}</c:DueDateTime><c:Notifications><n:Notification><n:FromAddress>no-reply@altinn.no</n:FromAddress>\
         <n:ShipmentDateTime>{now}</n:ShipmentDateTime><n:LanguageCode>1044</n:LanguageCode>\
         <n:NotificationType>VarselDPVMedRevarsel</n:NotificationType><n:TextTokens>\
         <n:TextToken><n:TokenNum>1</n:TokenNum><n:TokenValue>andre</n:TokenValue></n:TextToken>\
         <n:TextToken><n:TokenNum>0</n:TokenNum><n:TokenValue>første</n:TokenValue></n:TextToken></n:TextTokens>\
         <n:ReceiverEndPoints><n:ReceiverEndPoint><n:TransportType>Both</n:TransportType></n:ReceiverEndPoint></n:ReceiverEndPoints>\
         </n:Notification></c:Notifications><c:AllowForwarding>false</c:AllowForwarding>\
         <c:MessageSender>Lokal testetat</c:MessageSender></ns:Correspondence></ns:InsertCorrespondenceV2>",
        system.1,
        BASE64.encode(attachment)
    )
}

async fn insert(
    agency: &AltinnCorrespondence,
    system: (&str, &str, &str),
    reference: &str,
) -> (StatusCode, String) {
    call(
        agency,
        request(
            &format!("{ACTIONS}InsertCorrespondenceV2"),
            system,
            &insert_body(system, reference, b"%PDF-1.7 test"),
        ),
    )
    .await
}

fn history_body(references: &[&str]) -> String {
    let strings: String = references
        .iter()
        .map(|r| format!("<a:string>{r}</a:string>"))
        .collect();
    format!(
        "<ns:CorrespondenceStatusHistoryRequest xmlns:ns=\"{CORRESPONDENCE}\" xmlns:a=\"{ARRAYS}\">\
         <ns:CorrespondenceSendersReferences>{strings}</ns:CorrespondenceSendersReferences>\
         </ns:CorrespondenceStatusHistoryRequest>"
    )
}

async fn history(
    agency: &AltinnCorrespondence,
    system: (&str, &str, &str),
    references: &[&str],
) -> String {
    let (status, xml) = call(
        agency,
        request(
            &format!("{ACTIONS}GetCorrespondenceStatusHistory"),
            system,
            &history_body(references),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    xml
}

/// The texts of every element named `name` (any prefix), in document order.
fn texts(xml: &str, name: &str) -> Vec<String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut found = Vec::new();
    let mut current: Option<String> = None;
    loop {
        match reader.read_event().expect("well-formed XML") {
            quick_xml::events::Event::Start(start) if start.local_name().as_ref() == name => {
                current = Some(String::new());
            }
            quick_xml::events::Event::Text(text) => {
                if let Some(current) = current.as_mut() {
                    current.push_str(&text.xml10_content());
                }
            }
            quick_xml::events::Event::End(end) if end.local_name().as_ref() == name => {
                found.extend(current.take());
            }
            quick_xml::events::Event::Eof => return found,
            _ => {}
        }
    }
}

fn text(xml: &str, name: &str) -> Option<String> {
    texts(xml, name).into_iter().next()
}

/// Asserts a SOAP 1.2 fault with HTTP 500, code `Sender` and `subcode` if given.
fn assert_fault(status: StatusCode, xml: &str, subcode: Option<&str>) {
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{xml}");
    assert!(xml.contains(SOAP12), "{xml}");
    let values = texts(xml, "Value");
    assert_eq!(
        values.first().map(String::as_str),
        Some("s:Sender"),
        "{xml}"
    );
    assert_eq!(values.get(1).map(String::as_str), subcode, "{xml}");
}

#[tokio::test]
async fn test_answers_with_addressing() {
    let agency = start().await;
    let body = "<Test xmlns=\"http://www.altinn.no/services/2009/10\"/>";
    let (status, xml) = call(&agency, request(TEST_ACTION, SENDER, body)).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert!(xml.contains("TestResponse"), "{xml}");
    assert_eq!(text(&xml, "Action"), Some(format!("{TEST_ACTION}Response")));
    assert_eq!(
        text(&xml, "RelatesTo").as_deref(),
        Some("urn:uuid:2c9f0a1e-test")
    );
}

#[tokio::test]
async fn a_correspondence_is_recorded_field_by_field_and_its_history_follows_it() {
    let agency = start().await;
    let attachment = b"%PDF-1.7 an attachment".repeat(1000);
    let reference = "6b1f4c3e-1d1a-4f57-9f53-0d6b5e8a2c11";
    let action = format!("{ACTIONS}InsertCorrespondenceV2");
    // The action may also come as the content type's parameter, as SAAJ sends it.
    let (status, xml) = post(
        &agency,
        &format!("application/soap+xml; charset=utf-8; action=\"{action}\""),
        request(
            &action,
            SENDER,
            &insert_body(SENDER, reference, &attachment),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert_eq!(text(&xml, "Action"), Some(format!("{action}Response")));
    assert_eq!(text(&xml, "ReceiptStatusCode").as_deref(), Some("OK"));
    assert_eq!(texts(&xml, "ReferenceValue"), [reference, REPORTEE]);

    let received = agency.correspondences();
    assert_eq!(received.len(), 1);
    let correspondence = &received[0];
    assert_eq!(
        text(&xml, "ReceiptId"),
        Some(correspondence.receipt_id.to_string())
    );
    assert_eq!(correspondence.sender, SENDER.0);
    assert_eq!(correspondence.reportee, REPORTEE);
    assert_eq!(correspondence.system_user_code, SENDER.1);
    assert_eq!(
        (
            correspondence.service_code.as_str(),
            correspondence.service_edition.as_str()
        ),
        ("4255", "10")
    );
    assert_eq!(correspondence.title, "Vedtak & melding");
    assert_eq!(correspondence.summary.as_deref(), Some("Kort om saken"));
    assert_eq!(correspondence.body.as_deref(), Some("Hele teksten"));
    assert_eq!(correspondence.language_code.as_deref(), Some("1044"));
    assert_eq!(
        correspondence.message_sender.as_deref(),
        Some("Lokal testetat")
    );
    assert_eq!(correspondence.allow_forwarding, Some(false));
    assert!(correspondence.due_date_time.is_some());
    let [received_attachment] = correspondence.attachments.as_slice() else {
        panic!("one attachment: {:?}", correspondence.attachments);
    };
    assert_eq!(received_attachment.file_name, "vedtak.pdf");
    assert_eq!(received_attachment.name, "Vedtak");
    assert_eq!(received_attachment.size, attachment.len() as u64);
    assert_eq!(
        received_attachment.sha256,
        hex::encode(Sha256::digest(&attachment))
    );
    let [notification] = correspondence.notifications.as_slice() else {
        panic!("one notification: {:?}", correspondence.notifications);
    };
    assert_eq!(notification.text_tokens, ["første", "andre"]);
    assert_eq!(
        notification.receivers[0].transport_type.as_deref(),
        Some("Both")
    );
    assert_eq!(
        notification.notification_type.as_deref(),
        Some("VarselDPVMedRevarsel")
    );

    let created = history(&agency, SENDER, &[reference, "never-sent"]).await;
    assert_eq!(texts(&created, "SendersReference"), [reference]);
    assert_eq!(texts(&created, "StatusType"), ["Created"]);
    assert_eq!(text(&created, "Reportee").as_deref(), Some(REPORTEE));

    agency
        .mark(SENDER.0, reference, CorrespondenceStatus::Read)
        .unwrap();
    let read = history(&agency, SENDER, &[reference]).await;
    assert_eq!(texts(&read, "StatusType"), ["Created", "Read"]);
    assert_eq!(
        agency.mark(SENDER.0, "never-sent", CorrespondenceStatus::Read),
        Err(UnknownShipment("never-sent".into()))
    );
    // Another sender cannot see it.
    let foreign = history(&agency, OTHER, &[reference]).await;
    assert!(texts(&foreign, "StatusV2").is_empty(), "{foreign}");

    let inspected = reqwest::get(format!("{}/_inspect/correspondences", agency.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let inspected: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    assert_eq!(inspected[0]["externalShipmentReference"], reference);
    assert_eq!(inspected[0]["statuses"][1]["status"], "Read");
}

#[tokio::test]
async fn inserting_again_with_the_same_reference_returns_the_first_receipt() {
    let agency = start().await;
    let (status, first) = insert(&agency, SENDER, "same-reference").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, again) = insert(&agency, SENDER, "same-reference").await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(text(&first, "ReceiptId"), text(&again, "ReceiptId"));
    assert_eq!(agency.correspondences().len(), 1);
    let (status, other) = insert(&agency, SENDER, "another-reference").await;
    assert_eq!(status, StatusCode::OK, "{other}");
    assert_ne!(text(&first, "ReceiptId"), text(&other, "ReceiptId"));
    // The reference is the sender's own: another sender may use the same one.
    let (status, foreign) = insert(&agency, OTHER, "same-reference").await;
    assert_eq!(status, StatusCode::OK, "{foreign}");
    assert_eq!(agency.correspondences().len(), 3);
}

#[tokio::test]
async fn the_number_of_correspondences_kept_is_limited() {
    let fixture =
        Fixture::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixture.toml")).unwrap();
    let mut config = AltinnCorrespondenceConfig::new(fixture);
    config.max_correspondences = 1;
    let agency = AltinnCorrespondence::start(config).await.unwrap();
    let (status, xml) = insert(&agency, SENDER, "first").await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    let (status, xml) = insert(&agency, SENDER, "second").await;
    assert_fault(status, &xml, None);
    assert!(text(&xml, "AltinnErrorMessage").is_some(), "{xml}");
    // Sending the first again still answers with its receipt.
    let (status, xml) = insert(&agency, SENDER, "first").await;
    assert_eq!(status, StatusCode::OK, "{xml}");
}

#[tokio::test]
async fn wrong_or_missing_credentials_are_refused() {
    let agency = start().await;
    let action = format!("{ACTIONS}InsertCorrespondenceV2");
    let body = insert_body(SENDER, "r", b"x");
    let wrong = (SENDER.0, SENDER.1, "not the password");
    let (status, xml) = call(&agency, request(&action, wrong, &body)).await;
    assert_fault(status, &xml, None);
    assert_eq!(text(&xml, "ErrorID").as_deref(), Some("989"));
    assert_eq!(
        text(&xml, "Action"),
        Some(format!("{action}AltinnFaultFault"))
    );
    // No security header at all.
    let (status, xml) = call(&agency, envelope(&addressing(&action), &body)).await;
    assert_fault(status, &xml, Some("a:InvalidSecurity"));
    // A token created ten minutes ago.
    let stale = envelope(
        &format!(
            "{}{}",
            addressing(&action),
            security(SENDER, SystemTime::now() - Duration::from_secs(600))
        ),
        &body,
    );
    let (status, xml) = call(&agency, stale).await;
    assert_fault(status, &xml, Some("a:InvalidSecurity"));
    // A digest password where a plain-text one is required.
    let digest = request(&action, SENDER, &body).replace("#PasswordText", "#PasswordDigest");
    let (status, xml) = call(&agency, digest).await;
    assert_fault(status, &xml, Some("a:InvalidSecurity"));
    // Signed by one system, claiming to be another.
    let (status, xml) = call(
        &agency,
        request(&action, SENDER, &insert_body(OTHER, "r", b"x")),
    )
    .await;
    assert_fault(status, &xml, None);
    assert!(agency.correspondences().is_empty());
}

#[tokio::test]
async fn malformed_requests_are_sender_faults() {
    let agency = start().await;
    let action = format!("{ACTIONS}InsertCorrespondenceV2");
    let body = insert_body(SENDER, "r", b"x");
    // Not XML.
    let (status, xml) = call(&agency, "<soap:Envelope".into()).await;
    assert_fault(status, &xml, None);
    // A SOAP 1.1 envelope.
    let soap11 = request(&action, SENDER, &body)
        .replace(SOAP12, "http://schemas.xmlsoap.org/soap/envelope/");
    let (status, xml) = call(&agency, soap11).await;
    assert_fault(status, &xml, None);
    // No Action header.
    let (status, xml) = call(
        &agency,
        envelope(&security(SENDER, SystemTime::now()), &body),
    )
    .await;
    assert_fault(status, &xml, Some("a:MessageAddressingHeaderRequired"));
    // An Action the service does not have.
    let (status, xml) = call(
        &agency,
        request(
            &format!("{ACTIONS}GetCorrespondenceStatusDetailsV2"),
            SENDER,
            &body,
        ),
    )
    .await;
    assert_fault(status, &xml, Some("a:ActionNotSupported"));
    // The content type's action disagreeing with the header.
    let (status, xml) = post(
        &agency,
        &format!("application/soap+xml; charset=utf-8; action=\"{TEST_ACTION}\""),
        request(&action, SENDER, &body),
    )
    .await;
    assert_fault(status, &xml, Some("a:ActionMismatch"));
    // A body that is not the action's.
    let (status, xml) = call(&agency, request(&action, SENDER, &history_body(&["r"]))).await;
    assert_fault(status, &xml, None);
    // Missing and malformed fields.
    for (broken, mentions) in [
        (
            body.replace("<c:MessageTitle>Vedtak &amp; melding</c:MessageTitle>", ""),
            "MessageTitle",
        ),
        (
            body.replace(
                &format!("<c:Reportee>{REPORTEE}</c:Reportee>"),
                "<c:Reportee>910077308</c:Reportee>",
            ),
            "Reportee",
        ),
        (body.replace("<r:Data>", "<r:Data>!!"), "base64"),
        (
            body.replace(
                "<n:TransportType>Both</n:TransportType>",
                "<n:TransportType>Pigeon</n:TransportType>",
            ),
            "TransportType",
        ),
        (
            body.replace(
                "<c:AllowForwarding>false</c:AllowForwarding>",
                "<c:AllowForwarding>perhaps</c:AllowForwarding>",
            ),
            "AllowForwarding",
        ),
        (
            body.replace(
                "<ns:ExternalShipmentReference>r</ns:ExternalShipmentReference>",
                "",
            ),
            "ExternalShipmentReference",
        ),
    ] {
        let (status, xml) = call(&agency, request(&action, SENDER, &broken)).await;
        assert_fault(status, &xml, None);
        assert!(xml.contains(mentions), "{mentions}: {xml}");
    }
    assert!(agency.correspondences().is_empty());
    // Not SOAP 1.2's media type.
    let (status, _) = post(
        &agency,
        "text/xml; charset=utf-8",
        request(&action, SENDER, &body),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn injected_faults_answer_503() {
    let agency = start().await;
    agency.fail_next(1);
    let body = "<Test xmlns=\"http://www.altinn.no/services/2009/10\"/>";
    let (status, _) = call(&agency, request(TEST_ACTION, SENDER, body)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = call(&agency, request(TEST_ACTION, SENDER, body)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_wsdl_is_served_and_names_this_endpoint() {
    let agency = start().await;
    let url = agency.service_url();
    let response = reqwest::get(format!("{url}?wsdl")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let wsdl = response.text().await.unwrap();
    assert!(
        wsdl.contains(&format!("<soap12:address location=\"{url}\"/>")),
        "{wsdl}"
    );
    for operation in [
        "Test",
        "InsertCorrespondenceV2",
        "GetCorrespondenceStatusHistory",
    ] {
        assert!(
            wsdl.contains(&format!("<wsdl:operation name=\"{operation}\">")),
            "{operation}"
        );
    }
    let mut reader = quick_xml::Reader::from_str(&wsdl);
    while !matches!(
        reader.read_event().expect("the WSDL is well-formed"),
        quick_xml::events::Event::Eof
    ) {}
    let plain = reqwest::get(url).await.unwrap();
    assert_eq!(plain.status(), StatusCode::NOT_FOUND);
}
