//! CMS EnvelopedData, the envelope DPF documents and DPI packages travel in.
//!
//! A provider that could not open what it received would reject it, so the simulators decrypt
//! every envelope with the key it must have been encrypted to; that is how a test learns the
//! integration point picked the right certificate. SvarInn hands packages out encrypted, so the
//! SvarUt simulator also encrypts (AES-256-CBC, as SvarInn does).

use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::error::ErrorStack;
use openssl::pkey::{PKeyRef, Private};
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::X509;

/// The content of the EnvelopedData `der`, decrypted with `key` (the private half of
/// `certificate`); the error says whether it is not CMS at all or not for this key.
pub(crate) fn decrypt(
    der: &[u8],
    certificate: &X509,
    key: &PKeyRef<Private>,
) -> Result<Vec<u8>, String> {
    let envelope = CmsContentInfo::from_der(der)
        .map_err(|_| "not a DER-encoded CMS ContentInfo".to_owned())?;
    envelope.decrypt(key, certificate).map_err(|_| {
        "not a CMS EnvelopedData that decrypts with the expected certificate's key".to_owned()
    })
}

/// `content` as a DER EnvelopedData for `certificate`: AES-256-CBC, RSA key transport.
pub(crate) fn encrypt(certificate: &X509, content: &[u8]) -> Result<Vec<u8>, ErrorStack> {
    let mut recipients = Stack::new()?;
    recipients.push(certificate.clone())?;
    CmsContentInfo::encrypt(
        &recipients,
        content,
        Cipher::aes_256_cbc(),
        CMSOptions::BINARY,
    )?
    .to_der()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::TestPki;

    #[test]
    fn only_the_recipient_key_opens_an_envelope() {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::new(dir.path()).unwrap();
        let receiver = pki.issue("910075918", "Mottaker", -1, 365, "pw").unwrap();
        let other = pki.issue("910076787", "Annen", -1, 365, "pw").unwrap();
        let envelope = encrypt(&receiver.certificate, b"innhold").unwrap();
        assert_eq!(
            decrypt(&envelope, &receiver.certificate, &receiver.key).unwrap(),
            b"innhold"
        );
        assert!(decrypt(&envelope, &other.certificate, &other.key).is_err());
        assert!(
            decrypt(b"plain", &receiver.certificate, &receiver.key)
                .unwrap_err()
                .starts_with("not a DER")
        );
    }
}
