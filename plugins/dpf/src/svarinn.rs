//! Receiving from SvarInn: a forsendelse waiting for this organisation becomes an arkivmelding
//! message, as the real integration point converts it.
//!
//! SvarInn hands out a zip of the documents, CMS-encrypted to this organisation's certificate.
//! The real integration point opens it, writes an `arkivmelding.xml` from the forsendelse's
//! metadata (title, case and record numbers, one `dokumentbeskrivelse` per file), and stores an
//! ASiC-E of that and the documents under an arkivmelding SBD whose message and conversation id
//! are the forsendelse id, sent by the organisation answers go to (`svarSendesTil`), in the
//! configured process. The host does the same here by handle: decrypt, open each entry, build
//! the ASiC-E; the documents never enter the plugin.

use eformidling_sdk::archive;
use eformidling_sdk::crypto::{self, AsicEntry};
use eformidling_sdk::time;
use eformidling_sdk::types::{Blob, Failure};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::forsendelse::ARKIVMELDING_FILE;
use eformidling_sdk::xml::escape;

/// The arkivmelding document type.
const ARKIVMELDING: &str = "urn:no:difi:arkivmelding:xsd::arkivmelding";
/// The ISO 6523 authority of organisation numbers.
const AUTHORITY: &str = "iso6523-actorid-upis";

/// A forsendelse as `hentNyeForsendelser` lists it; unknown fields are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Forsendelse {
    pub id: String,
    #[serde(default)]
    pub tittel: Option<String>,
    pub download_url: String,
    pub mottaker: Party,
    #[serde(default)]
    pub svar_sendes_til: Option<Party>,
    #[serde(default)]
    pub metadata_fra_avleverende_system: Option<Map<String, Value>>,
    #[serde(default)]
    pub filmetadata: Vec<FileMetadata>,
}

/// An organisation as the listing names it.
#[derive(Debug, Deserialize)]
pub struct Party {
    #[serde(default)]
    pub orgnr: Option<String>,
    #[serde(default)]
    pub navn: Option<String>,
}

/// A file of the forsendelse.
#[derive(Debug, Deserialize)]
pub struct FileMetadata {
    pub filnavn: String,
    #[serde(default)]
    pub mimetype: Option<String>,
}

/// Why a forsendelse could not be taken: for good (SvarInn is told with `mottakFeilet`) or
/// for now (it is left waiting and comes again).
#[derive(Debug)]
pub enum Refusal {
    Permanent(String),
    Temporary(Failure),
}

impl From<Failure> for Refusal {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Reject(reason) => Refusal::Permanent(reason),
            other => Refusal::Temporary(other),
        }
    }
}

impl Forsendelse {
    /// The organisation number answers go to, the message's sender.
    fn sender(&self) -> Result<&str, Refusal> {
        self.svar_sendes_til
            .as_ref()
            .and_then(|party| party.orgnr.as_deref())
            .filter(|orgnr| !orgnr.is_empty())
            .ok_or_else(|| {
                Refusal::Permanent("the forsendelse names no svarSendesTil organisation".into())
            })
    }

    fn title(&self) -> String {
        self.metadata("tittel")
            .or_else(|| self.tittel.clone())
            .unwrap_or_else(|| self.id.clone())
    }

    fn metadata(&self, name: &str) -> Option<String> {
        let value = self.metadata_fra_avleverende_system.as_ref()?.get(name)?;
        match value {
            Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        }
    }

    /// The SBD of the arkivmelding message this forsendelse becomes.
    pub fn sbd(&self, process: &str) -> Result<String, Refusal> {
        let sender = self.sender()?;
        let receiver = self
            .mottaker
            .orgnr
            .as_deref()
            .ok_or_else(|| Refusal::Permanent("the forsendelse names no mottaker".into()))?;
        let primary = self.filmetadata.first().map(|f| f.filnavn.as_str());
        let sbd = json!({
            "standardBusinessDocumentHeader": {
                "headerVersion": "1.0",
                "sender": [{"identifier": {"value": format!("0192:{sender}"), "authority": AUTHORITY}}],
                "receiver": [{"identifier": {"value": format!("0192:{receiver}"), "authority": AUTHORITY}}],
                "documentIdentification": {
                    "standard": ARKIVMELDING,
                    "typeVersion": "2.0",
                    "instanceIdentifier": self.id,
                    "type": "arkivmelding",
                    "creationDateAndTime": time::rfc3339(time::now_millis()),
                },
                "businessScope": {"scope": [{
                    "type": "ConversationId",
                    "instanceIdentifier": self.id,
                    "identifier": process,
                }]},
            },
            "arkivmelding": {"hoveddokument": primary, "sikkerhetsnivaa": 3},
        });
        Ok(sbd.to_string())
    }

    /// The `arkivmelding.xml` the metadata gives.
    pub fn arkivmelding_xml(&self) -> String {
        let field = |name: &str| {
            self.metadata(name)
                .map(|value| format!("<{name}>{}</{name}>", escape(&value)))
                .unwrap_or_default()
        };
        let title = escape(&self.title());
        let documents: String = self
            .filmetadata
            .iter()
            .enumerate()
            .map(|(index, file)| {
                let role = if index == 0 {
                    "Hoveddokument"
                } else {
                    "Vedlegg"
                };
                format!(
                    "<dokumentbeskrivelse><dokumenttype>Brev</dokumenttype>\
                     <tilknyttetRegistreringSom>{role}</tilknyttetRegistreringSom>\
                     <dokumentnummer>{}</dokumentnummer><tittel>{name}</tittel>\
                     <dokumentobjekt><versjonsnummer>1</versjonsnummer>\
                     <variantformat>Produksjonsformat</variantformat>\
                     <referanseDokumentfil>{name}</referanseDokumentfil></dokumentobjekt>\
                     </dokumentbeskrivelse>",
                    index + 1,
                    name = escape(&file.filnavn),
                )
            })
            .collect();
        let sender_name = self
            .svar_sendes_til
            .as_ref()
            .and_then(|party| party.navn.as_deref())
            .map(escape)
            .unwrap_or_default();
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
             <arkivmelding xmlns=\"http://www.arkivverket.no/standarder/noark5/arkivmelding\" \
             xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
             <system>SvarUt</system><meldingId>{id}</meldingId>\
             <tidspunkt>{now}</tidspunkt><antallFiler>{count}</antallFiler>\
             <mappe xsi:type=\"saksmappe\">{saksaar}{sakssekvensnummer}<tittel>{title}</tittel>\
             <registrering xsi:type=\"journalpost\"><tittel>{title}</tittel>\
             <korrespondansepart><korrespondanseparttype>Avsender</korrespondanseparttype>\
             <korrespondansepartNavn>{sender_name}</korrespondansepartNavn></korrespondansepart>\
             {documents}{journalaar}{journalsekvensnummer}{journalpostnummer}{journalposttype}\
             {journalstatus}{journaldato}{dokumentetsDato}<offentligTittel>{title}</offentligTittel>\
             </registrering></mappe></arkivmelding>",
            id = escape(&self.id),
            now = time::rfc3339(time::now_millis()),
            count = self.filmetadata.len(),
            saksaar = field("saksaar"),
            sakssekvensnummer = field("sakssekvensnummer"),
            journalaar = field("journalaar"),
            journalsekvensnummer = field("journalsekvensnummer"),
            journalpostnummer = field("journalpostnummer"),
            journalposttype = field("journalposttype"),
            journalstatus = field("journalstatus"),
            journaldato = field("journaldato"),
            dokumentetsDato = field("dokumentetsDato"),
        )
    }

    /// The ASiC-E of `arkivmelding.xml` and the documents of the downloaded, encrypted zip.
    pub fn package(&self, encrypted: &Blob) -> Result<Blob, Refusal> {
        let zip = crypto::cms_decrypt(encrypted).map_err(|e| Refusal::from(Failure::from(e)))?;
        let names: Vec<String> = archive::entries(&zip)
            .map_err(|e| Refusal::from(Failure::from(e)))?
            .into_iter()
            .map(|entry| entry.name)
            .collect();
        let mut documents = Vec::with_capacity(names.len());
        for name in names {
            if name.ends_with('/') {
                continue;
            }
            let content =
                archive::open(&zip, &name).map_err(|e| Refusal::from(Failure::from(e)))?;
            let mime_type = self
                .filmetadata
                .iter()
                .find(|file| file.filnavn == name)
                .and_then(|file| file.mimetype.clone())
                .unwrap_or_else(|| "application/octet-stream".to_owned());
            documents.push((name, mime_type, content));
        }
        if documents.iter().any(|(name, ..)| name == ARKIVMELDING_FILE) {
            return Err(Refusal::Permanent(format!(
                "the forsendelse carries a file named {ARKIVMELDING_FILE}"
            )));
        }
        let arkivmelding = Blob::new(&self.arkivmelding_xml().into_bytes());
        let mut entries = vec![AsicEntry {
            name: ARKIVMELDING_FILE.to_owned(),
            mime_type: "application/xml".to_owned(),
            content: &arkivmelding,
        }];
        entries.extend(
            documents
                .iter()
                .map(|(name, mime_type, content)| AsicEntry {
                    name: name.clone(),
                    mime_type: mime_type.clone(),
                    content,
                }),
        );
        crypto::build_asic(&entries).map_err(|e| Refusal::from(Failure::from(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed() -> Forsendelse {
        serde_json::from_value(json!({
            "id": "0f7d5f0e-5c5b-4d8f-a0b0-6f3f3c1d9a11",
            "tittel": "Vedtak",
            "downloadUrl": "http://svarinn/forsendelse/1",
            "mottaker": {"orgnr": "910077201", "navn": "Testkommune"},
            "svarSendesTil": {"orgnr": "910075918", "navn": "Etat & co"},
            "metadataFraAvleverendeSystem": {"journalpostnummer": "7", "tittel": "Vedtak om løyve"},
            "filmetadata": [{"filnavn": "a.pdf", "mimetype": "application/pdf"}, {"filnavn": "b.txt"}],
            "unknown": true
        }))
        .unwrap()
    }

    #[test]
    fn the_sbd_is_an_arkivmelding_from_the_answering_organisation() {
        let sbd: Value = serde_json::from_str(&listed().sbd("urn:p").unwrap()).unwrap();
        let header = &sbd["standardBusinessDocumentHeader"];
        assert_eq!(header["sender"][0]["identifier"]["value"], "0192:910075918");
        assert_eq!(
            header["receiver"][0]["identifier"]["value"],
            "0192:910077201"
        );
        assert_eq!(
            header["documentIdentification"]["instanceIdentifier"],
            "0f7d5f0e-5c5b-4d8f-a0b0-6f3f3c1d9a11"
        );
        assert_eq!(header["businessScope"]["scope"][0]["identifier"], "urn:p");
        assert_eq!(sbd["arkivmelding"]["hoveddokument"], "a.pdf");
    }

    #[test]
    fn a_forsendelse_without_an_answer_address_is_refused_for_good() {
        let mut forsendelse = listed();
        forsendelse.svar_sendes_til = None;
        assert!(matches!(
            forsendelse.sbd("urn:p"),
            Err(Refusal::Permanent(_))
        ));
    }

    #[test]
    fn the_arkivmelding_names_every_file_and_the_metadata() {
        let xml = listed().arkivmelding_xml();
        assert!(
            xml.contains("<offentligTittel>Vedtak om løyve</offentligTittel>"),
            "{xml}"
        );
        assert!(
            xml.contains("<journalpostnummer>7</journalpostnummer>"),
            "{xml}"
        );
        assert!(
            xml.contains("<referanseDokumentfil>b.txt</referanseDokumentfil>"),
            "{xml}"
        );
        assert!(xml.contains("<korrespondansepartNavn>Etat &amp; co</korrespondansepartNavn>"));
    }
}
