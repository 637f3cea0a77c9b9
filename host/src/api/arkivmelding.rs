//! What the host reads from an uploaded `arkivmelding.xml` (a `mappe` of type saksmappe whose
//! `systemID` and `registrering` of type journalpost give the reference): the title and reference the
//! conversation shows, and the files the archive message refers to, which must all be uploaded
//! before the message may be sent.

use quick_xml::events::Event;
use quick_xml::{Reader, XmlVersion};

/// The parts of an arkivmelding the host acts on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Arkivmelding {
    /// The journalpost's `offentligTittel`.
    pub title: Option<String>,
    /// `<saksmappe systemID>-<journalpostnummer>`, when both are given.
    pub reference: Option<String>,
    /// Every `referanseDokumentfil`.
    pub files: Vec<String>,
}

/// The character an entity reference in text stands for.
fn entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix('x') {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// Reads `xml`; the error says why it is not an arkivmelding.
pub fn read(xml: &[u8]) -> Result<Arkivmelding, String> {
    let xml = std::str::from_utf8(xml).map_err(|error| format!("not UTF-8: {error}"))?;
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut found = Arkivmelding::default();
    let mut case_system_id = None;
    let mut record_number = None;
    let mut text = String::new();
    let mut root_seen = false;
    loop {
        let event = reader.read_event().map_err(|error| {
            format!(
                "not well-formed XML at byte {}: {error}",
                reader.error_position()
            )
        })?;
        match event {
            Event::Start(start) => {
                let name = start.local_name().as_ref().to_owned();
                if path.is_empty() && name != "arkivmelding" {
                    return Err(format!("the root element is <{name}>, not <arkivmelding>"));
                }
                path.push(name);
                root_seen = true;
                text.clear();
            }
            Event::Text(content) => text.push_str(&content.xml_content(XmlVersion::Implicit1_0)),
            Event::GeneralRef(reference) => {
                let name = reference.xml_content(XmlVersion::Implicit1_0);
                text.push(entity(&name).ok_or_else(|| format!("unknown entity &{name};"))?);
            }
            Event::End(_) => {
                let element = path.pop().unwrap_or_default();
                let parent = path.last().map(String::as_str).unwrap_or_default();
                let value = text.trim().to_owned();
                text.clear();
                match (parent, element.as_str()) {
                    (_, "referanseDokumentfil") => found.files.push(value),
                    ("journalpost" | "registrering", "offentligTittel") => {
                        found.title.get_or_insert(value);
                    }
                    ("mappe" | "saksmappe", "systemID") => {
                        case_system_id.get_or_insert(value);
                    }
                    ("journalpost" | "registrering", "journalpostnummer") => {
                        record_number.get_or_insert(value);
                    }
                    _ => {}
                }
            }
            Event::Empty(start) if path.is_empty() => {
                let name = start.local_name().as_ref().to_owned();
                if name != "arkivmelding" {
                    return Err(format!("the root element is <{name}>, not <arkivmelding>"));
                }
                return Ok(found);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !root_seen {
        return Err("no <arkivmelding> element".into());
    }
    if !path.is_empty() {
        return Err(format!("<{}> is not closed", path.join("/")));
    }
    if let (Some(case), Some(number)) = (case_system_id, record_number) {
        found.reference = Some(format!("{case}-{number}"));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_title_reference_and_files() {
        let xml = br#"<?xml version="1.0" encoding="utf-8"?>
<arkivmelding xmlns="http://www.arkivverket.no/standarder/noark5/arkivmelding">
  <mappe xsi:type="saksmappe" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
    <systemID>43fbe161-7aac-4c9f-a888-d8167aab4144</systemID>
    <registrering xsi:type="journalpost">
      <journalpostnummer>1</journalpostnummer>
      <offentligTittel>Vedtak &amp; klage</offentligTittel>
      <dokumentbeskrivelse><dokumentobjekt>
        <referanseDokumentfil>vedtak.pdf</referanseDokumentfil>
      </dokumentobjekt></dokumentbeskrivelse>
    </registrering>
  </mappe>
</arkivmelding>"#;
        let read = read(xml).expect("an arkivmelding");
        assert_eq!(read.title.as_deref(), Some("Vedtak & klage"));
        assert_eq!(
            read.reference.as_deref(),
            Some("43fbe161-7aac-4c9f-a888-d8167aab4144-1")
        );
        assert_eq!(read.files, ["vedtak.pdf"]);
    }

    #[test]
    fn refuses_other_documents() {
        assert!(read(b"<html/>").unwrap_err().contains("<html>"));
        assert!(read(b"").unwrap_err().contains("no <arkivmelding>"));
        assert!(read(b"<arkivmelding><a></arkivmelding>").is_err());
    }
}
