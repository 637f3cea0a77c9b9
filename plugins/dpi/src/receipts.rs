//! What corner 2 reports, in the integration point's status vocabulary, as the real one maps it:
//! a message's own statuses (OPPRETTET is the SENDT already registered, SENDT means corner 3
//! has it, MOTTATT; FEILET is FEIL) and the receipts a mailbox or print provider sends back
//! (leverings- and mottakskvittering LEVERT, with MOTTATT before it; aapningskvittering LEST;
//! varslingfeilet-, returpostkvittering and feil FEIL; anything else ANNET).

use eformidling_sdk::types::{Status, StatusEvent};
use eformidling_sdk::{base64, time};
use serde_json::Value;

/// One entry of `GET /messages/out/{id}/statuses`.
#[derive(Debug, serde::Deserialize)]
pub struct OutStatus {
    pub status: String,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub beskrivelse: Option<String>,
}

/// The event a message status means, if any.
pub fn from_out_status(message_id: &str, status: &OutStatus) -> Option<StatusEvent> {
    let mapped = match status.status.as_str() {
        "SENDT" => Status::Mottatt,
        "FEILET" => Status::Feil,
        _ => return None,
    };
    Some(StatusEvent {
        message_id: message_id.to_owned(),
        status: mapped,
        at: at(status.timestamp.as_deref()),
        description: status.beskrivelse.clone(),
    })
}

fn at(timestamp: Option<&str>) -> u64 {
    timestamp
        .and_then(time::parse_rfc3339)
        .unwrap_or_else(time::now_millis)
}

/// A receipt as read from its forretningsmelding.
#[derive(Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The receipt's own message id, which `/read` confirms.
    pub id: String,
    /// The conversation of the message it answers.
    pub conversation_id: String,
    /// Its document type, e.g. `leveringskvittering`.
    pub kind: String,
    /// When it was issued.
    pub at: u64,
    /// A reason, for receipts that give one.
    pub description: Option<String>,
}

/// Reads a receipt from a forretningsmelding JWT (its payload; the transport is the
/// meldingsformidler's authenticated API).
pub fn read(jwt: &str) -> Result<Receipt, String> {
    let payload = jwt
        .split('.')
        .nth(1)
        .ok_or("the forretningsmelding is not a JWT")?;
    let payload = base64::decode(payload).ok_or("the JWT payload is not base64url")?;
    let claims: Value = serde_json::from_slice(&payload)
        .map_err(|e| format!("the JWT payload is not JSON: {e}"))?;
    let sbd = &claims["standardBusinessDocument"];
    let header = &sbd["standardBusinessDocumentHeader"];
    let identification = &header["documentIdentification"];
    let text = |value: &Value, what: &str| {
        value
            .as_str()
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| format!("the receipt has no {what}"))
    };
    let kind = text(&identification["type"], "documentIdentification.type")?;
    let conversation = header["businessScope"]["scope"]
        .as_array()
        .and_then(|scopes| scopes.iter().find(|s| s["type"] == "ConversationId"))
        .ok_or("the receipt has no ConversationId scope")?;
    let body = &sbd[kind.as_str()];
    let description = ["detaljer", "beskrivelse"]
        .iter()
        .find_map(|field| body[field].as_str().map(str::to_owned));
    Ok(Receipt {
        id: text(&identification["instanceIdentifier"], "instanceIdentifier")?,
        conversation_id: text(&conversation["instanceIdentifier"], "conversation id")?,
        at: at(body["tidspunkt"].as_str()),
        kind,
        description,
    })
}

/// The events a receipt means for `message_id`.
pub fn events(message_id: &str, receipt: &Receipt) -> Vec<StatusEvent> {
    let event = |status, description: Option<String>| StatusEvent {
        message_id: message_id.to_owned(),
        status,
        at: receipt.at,
        description,
    };
    match receipt.kind.as_str() {
        "leveringskvittering" | "mottakskvittering" => {
            vec![event(Status::Mottatt, None), event(Status::Levert, None)]
        }
        "aapningskvittering" => vec![event(Status::Lest, None)],
        "varslingfeiletkvittering" | "returpostkvittering" | "feil" => vec![event(
            Status::Feil,
            Some(
                receipt
                    .description
                    .clone()
                    .unwrap_or_else(|| receipt.kind.clone()),
            ),
        )],
        other => vec![event(Status::Annet, Some(other.to_owned()))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &Value) -> String {
        format!(
            "e30.{}.c2ln",
            base64::encode(claims.to_string().as_bytes()).trim_end_matches('=')
        )
    }

    #[test]
    fn receipts_are_read_and_mapped() {
        let claims = serde_json::json!({"standardBusinessDocument": {
            "standardBusinessDocumentHeader": {
                "documentIdentification": {"type": "feil", "instanceIdentifier": "r1"},
                "businessScope": {"scope": [{"type": "ConversationId", "instanceIdentifier": "c1"}]}
            },
            "feil": {"tidspunkt": "2024-03-01T12:00:00Z", "detaljer": "no such mailbox"}
        }});
        let receipt = read(&jwt(&claims)).unwrap();
        assert_eq!(receipt.id, "r1");
        assert_eq!(receipt.conversation_id, "c1");
        assert_eq!(receipt.at, 1_709_294_400_000);
        let events = events("m1", &receipt);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].status, Status::Feil);
        assert_eq!(events[0].description.as_deref(), Some("no such mailbox"));
        assert!(read("not-a-jwt").is_err());
    }

    #[test]
    fn delivery_implies_mottatt_first_and_statuses_map() {
        let receipt = Receipt {
            id: "r".into(),
            conversation_id: "c".into(),
            kind: "leveringskvittering".into(),
            at: 1,
            description: None,
        };
        let statuses: Vec<Status> = events("m", &receipt).iter().map(|e| e.status).collect();
        assert_eq!(statuses, [Status::Mottatt, Status::Levert]);
        let status = |s: &str| OutStatus {
            status: s.into(),
            timestamp: None,
            beskrivelse: None,
        };
        assert!(from_out_status("m", &status("OPPRETTET")).is_none());
        assert_eq!(
            from_out_status("m", &status("SENDT")).unwrap().status,
            Status::Mottatt
        );
        assert_eq!(
            from_out_status("m", &status("FEILET")).unwrap().status,
            Status::Feil
        );
    }
}
