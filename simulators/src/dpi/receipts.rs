//! The receipts a mailbox or print provider sends back through the meldingsformidler, as the
//! signed forretningsmelding JWTs the integration point polls from `/messages/in`.
//!
//! They are built to the innbyggerpost JSON schemas (`leveringskvittering`, `mottakskvittering`,
//! `aapningskvittering`, `varslingfeiletkvittering`, `returpostkvittering`, `feil`): an SBD wrapped in `standardBusinessDocument`, the receipt's own
//! message id in `documentIdentification.instanceIdentifier` (the id the integration point
//! confirms with `/read`), and the original conversation id in the `ConversationId` scope (what
//! it files the status under). The JWT is RS256 with the meldingsformidler certificate in
//! `x5c` (followed by its CA), which the integration point checks like any business
//! certificate.

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use serde_json::{Value, json};

use crate::jose;
use crate::timestamp;

/// The ISO 6523 authority of Norwegian organisation numbers.
pub(crate) const AUTHORITY: &str = "iso6523-actorid-upis";

/// The kinds of receipt (with the status the integration point maps each to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptKind {
    /// The provider took responsibility for the message (→ LEVERT).
    Leveringskvittering,
    /// The print provider received it (→ LEVERT).
    Mottakskvittering,
    /// The citizen opened it (→ LEST).
    Aapningskvittering,
    /// The citizen could not be notified (→ FEIL); the details become `beskrivelse`.
    Varslingfeiletkvittering,
    /// The printed letter came back (→ FEIL).
    Returpostkvittering,
    /// The provider could not deliver it (→ FEIL); the details become `detaljer`.
    Feil,
}

impl ReceiptKind {
    /// The document type, as spelled on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Self::Leveringskvittering => "leveringskvittering",
            Self::Mottakskvittering => "mottakskvittering",
            Self::Aapningskvittering => "aapningskvittering",
            Self::Varslingfeiletkvittering => "varslingfeiletkvittering",
            Self::Returpostkvittering => "returpostkvittering",
            Self::Feil => "feil",
        }
    }
}

/// What a receipt says about the message it answers.
pub(crate) struct ReceiptFor<'a> {
    pub kind: ReceiptKind,
    /// The receipt's own message id.
    pub receipt_id: &'a str,
    pub conversation_id: &'a str,
    /// The `ConversationId` scope identifier (process) of the original message.
    pub process: &'a str,
    /// The original `avsender` object.
    pub avsender: &'a Value,
    /// The sender organisation, `0192:<orgnr>`, to whom the receipt goes.
    pub sender: &'a str,
    /// The provider organisation, `0192:<orgnr>`, from whom it comes.
    pub provider: &'a str,
    /// For `feil`: what went wrong.
    pub details: Option<&'a str>,
}

/// The receipt as a compact JWT signed by `key`, with `chain` (signer first) in `x5c`.
pub(crate) fn signed(
    receipt: &ReceiptFor<'_>,
    chain: &[X509],
    key: &PKey<Private>,
) -> Result<String, openssl::error::ErrorStack> {
    jose::sign_rs256_x5c(chain, &document(receipt), key)
}

fn document(receipt: &ReceiptFor<'_>) -> Value {
    let now = timestamp::rfc3339(timestamp::now_millis());
    let name = receipt.kind.name();
    let mut body = json!({
        "avsender": receipt.avsender,
        "mottaker": {"virksomhetsidentifikator": {"authority": AUTHORITY, "value": receipt.provider}},
        "tidspunkt": now,
    });
    match receipt.kind {
        ReceiptKind::Feil => {
            body["feiltype"] = json!("KLIENT");
            if let Some(details) = receipt.details {
                body["detaljer"] = json!(details);
            }
        }
        ReceiptKind::Varslingfeiletkvittering => {
            body["varslingskanal"] = json!("epost");
            if let Some(details) = receipt.details {
                body["beskrivelse"] = json!(details);
            }
        }
        _ => {}
    }
    json!({"standardBusinessDocument": {
        "standardBusinessDocumentHeader": {
            "headerVersion": "1.0",
            "sender": [{"identifier": {"authority": AUTHORITY, "value": receipt.provider}}],
            "receiver": [{"identifier": {"authority": AUTHORITY, "value": receipt.sender}}],
            "documentIdentification": {
                "standard": format!("urn:fdc:digdir.no:2020:innbyggerpost:xsd::innbyggerpost##urn:fdc:digdir.no:2020:innbyggerpost:schema:{name}::1.0"),
                "typeVersion": "1.0",
                "instanceIdentifier": receipt.receipt_id,
                "type": name,
                "creationDateAndTime": now,
            },
            "businessScope": {"scope": [{
                "type": "ConversationId",
                "instanceIdentifier": receipt.conversation_id,
                "identifier": receipt.process,
            }]},
        },
        name: body,
    }})
}
