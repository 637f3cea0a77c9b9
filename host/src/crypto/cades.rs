//! The CAdES-BES signature of an ASiC-E container: a detached CMS SignedData over the ASiC
//! manifest, written by hand.
//!
//! OpenSSL's CMS signing API cannot add the `signing-certificate-v2` attribute that CAdES-BES
//! requires (the CLI's `-cades` is not in the library bindings), and the structure is small and
//! fixed, so it is encoded here with the DER helpers and only the RSA signature comes from
//! OpenSSL. Verification is the other way round: OpenSSL's `CMS_verify` checks the signature,
//! the message digest and (since 3.0) the ESS signing-certificate attributes.

use std::time::SystemTime;

use openssl::hash::{MessageDigest, hash};
use openssl::x509::{X509, X509Ref};

use super::BusinessCertificate;
use super::der::{self, DerError, Element, Parser, oid, tag};
use super::time::Civil;

/// Why a signature could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The certificate cannot be described in the signature.
    #[error("business certificate: {0}")]
    Certificate(String),
    /// OpenSSL failed.
    #[error("signing failed: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
}

/// A DER `ContentInfo` holding a detached SignedData over `content`, signed at `signing_time`
/// with the business certificate, which it carries with its chain.
pub fn sign_detached(
    certificate: &BusinessCertificate,
    content: &[u8],
    signing_time: SystemTime,
) -> Result<Vec<u8>, SignError> {
    let leaf = certificate.certificate();
    let sha256 = der::constructed(tag::SEQUENCE, &[&der::tlv(tag::OID, oid::SHA256)]);
    let attributes = signed_attributes(leaf, content, signing_time)?;
    let signature = certificate
        .sign_rs256(&attributes)
        .map_err(|error| SignError::Certificate(error.to_string()))?;
    // Signed over as a SET; carried as [0] IMPLICIT.
    let mut carried = attributes;
    carried[0] = tag::context_constructed(0);
    let signer_info = der::constructed(
        tag::SEQUENCE,
        &[
            &der::tlv(tag::INTEGER, &[1]),
            &issuer_and_serial(leaf)?,
            &sha256,
            &carried,
            &der::constructed(
                tag::SEQUENCE,
                &[
                    &der::tlv(tag::OID, oid::SHA256_WITH_RSA),
                    &der::tlv(tag::NULL, &[]),
                ],
            ),
            &der::tlv(tag::OCTET_STRING, &signature),
        ],
    );
    let mut certificates = vec![leaf.to_der()?];
    for issuer in certificate.chain() {
        certificates.push(issuer.to_der()?);
    }
    let signed_data = der::constructed(
        tag::SEQUENCE,
        &[
            &der::tlv(tag::INTEGER, &[1]),
            &der::tlv(tag::SET, &sha256),
            &der::constructed(tag::SEQUENCE, &[&der::tlv(tag::OID, oid::DATA)]),
            &der::tlv(
                tag::context_constructed(0),
                &sorted_set_content(certificates),
            ),
            &der::tlv(tag::SET, &signer_info),
        ],
    );
    Ok(der::constructed(
        tag::SEQUENCE,
        &[
            &der::tlv(tag::OID, oid::SIGNED_DATA),
            &der::tlv(tag::context_constructed(0), &signed_data),
        ],
    ))
}

/// `SignedAttributes` as the DER SET that is signed: content-type, signing-time,
/// message-digest and signing-certificate-v2.
fn signed_attributes(
    leaf: &X509Ref,
    content: &[u8],
    signing_time: SystemTime,
) -> Result<Vec<u8>, SignError> {
    let attribute = |identifier: &[u8], value: Vec<u8>| {
        der::constructed(
            tag::SEQUENCE,
            &[&der::tlv(tag::OID, identifier), &der::tlv(tag::SET, &value)],
        )
    };
    let digest = hash(MessageDigest::sha256(), content)?;
    let certificate_hash = hash(MessageDigest::sha256(), &leaf.to_der()?)?;
    // ESSCertIDv2 { certHash, issuerSerial { GeneralNames { [4] issuer }, serial } }; the hash
    // algorithm is SHA-256, the DEFAULT, so DER leaves it out.
    let issuer_serial = der::constructed(
        tag::SEQUENCE,
        &[
            &der::constructed(
                tag::SEQUENCE,
                &[&der::tlv(
                    tag::context_constructed(4),
                    &leaf.issuer_name().to_der()?,
                )],
            ),
            &serial(leaf)?,
        ],
    );
    let cert_id = der::constructed(
        tag::SEQUENCE,
        &[
            &der::tlv(tag::OCTET_STRING, &certificate_hash),
            &issuer_serial,
        ],
    );
    let signing_certificate = der::constructed(
        tag::SEQUENCE,
        &[&der::constructed(tag::SEQUENCE, &[&cert_id])],
    );
    let attributes = vec![
        attribute(oid::CONTENT_TYPE, der::tlv(tag::OID, oid::DATA)),
        attribute(oid::SIGNING_TIME, time(signing_time)),
        attribute(oid::MESSAGE_DIGEST, der::tlv(tag::OCTET_STRING, &digest)),
        attribute(oid::SIGNING_CERTIFICATE_V2, signing_certificate),
    ];
    Ok(der::tlv(tag::SET, &sorted_set_content(attributes)))
}

/// The content of a DER SET OF: the encodings in ascending order.
fn sorted_set_content(mut encodings: Vec<Vec<u8>>) -> Vec<u8> {
    encodings.sort();
    encodings.concat()
}

/// RFC 5652 §11.3: UTCTime through 2049, GeneralizedTime after.
fn time(at: SystemTime) -> Vec<u8> {
    let c = Civil::of(at);
    let rest = format!(
        "{:02}{:02}{:02}{:02}{:02}Z",
        c.month, c.day, c.hour, c.minute, c.second
    );
    if (1950..2050).contains(&c.year) {
        der::tlv(
            tag::UTC_TIME,
            format!("{:02}{rest}", c.year % 100).as_bytes(),
        )
    } else {
        der::tlv(
            tag::GENERALIZED_TIME,
            format!("{:04}{rest}", c.year).as_bytes(),
        )
    }
}

fn serial(certificate: &X509Ref) -> Result<Vec<u8>, SignError> {
    let serial = certificate.serial_number().to_bn()?;
    if serial.is_negative() {
        return Err(SignError::Certificate("negative serial number".into()));
    }
    Ok(der::unsigned_integer(&serial.to_vec()))
}

fn issuer_and_serial(certificate: &X509Ref) -> Result<Vec<u8>, SignError> {
    Ok(der::constructed(
        tag::SEQUENCE,
        &[&certificate.issuer_name().to_der()?, &serial(certificate)?],
    ))
}

/// The certificate a SignedData's first signer names, from the certificates it carries.
pub fn signer_certificate(signed: &[u8]) -> Result<Option<X509>, DerError> {
    let mut content_info = Parser::new(signed)
        .expect(tag::SEQUENCE, "ContentInfo")?
        .children()?;
    content_info.expect(tag::OID, "content type")?;
    let explicit = content_info.expect(tag::context_constructed(0), "content")?;
    let mut signed_data = explicit
        .children()?
        .expect(tag::SEQUENCE, "SignedData")?
        .children()?;
    signed_data.expect(tag::INTEGER, "version")?;
    signed_data.expect(tag::SET, "digestAlgorithms")?;
    signed_data.expect(tag::SEQUENCE, "encapContentInfo")?;
    let Some(certificates) = signed_data.optional(tag::context_constructed(0))? else {
        return Ok(None);
    };
    signed_data.optional(tag::context_constructed(1))?; // CRLs
    let mut signer_infos = signed_data.expect(tag::SET, "signerInfos")?.children()?;
    let mut signer = signer_infos
        .expect(tag::SEQUENCE, "SignerInfo")?
        .children()?;
    signer.expect(tag::INTEGER, "SignerInfo version")?;
    let sid = signer.next_element()?;
    let mut candidates = certificates.children()?;
    while !candidates.is_empty() {
        let element = candidates.next_element()?;
        let Ok(candidate) = X509::from_der(&der::tlv(element.tag, element.content)) else {
            continue;
        };
        if names(&candidate, sid)? {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

/// Whether a SignerIdentifier names `certificate`.
fn names(certificate: &X509, sid: Element<'_>) -> Result<bool, DerError> {
    if sid.tag == tag::context(0) {
        return Ok(certificate
            .subject_key_id()
            .is_some_and(|id| id.as_slice() == sid.content));
    }
    let mut fields = sid.children()?;
    let issuer = fields.expect(tag::SEQUENCE, "issuer")?;
    let serial = fields.expect(tag::INTEGER, "serialNumber")?;
    let ours_issuer = certificate.issuer_name().to_der().unwrap_or_default();
    let ours_serial = certificate
        .serial_number()
        .to_bn()
        .map(|serial| der::unsigned_integer(&serial.to_vec()))
        .unwrap_or_default();
    Ok(ours_issuer == der::tlv(tag::SEQUENCE, issuer.content)
        && ours_serial == der::tlv(tag::INTEGER, serial.content))
}
