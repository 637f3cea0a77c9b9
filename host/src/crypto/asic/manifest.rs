//! The XML of an ASiC-E container: the signed `META-INF/ASiCManifest.xml` (ETSI EN 319 162-1)
//! and the informative OASIS `META-INF/manifest.xml` the Java integration point also writes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};

use super::AsicError;

const SHA256_URI: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const SHA384_URI: &str = "http://www.w3.org/2001/04/xmldsig-more#sha384";
const SHA512_URI: &str = "http://www.w3.org/2001/04/xmlenc#sha512";

/// A digest algorithm a manifest may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    Sha256,
    Sha384,
    Sha512,
}

impl Digest {
    pub fn message_digest(self) -> openssl::hash::MessageDigest {
        match self {
            Digest::Sha256 => openssl::hash::MessageDigest::sha256(),
            Digest::Sha384 => openssl::hash::MessageDigest::sha384(),
            Digest::Sha512 => openssl::hash::MessageDigest::sha512(),
        }
    }

    fn from_uri(uri: &str) -> Option<Self> {
        match uri {
            SHA256_URI => Some(Digest::Sha256),
            SHA384_URI => Some(Digest::Sha384),
            SHA512_URI => Some(Digest::Sha512),
            _ => None,
        }
    }
}

/// One signed entry as the manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub name: String,
    pub mime_type: String,
    pub digest: Digest,
    pub value: Vec<u8>,
}

/// What an ASiC manifest says.
#[derive(Debug, Default)]
pub struct Manifest {
    pub signature: Option<String>,
    pub references: Vec<Reference>,
}

fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

/// `ASiCManifest.xml` for SHA-256 references, pointing at the signature file.
pub fn write(signature: &str, references: &[Reference]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n\
         <ASiCManifest xmlns=\"http://uri.etsi.org/02918/v1.2.1#\" xmlns:ns2=\"http://www.w3.org/2000/09/xmldsig#\">\n",
    );
    xml.push_str(&format!(
        "<SigReference URI=\"{}\" MimeType=\"application/x-pkcs7-signature\"/>\n",
        escape(signature)
    ));
    for reference in references {
        xml.push_str(&format!(
            "<DataObjectReference URI=\"{}\" MimeType=\"{}\">\
             <ns2:DigestMethod Algorithm=\"{SHA256_URI}\"/>\
             <ns2:DigestValue>{}</ns2:DigestValue></DataObjectReference>\n",
            escape(&reference.name),
            escape(&reference.mime_type),
            BASE64.encode(&reference.value)
        ));
    }
    xml.push_str("</ASiCManifest>\n");
    xml
}

/// The OASIS manifest: the container's and each entry's media type.
pub fn write_oasis(entries: &[(&str, &str)]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n\
         <manifest:manifest xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\">\n\
         <manifest:file-entry manifest:full-path=\"/\" manifest:media-type=\"application/vnd.etsi.asic-e+zip\"/>\n",
    );
    for (name, mime_type) in entries {
        xml.push_str(&format!(
            "<manifest:file-entry manifest:full-path=\"{}\" manifest:media-type=\"{}\"/>\n",
            escape(name),
            escape(mime_type)
        ));
    }
    xml.push_str("</manifest:manifest>\n");
    xml
}

/// Reads an `ASiCManifest.xml`, matching elements by local name so any namespace prefixes do.
pub fn parse(xml: &str) -> Result<Manifest, AsicError> {
    let invalid = |reason: String| AsicError::Invalid(format!("ASiCManifest.xml: {reason}"));
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut manifest = Manifest::default();
    let mut current: Option<(String, String, Option<Digest>)> = None;
    let mut in_value = false;
    let mut value = String::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|error| invalid(format!("not well-formed XML: {error}")))?;
        match event {
            Event::Start(element) | Event::Empty(element) => match element.local_name().as_ref() {
                "SigReference" => {
                    manifest.signature = Some(attribute(&element, "URI").map_err(invalid)?);
                }
                "DataObjectReference" => {
                    let name = attribute(&element, "URI").map_err(invalid)?;
                    let mime_type = attribute(&element, "MimeType").unwrap_or_default();
                    current = Some((name, mime_type, None));
                }
                "DigestMethod" => {
                    let uri = attribute(&element, "Algorithm").map_err(invalid)?;
                    let digest = Digest::from_uri(&uri)
                        .ok_or_else(|| invalid(format!("unsupported digest method {uri}")))?;
                    if let Some(reference) = current.as_mut() {
                        reference.2 = Some(digest);
                    }
                }
                "DigestValue" => {
                    in_value = true;
                    value.clear();
                }
                _ => {}
            },
            Event::Text(text) if in_value => {
                value.push_str(&text.xml_content(XmlVersion::Implicit1_0));
            }
            Event::End(element) => match element.local_name().as_ref() {
                "DigestValue" => in_value = false,
                "DataObjectReference" => {
                    let (name, mime_type, digest) = current
                        .take()
                        .ok_or_else(|| invalid("unbalanced elements".into()))?;
                    let digest =
                        digest.ok_or_else(|| invalid(format!("{name:?} has no DigestMethod")))?;
                    let compact: String = value.split_whitespace().collect();
                    let value = BASE64
                        .decode(compact)
                        .map_err(|_| invalid(format!("{name:?} has a malformed DigestValue")))?;
                    manifest.references.push(Reference {
                        name,
                        mime_type,
                        digest,
                        value,
                    });
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(manifest)
}

fn attribute(element: &BytesStart<'_>, name: &str) -> Result<String, String> {
    for attribute in element.attributes() {
        let attribute = attribute.map_err(|error| format!("malformed attribute: {error}"))?;
        if attribute.key.local_name().as_ref() == name {
            return attribute
                .normalized_value(XmlVersion::Implicit1_0)
                .map(|value| value.into_owned())
                .map_err(|error| format!("malformed attribute: {error}"));
        }
    }
    Err(format!(
        "<{}> has no {name} attribute",
        element.local_name().as_ref()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_it_writes_with_awkward_names() {
        let references = vec![Reference {
            name: "a & b <c>.pdf".into(),
            mime_type: "application/pdf".into(),
            digest: Digest::Sha256,
            value: vec![1, 2, 3],
        }];
        let manifest = parse(&write("META-INF/signature.p7s", &references)).unwrap();
        assert_eq!(
            manifest.signature.as_deref(),
            Some("META-INF/signature.p7s")
        );
        assert_eq!(manifest.references, references);
    }

    #[test]
    fn reads_other_prefixes_and_wrapped_base64() {
        let xml = r#"<a:ASiCManifest xmlns:a="http://uri.etsi.org/02918/v1.2.1#" xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
            <a:SigReference URI="META-INF/signature-1.p7s"/>
            <a:DataObjectReference URI="x.xml" MimeType="text/xml">
              <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha512"/>
              <ds:DigestValue>AQ
                 ID</ds:DigestValue>
            </a:DataObjectReference></a:ASiCManifest>"#;
        let manifest = parse(xml).unwrap();
        assert_eq!(manifest.references[0].digest, Digest::Sha512);
        assert_eq!(manifest.references[0].value, [1, 2, 3]);
        let bad = xml.replace("xmlenc#sha512", "xmldsig#sha1");
        assert!(
            parse(&bad)
                .unwrap_err()
                .to_string()
                .contains("unsupported digest")
        );
    }
}
