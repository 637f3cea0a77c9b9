//! The `sendForsendelseMedId` request the integration point makes of an arkivmelding message:
//! which id it goes by, which documents go, and the forsendelse SvarUt is told about.
//!
//! As the real integration point maps it: the forsendelse id is the SBD's `SenderRef` when that
//! is a UUID, else the message id (which is also the `eksternref`); the documents are the files
//! the arkivmelding's `dokumentobjekt`s refer to, in its order (the arkivmelding itself does not
//! go; its title and numbers travel as `metadataFraAvleverendeSystem`); each document is
//! CMS-encrypted to SvarUt's certificate from the service record; the receiver is addressed by
//! organisation number and answers go back to the sender's.

use eformidling_sdk::types::{Document, Outgoing};
use serde_json::Value;

use crate::soap::SERVICE_NS;
use eformidling_sdk::xml::{self, escape};

/// The file an arkivmelding message carries its metadata in.
pub const ARKIVMELDING_FILE: &str = "arkivmelding.xml";
/// The XML Schema instance namespace, for the digital address's `xsi:type`.
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// The arkivmelding fields passed on as `metadataFraAvleverendeSystem`, under SvarUt's names.
const METADATA_FIELDS: [(&str, &str); 9] = [
    ("saksaar", "saksaar"),
    ("sakssekvensnummer", "sakssekvensnummer"),
    ("journalaar", "journalaar"),
    ("journalsekvensnummer", "journalsekvensnummer"),
    ("journalpostnummer", "journalpostnummer"),
    ("journalposttype", "journalposttype"),
    ("journalstatus", "journalstatus"),
    ("journaldato", "journaldato"),
    ("dokumentetsDato", "dokumentetsDato"),
];

/// What the arkivmelding says that SvarUt is told.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Arkivmelding {
    /// The journalpost's public title.
    pub title: Option<String>,
    /// The files its `dokumentobjekt`s refer to, in order.
    pub files: Vec<String>,
    /// Case and record numbers, as (SvarUt field, value).
    pub metadata: Vec<(&'static str, String)>,
}

impl Arkivmelding {
    /// Reads what SvarUt needs from an `arkivmelding.xml`.
    pub fn read(text: &str) -> Self {
        let registrering = xml::contents(text, "registrering")
            .first()
            .copied()
            .unwrap_or(text);
        Self {
            title: xml::first_text(registrering, "offentligTittel")
                .or_else(|| xml::first_text(registrering, "tittel"))
                .or_else(|| xml::first_text(text, "tittel")),
            files: xml::contents(text, "referanseDokumentfil")
                .into_iter()
                .map(|file| xml::unescape(file).trim().to_owned())
                .filter(|file| !file.is_empty())
                .collect(),
            metadata: METADATA_FIELDS
                .iter()
                .filter_map(|(source, target)| Some((*target, xml::first_text(text, source)?)))
                .collect(),
        }
    }
}

/// The forsendelse id: the `SenderRef` scope's identifier when it is a UUID, else the message
/// id.
pub fn forsendelse_id(message: &Outgoing) -> String {
    let sbd: Value = serde_json::from_str(&message.sbd).unwrap_or_default();
    sbd["standardBusinessDocumentHeader"]["businessScope"]["scope"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|scope| scope["type"] == "SenderRef")
        .filter_map(|scope| scope["instanceIdentifier"].as_str())
        .find(|id| is_uuid(id))
        .map_or_else(|| message.message_id.clone(), str::to_owned)
}

/// Whether `text` is a UUID in its hyphenated form.
pub fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The documents that go to SvarUt: those the arkivmelding names, in its order, or every
/// document but the arkivmelding when it names none.
pub fn documents_to_send<'a>(
    message: &'a Outgoing,
    arkivmelding: &Arkivmelding,
) -> Result<Vec<&'a Document>, String> {
    if arkivmelding.files.is_empty() {
        return Ok(message
            .documents
            .iter()
            .filter(|d| d.name != ARKIVMELDING_FILE)
            .collect());
    }
    arkivmelding
        .files
        .iter()
        .map(|file| {
            message
                .documents
                .iter()
                .find(|d| &d.name == file)
                .ok_or_else(|| format!("arkivmelding.xml refers to {file}, which is not uploaded"))
        })
        .collect()
}

/// A document as declared in the request: its attachment's Content-ID and how SvarUt lists it.
pub struct DeclaredDocument<'a> {
    pub content_id: String,
    pub document: &'a Document,
}

/// The `sendForsendelseMedId` operation element.
pub fn operation(
    message: &Outgoing,
    id: &str,
    arkivmelding: &Arkivmelding,
    documents: &[DeclaredDocument<'_>],
) -> String {
    let sbd: Value = serde_json::from_str(&message.sbd).unwrap_or_default();
    let business = sbd.get("arkivmelding").cloned().unwrap_or(Value::Null);
    let level_4 = business["sikkerhetsnivaa"].as_i64() == Some(4)
        || business["sikkerhetsnivaa"].as_str() == Some("4");
    let title = arkivmelding
        .title
        .clone()
        .or_else(|| documents.iter().find_map(|d| d.document.title.clone()))
        .unwrap_or_else(|| message.document_type.clone());
    let mut xml = format!(
        "<ns2:sendForsendelseMedId xmlns:ns2=\"{SERVICE_NS}\" xmlns:xsi=\"{XSI}\">\
         <forsendelsesid>{}</forsendelsesid><forsendelse>",
        escape(id)
    );
    for declared in documents {
        xml.push_str(&format!(
            "<dokumenter><data><xop:Include xmlns:xop=\"http://www.w3.org/2004/08/xop/include\" \
             href=\"cid:{}\"/></data><ekskluderesFraPrint>false</ekskluderesFraPrint>\
             <filnavn>{}</filnavn><mimetype>{}</mimetype></dokumenter>",
            escape(&declared.content_id),
            escape(&declared.document.name),
            escape(&declared.document.mime_type),
        ));
    }
    xml.push_str(&format!(
        "<eksternref>{}</eksternref>",
        escape(&message.message_id)
    ));
    if let Some(kind) = business["dpf"]["forsendelseType"].as_str() {
        xml.push_str(&format!(
            "<forsendelseType>{}</forsendelseType>",
            escape(kind)
        ));
    }
    xml.push_str(&format!(
        "<krevNiva4Innlogging>{level_4}</krevNiva4Innlogging><kryptert>true</kryptert>\
         <kunDigitalLevering>false</kunDigitalLevering>"
    ));
    if !arkivmelding.metadata.is_empty() {
        xml.push_str("<metadataFraAvleverendeSystem>");
        for (name, value) in &arkivmelding.metadata {
            xml.push_str(&format!("<{name}>{}</{name}>", escape(value)));
        }
        xml.push_str(&format!("<tittel>{}</tittel>", escape(&title)));
        xml.push_str("</metadataFraAvleverendeSystem>");
    }
    xml.push_str(&format!(
        "<mottaker>{}</mottaker>\
         <printkonfigurasjon><brevtype>BPOST</brevtype><fargePrint>false</fargePrint>\
         <tosidig>true</tosidig></printkonfigurasjon>\
         <svarSendesTil>{}</svarSendesTil><tittel>{}</tittel></forsendelse>\
         </ns2:sendForsendelseMedId>",
        address(
            &message.receiver.identifier,
            message.receiver.name.as_deref()
        ),
        address(&message.sender.identifier, message.sender.name.as_deref()),
        escape(&title),
    ));
    xml
}

/// An `adresse`: the organisation's digital address and, when its name is known, a postal
/// address with that name.
fn address(identifier: &str, name: Option<&str>) -> String {
    let orgnr = identifier.rsplit(':').next().unwrap_or(identifier);
    let postal = name
        .map(|name| format!("<postAdresse><navn>{}</navn></postAdresse>", escape(name)))
        .unwrap_or_default();
    format!(
        "<digitalAdresse xsi:type=\"ns2:organisasjonDigitalAdresse\"><orgnr>{}</orgnr>\
         </digitalAdresse>{postal}",
        escape(orgnr)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arkivmelding_gives_title_files_and_numbers() {
        let read = Arkivmelding::read(
            "<arkivmelding><mappe><saksaar>2024</saksaar><tittel>Sak</tittel>\
             <registrering><journalpostnummer>7</journalpostnummer>\
             <offentligTittel>Vedtak &amp; svar</offentligTittel>\
             <dokumentbeskrivelse><dokumentobjekt><referanseDokumentfil>a.pdf</referanseDokumentfil>\
             </dokumentobjekt></dokumentbeskrivelse><dokumentbeskrivelse><dokumentobjekt>\
             <referanseDokumentfil>b.pdf</referanseDokumentfil></dokumentobjekt>\
             </dokumentbeskrivelse></registrering></mappe></arkivmelding>",
        );
        assert_eq!(read.title.as_deref(), Some("Vedtak & svar"));
        assert_eq!(read.files, ["a.pdf", "b.pdf"]);
        assert_eq!(
            read.metadata,
            [
                ("saksaar", "2024".to_owned()),
                ("journalpostnummer", "7".to_owned())
            ]
        );
    }

    #[test]
    fn uuids_are_recognised() {
        assert!(is_uuid("0f7d5f0e-5c5b-4d8f-a0b0-6f3f3c1d9a11"));
        assert!(!is_uuid("0f7d5f0e5c5b4d8fa0b06f3f3c1d9a11"));
        assert!(!is_uuid("0f7d5f0e-5c5b-4d8f-a0b0-6f3f3c1d9a1g"));
    }

    #[test]
    fn addresses_carry_the_bare_organisation_number() {
        let text = address("0192:910077201", Some("Test & co"));
        assert!(text.contains("<orgnr>910077201</orgnr>"), "{text}");
        assert!(text.contains("<navn>Test &amp; co</navn>"), "{text}");
        assert!(!address("0192:910077201", None).contains("postAdresse"));
    }
}
