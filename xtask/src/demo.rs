//! `cargo xtask demo`: beside a running `cargo xtask local`, sends one message on every channel
//! the sending integration point has loaded, lets the receiving side's archive system take it
//! (peek, pop, delete), and prints the status sequence each message went through.

use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::local::{INTEGRATION_POINTS, PASSWORD, USER};

/// Who receives a demo message on each channel (fixture organisations and citizens), with the
/// process and document type of the message.
fn receiver(service: &str) -> Option<(&'static str, &'static str, &'static str)> {
    const ARKIVMELDING: (&str, &str) = (
        "urn:no:difi:profile:arkivmelding:administrasjon:ver1.0",
        "urn:no:difi:arkivmelding:xsd::arkivmelding",
    );
    match service {
        "DPO" => Some((INTEGRATION_POINTS[1].0, ARKIVMELDING.0, ARKIVMELDING.1)),
        "DPF" => Some(("910077201", ARKIVMELDING.0, ARKIVMELDING.1)),
        "DPV" => Some(("910077309", ARKIVMELDING.0, ARKIVMELDING.1)),
        _ => None,
    }
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

fn multipart(sbd: &Value) -> (String, Vec<u8>) {
    let boundary = "demo-boundary";
    let arkivmelding = r#"<?xml version="1.0" encoding="utf-8"?>
<arkivmelding xmlns="http://www.arkivverket.no/standarder/noark5/arkivmelding" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><mappe xsi:type="saksmappe"><systemID>1c7b1d2e-3f4a-4b5c-8d6e-7f8091a2b3c4</systemID><registrering xsi:type="journalpost"><journalpostnummer>1</journalpostnummer><offentligTittel>Demo</offentligTittel><dokumentbeskrivelse><dokumentobjekt><referanseDokumentfil>vedtak.pdf</referanseDokumentfil></dokumentobjekt></dokumentbeskrivelse></registrering></mappe></arkivmelding>"#;
    let mut body = String::new();
    body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"sbd\"\r\nContent-Type: application/json\r\n\r\n{sbd}\r\n"));
    body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"Arkivmelding\"; filename=\"arkivmelding.xml\"\r\nContent-Type: application/xml\r\n\r\n{arkivmelding}\r\n"));
    body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"Vedtak\"; filename=\"vedtak.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4 demo\r\n"));
    body.push_str(&format!("--{boundary}--\r\n"));
    (
        format!("multipart/form-data; boundary={boundary}"),
        body.into_bytes(),
    )
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
    let (sender_orgnr, _, sender_port) = INTEGRATION_POINTS[0];
    let sender = Api::new(sender_port);
    let receiving = Api::new(INTEGRATION_POINTS[1].2);
    let (_, plugins) = sender.get("/manage/plugins").await?;
    let services: Vec<String> = plugins["plugins"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|plugin| plugin["service"].as_str().map(str::to_owned))
        .collect();
    if services.is_empty() {
        bail!("the sending integration point has no channel loaded");
    }
    for service in services {
        let Some((receiver, process, standard)) = receiver(&service) else {
            println!("{service}: no demo receiver for this channel");
            continue;
        };
        let kind = standard.rsplit("::").next().unwrap_or(standard);
        let sbd = json!({
            "standardBusinessDocumentHeader": {
                "headerVersion": "1.0",
                "sender": [{"identifier": {"value": format!("0192:{sender_orgnr}"), "authority": "iso6523-actorid-upis"}}],
                "receiver": [{"identifier": {"value": format!("0192:{receiver}"), "authority": "iso6523-actorid-upis"}}],
                "documentIdentification": {"standard": standard, "typeVersion": "2.0", "type": kind},
                "businessScope": {"scope": [{"type": "ConversationId", "identifier": process}]}
            },
            kind: {"hoveddokument": "vedtak.pdf", "sikkerhetsnivaa": 3}
        });
        let (content_type, body) = multipart(&sbd);
        let answer = sender
            .client
            .post(format!("{}/api/messages/out/multipart", sender.base))
            .basic_auth(USER, Some(PASSWORD))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await?;
        if !answer.status().is_success() {
            println!("{service}: refused: {}", answer.text().await?);
            continue;
        }
        let created: Value = serde_json::from_slice(&answer.bytes().await?)?;
        let id = created["standardBusinessDocumentHeader"]["documentIdentification"]
            ["instanceIdentifier"]
            .as_str()
            .context("the answer carries the message id")?
            .to_owned();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        let mut seen = Vec::new();
        let mut finished = false;
        while tokio::time::Instant::now() < deadline && !finished {
            receive_all(&receiving).await?;
            let (_, conversation) = sender
                .get(&format!("/api/conversations/messageId/{id}"))
                .await?;
            seen = statuses(&conversation);
            finished = conversation["finished"].as_bool() == Some(true);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        println!("{service} to {receiver} ({id}): {}", seen.join(" → "));
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
