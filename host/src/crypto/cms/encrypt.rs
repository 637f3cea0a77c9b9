//! Writing EnvelopedData: the small header first, with every length computed from the content
//! length, then the ciphertext as it is produced.

use std::io::{Read, Write};

use openssl::encrypt::Encrypter;
use openssl::hash::MessageDigest;
use openssl::pkey::Id;
use openssl::rsa::Padding;
use openssl::symm::{Cipher, Mode};
use openssl::x509::X509Ref;

use super::{CmsError, KeyTransport};
use crate::crypto::aes_cbc;
use crate::crypto::der::{self, oid, tag};

/// Plaintext is read and encrypted in pieces of this size.
const CHUNK: usize = 64 * 1024;
const AES_BLOCK: u64 = 16;

/// Encrypts `length` bytes of `input` to `recipient` as DER EnvelopedData written to `output`;
/// returns the number of bytes written. Fails if `input` does not hold exactly `length` bytes.
pub fn encrypt(
    input: &mut dyn Read,
    length: u64,
    recipient: &X509Ref,
    transport: KeyTransport,
    output: &mut dyn Write,
) -> Result<u64, CmsError> {
    let mut key = [0; 32];
    let mut iv = [0; 16];
    crate::crypto::random(&mut key)?;
    crate::crypto::random(&mut iv)?;
    let recipient_info = recipient_info(recipient, transport, &key)?;
    // PKCS#7 padding always adds 1..=16 bytes.
    let ciphertext_length = (length / AES_BLOCK + 1) * AES_BLOCK;
    let header = header(&recipient_info, &iv, ciphertext_length);
    output.write_all(&header)?;

    let mut crypter = aes_cbc::context(Cipher::aes_256_cbc(), Mode::Encrypt, &key, &iv)?;
    let mut plain = vec![0; CHUNK];
    let mut cipher = vec![0; CHUNK + AES_BLOCK as usize];
    let mut read_total = 0u64;
    loop {
        let read = match input.read(&mut plain) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(CmsError::Io(error)),
        };
        read_total += read as u64;
        if read_total > length {
            break;
        }
        let produced = crypter.cipher_update(&plain[..read], Some(&mut cipher))?;
        output.write_all(&cipher[..produced])?;
    }
    if read_total != length {
        return Err(CmsError::Io(std::io::Error::other(format!(
            "the content was {length} bytes long when encryption began, but {read_total}{} bytes were read",
            if read_total > length { " or more" } else { "" }
        ))));
    }
    let produced = crypter.cipher_final(&mut cipher)?;
    output.write_all(&cipher[..produced])?;
    output.flush()?;
    Ok(header.len() as u64 + ciphertext_length)
}

/// `ContentInfo { envelopedData, EnvelopedData { 0, {ktri}, EncryptedContentInfo } }` up to and
/// including the header of the encrypted content, whose `ciphertext_length` bytes follow.
fn header(recipient_info: &[u8], iv: &[u8], ciphertext_length: u64) -> Vec<u8> {
    // Each level is its header plus what precedes the ciphertext, sized to include the ciphertext.
    let wrap = |tag: u8, inner: Vec<u8>| {
        let mut out = der::header(tag, inner.len() as u64 + ciphertext_length);
        out.extend(inner);
        out
    };
    let algorithm = der::constructed(
        tag::SEQUENCE,
        &[
            &der::tlv(tag::OID, oid::AES256_CBC),
            &der::tlv(tag::OCTET_STRING, iv),
        ],
    );
    let encrypted_content = der::header(tag::context(0), ciphertext_length);
    let encrypted_content_info = wrap(
        tag::SEQUENCE,
        [der::tlv(tag::OID, oid::DATA), algorithm, encrypted_content].concat(),
    );
    let enveloped_data = wrap(
        tag::SEQUENCE,
        [
            der::tlv(tag::INTEGER, &[0]),
            der::tlv(tag::SET, recipient_info),
            encrypted_content_info,
        ]
        .concat(),
    );
    let explicit = wrap(tag::context_constructed(0), enveloped_data);
    wrap(
        tag::SEQUENCE,
        [der::tlv(tag::OID, oid::ENVELOPED_DATA), explicit].concat(),
    )
}

/// `KeyTransRecipientInfo` (version 0, issuerAndSerialNumber) wrapping `key` for `recipient`.
pub fn recipient_info(
    recipient: &X509Ref,
    transport: KeyTransport,
    key: &[u8],
) -> Result<Vec<u8>, CmsError> {
    let public = recipient
        .public_key()
        .map_err(|error| CmsError::Recipient(format!("unreadable public key: {error}")))?;
    if public.id() != Id::RSA {
        return Err(CmsError::Recipient(
            "the key is not RSA, so it cannot receive a key by key transport".into(),
        ));
    }
    let serial = recipient.serial_number().to_bn()?;
    if serial.is_negative() {
        return Err(CmsError::Recipient("negative serial number".into()));
    }
    let issuer_and_serial = der::constructed(
        tag::SEQUENCE,
        &[
            &recipient.issuer_name().to_der()?,
            &der::unsigned_integer(&serial.to_vec()),
        ],
    );
    let mut encrypter = Encrypter::new(&public)?;
    let algorithm = match transport {
        KeyTransport::RsaPkcs1v15 => {
            encrypter.set_rsa_padding(Padding::PKCS1)?;
            der::constructed(
                tag::SEQUENCE,
                &[
                    &der::tlv(tag::OID, oid::RSA_ENCRYPTION),
                    &der::tlv(tag::NULL, &[]),
                ],
            )
        }
        KeyTransport::RsaOaepSha256 => {
            encrypter.set_rsa_padding(Padding::PKCS1_OAEP)?;
            encrypter.set_rsa_oaep_md(MessageDigest::sha256())?;
            encrypter.set_rsa_mgf1_md(MessageDigest::sha256())?;
            oaep_sha256_algorithm()
        }
    };
    let mut wrapped = vec![0; encrypter.encrypt_len(key)?];
    let written = encrypter.encrypt(key, &mut wrapped)?;
    wrapped.truncate(written);
    Ok(der::constructed(
        tag::SEQUENCE,
        &[
            &der::tlv(tag::INTEGER, &[0]),
            &issuer_and_serial,
            &algorithm,
            &der::tlv(tag::OCTET_STRING, &wrapped),
        ],
    ))
}

/// `id-RSAES-OAEP` with `RSAES-OAEP-params { [0] sha256, [1] mgf1(sha256) }` and the default
/// (empty) label omitted, the digest identifiers without parameters: byte for byte what OpenSSL
/// writes, and what BouncyCastle and OpenSSL both read.
fn oaep_sha256_algorithm() -> Vec<u8> {
    let sha256 = der::constructed(tag::SEQUENCE, &[&der::tlv(tag::OID, oid::SHA256)]);
    let mgf1 = der::constructed(tag::SEQUENCE, &[&der::tlv(tag::OID, oid::MGF1), &sha256]);
    let params = der::constructed(
        tag::SEQUENCE,
        &[
            &der::tlv(tag::context_constructed(0), &sha256),
            &der::tlv(tag::context_constructed(1), &mgf1),
        ],
    );
    der::constructed(
        tag::SEQUENCE,
        &[&der::tlv(tag::OID, oid::RSAES_OAEP), &params],
    )
}
