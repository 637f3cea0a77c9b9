//! The forretningsmelding: the innbyggerpost SBD corner 2 takes, made from the Next Move
//! message (`digital` or `print`) and the registry's record, as the real integration point
//! builds it.
//!
//! `digital` stays `digital` (to the citizen's mailbox), `print` becomes `utskrift` (the postal
//! and return addresses from the message, else from the registry). The standard and the
//! ConversationId scope's process name the type; the package is named by its SHA-256
//! (`dokumentpakkefingeravtrykk`); `maskinportentoken` is left empty here and filled by the
//! host when it signs, so the token never enters the plugin.

use eformidling_sdk::time;
use eformidling_sdk::types::Outgoing;
use serde_json::{Map, Value, json};

/// The ISO 6523 authority of organisation numbers.
const AUTHORITY: &str = "iso6523-actorid-upis";
/// The digest method of the package fingerprint.
const SHA256_URI: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
/// Where the host writes the Maskinporten token, for each type.
pub fn token_pointer(kind: Kind) -> String {
    format!(
        "/standardBusinessDocument/{}/maskinportentoken",
        kind.name()
    )
}

/// The innbyggerpost message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Digital,
    Utskrift,
}

impl Kind {
    /// The type of a Next Move message type; none for a type DPI does not carry.
    pub fn of(next_move_type: &str) -> Option<Self> {
        match next_move_type {
            "digital" => Some(Kind::Digital),
            "print" => Some(Kind::Utskrift),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Digital => "digital",
            Kind::Utskrift => "utskrift",
        }
    }
}

/// The Next Move SBD's business message and its type.
pub struct NextMove {
    pub kind: Kind,
    pub body: Value,
}

impl NextMove {
    /// Reads the Next Move SBD of `message`.
    pub fn read(message: &Outgoing) -> Result<Self, String> {
        let sbd: Value =
            serde_json::from_str(&message.sbd).map_err(|e| format!("the SBD is not JSON: {e}"))?;
        let kind_name = sbd["standardBusinessDocumentHeader"]["documentIdentification"]["type"]
            .as_str()
            .unwrap_or_default();
        let kind = Kind::of(kind_name)
            .ok_or_else(|| format!("DPI carries digital and print messages, not {kind_name:?}"))?;
        Ok(Self {
            kind,
            body: sbd.get(kind_name).cloned().unwrap_or(Value::Null),
        })
    }

    fn text(&self, pointer: &str) -> Option<&str> {
        self.body
            .pointer(pointer)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
    }

    /// `avsenderId`, if given.
    pub fn sender_id(&self) -> Option<&str> {
        self.text("/avsenderId")
    }

    /// `fakturaReferanse`, if given.
    pub fn invoice_reference(&self) -> Option<&str> {
        self.text("/fakturaReferanse")
    }

    /// The language, `NO` unless given.
    pub fn language(&self) -> String {
        self.text("/spraak").unwrap_or("NO").to_owned()
    }
}

/// What the forretningsmelding needs besides the message.
pub struct Parts<'a> {
    pub next_move: &'a NextMove,
    /// The citizen's mailbox address (digital).
    pub mailbox: Option<&'a str>,
    /// The notification addresses (digital), e-mail and mobile.
    pub notify: (Option<&'a str>, Option<&'a str>),
    /// The registry's record as JSON (postal and return address of print).
    pub record: Value,
    /// The package's SHA-256.
    pub fingerprint: &'a [u8],
}

fn party(value: &str) -> Value {
    json!([{"identifier": {"authority": AUTHORITY, "value": value}}])
}

/// A postal address in corner 2's shape from a Next Move or registry one.
fn address(source: &Value) -> Value {
    let mut address = Map::new();
    for (target, names) in [
        ("navn", &["navn", "name"][..]),
        ("adresselinje1", &["adresselinje1", "street"]),
        ("adresselinje2", &["adresselinje2"]),
        ("adresselinje3", &["adresselinje3"]),
        ("adresselinje4", &["adresselinje4"]),
        ("postnummer", &["postnummer", "postalCode"]),
        ("poststed", &["poststed", "postalArea"]),
        ("land", &["land", "country"]),
    ] {
        if let Some(value) = names.iter().find_map(|name| source[*name].as_str()) {
            address.insert(target.to_owned(), json!(value));
        }
    }
    Value::Object(address)
}

/// The forretningsmelding payload, `{"standardBusinessDocument": …}`.
pub fn payload(message: &Outgoing, parts: &Parts<'_>) -> Result<Value, String> {
    let kind = parts.next_move.kind;
    let name = kind.name();
    let orgnr = message
        .sender
        .identifier
        .rsplit(':')
        .next()
        .unwrap_or(&message.sender.identifier);
    let sender = format!("0192:{orgnr}");
    let now = time::rfc3339(time::now_millis());
    let mut scope = json!({
        "type": "ConversationId",
        "instanceIdentifier": message.conversation_id,
        "identifier": format!("urn:fdc:digdir.no:2020:profile:egovernment:innbyggerpost:{name}:ver1.0"),
    });
    if let Some(expiry) = message.expires_at {
        scope["scopeInformation"] = json!([{"expectedResponseDateTime": time::rfc3339(expiry)}]);
    }
    let mut avsender =
        json!({"virksomhetsidentifikator": {"authority": AUTHORITY, "value": sender}});
    if let Some(id) = parts.next_move.sender_id() {
        avsender["avsenderidentifikator"] = json!(id);
    }
    if let Some(reference) = parts.next_move.invoice_reference() {
        avsender["fakturaReferanse"] = json!(reference);
    }
    let mut body = json!({
        "avsender": avsender,
        "dokumentpakkefingeravtrykk": {
            "digestMethod": SHA256_URI,
            "digestValue": eformidling_sdk::base64::encode(parts.fingerprint),
        },
        "maskinportentoken": "",
    });
    let next_move = &parts.next_move.body;
    match kind {
        Kind::Digital => {
            let mailbox = parts
                .mailbox
                .ok_or("the registry gives the citizen no digital mailbox")?;
            body["mottaker"] = json!({"postkasseadresse": mailbox});
            body["sikkerhetsnivaa"] = next_move["sikkerhetsnivaa"].clone();
            body["virkningstidspunkt"] = json!(
                next_move["digitalPostInfo"]["virkningsdato"]
                    .as_str()
                    .map_or_else(|| now.clone(), |date| format!("{date}T00:00:00Z"))
            );
            body["aapningskvittering"] = json!(
                next_move["digitalPostInfo"]["aapningskvittering"]
                    .as_bool()
                    .unwrap_or(false)
            );
            body["ikkesensitivtittel"] = next_move["tittel"].clone();
            body["spraak"] = json!(parts.next_move.language());
            let mut varsler = Map::new();
            if let (Some(email), Some(text)) =
                (parts.notify.0, next_move["varsler"]["epostTekst"].as_str())
            {
                varsler.insert(
                    "epostvarsel".into(),
                    json!({"epostadresse": email, "varslingstekst": text}),
                );
            }
            if let (Some(mobile), Some(text)) =
                (parts.notify.1, next_move["varsler"]["smsTekst"].as_str())
            {
                varsler.insert(
                    "smsvarsel".into(),
                    json!({"mobiltelefonnummer": mobile, "varslingstekst": text}),
                );
            }
            if !varsler.is_empty() {
                body["varsler"] = Value::Object(varsler);
            }
        }
        Kind::Utskrift => {
            let receiver = if next_move["mottaker"].is_object() {
                address(&next_move["mottaker"])
            } else {
                address(&parts.record["postAddress"])
            };
            if receiver.get("navn").is_none() {
                return Err("a printed letter needs the receiver's name and address".into());
            }
            let retur = &next_move["retur"];
            let return_to = if retur["mottaker"].is_object() {
                address(&retur["mottaker"])
            } else {
                address(&parts.record["returnAddress"])
            };
            body["mottaker"] = receiver;
            body["utskriftstype"] =
                json!(next_move["utskriftsfarge"].as_str().unwrap_or("SORT_HVIT"));
            body["posttype"] = json!(match next_move["posttype"].as_str() {
                Some("A_PRIORITERT") => "A",
                _ => "B",
            });
            body["retur"] = json!({
                "mottaker": return_to,
                "returposthaandtering": retur["returhaandtering"].as_str().unwrap_or("DIREKTE_RETUR"),
            });
        }
    }
    let mut header = json!({
        "headerVersion": "1.0",
        "sender": party(&sender),
        "documentIdentification": {
            "standard": format!("urn:fdc:digdir.no:2020:innbyggerpost:xsd::innbyggerpost##urn:fdc:digdir.no:2020:innbyggerpost:schema:{name}::1.0"),
            "typeVersion": "1.0",
            "instanceIdentifier": message.message_id,
            "type": name,
            "creationDateAndTime": now,
        },
        "businessScope": {"scope": [scope]},
    });
    if !message.receiver.identifier.is_empty() {
        header["receiver"] = party(&message.receiver.identifier);
    }
    Ok(json!({"standardBusinessDocument": {
        "standardBusinessDocumentHeader": header,
        name: body,
    }}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_move_types_map_to_innbyggerpost_types() {
        assert_eq!(Kind::of("digital"), Some(Kind::Digital));
        assert_eq!(Kind::of("print"), Some(Kind::Utskrift));
        assert_eq!(Kind::of("arkivmelding"), None);
        assert_eq!(
            token_pointer(Kind::Utskrift),
            "/standardBusinessDocument/utskrift/maskinportentoken"
        );
    }

    #[test]
    fn addresses_take_next_move_or_registry_names() {
        let from_registry = address(
            &json!({"name": "Per Papir", "street": "Brevveien 5", "postalCode": "5003", "postalArea": "Bergen", "country": "Norge"}),
        );
        assert_eq!(from_registry["navn"], "Per Papir");
        assert_eq!(from_registry["adresselinje1"], "Brevveien 5");
        assert_eq!(from_registry["postnummer"], "5003");
        let from_message = address(&json!({"navn": "A", "adresselinje1": "B", "poststed": "C"}));
        assert_eq!(from_message["poststed"], "C");
        assert!(from_message.get("land").is_none());
    }
}
