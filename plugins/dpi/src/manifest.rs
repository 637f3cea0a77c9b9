//! The Sikker Digital Post `manifest.xml` at the head of a dokumentpakke: who sends, to whom
//! (digital post only; printed letters are addressed in the forretningsmelding), and which
//! entry is the main document and which are attachments, with their titles.

use eformidling_sdk::types::Document;
use eformidling_sdk::xml::escape;

/// The SDP schema namespace of the manifest.
const SDP_NS: &str = "http://begrep.difi.no/sdp/schema_v10";

/// The mailbox a digital letter goes to.
pub struct Recipient<'a> {
    /// The citizen's national identity number.
    pub person: &'a str,
    /// The mailbox address at the provider.
    pub mailbox: &'a str,
}

/// Who sends: the organisation number and the optional sender id and invoice reference.
pub struct Sender<'a> {
    pub orgnr: &'a str,
    pub avsenderidentifikator: Option<&'a str>,
    pub fakturareferanse: Option<&'a str>,
}

/// The documents in package order: the main document first.
pub fn ordered(documents: &[Document]) -> Vec<&Document> {
    let mut ordered: Vec<&Document> = documents.iter().filter(|d| d.primary).collect();
    ordered.extend(documents.iter().filter(|d| !d.primary));
    ordered
}

/// `manifest.xml` for `documents` (main document first), in `language`.
pub fn write(
    recipient: Option<&Recipient<'_>>,
    sender: &Sender<'_>,
    documents: &[&Document],
    language: &str,
) -> String {
    let mut xml =
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><manifest xmlns=\"{SDP_NS}\">");
    if let Some(recipient) = recipient {
        xml.push_str(&format!(
            "<mottaker><person><personidentifikator>{}</personidentifikator>\
             <postkasseadresse>{}</postkasseadresse></person></mottaker>",
            escape(recipient.person),
            escape(recipient.mailbox)
        ));
    }
    xml.push_str(&format!(
        "<avsender><organisasjon authority=\"iso6523-actorid-upis\">9908:{}</organisasjon>",
        escape(sender.orgnr)
    ));
    if let Some(id) = sender.avsenderidentifikator {
        xml.push_str(&format!(
            "<avsenderidentifikator>{}</avsenderidentifikator>",
            escape(id)
        ));
    }
    if let Some(reference) = sender.fakturareferanse {
        xml.push_str(&format!(
            "<fakturaReferanse>{}</fakturaReferanse>",
            escape(reference)
        ));
    }
    xml.push_str("</avsender>");
    for (index, document) in documents.iter().enumerate() {
        let element = if index == 0 {
            "hoveddokument"
        } else {
            "vedlegg"
        };
        let title = document.title.as_deref().unwrap_or(&document.name);
        xml.push_str(&format!(
            "<{element} href=\"{}\" mime=\"{}\"><tittel lang=\"{}\">{}</tittel></{element}>",
            escape(&document.name),
            escape(&document.mime_type),
            escape(language),
            escape(title)
        ));
    }
    xml.push_str("</manifest>");
    xml
}
