//! What the meldingsformidler checks of a message before it takes it: the forretningsmelding
//! JWS and the innbyggerpost SBD inside it, and the dokumentpakke.
//!
//! Kept apart from the HTTP handling because these checks are the simulator's point: each one
//! is something the real corner 2 refuses, and each error says which.

use std::io::{self, Read as _};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use openssl::stack::Stack;
use openssl::x509::store::X509Store;
use openssl::x509::{X509, X509StoreContext};
use serde_json::Value;
use uuid::Uuid;

use super::Provider;
use super::receipts::AUTHORITY;
use crate::cms;
use crate::jose::Compact;

/// The digest method the SBD must name for its package fingerprint.
const SHA256_URI: &str = "http://www.w3.org/2001/04/xmlenc#sha256";

/// What the forretningsmelding says, once checked.
pub(super) struct Forretningsmelding {
    pub(super) sbd: Value,
    pub(super) message_id: String,
    pub(super) conversation_id: String,
    pub(super) message_type: String,
    pub(super) process: String,
    pub(super) avsender: Value,
    pub(super) sender: String,
    pub(super) avsenderidentifikator: Option<String>,
    pub(super) fingerprint: Vec<u8>,
}

/// Verifies the JWS (signature, `x5c` chained to the CA) and reads the SBD in it.
pub(super) fn check_forretningsmelding(
    trust: &X509Store,
    jws: &str,
) -> Result<Forretningsmelding, String> {
    let compact = Compact::parse(jws)?;
    let signer = compact.x5c_leaf()?;
    trusted(trust, &signer)?;
    let public = signer.public_key().map_err(|e| e.to_string())?;
    compact.verify_rs256(&public)?;
    let sbd = compact
        .claims
        .get("standardBusinessDocument")
        .ok_or("the payload has no standardBusinessDocument")?;
    let header = sbd
        .get("standardBusinessDocumentHeader")
        .ok_or("the SBD has no standardBusinessDocumentHeader")?;
    let identification = &header["documentIdentification"];
    let message_type = identification["type"]
        .as_str()
        .filter(|t| ["digital", "utskrift", "flyttet"].contains(t))
        .ok_or("documentIdentification.type must be digital, utskrift or flyttet")?;
    let standard = format!(
        "urn:fdc:digdir.no:2020:innbyggerpost:xsd::innbyggerpost##urn:fdc:digdir.no:2020:innbyggerpost:schema:{message_type}::1.0"
    );
    if identification["standard"].as_str() != Some(standard.as_str()) {
        return Err(format!(
            "documentIdentification.standard must be {standard}"
        ));
    }
    let message_id = identification["instanceIdentifier"]
        .as_str()
        .filter(|id| Uuid::parse_str(id).is_ok())
        .ok_or("documentIdentification.instanceIdentifier (the message id) must be a UUID")?;
    let process =
        format!("urn:fdc:digdir.no:2020:profile:egovernment:innbyggerpost:{message_type}:ver1.0");
    let conversation = header["businessScope"]["scope"]
        .as_array()
        .and_then(|scopes| scopes.iter().find(|s| s["type"] == "ConversationId"))
        .ok_or("businessScope has no ConversationId scope")?;
    if conversation["identifier"].as_str() != Some(process.as_str()) {
        return Err(format!(
            "the ConversationId scope's identifier must be {process}"
        ));
    }
    let conversation_id = conversation["instanceIdentifier"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or("the ConversationId scope has no instanceIdentifier")?;
    let body = sbd
        .get(message_type)
        .filter(|body| body.is_object())
        .ok_or_else(|| format!("the SBD has no {message_type} object"))?;
    let avsender = body.get("avsender").ok_or("the message has no avsender")?;
    let sender = avsender["virksomhetsidentifikator"]["value"]
        .as_str()
        .filter(|value| value.starts_with("0192:"))
        .ok_or("avsender.virksomhetsidentifikator.value must be 0192:<orgnr>")?;
    if avsender["virksomhetsidentifikator"]["authority"] != AUTHORITY {
        return Err(format!(
            "avsender.virksomhetsidentifikator.authority must be {AUTHORITY}"
        ));
    }
    if message_type == "digital"
        && body["mottaker"]["postkasseadresse"]
            .as_str()
            .is_none_or(str::is_empty)
    {
        return Err("digital.mottaker.postkasseadresse is missing".into());
    }
    if body["maskinportentoken"].as_str().is_none_or(str::is_empty) {
        return Err(format!("{message_type}.maskinportentoken is missing"));
    }
    let fingerprint = &body["dokumentpakkefingeravtrykk"];
    if fingerprint["digestMethod"] != SHA256_URI {
        return Err(format!(
            "dokumentpakkefingeravtrykk.digestMethod must be {SHA256_URI}"
        ));
    }
    let fingerprint = fingerprint["digestValue"]
        .as_str()
        .and_then(|value| BASE64.decode(value).ok())
        .ok_or("dokumentpakkefingeravtrykk.digestValue must be base64")?;
    Ok(Forretningsmelding {
        sbd: compact
            .claims
            .get("standardBusinessDocument")
            .cloned()
            .unwrap_or_default(),
        message_id: message_id.to_owned(),
        conversation_id: conversation_id.to_owned(),
        message_type: message_type.to_owned(),
        process,
        avsender: avsender.clone(),
        sender: sender.to_owned(),
        avsenderidentifikator: avsender["avsenderidentifikator"]
            .as_str()
            .map(str::to_owned),
        fingerprint,
    })
}

/// Whether `certificate` chains to the trusted CA and is valid now.
fn trusted(trust: &X509Store, certificate: &X509) -> Result<(), String> {
    let verified = (|| {
        let chain = Stack::new()?;
        let mut context = X509StoreContext::new()?;
        context.init(trust, certificate, &chain, |c| {
            Ok(c.verify_cert()?.then_some(()).ok_or(c.error()))
        })
    })();
    match verified {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(format!("the signing certificate is not trusted: {error}")),
        Err(error) => Err(error.to_string()),
    }
}

/// Opens the package with the providers' keys and lists the ASiC-E inside; the provider is the
/// one whose key opened it.
pub(super) fn open_package(
    providers: &[Provider],
    path: &Path,
) -> Result<(String, Vec<String>), String> {
    let der = std::fs::read(path).map_err(|e| format!("cannot read the dokumentpakke: {e}"))?;
    let mut last = String::from("no mailbox or print provider is configured");
    for provider in providers {
        match cms::decrypt(&der, &provider.certificate, &provider.key) {
            Ok(asic) => {
                return asic_entries(&asic).map(|entries| (provider.orgnr.clone(), entries));
            }
            Err(why) => last = why,
        }
    }
    Err(format!(
        "the dokumentpakke is {last} (of a mailbox or print provider)"
    ))
}

fn asic_entries(asic: &[u8]) -> Result<Vec<String>, String> {
    let mut archive = zip::ZipArchive::new(io::Cursor::new(asic))
        .map_err(|e| format!("the decrypted dokumentpakke is not a zip (ASiC-E): {e}"))?;
    let mut names = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| format!("ASiC-E entry {index} is unreadable: {e}"))?;
        let name = entry.name().map_err(|e| e.to_string())?.into_owned();
        io::copy(&mut entry.by_ref(), &mut io::sink())
            .map_err(|e| format!("ASiC-E entry {name:?} is unreadable: {e}"))?;
        names.push(name);
    }
    for required in ["manifest.xml", "META-INF/signatures.xml"] {
        if !names.iter().any(|name| name == required) {
            return Err(format!("the ASiC-E has no {required}"));
        }
    }
    Ok(names)
}
