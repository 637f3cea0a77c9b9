//! The bad-input table of the Next Move API: each refusal has the real integration point's status
//! code and error body, and leaves nothing stored (no message, no conversation, no file).

use integrasjonspunkt::store::{InMessage, NewConversation, now_millis};
use ip_tests::network::{IntegrationPoint, Network, arkivmelding_sbd, arkivmelding_xml};
use reqwest::Method;
use serde_json::{Value, json};

const SENDER: &str = "910075918";
const RECEIVER: &str = "910076787";

/// What the integration point holds: messages out, conversations, files.
async fn holdings(ip: &IntegrationPoint) -> (i64, i64, usize) {
    let (_, out) = ip.get("/api/messages/out").await;
    let (_, conversations) = ip.get("/api/conversations").await;
    (
        out["totalElements"].as_i64().unwrap(),
        conversations["totalElements"].as_i64().unwrap(),
        ip.stored_files().await,
    )
}

/// Asserts `answer` is the error body with `status` and an exception ending in `exception`,
/// for `path`; returns the body.
async fn refused(answer: reqwest::Response, status: u16, exception: &str, path: &str) -> Value {
    assert_eq!(answer.status().as_u16(), status);
    let body: Value = serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap();
    assert_eq!(body["status"], status, "{body}");
    assert!(
        body["exception"].as_str().unwrap().ends_with(exception),
        "expected {exception}: {body}"
    );
    assert_eq!(body["path"], path, "{body}");
    assert!(
        body["timestamp"].is_string() && body["message"].is_string() && body["error"].is_string()
    );
    body
}

async fn create(ip: &IntegrationPoint, sbd: &Value) -> reqwest::Response {
    ip.post_json("/api/messages/out", sbd).await
}

fn message_id(sbd: &Value) -> String {
    sbd["standardBusinessDocumentHeader"]["documentIdentification"]["instanceIdentifier"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn upload(
    ip: &IntegrationPoint,
    message_id: &str,
    name: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    ip.request(Method::PUT, &format!("/api/messages/out/{message_id}"))
        .header("content-type", "application/pdf")
        .header(
            "content-disposition",
            format!("attachment; name=\"{name}\"; filename=\"{name}\""),
        )
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_as_the_real_integration_point_refuses_it_and_nothing_is_stored() {
    let network = Network::start().await;
    // The channel carries at most 1 MiB, so an oversize upload is cheap to make.
    let home = network.configure_channel(SENDER, "", ", max-message-size = \"1048576\"");
    let ip = IntegrationPoint::start(&home).await;
    let create_path = "/api/messages/out";

    // Malformed JSON.
    let before = holdings(&ip).await;
    let answer = ip
        .request(Method::POST, create_path)
        .header("content-type", "application/json")
        .body("{\"standardBusinessDocumentHeader\": ")
        .send()
        .await
        .unwrap();
    refused(answer, 400, "HttpMessageNotReadableException", create_path).await;
    assert_eq!(holdings(&ip).await, before);

    // An unknown document type.
    let mut sbd = arkivmelding_sbd(SENDER, RECEIVER, "a.pdf");
    sbd["standardBusinessDocumentHeader"]["documentIdentification"]["type"] = json!("strange");
    refused(
        create(&ip, &sbd).await,
        400,
        "UnknownMessageTypeException",
        create_path,
    )
    .await;
    assert_eq!(holdings(&ip).await, before);

    // A standard that does not end with ::type.
    let mut sbd = arkivmelding_sbd(SENDER, RECEIVER, "a.pdf");
    sbd["standardBusinessDocumentHeader"]["documentIdentification"]["standard"] =
        json!("urn:no:difi:arkivmelding:xsd::arkivmelding_kvittering");
    refused(
        create(&ip, &sbd).await,
        400,
        "MessageTypeDoesNotFitDocumentTypeException",
        create_path,
    )
    .await;
    assert_eq!(holdings(&ip).await, before);

    // No receiver: a constraint violation naming the field.
    let mut sbd = arkivmelding_sbd(SENDER, RECEIVER, "a.pdf");
    sbd["standardBusinessDocumentHeader"]
        .as_object_mut()
        .unwrap()
        .remove("receiver");
    let body = refused(
        create(&ip, &sbd).await,
        400,
        "ConstraintViolationException",
        create_path,
    )
    .await;
    assert_eq!(
        body["errors"][0]["field"],
        "standardBusinessDocumentHeader.receiver"
    );
    assert_eq!(holdings(&ip).await, before);

    // An expectedResponseDateTime already past.
    let mut sbd = arkivmelding_sbd(SENDER, RECEIVER, "a.pdf");
    sbd["standardBusinessDocumentHeader"]["businessScope"]["scope"][0]["scopeInformation"] =
        json!([{"expectedResponseDateTime": "2020-01-01T00:00:00+01:00"}]);
    refused(
        create(&ip, &sbd).await,
        400,
        "TimeToLiveException",
        create_path,
    )
    .await;
    assert_eq!(holdings(&ip).await, before);

    // A duplicate messageId: the first is stored, the second refused and nothing added.
    let sbd = arkivmelding_sbd(SENDER, RECEIVER, "a.pdf");
    assert_eq!(create(&ip, &sbd).await.status(), 200);
    let after_first = holdings(&ip).await;
    assert_eq!((after_first.0, after_first.1), (before.0 + 1, before.1 + 1));
    refused(
        create(&ip, &sbd).await,
        400,
        "MessageAlreadyExistsException",
        create_path,
    )
    .await;
    assert_eq!(holdings(&ip).await, after_first);
    let id = message_id(&sbd);
    let message_path = format!("/api/messages/out/{id}");

    // Send without files.
    let answer = ip
        .request(Method::POST, &message_path)
        .send()
        .await
        .unwrap();
    refused(answer, 400, "MissingFileException", &message_path).await;
    assert_eq!(holdings(&ip).await, after_first);

    // Upload to an unknown message.
    let unknown = uuid::Uuid::new_v4().to_string();
    let unknown_path = format!("/api/messages/out/{unknown}");
    refused(
        upload(&ip, &unknown, "a.pdf", vec![1; 100]).await,
        404,
        "MessageNotFoundException",
        &unknown_path,
    )
    .await;
    assert_eq!(holdings(&ip).await, after_first);

    // File names with path separators or `..`.
    for name in ["../escape.pdf", "dir/a.pdf", "dir\\a.pdf", "..", "a..pdf"] {
        refused(
            upload(&ip, &id, name, vec![1; 100]).await,
            400,
            "InvalidFilenameException",
            &message_path,
        )
        .await;
    }
    assert_eq!(holdings(&ip).await, after_first);

    // A duplicate filename.
    assert_eq!(upload(&ip, &id, "a.pdf", vec![1; 100]).await.status(), 200);
    let with_file = holdings(&ip).await;
    assert_eq!(with_file.2, after_first.2 + 1);
    refused(
        upload(&ip, &id, "a.pdf", vec![2; 100]).await,
        400,
        "DuplicateFilenameException",
        &message_path,
    )
    .await;
    assert_eq!(holdings(&ip).await, with_file);

    // An oversize file: over the channel's 1 MiB, with 100 bytes already taken.
    refused(
        upload(&ip, &id, "big.pdf", vec![3; 1 << 20]).await,
        400,
        "MaxFileSizeExceededException",
        &message_path,
    )
    .await;
    assert_eq!(holdings(&ip).await, with_file);

    // An arkivmelding cannot be sent without arkivmelding.xml, nor with a file it names missing.
    let answer = ip
        .request(Method::POST, &message_path)
        .send()
        .await
        .unwrap();
    refused(
        answer,
        400,
        "MissingArkivmeldingFileException",
        &message_path,
    )
    .await;
    let xml = arkivmelding_xml("Tittel", &["a.pdf", "missing.pdf"]).into_bytes();
    assert_eq!(
        upload(&ip, &id, "arkivmelding.xml", xml).await.status(),
        200
    );
    let answer = ip
        .request(Method::POST, &message_path)
        .send()
        .await
        .unwrap();
    let body = refused(
        answer,
        400,
        "MissingArkivmeldingFileException",
        &message_path,
    )
    .await;
    assert!(
        body["message"].as_str().unwrap().contains("missing.pdf"),
        "{body}"
    );

    // A multipart send with a file over 5 MB is refused whole: the message it created is gone.
    let sbd = arkivmelding_sbd(SENDER, RECEIVER, "a.pdf");
    let before_multipart = holdings(&ip).await;
    let boundary = "XyZ";
    let mut form = Vec::new();
    form.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"sbd\"\r\nContent-Type: application/json\r\n\r\n{sbd}\r\n").as_bytes());
    form.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"Stor\"; filename=\"a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n").as_bytes());
    form.extend(std::iter::repeat_n(7u8, 5 * 1024 * 1024 + 1));
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let multipart_path = "/api/messages/out/multipart";
    let answer = ip
        .request(Method::POST, multipart_path)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(form)
        .send()
        .await
        .unwrap();
    refused(answer, 400, "MaxFileSizeExceededException", multipart_path).await;
    assert_eq!(holdings(&ip).await, before_multipart);

    // Pop without peek, and delete without the lock, of a message that is waiting.
    let incoming = arkivmelding_sbd(RECEIVER, SENDER, "a.pdf");
    let incoming_id = message_id(&incoming);
    let conversation_id = incoming["standardBusinessDocumentHeader"]["businessScope"]["scope"][0]
        ["instanceIdentifier"]
        .as_str()
        .unwrap()
        .to_owned();
    let stored = ip
        .service
        .store
        .store_incoming(
            &InMessage {
                message_id: incoming_id.clone(),
                conversation_id: conversation_id.clone(),
                process_identifier: None,
                document_type: None,
                sender_identifier: Some(RECEIVER.into()),
                receiver_identifier: Some(SENDER.into()),
                service_identifier: "DPO".into(),
                channel: "loopback".into(),
                sbd: incoming.to_string(),
                package_blob: None,
                lock_until: None,
                last_updated: now_millis(),
            },
            &NewConversation {
                conversation_id,
                message_id: incoming_id.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(stored);
    let pop_path = format!("/api/messages/in/pop/{incoming_id}");
    let answer = ip.request(Method::GET, &pop_path).send().await.unwrap();
    refused(answer, 400, "MessageNotLockedException", &pop_path).await;
    let delete_path = format!("/api/messages/in/{incoming_id}");
    let answer = ip
        .request(Method::DELETE, &delete_path)
        .send()
        .await
        .unwrap();
    refused(answer, 400, "MessageNotLockedException", &delete_path).await;
    let (_, waiting) = ip.get("/api/messages/in").await;
    assert_eq!(
        waiting["totalElements"], 1,
        "the message is still there: {waiting}"
    );

    // Wrong or missing credentials.
    let client = reqwest::Client::new();
    for credentials in [
        None,
        Some(("archive", "wrong")),
        Some(("nobody", "archive password")),
    ] {
        let mut request = client.get(format!("{}/api/conversations", ip.url));
        if let Some((user, password)) = credentials {
            request = request.basic_auth(user, Some(password));
        }
        let answer = request.send().await.unwrap();
        assert!(
            answer.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
        refused(answer, 401, "BadCredentialsException", "/api/conversations").await;
    }
    // Health stays open to load balancers.
    let health = client
        .get(format!("{}/manage/health", ip.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    ip.service.stop().await;
}
