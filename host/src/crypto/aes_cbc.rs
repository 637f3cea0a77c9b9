//! AES-CBC contexts from ciphers fetched once.
//!
//! OpenSSL 3 looks a built-in cipher (`EVP_aes_256_cbc`) up among its providers again every
//! time a context is set up with it. Sealing a small file at rest did that for every file, and
//! the pipeline profile showed the lookup costing about as much as the encryption. So the three
//! AES-CBC variants are fetched once for the process.

use std::sync::OnceLock;

use openssl::cipher::{Cipher, CipherRef};
use openssl::cipher_ctx::CipherCtx;
use openssl::nid::Nid;
use openssl::symm::{self, Mode};

use super::cms::CmsError;

/// The AES-CBC variants CMS content may use.
const VARIANTS: [(Nid, &str); 3] = [
    (Nid::AES_128_CBC, "AES-128-CBC"),
    (Nid::AES_192_CBC, "AES-192-CBC"),
    (Nid::AES_256_CBC, "AES-256-CBC"),
];

/// `cipher` as fetched once; the built-in object when fetching failed or it is no AES-CBC.
fn fetched(cipher: symm::Cipher) -> Result<&'static CipherRef, CmsError> {
    static FETCHED: OnceLock<Vec<(Nid, Cipher)>> = OnceLock::new();
    let fetched = FETCHED.get_or_init(|| {
        VARIANTS
            .iter()
            .filter_map(|(nid, name)| Some((*nid, Cipher::fetch(None, name, None).ok()?)))
            .collect()
    });
    let nid = cipher.nid();
    match fetched.iter().find(|(fetched, _)| *fetched == nid) {
        Some((_, cipher)) => Ok(cipher),
        None => Cipher::from_nid(nid)
            .ok_or_else(|| CmsError::Invalid(format!("OpenSSL has no cipher {nid:?}"))),
    }
}

/// A context that encrypts or decrypts with `cipher` (an AES-CBC variant) under `key` and `iv`,
/// padding as PKCS#7 unless told otherwise (`set_padding`). A key or IV of another length than
/// the cipher's is refused, as `openssl::symm::Crypter` refuses it (OpenSSL itself would read
/// only the first bytes of a longer one).
pub fn context(
    cipher: symm::Cipher,
    mode: Mode,
    key: &[u8],
    iv: &[u8],
) -> Result<CipherCtx, CmsError> {
    if key.len() != cipher.key_len() || Some(iv.len()) != cipher.iv_len() {
        return Err(CmsError::Invalid(format!(
            "a key of {} bytes and an IV of {} for {:?}",
            key.len(),
            iv.len(),
            cipher.nid()
        )));
    }
    let cipher = fetched(cipher)?;
    let mut context = CipherCtx::new()?;
    match mode {
        Mode::Encrypt => context.encrypt_init(Some(cipher), Some(key), Some(iv))?,
        Mode::Decrypt => context.decrypt_init(Some(cipher), Some(key), Some(iv))?,
    }
    Ok(context)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::random;

    /// Every variant is fetched (not the built-in object) and gives what OpenSSL's one-shot
    /// function gives for the same key and IV, both ways.
    #[test]
    fn fetched_variants_encrypt_and_decrypt_as_openssl_does() {
        let plain = b"the quick brown fox jumps over the lazy dog, twice over".repeat(3);
        for cipher in [
            symm::Cipher::aes_128_cbc(),
            symm::Cipher::aes_192_cbc(),
            symm::Cipher::aes_256_cbc(),
        ] {
            let builtin = Cipher::from_nid(cipher.nid()).unwrap();
            assert!(
                !std::ptr::eq(fetched(cipher).unwrap(), builtin),
                "{:?} is fetched",
                cipher.nid()
            );
            let mut key = vec![0; cipher.key_len()];
            let mut iv = [0; 16];
            random(&mut key).unwrap();
            random(&mut iv).unwrap();
            let expected = symm::encrypt(cipher, &key, Some(&iv), &plain).unwrap();
            let mut encrypting = context(cipher, Mode::Encrypt, &key, &iv).unwrap();
            let mut sealed = vec![0; plain.len() + 32];
            let mut length = encrypting.cipher_update(&plain, Some(&mut sealed)).unwrap();
            length += encrypting.cipher_final(&mut sealed[length..]).unwrap();
            sealed.truncate(length);
            assert_eq!(sealed, expected, "{:?}", cipher.nid());
            let mut decrypting = context(cipher, Mode::Decrypt, &key, &iv).unwrap();
            let mut opened = vec![0; sealed.len() + 16];
            let mut length = decrypting
                .cipher_update(&sealed, Some(&mut opened))
                .unwrap();
            length += decrypting.cipher_final(&mut opened[length..]).unwrap();
            opened.truncate(length);
            assert_eq!(opened, plain);
        }
    }

    #[test]
    fn a_key_or_iv_of_the_wrong_length_is_refused() {
        let cipher = symm::Cipher::aes_256_cbc();
        let wrong: [(&[u8], &[u8]); 3] = [
            (&[0; 16], &[0; 16]),
            (&[0; 32], &[0; 8]),
            (&[0; 48], &[0; 16]),
        ];
        for (key, iv) in wrong {
            let refused = context(cipher, Mode::Encrypt, key, iv).err();
            assert!(
                matches!(refused, Some(CmsError::Invalid(_))),
                "a key of {} and an IV of {}",
                key.len(),
                iv.len()
            );
        }
        assert!(context(cipher, Mode::Encrypt, &[0; 32], &[0; 16]).is_ok());
    }
}
