//! Reading EnvelopedData: the small structures are read into memory under a budget, the
//! recipient matching our certificate is found and its key unwrapped, and the content is then
//! decrypted as it streams past.

use std::cmp::Ordering;
use std::io::{self, Read};

use openssl::bn::BigNum;
use openssl::cipher_ctx::CipherCtx;
use openssl::encrypt::Decrypter;
use openssl::hash::MessageDigest;
use openssl::rsa::Padding;
use openssl::symm::{Cipher, Mode};
use openssl::x509::{X509Name, X509NameRef};

use super::CmsError;
use crate::crypto::BusinessCertificate;
use crate::crypto::aes_cbc;
use crate::crypto::ber_stream::{BerReader, OctetStream, invalid};
use crate::crypto::der::{Element, Header, Parser, oid, tag};

/// The most memory the structures before the content may take (recipient infos carry one
/// certificate name and one wrapped key each, so this is generous).
const STRUCTURE_BUDGET: usize = 1 << 20;
const CHUNK: usize = 64 * 1024;

/// The plaintext of an EnvelopedData stream, read as it is decrypted.
///
/// CBC has no integrity: a corrupted ciphertext decrypts to garbage that is only detected, if at
/// all, by the padding check at the end. Callers that must not act on bad plaintext write it
/// somewhere temporary first and use it only once the read has reached the end without error,
/// as [`super::decrypt_blob`] does.
pub struct Decryptor<R> {
    content: OctetStream<R>,
    crypter: CipherCtx,
    input: Vec<u8>,
    output: Vec<u8>,
    start: usize,
    end: usize,
    finished: bool,
}

impl<R: Read> Decryptor<R> {
    /// Reads the structures up to the encrypted content and unwraps the content key with
    /// `certificate`'s private key.
    pub fn new(reader: R, certificate: &BusinessCertificate) -> Result<Self, CmsError> {
        let Opened { ber, content, key } = open(reader, certificate)?;
        let crypter = aes_cbc::context(key.cipher, Mode::Decrypt, &key.key, &key.iv)?;
        Ok(Self {
            content: ber.octet_stream(content)?,
            crypter,
            input: vec![0; CHUNK],
            output: vec![0; CHUNK + 16],
            start: 0,
            end: 0,
            finished: false,
        })
    }
}

/// The content-encryption key, unwrapped.
pub struct ContentKey {
    /// The AES-CBC variant.
    pub cipher: Cipher,
    /// The key.
    pub key: Vec<u8>,
    /// The initialisation vector.
    pub iv: Vec<u8>,
}

/// An EnvelopedData read up to its encrypted content.
pub struct Opened<R> {
    /// The reader, just after the encrypted content's header.
    pub ber: BerReader<R>,
    /// That header.
    pub content: Header,
    /// The key that decrypts the content.
    pub key: ContentKey,
}

/// Reads the structures up to the encrypted content and unwraps the content key with
/// `certificate`'s private key.
pub fn open<R: Read>(reader: R, certificate: &BusinessCertificate) -> Result<Opened<R>, CmsError> {
    let mut ber = BerReader::new(reader);
    let mut budget = STRUCTURE_BUDGET;
    ber.expect_header(tag::SEQUENCE, "ContentInfo")?;
    let content_type = ber.capture_next(&mut budget)?;
    let content_type = Parser::new(&content_type).expect(tag::OID, "content type")?;
    if content_type.content != oid::ENVELOPED_DATA {
        return Err(CmsError::Invalid(format!(
            "content type {} is not EnvelopedData",
            oid::text(content_type.content)
        )));
    }
    ber.expect_header(tag::context_constructed(0), "ContentInfo content")?;
    ber.expect_header(tag::SEQUENCE, "EnvelopedData")?;
    ber.capture_next(&mut budget)?; // version: informative only
    let (mut header, mut raw) = ber.header()?;
    if header.tag == tag::context_constructed(0) {
        // originatorInfo: certificates and CRLs we have no use for.
        ber.skip_content(header, 0)?;
        (header, raw) = ber.header()?;
    }
    if header.tag != tag::SET {
        return Err(CmsError::Invalid(
            "EnvelopedData has no recipientInfos".into(),
        ));
    }
    let recipient_infos = ber.capture(header, raw, &mut budget)?;
    ber.expect_header(tag::SEQUENCE, "EncryptedContentInfo")?;
    ber.capture_next(&mut budget)?; // the inner content type
    let algorithm = ber.capture_next(&mut budget)?;
    let (content, _) = ber.header()?;
    if content.tag != tag::context(0) && content.tag != tag::context_constructed(0) {
        return Err(CmsError::Invalid(
            "no encrypted content (detached content is not supported)".into(),
        ));
    }
    let key = match certificate.content_keys().get(&recipient_infos) {
        Some(key) => key,
        None => {
            let key = content_key(&recipient_infos, certificate)?;
            certificate.content_keys().remember(&recipient_infos, &key);
            key
        }
    };
    let key = content_cipher(&algorithm, key)?;
    Ok(Opened { ber, content, key })
}

impl<R: Read> Read for Decryptor<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.start < self.end {
                let count = buffer.len().min(self.end - self.start);
                buffer[..count].copy_from_slice(&self.output[self.start..self.start + count]);
                self.start += count;
                return Ok(count);
            }
            if self.finished || buffer.is_empty() {
                return Ok(0);
            }
            let read = self.content.read(&mut self.input)?;
            self.start = 0;
            self.end = if read == 0 {
                self.finished = true;
                self.crypter.cipher_final(&mut self.output).map_err(|_| {
                    invalid("cannot decrypt: wrong key or corrupted content (bad padding)".into())
                })?
            } else {
                self.crypter
                    .cipher_update(&self.input[..read], Some(&mut self.output))
                    .map_err(|error| invalid(format!("cannot decrypt: {error}")))?
            };
        }
    }
}

/// Finds the recipient info addressed to `certificate` and unwraps the content key.
fn content_key(
    recipient_infos: &[u8],
    certificate: &BusinessCertificate,
) -> Result<Vec<u8>, CmsError> {
    let set = Parser::new(recipient_infos).expect(tag::SET, "recipientInfos")?;
    let mut recipients = set.children()?;
    let mut seen = Vec::new();
    while !recipients.is_empty() {
        let info = recipients.next_element()?;
        if info.tag != tag::SEQUENCE {
            seen.push(format!(
                "a recipient of another kind (tag {:#04x})",
                info.tag
            ));
            continue;
        }
        let mut fields = info.children()?;
        fields.expect(tag::INTEGER, "KeyTransRecipientInfo version")?;
        let rid = fields.next_element()?;
        let algorithm = fields.expect(tag::SEQUENCE, "keyEncryptionAlgorithm")?;
        let encrypted_key = fields.next_element()?.octets()?;
        match matches(rid, certificate)? {
            Match::Ours => return unwrap_key(certificate, algorithm, &encrypted_key),
            Match::Other(description) => seen.push(description),
        }
    }
    let ours = certificate.certificate();
    Err(CmsError::Invalid(format!(
        "not addressed to this organisation's certificate (issuer {}, serial {}); its recipients: {}",
        name_text(ours.issuer_name()),
        certificate.serial_hex(),
        if seen.is_empty() {
            "none".into()
        } else {
            seen.join("; ")
        }
    )))
}

enum Match {
    Ours,
    Other(String),
}

/// Whether a `RecipientIdentifier` names `certificate`.
fn matches(rid: Element<'_>, certificate: &BusinessCertificate) -> Result<Match, CmsError> {
    let ours = certificate.certificate();
    if rid.tag == tag::context(0) {
        let theirs = rid.content;
        let same = ours
            .subject_key_id()
            .is_some_and(|id| id.as_slice() == theirs);
        return Ok(if same {
            Match::Ours
        } else {
            Match::Other(format!("subject key identifier {}", hex::encode(theirs)))
        });
    }
    if rid.tag != tag::SEQUENCE {
        return Err(CmsError::Invalid(format!(
            "unknown recipient identifier (tag {:#04x})",
            rid.tag
        )));
    }
    let mut fields = rid.children()?;
    let issuer = fields.expect(tag::SEQUENCE, "issuer")?;
    let serial = fields.expect(tag::INTEGER, "serialNumber")?;
    let issuer = X509Name::from_der(&crate::crypto::der::tlv(tag::SEQUENCE, issuer.content))
        .map_err(|_| CmsError::Invalid("unreadable issuer name".into()))?;
    let serial = BigNum::from_slice(serial.content)?;
    let same_issuer = ours.issuer_name().try_cmp(&issuer)? == Ordering::Equal;
    let same_serial = ours.serial_number().to_bn()? == serial;
    Ok(if same_issuer && same_serial {
        Match::Ours
    } else {
        Match::Other(format!(
            "issuer {}, serial {}",
            name_text(&issuer),
            serial.to_hex_str()?
        ))
    })
}

/// Decrypts the wrapped content key.
///
/// For PKCS#1 v1.5 a failed unwrap is not reported: a random key takes its place, so the failure
/// shows only as the padding error at the end, like any corrupted content (RFC 3218 §2.3.2).
/// An attacker who can submit messages thus learns nothing about the unwrap (Bleichenbacher).
fn unwrap_key(
    certificate: &BusinessCertificate,
    algorithm: Element<'_>,
    encrypted_key: &[u8],
) -> Result<Vec<u8>, CmsError> {
    let mut fields = algorithm.children()?;
    let algorithm_oid = fields.expect(tag::OID, "keyEncryptionAlgorithm")?;
    let mut decrypter = Decrypter::new(certificate.private_key())?;
    let unwrapped = |decrypter: &Decrypter<'_>| -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let mut key = vec![0; decrypter.decrypt_len(encrypted_key)?];
        let length = decrypter.decrypt(encrypted_key, &mut key)?;
        key.truncate(length);
        Ok(key)
    };
    match algorithm_oid.content {
        oid::RSA_ENCRYPTION => {
            decrypter.set_rsa_padding(Padding::PKCS1)?;
            Ok(unwrapped(&decrypter).unwrap_or_default())
        }
        oid::RSAES_OAEP => {
            let (hash, mgf1) = oaep_parameters(fields.optional(tag::SEQUENCE)?)?;
            decrypter.set_rsa_padding(Padding::PKCS1_OAEP)?;
            decrypter.set_rsa_oaep_md(hash)?;
            decrypter.set_rsa_mgf1_md(mgf1)?;
            unwrapped(&decrypter).map_err(|_| {
                CmsError::Invalid(
                    "cannot unwrap the content key (RSAES-OAEP): wrong key or corrupted".into(),
                )
            })
        }
        other => Err(CmsError::Invalid(format!(
            "unsupported key transport algorithm {}",
            oid::text(other)
        ))),
    }
}

/// The hash and MGF1 hash of `RSAES-OAEP-params`, SHA-1 where absent (RFC 4055 defaults).
fn oaep_parameters(
    params: Option<Element<'_>>,
) -> Result<(MessageDigest, MessageDigest), CmsError> {
    let (mut hash, mut mgf1) = (MessageDigest::sha1(), MessageDigest::sha1());
    let Some(params) = params else {
        return Ok((hash, mgf1));
    };
    let mut fields = params.children()?;
    if let Some(explicit) = fields.optional(tag::context_constructed(0))? {
        hash = digest(explicit.children()?.expect(tag::SEQUENCE, "OAEP hash")?)?;
    }
    if let Some(explicit) = fields.optional(tag::context_constructed(1))? {
        let mgf = explicit
            .children()?
            .expect(tag::SEQUENCE, "OAEP mask generation")?;
        let mut mgf = mgf.children()?;
        let mgf_oid = mgf.expect(tag::OID, "mask generation function")?;
        if mgf_oid.content != oid::MGF1 {
            return Err(CmsError::Invalid(format!(
                "unsupported mask generation function {}",
                oid::text(mgf_oid.content)
            )));
        }
        mgf1 = digest(mgf.expect(tag::SEQUENCE, "MGF1 hash")?)?;
    }
    if let Some(explicit) = fields.optional(tag::context_constructed(2))? {
        let source = explicit
            .children()?
            .expect(tag::SEQUENCE, "OAEP label source")?;
        let mut source = source.children()?;
        source.expect(tag::OID, "label source")?;
        let label_is_empty = match source.optional(tag::OCTET_STRING)? {
            Some(label) => label.content.is_empty(),
            None => true,
        };
        if !label_is_empty {
            return Err(CmsError::Invalid(
                "RSAES-OAEP with a label is not supported".into(),
            ));
        }
    }
    Ok((hash, mgf1))
}

fn digest(algorithm: Element<'_>) -> Result<MessageDigest, CmsError> {
    let identifier = algorithm.children()?.expect(tag::OID, "digest algorithm")?;
    match identifier.content {
        oid::SHA1 => Ok(MessageDigest::sha1()),
        oid::SHA256 => Ok(MessageDigest::sha256()),
        oid::SHA384 => Ok(MessageDigest::sha384()),
        oid::SHA512 => Ok(MessageDigest::sha512()),
        other => Err(CmsError::Invalid(format!(
            "unsupported digest {}",
            oid::text(other)
        ))),
    }
}

/// The cipher and IV of the content-encryption algorithm with the unwrapped key; a key of the
/// wrong length (only possible after a failed PKCS#1 v1.5 unwrap) is replaced by a random one.
fn content_cipher(algorithm: &[u8], key: Vec<u8>) -> Result<ContentKey, CmsError> {
    let algorithm = Parser::new(algorithm).expect(tag::SEQUENCE, "contentEncryptionAlgorithm")?;
    let mut fields = algorithm.children()?;
    let identifier = fields.expect(tag::OID, "contentEncryptionAlgorithm")?;
    let cipher = match identifier.content {
        oid::AES128_CBC => Cipher::aes_128_cbc(),
        oid::AES192_CBC => Cipher::aes_192_cbc(),
        oid::AES256_CBC => Cipher::aes_256_cbc(),
        other => {
            return Err(CmsError::Invalid(format!(
                "unsupported content encryption {} (AES-CBC expected)",
                oid::text(other)
            )));
        }
    };
    let iv = fields.next_element()?.octets()?.into_owned();
    if iv.len() != 16 {
        return Err(CmsError::Invalid(format!(
            "AES-CBC IV of {} bytes",
            iv.len()
        )));
    }
    let key = if key.len() == cipher.key_len() {
        key
    } else {
        let mut random = vec![0; cipher.key_len()];
        crate::crypto::random(&mut random)?;
        random
    };
    Ok(ContentKey { cipher, key, iv })
}

/// A distinguished name as `CN=…, O=…`, for messages.
fn name_text(name: &X509NameRef) -> String {
    let parts: Vec<String> = name
        .entries()
        .filter_map(|entry| {
            let field = entry.object().nid().short_name().ok()?;
            Some(format!("{field}={}", entry.data().to_string().ok()?))
        })
        .collect();
    parts.join(", ")
}
