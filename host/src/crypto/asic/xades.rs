//! The XAdES form of an ASiC-E signature: `META-INF/signatures.xml`, as Sikker Digital Post
//! (DPI) requires it of a dokumentpakke instead of the CAdES signature DPO and DPE use.
//!
//! One `ds:Signature` (XML-DSig, RSA-SHA256) references every document by its SHA-256 and the
//! XAdES `SignedProperties` (signing time, the signing certificate's digest and issuer/serial,
//! each document's media type). Canonicalization is C14N 1.1 (inclusive). The document is
//! written already canonical, with every namespace declared once on the root, so the canonical
//! form of `SignedInfo` and of `SignedProperties` is their text with the root's namespace
//! declarations added to their start tag; that is what is digested and signed, without an XML
//! library.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use openssl::hash::{MessageDigest, hash};

use super::AsicError;
use super::manifest::Reference;
use crate::crypto::{BusinessCertificate, SignError};

/// Where the signature goes in the container.
pub const SIGNATURES: &str = "META-INF/signatures.xml";

const ASIC_NS: &str = "http://uri.etsi.org/2918/v1.2.1#";
const DS_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
const XADES_NS: &str = "http://uri.etsi.org/01903/v1.3.2#";
const C14N11: &str = "http://www.w3.org/2006/12/xml-c14n11";
const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const SIGNED_PROPERTIES_TYPE: &str = "http://uri.etsi.org/01903#SignedProperties";

/// The namespace declarations of the root, in canonical order; C14N 1.1 renders them on the
/// start tag of a signed element because they are in scope there.
fn namespaces() -> String {
    format!(" xmlns:asic=\"{ASIC_NS}\" xmlns:ds=\"{DS_NS}\" xmlns:xades=\"{XADES_NS}\"")
}

/// The canonical form of `element` (text starting `<prefix:Name`) inside the root.
pub(super) fn canonical(element: &str) -> String {
    let name_end = element
        .find([' ', '>'])
        .expect("an element written by this module has a start tag");
    format!(
        "{}{}{}",
        &element[..name_end],
        namespaces(),
        &element[name_end..]
    )
}

/// Escapes element content as canonical XML writes it.
fn escape_text(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '\r' => escaped.push_str("&#xD;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Escapes an attribute value as canonical XML writes it.
fn escape_attribute(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '"' => escaped.push_str("&quot;"),
            '\t' => escaped.push_str("&#x9;"),
            '\n' => escaped.push_str("&#xA;"),
            '\r' => escaped.push_str("&#xD;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// A container entry name as a relative URI: bytes outside the unreserved set and `/` are
/// percent-encoded.
fn uri(name: &str) -> String {
    name.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

fn sha256_base64(data: &[u8]) -> Result<String, SignError> {
    Ok(BASE64.encode(hash(MessageDigest::sha256(), data)?))
}

/// The issuer of `certificate` as an RFC 4514 string (most specific attribute first).
fn issuer_name(certificate: &openssl::x509::X509) -> String {
    let mut parts: Vec<String> = certificate
        .issuer_name()
        .entries()
        .map(|entry| {
            let key = entry.object().nid().short_name().unwrap_or("OID");
            let value = entry.data().to_string().unwrap_or_default();
            let mut escaped = String::new();
            for (index, c) in value.chars().enumerate() {
                if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
                    || (index == 0 && matches!(c, '#' | ' '))
                {
                    escaped.push('\\');
                }
                escaped.push(c);
            }
            format!("{key}={escaped}")
        })
        .collect();
    parts.reverse();
    parts.join(",")
}

/// `signatures.xml` over `references` (each a container entry and its SHA-256), signed at
/// `signing_time` (RFC 3339).
pub fn write(
    certificate: &BusinessCertificate,
    references: &[Reference],
    signing_time: &str,
) -> Result<String, AsicError> {
    let leaf = certificate.certificate();
    let leaf_der = leaf.to_der().map_err(SignError::from)?;
    let serial = leaf
        .serial_number()
        .to_bn()
        .and_then(|bn| bn.to_dec_str().map(|s| s.to_string()))
        .map_err(SignError::from)?;

    let formats: String = references
        .iter()
        .enumerate()
        .map(|(index, reference)| {
            format!(
                "<xades:DataObjectFormat ObjectReference=\"#ID_{index}\">\
                 <xades:MimeType>{}</xades:MimeType></xades:DataObjectFormat>",
                escape_text(&reference.mime_type)
            )
        })
        .collect();
    let signed_properties = format!(
        "<xades:SignedProperties Id=\"SignedProperties\"><xades:SignedSignatureProperties>\
         <xades:SigningTime>{}</xades:SigningTime><xades:SigningCertificate><xades:Cert>\
         <xades:CertDigest><ds:DigestMethod Algorithm=\"{SHA256}\"></ds:DigestMethod>\
         <ds:DigestValue>{}</ds:DigestValue></xades:CertDigest><xades:IssuerSerial>\
         <ds:X509IssuerName>{}</ds:X509IssuerName><ds:X509SerialNumber>{serial}</ds:X509SerialNumber>\
         </xades:IssuerSerial></xades:Cert></xades:SigningCertificate>\
         </xades:SignedSignatureProperties><xades:SignedDataObjectProperties>{formats}\
         </xades:SignedDataObjectProperties></xades:SignedProperties>",
        escape_text(signing_time),
        sha256_base64(&leaf_der)?,
        escape_text(&issuer_name(leaf)),
    );

    let mut signed_info = format!(
        "<ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"{C14N11}\"></ds:CanonicalizationMethod>\
         <ds:SignatureMethod Algorithm=\"{RSA_SHA256}\"></ds:SignatureMethod>"
    );
    for (index, reference) in references.iter().enumerate() {
        signed_info.push_str(&format!(
            "<ds:Reference Id=\"ID_{index}\" URI=\"{}\"><ds:DigestMethod Algorithm=\"{SHA256}\">\
             </ds:DigestMethod><ds:DigestValue>{}</ds:DigestValue></ds:Reference>",
            escape_attribute(&uri(&reference.name)),
            BASE64.encode(&reference.value)
        ));
    }
    signed_info.push_str(&format!(
        "<ds:Reference Type=\"{SIGNED_PROPERTIES_TYPE}\" URI=\"#SignedProperties\"><ds:Transforms>\
         <ds:Transform Algorithm=\"{C14N11}\"></ds:Transform></ds:Transforms>\
         <ds:DigestMethod Algorithm=\"{SHA256}\"></ds:DigestMethod><ds:DigestValue>{}</ds:DigestValue>\
         </ds:Reference></ds:SignedInfo>",
        sha256_base64(canonical(&signed_properties).as_bytes())?
    ));
    let signature = certificate
        .sign_rs256(canonical(&signed_info).as_bytes())
        .map_err(|error| SignError::Certificate(error.to_string()))?;
    let certificates: String = certificate
        .x5c()
        .iter()
        .map(|der| format!("<ds:X509Certificate>{der}</ds:X509Certificate>"))
        .collect();
    Ok(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <asic:XAdESSignatures{}><ds:Signature Id=\"Signature\">{signed_info}\
         <ds:SignatureValue>{}</ds:SignatureValue><ds:KeyInfo><ds:X509Data>{certificates}\
         </ds:X509Data></ds:KeyInfo><ds:Object><xades:QualifyingProperties Target=\"#Signature\">\
         {signed_properties}</xades:QualifyingProperties></ds:Object></ds:Signature>\
         </asic:XAdESSignatures>",
        namespaces(),
        BASE64.encode(signature),
    ))
}

#[cfg(test)]
mod tests {
    use openssl::sign::Verifier;

    use super::super::manifest::Digest;
    use super::*;
    use crate::crypto::testpki::TestPki;

    /// The text of the first element `name` (its whole markup).
    fn element<'a>(xml: &'a str, name: &str) -> &'a str {
        let start = xml.find(&format!("<{name}")).expect("the element");
        let close = format!("</{name}>");
        let end = xml[start..].find(&close).expect("its end") + start + close.len();
        &xml[start..end]
    }

    fn between<'a>(xml: &'a str, open: &str, close: &str) -> &'a str {
        let start = xml.find(open).expect("the start") + open.len();
        let end = xml[start..].find(close).expect("the end") + start;
        &xml[start..end]
    }

    #[test]
    fn the_signature_covers_the_documents_and_the_signed_properties() {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::new(dir.path(), 365);
        let certificate = pki.business_certificate();
        let document = b"the document";
        let references = [Reference {
            name: "vedtak 1.pdf".into(),
            mime_type: "application/pdf".into(),
            digest: Digest::Sha256,
            value: hash(MessageDigest::sha256(), document).unwrap().to_vec(),
        }];
        let xml = write(&certificate, &references, "2024-03-01T12:00:00Z").unwrap();

        assert!(xml.contains("URI=\"vedtak%201.pdf\""), "{xml}");
        assert!(xml.contains(&BASE64.encode(&references[0].value)));
        let properties = element(&xml, "xades:SignedProperties");
        let digest = between(&xml, "#SignedProperties\">", "</ds:Reference>");
        let expected = sha256_base64(canonical(properties).as_bytes()).unwrap();
        assert!(digest.contains(&expected), "the SignedProperties digest");
        assert!(properties.contains("<xades:MimeType>application/pdf</xades:MimeType>"));

        let signed_info = canonical(element(&xml, "ds:SignedInfo"));
        let value = BASE64
            .decode(between(&xml, "<ds:SignatureValue>", "</ds:SignatureValue>"))
            .unwrap();
        let public = certificate.certificate().public_key().unwrap();
        let mut verifier = Verifier::new(MessageDigest::sha256(), &public).unwrap();
        verifier.update(signed_info.as_bytes()).unwrap();
        assert!(verifier.verify(&value).unwrap(), "the signature verifies");
        let tampered = signed_info.replace("ID_0", "ID_9");
        let mut verifier = Verifier::new(MessageDigest::sha256(), &public).unwrap();
        verifier.update(tampered.as_bytes()).unwrap();
        assert!(!verifier.verify(&value).unwrap());
    }

    #[test]
    fn canonical_elements_carry_the_root_namespaces() {
        assert_eq!(
            canonical("<ds:SignedInfo><a></a></ds:SignedInfo>"),
            format!("<ds:SignedInfo{}><a></a></ds:SignedInfo>", namespaces())
        );
        assert_eq!(escape_text("a&b\n\"<>"), "a&amp;b\n\"&lt;&gt;");
        assert_eq!(escape_attribute("a&b\n\"<>"), "a&amp;b&#xA;&quot;&lt;>");
    }
}
