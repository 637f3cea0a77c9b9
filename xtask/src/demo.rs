//! `cargo xtask demo`: beside a running `cargo xtask local`, sends one message on each of the five
//! channels (DPO, DPV, DPF, DPI, DPE) to a fixture organisation or citizen the registry routes to
//! that channel, lets the receiving integration point's archive system take what arrives (peek,
//! pop, delete), and prints the status sequence each message went through.

use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::local::{INTEGRATION_POINTS, PASSWORD, USER};

/// One demo message: who sends it to whom on which channel, and what it is.
struct Case {
    /// The channel the registry routes it to.
    service: &'static str,
    /// The sending integration point: an index into [`INTEGRATION_POINTS`].
    sender: usize,
    /// The receiver as the SBD names it (`0192:` and an organisation number, or a citizen).
    receiver: &'static str,
    /// The process.
    process: &'static str,
    /// The document type; its last `::` part is the message type.
    standard: &'static str,
    /// The business message.
    business: Value,
    /// The files: (part name, file name, content type, content).
    files: Vec<(&'static str, &'static str, &'static str, &'static [u8])>,
}

const ARKIVMELDING_PROCESS: &str = "urn:no:difi:profile:arkivmelding:administrasjon:ver1.0";
const ARKIVMELDING: &str = "urn:no:difi:arkivmelding:xsd::arkivmelding";
const ARKIVMELDING_XML: &[u8] = br#"<?xml version="1.0" encoding="utf-8"?>
<arkivmelding xmlns="http://www.arkivverket.no/standarder/noark5/arkivmelding" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><mappe xsi:type="saksmappe"><systemID>1c7b1d2e-3f4a-4b5c-8d6e-7f8091a2b3c4</systemID><registrering xsi:type="journalpost"><journalpostnummer>1</journalpostnummer><offentligTittel>Demo</offentligTittel><dokumentbeskrivelse><dokumentobjekt><referanseDokumentfil>vedtak.pdf</referanseDokumentfil></dokumentobjekt></dokumentbeskrivelse></registrering></mappe></arkivmelding>"#;
const VEDTAK_PDF: &[u8] = b"%PDF-1.4 demo";

/// The five channels' demo messages, as the fixture (`simulators/fixture.toml`) routes them:
/// arkivmelding by DPO to the other local integration point, by DPF to Testkommune (SvarUt) and
/// by DPV to Liten forening (Altinn); a vedtak by DPI to Kari Digital's mailbox; an innsynskrav
/// by DPE from the second local integration point to the first, which eInnsyn serves.
fn cases() -> Vec<Case> {
    let arkivmelding = |service, receiver| Case {
        service,
        sender: 0,
        receiver,
        process: ARKIVMELDING_PROCESS,
        standard: ARKIVMELDING,
        business: json!({"hoveddokument": "vedtak.pdf", "sikkerhetsnivaa": 3}),
        files: vec![
            (
                "Arkivmelding",
                "arkivmelding.xml",
                "application/xml",
                ARKIVMELDING_XML,
            ),
            ("Vedtak", "vedtak.pdf", "application/pdf", VEDTAK_PDF),
        ],
    };
    vec![
        arkivmelding("DPO", "0192:910076787"),
        arkivmelding("DPV", "0192:910077309"),
        arkivmelding("DPF", "0192:910077201"),
        Case {
            service: "DPI",
            sender: 0,
            receiver: "01818012337",
            process: "urn:no:difi:profile:digitalpost:vedtak:ver1.0",
            standard: "urn:no:difi:digitalpost:xsd:digital::digital",
            business: json!({
                "hoveddokument": "vedtak.pdf", "sikkerhetsnivaa": 3, "tittel": "Vedtak",
                "spraak": "NO", "avsenderId": "demo",
                "digitalPostInfo": {"virkningsdato": "2024-01-01", "aapningskvittering": true},
                "varsler": {"epostTekst": "Du har fått post", "smsTekst": "Du har fått post"}
            }),
            files: vec![("Vedtak", "vedtak.pdf", "application/pdf", VEDTAK_PDF)],
        },
        Case {
            service: "DPE",
            sender: 1,
            receiver: "0192:910075918",
            process: "urn:no:difi:profile:einnsyn:innsynskrav:ver1.0",
            standard: "urn:no:difi:einnsyn:xsd::innsynskrav",
            business: json!({"orgnr": "910076787", "epost": "innsyn@example.invalid"}),
            files: vec![(
                "Bestilling",
                "order.xml",
                "application/xml",
                b"<bestilling>demo</bestilling>",
            )],
        },
    ]
}

struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    fn new(port: u16) -> Self {
        Self {
            client: reqwest::Client::new(),
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let answer = self
            .client
            .get(format!("{}{path}", self.base))
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .await
            .with_context(|| format!("GET {}{path}: is `cargo xtask local` running?", self.base))?;
        let status = answer.status().as_u16();
        let body = answer.bytes().await?;
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }
}

fn multipart(sbd: &Value, files: &[(&str, &str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "demo-boundary";
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"sbd\"\r\nContent-Type: application/json\r\n\r\n{sbd}\r\n").as_bytes());
    for (name, filename, content_type, content) in files {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n").as_bytes());
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn statuses(conversation: &Value) -> Vec<String> {
    conversation["messageStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|status| status["status"].as_str().map(str::to_owned))
        .collect()
}

/// Takes whatever waits at the receiving integration point, as its archive system would.
async fn receive_all(receiver: &Api) -> anyhow::Result<()> {
    loop {
        let (status, sbd) = receiver.get("/api/messages/in/peek").await?;
        if status != 200 {
            return Ok(());
        }
        let id =
            sbd["standardBusinessDocumentHeader"]["documentIdentification"]["instanceIdentifier"]
                .as_str()
                .context("a peeked message has an id")?
                .to_owned();
        receiver.get(&format!("/api/messages/in/pop/{id}")).await?;
        receiver
            .client
            .delete(format!("{}/api/messages/in/{id}", receiver.base))
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .await?;
    }
}

async fn demo() -> anyhow::Result<()> {
    let points: Vec<Api> = INTEGRATION_POINTS
        .iter()
        .map(|(_, _, port)| Api::new(*port))
        .collect();
    for case in cases() {
        let (sender_orgnr, _, _) = INTEGRATION_POINTS[case.sender];
        let sender = &points[case.sender];
        let kind = case.standard.rsplit("::").next().unwrap_or(case.standard);
        let sbd = json!({
            "standardBusinessDocumentHeader": {
                "headerVersion": "1.0",
                "sender": [{"identifier": {"value": format!("0192:{sender_orgnr}"), "authority": "iso6523-actorid-upis"}}],
                "receiver": [{"identifier": {"value": case.receiver, "authority": "iso6523-actorid-upis"}}],
                "documentIdentification": {"standard": case.standard, "typeVersion": "2.0", "type": kind},
                "businessScope": {"scope": [{"type": "ConversationId", "identifier": case.process}]}
            },
            kind: case.business
        });
        let (content_type, body) = multipart(&sbd, &case.files);
        let answer = sender
            .client
            .post(format!("{}/api/messages/out/multipart", sender.base))
            .basic_auth(USER, Some(PASSWORD))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .with_context(|| format!("{}: is `cargo xtask local` running?", sender.base))?;
        if !answer.status().is_success() {
            println!("{}: refused: {}", case.service, answer.text().await?);
            continue;
        }
        let created: Value = serde_json::from_slice(&answer.bytes().await?)?;
        let id = created["standardBusinessDocumentHeader"]["documentIdentification"]
            ["instanceIdentifier"]
            .as_str()
            .context("the answer carries the message id")?
            .to_owned();
        let (_, conversation) = sender
            .get(&format!("/api/conversations/messageId/{id}"))
            .await?;
        let channel = conversation["serviceIdentifier"].as_str().unwrap_or("?");
        if channel != case.service {
            bail!(
                "{}: the registry routed the message to {channel}; is `cargo xtask local` running this project's simulators?",
                case.service
            );
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        let mut seen = Vec::new();
        let mut finished = false;
        while tokio::time::Instant::now() < deadline && !finished {
            for point in &points {
                receive_all(point).await?;
            }
            let (_, conversation) = sender
                .get(&format!("/api/conversations/messageId/{id}"))
                .await?;
            seen = statuses(&conversation);
            finished = conversation["finished"].as_bool() == Some(true);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        println!(
            "{} to {} ({id}): {}",
            case.service,
            case.receiver,
            seen.join(" → ")
        );
    }
    Ok(())
}

/// Runs the demo against the local system.
pub fn run() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(demo())
}
