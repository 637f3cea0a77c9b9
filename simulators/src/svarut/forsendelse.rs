//! The `forsendelse` of a `sendForsendelseMedId` request, read from the SOAP body, and the
//! checks SvarUt makes of each document once it has opened it.
//!
//! Element names and types follow `ForsendelsesServiceV9.wsdl` (unqualified children of the
//! `http://www.ks.no/svarut/servicesV9` operation element; the receiver's digital address typed
//! by `xsi:type`). Metadata SvarUt only passes on to SvarInn is kept as JSON with its element
//! names, because that is how SvarInn lists it.

use serde_json::{Map, Value};

use crate::fixture::valid_orgnr;
use crate::xml_tree::Element;

/// The XML Schema instance namespace, of `xsi:type`.
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// The XOP namespace, of the `Include` that points a document at its MTOM attachment.
const XOP: &str = "http://www.w3.org/2004/08/xop/include";

/// Where a document's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DocumentData {
    /// An MTOM attachment, by Content-ID.
    Attachment(String),
    /// Inline base64 (a client without MTOM).
    Inline(Vec<u8>),
}

/// A document as the request declares it.
#[derive(Debug, Clone)]
pub(crate) struct DeclaredDocument {
    pub filnavn: String,
    pub mimetype: String,
    pub dokument_type: Option<String>,
    pub data: DocumentData,
}

/// A forsendelse as the request declares it.
#[derive(Debug, Clone)]
pub(crate) struct DeclaredForsendelse {
    pub tittel: String,
    pub eksternref: Option<String>,
    pub forsendelse_type: Option<String>,
    pub kryptert: bool,
    pub receiver_orgnr: String,
    pub receiver_name: Option<String>,
    pub svar_pa_forsendelse: Option<String>,
    pub svar_sendes_til: Value,
    pub metadata_fra_avleverende_system: Value,
    pub metadata_for_import: Value,
    pub documents: Vec<DeclaredDocument>,
}

/// Reads `forsendelse`; the error names the first problem.
pub(crate) fn read(forsendelse: &Element) -> Result<DeclaredForsendelse, String> {
    let tittel = forsendelse
        .text_of("tittel")
        .ok_or("forsendelse.tittel is required")?;
    let mottaker = forsendelse
        .child("mottaker")
        .ok_or("forsendelse.mottaker is required")?;
    let address = mottaker
        .child("digitalAdresse")
        .ok_or("forsendelse.mottaker.digitalAdresse is required")?;
    let address_type = address
        .attribute(Some(XSI), "type")
        .map(|t| t.rsplit(':').next().unwrap_or(t));
    if address_type != Some("organisasjonDigitalAdresse") {
        return Err(format!(
            "mottaker.digitalAdresse must be an organisasjonDigitalAdresse (xsi:type), not {}",
            address_type.unwrap_or("untyped")
        ));
    }
    let receiver_orgnr = address
        .text_of("orgnr")
        .filter(|orgnr| valid_orgnr(orgnr))
        .ok_or("mottaker.digitalAdresse.orgnr must be a valid organisation number")?;
    let mut documents = Vec::new();
    for (index, dokument) in forsendelse.children_named("dokumenter").enumerate() {
        documents
            .push(read_document(dokument).map_err(|why| format!("dokumenter[{index}]: {why}"))?);
    }
    if documents.is_empty() {
        return Err("forsendelse.dokumenter: at least one document is required".into());
    }
    Ok(DeclaredForsendelse {
        tittel: tittel.to_owned(),
        eksternref: forsendelse.text_of("eksternref").map(str::to_owned),
        forsendelse_type: forsendelse.text_of("forsendelseType").map(str::to_owned),
        kryptert: boolean(forsendelse, "kryptert")?,
        receiver_orgnr: receiver_orgnr.to_owned(),
        receiver_name: mottaker
            .child("postAdresse")
            .and_then(|a| a.text_of("navn"))
            .map(str::to_owned),
        svar_pa_forsendelse: forsendelse.text_of("svarPaForsendelse").map(str::to_owned),
        svar_sendes_til: forsendelse
            .child("svarSendesTil")
            .map_or(Value::Null, address_json),
        metadata_fra_avleverende_system: forsendelse
            .child("metadataFraAvleverendeSystem")
            .map_or(Value::Null, fields_json),
        metadata_for_import: forsendelse
            .child("metadataForImport")
            .map_or(Value::Null, fields_json),
        documents,
    })
}

fn read_document(dokument: &Element) -> Result<DeclaredDocument, String> {
    let filnavn = dokument.text_of("filnavn").ok_or("filnavn is required")?;
    let mimetype = dokument.text_of("mimetype").ok_or("mimetype is required")?;
    let data = dokument.child("data").ok_or("data is required")?;
    let data = match data.children.iter().find(|c| c.is(XOP, "Include")) {
        Some(include) => {
            let href = include
                .attribute(None, "href")
                .ok_or("the xop:Include has no href")?;
            let cid = href
                .strip_prefix("cid:")
                .ok_or_else(|| format!("the xop:Include href {href:?} is not a cid: URL"))?;
            DocumentData::Attachment(percent_decode(cid))
        }
        None => {
            use base64::Engine as _;
            let compact: String = data.text.split_whitespace().collect();
            DocumentData::Inline(
                base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .map_err(|_| "data is neither an xop:Include nor base64")?,
            )
        }
    };
    boolean(dokument, "ekskluderesFraPrint")?;
    Ok(DeclaredDocument {
        filnavn: filnavn.to_owned(),
        mimetype: mimetype.to_owned(),
        dokument_type: dokument.text_of("dokumentType").map(str::to_owned),
        data,
    })
}

/// A required `xs:boolean` child.
fn boolean(parent: &Element, name: &str) -> Result<bool, String> {
    match parent.text_of(name) {
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(other) => Err(format!("{name} must be an xs:boolean, not {other:?}")),
        None => Err(format!("{name} is required")),
    }
}

/// An `adresse` as SvarInn lists `svarSendesTil`: the postal address fields and the digital
/// address's `orgnr` or `fnr`.
fn address_json(address: &Element) -> Value {
    let mut json = Map::new();
    for part in ["postAdresse", "digitalAdresse"] {
        if let Some(Value::Object(fields)) = address.child(part).map(fields_json) {
            json.extend(fields);
        }
    }
    Value::Object(json)
}

/// The simple (text-only) children of `element`, by element name.
fn fields_json(element: &Element) -> Value {
    Value::Object(
        element
            .children
            .iter()
            .filter(|c| c.children.is_empty())
            .map(|c| (c.name.clone(), Value::String(c.text.trim().to_owned())))
            .collect(),
    )
}

/// A Content-ID as written in a `cid:` URL (RFC 2392: percent-encoded).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[index], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                index += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// Whether content starts (or is) as a type's content does.
type Signature = fn(&[u8]) -> bool;

/// Why the opened `content` does not fit its declared `mimetype` and `filnavn`, if it does not.
/// Known types are checked by their signature; unknown ones only for being non-empty.
pub(crate) fn content_problem(filnavn: &str, mimetype: &str, content: &[u8]) -> Option<String> {
    if content.is_empty() {
        return Some(format!("{filnavn:?} is empty"));
    }
    let essence = mimetype
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let extension = filnavn
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase());
    let (fits, expected_types): (Signature, &[&str]) = match essence.as_str() {
        "application/pdf" => (|c| c.starts_with(b"%PDF-"), &["pdf"]),
        "application/xml" | "text/xml" => (|c| trimmed(c).starts_with(b"<"), &["xml"]),
        "application/json" => (|c| serde_json::from_slice::<Value>(c).is_ok(), &["json"]),
        "text/plain" => (|c| std::str::from_utf8(c).is_ok(), &["txt", "text"]),
        "image/png" => (|c| c.starts_with(b"\x89PNG\r\n\x1a\n"), &["png"]),
        "image/jpeg" => (|c| c.starts_with(b"\xff\xd8\xff"), &["jpg", "jpeg"]),
        "application/zip" => (|c| c.starts_with(b"PK\x03\x04"), &["zip"]),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => {
            (|c| c.starts_with(b"PK\x03\x04"), &["docx"])
        }
        "application/vnd.oasis.opendocument.text" => (|c| c.starts_with(b"PK\x03\x04"), &["odt"]),
        _ => return None,
    };
    if !fits(content) {
        return Some(format!("{filnavn:?} is not {essence} content"));
    }
    match extension {
        Some(ext) if !expected_types.contains(&ext.as_str()) => Some(format!(
            "{filnavn:?} does not have a file name for {essence} (.{})",
            expected_types.join(", .")
        )),
        _ => None,
    }
}

/// `content` without a byte-order mark and leading whitespace.
fn trimmed(content: &[u8]) -> &[u8] {
    let content = content.strip_prefix(b"\xef\xbb\xbf").unwrap_or(content);
    let start = content
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(content.len());
    &content[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_are_checked_against_type_and_name() {
        assert_eq!(
            content_problem("a.pdf", "application/pdf", b"%PDF-1.7"),
            None
        );
        assert!(content_problem("a.pdf", "application/pdf", b"not a pdf").is_some());
        assert!(content_problem("a.txt", "application/pdf", b"%PDF-1.7").is_some());
        assert_eq!(
            content_problem("a.xml", "text/xml; charset=utf-8", b"\xef\xbb\xbf <a/>"),
            None
        );
        assert!(content_problem("a.bin", "application/x-unknown", b"").is_some());
        assert_eq!(
            content_problem("a.bin", "application/x-unknown", b"x"),
            None
        );
        assert_eq!(percent_decode("abc%40example.org"), "abc@example.org");
    }
}
