//! The organisation's business certificate (virksomhetssertifikat) and its private key.
//!
//! One key signs everything the integration point asserts (Maskinporten grants, ASiC-E
//! signatures, JWS) and opens everything sent to it (CMS EnvelopedData), so it is loaded once,
//! checked once (the key matches the certificate, it is RSA) and shared by cheap clones. It is
//! read from a PKCS#12 keystore, as the Java integration point keeps it, or from PEM files, as an
//! operator exporting from a HSM or a secrets store tends to. The key never leaves this type: the
//! callers get signatures and decryptions, and plugins never see it at all.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use openssl::asn1::{Asn1Object, Asn1TimeRef};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{Id, PKey, Private};
use openssl::sign::Signer;
use openssl::x509::{X509, X509Ref};

use super::key_cache::ContentKeyCache;
use super::time::utc;

/// How long before expiry [`BusinessCertificate::check_expiry`] starts warning.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Why the business certificate could not be loaded or used; always names the file.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// The file could not be read.
    #[error("business certificate: cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The file was read but its content is unusable.
    #[error("business certificate: {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words.
        reason: String,
    },
    /// Signing failed inside OpenSSL.
    #[error("business certificate: signing failed: {0}")]
    Signing(openssl::error::ErrorStack),
}

/// The loaded key pair and chain; clones share one copy.
#[derive(Clone)]
pub struct BusinessCertificate(Arc<Inner>);

struct Inner {
    certificate: X509,
    chain: Vec<X509>,
    key: PKey<Private>,
    organisation_number: Option<String>,
    source: PathBuf,
    content_keys: ContentKeyCache,
}

/// What [`BusinessCertificate::check_expiry`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpiryStatus {
    /// Valid for more than [`EXPIRY_WARNING`].
    Valid,
    /// Still valid, but expires within [`EXPIRY_WARNING`]; the message gives the date.
    ExpiresSoon(String),
    /// Expired or not yet valid; the message gives the dates.
    Invalid(String),
}

impl BusinessCertificate {
    /// Loads a PKCS#12 keystore. With an `alias`, the key entry must carry that friendly name.
    ///
    /// OpenSSL's PKCS#12 parser returns the first key entry, so a keystore is expected to hold
    /// one key (as the integration point's keystores do); an alias that names another entry is
    /// refused with the alias the keystore's key carries.
    pub fn from_pkcs12(
        path: &Path,
        password: &str,
        alias: Option<&str>,
    ) -> Result<Self, KeystoreError> {
        let invalid = |reason: String| KeystoreError::Invalid {
            path: path.to_owned(),
            reason,
        };
        let bytes = read(path)?;
        if password.contains('\0') {
            return Err(invalid("the password contains a NUL character".into()));
        }
        let keystore = Pkcs12::from_der(&bytes)
            .map_err(|_| invalid("not a PKCS#12 keystore (DER expected)".into()))?;
        let parsed = keystore.parse2(password).map_err(|error| {
            if error.to_string().contains("mac verify failure") {
                invalid("wrong password".into())
            } else {
                invalid(format!("cannot open the keystore: {error}"))
            }
        })?;
        let key = parsed
            .pkey
            .ok_or_else(|| invalid("no private key in the keystore".into()))?;
        let certificate = parsed
            .cert
            .ok_or_else(|| invalid("no certificate for the private key".into()))?;
        if let Some(wanted) = alias {
            let found = certificate
                .alias()
                .map(|name| String::from_utf8_lossy(name).into_owned());
            if found.as_deref() != Some(wanted) {
                return Err(invalid(format!(
                    "no key entry with alias {wanted:?} (the key entry's alias is {})",
                    found.map_or_else(|| "not set".into(), |name| format!("{name:?}"))
                )));
            }
        }
        let chain = parsed
            .ca
            .map(|stack| stack.into_iter().collect())
            .unwrap_or_default();
        Self::assemble(path, certificate, chain, key)
    }

    /// Loads an unencrypted PEM private key (PKCS#8 or PKCS#1) and a PEM certificate file whose
    /// first certificate is the business certificate and whose further ones are its chain.
    pub fn from_pem(key_path: &Path, cert_path: &Path) -> Result<Self, KeystoreError> {
        let key_pem = read(key_path)?;
        let key_invalid = |reason: &str| KeystoreError::Invalid {
            path: key_path.to_owned(),
            reason: reason.to_owned(),
        };
        if contains(&key_pem, b"ENCRYPTED") {
            return Err(key_invalid(
                "the private key is encrypted; give an unencrypted PEM key or a PKCS#12 keystore",
            ));
        }
        // A callback that offers no password keeps OpenSSL from prompting on a terminal.
        let key = PKey::private_key_from_pem_callback(&key_pem, |_| Ok(0))
            .map_err(|_| key_invalid("no private key (PEM PRIVATE KEY expected)"))?;
        let cert_pem = read(cert_path)?;
        let mut certificates = X509::stack_from_pem(&cert_pem)
            .map_err(|_| KeystoreError::Invalid {
                path: cert_path.to_owned(),
                reason: "not a PEM certificate file".into(),
            })?
            .into_iter();
        let certificate = certificates.next().ok_or_else(|| KeystoreError::Invalid {
            path: cert_path.to_owned(),
            reason: "no certificate in the file".into(),
        })?;
        Self::assemble(cert_path, certificate, certificates.collect(), key)
    }

    fn assemble(
        path: &Path,
        certificate: X509,
        chain: Vec<X509>,
        key: PKey<Private>,
    ) -> Result<Self, KeystoreError> {
        let invalid = |reason: &str| KeystoreError::Invalid {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        if key.id() != Id::RSA {
            return Err(invalid(
                "the private key is not RSA (RS256 and CMS key transport need RSA)",
            ));
        }
        let matches = certificate
            .public_key()
            .map(|public| public.public_eq(&key))
            .unwrap_or(false);
        if !matches {
            return Err(invalid("the private key does not match the certificate"));
        }
        let organisation_number = organisation_number(&certificate);
        Ok(Self(Arc::new(Inner {
            certificate,
            chain,
            key,
            organisation_number,
            source: path.to_owned(),
            content_keys: ContentKeyCache::default(),
        })))
    }

    /// The content keys of blobs wrapped to this certificate that this process already knows.
    pub(crate) fn content_keys(&self) -> &ContentKeyCache {
        &self.0.content_keys
    }

    /// The business certificate itself.
    pub fn certificate(&self) -> &X509 {
        &self.0.certificate
    }

    /// The issuing certificates that came with it (possibly none), nearest first.
    pub fn chain(&self) -> &[X509] {
        &self.0.chain
    }

    /// The private key.
    pub fn private_key(&self) -> &PKey<Private> {
        &self.0.key
    }

    /// The file it was loaded from (the certificate file for PEM).
    pub fn source(&self) -> &Path {
        &self.0.source
    }

    /// The organisation number from the subject: `organizationIdentifier` `NTRNO-<orgnr>`
    /// (SEID 2) or a nine-digit `serialNumber` (SEID 1).
    pub fn organisation_number(&self) -> Option<&str> {
        self.0.organisation_number.as_deref()
    }

    /// The certificate's serial number in upper-case hex, as Virksert is compared by serial.
    pub fn serial_hex(&self) -> String {
        self.0
            .certificate
            .serial_number()
            .to_bn()
            .and_then(|serial| serial.to_hex_str().map(|hex| hex.to_string()))
            .unwrap_or_default()
    }

    /// The JOSE `x5c` value: base64 (not URL-safe) DER, the business certificate first.
    pub fn x5c(&self) -> Vec<String> {
        std::iter::once(&self.0.certificate)
            .chain(&self.0.chain)
            .filter_map(|certificate| certificate.to_der().ok())
            .map(|der| BASE64.encode(der))
            .collect()
    }

    /// An RSASSA-PKCS1-v1_5 SHA-256 signature (JOSE `RS256`) of `data`.
    pub fn sign_rs256(&self, data: &[u8]) -> Result<Vec<u8>, KeystoreError> {
        let sign = || {
            let mut signer = Signer::new(MessageDigest::sha256(), &self.0.key)?;
            signer.update(data)?;
            signer.sign_to_vec()
        };
        sign().map_err(KeystoreError::Signing)
    }

    /// The end of the validity period.
    pub fn not_after(&self) -> SystemTime {
        system_time(self.0.certificate.not_after())
    }

    /// The start of the validity period.
    pub fn not_before(&self) -> SystemTime {
        system_time(self.0.certificate.not_before())
    }

    /// Whether the certificate is valid at `now`, and for how long; meant for start and a daily
    /// check, which log a warning for [`ExpiryStatus::ExpiresSoon`] and refuse to work on
    /// [`ExpiryStatus::Invalid`].
    pub fn check_expiry(&self, now: SystemTime) -> ExpiryStatus {
        let (not_before, not_after) = (self.not_before(), self.not_after());
        let subject = subject_text(&self.0.certificate);
        if now < not_before {
            ExpiryStatus::Invalid(format!(
                "the business certificate {subject} is not valid before {} (now {})",
                utc(not_before),
                utc(now)
            ))
        } else if now >= not_after {
            ExpiryStatus::Invalid(format!(
                "the business certificate {subject} expired {} (now {})",
                utc(not_after),
                utc(now)
            ))
        } else if not_after.duration_since(now).unwrap_or_default() <= EXPIRY_WARNING {
            let days = not_after.duration_since(now).unwrap_or_default().as_secs() / 86_400;
            ExpiryStatus::ExpiresSoon(format!(
                "the business certificate {subject} expires {} (in {days} days); renew it",
                utc(not_after)
            ))
        } else {
            ExpiryStatus::Valid
        }
    }
}

impl fmt::Debug for BusinessCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusinessCertificate")
            .field("subject", &subject_text(&self.0.certificate))
            .field("source", &self.0.source)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, KeystoreError> {
    std::fs::read(path).map_err(|source| KeystoreError::Read {
        path: path.to_owned(),
        source,
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

fn organisation_number(certificate: &X509Ref) -> Option<String> {
    let subject = certificate.subject_name();
    let text = |nid: Nid| {
        subject
            .entries_by_nid(nid)
            .next()
            .and_then(|entry| entry.data().to_string().ok())
    };
    let organisation_identifier = Asn1Object::from_str("2.5.4.97")
        .ok()
        .and_then(|object| text(object.nid()))
        .and_then(|value| value.strip_prefix("NTRNO-").map(str::to_owned));
    let nine_digits =
        |value: &String| value.len() == 9 && value.bytes().all(|b| b.is_ascii_digit());
    organisation_identifier
        .filter(nine_digits)
        .or_else(|| text(Nid::SERIALNUMBER).filter(nine_digits))
}

fn subject_text(certificate: &X509Ref) -> String {
    let parts: Vec<String> = certificate
        .subject_name()
        .entries()
        .filter_map(|entry| {
            let name = entry.object().nid().short_name().ok()?;
            let value = entry.data().to_string().ok()?;
            Some(format!("{name}={value}"))
        })
        .collect();
    format!("\"{}\"", parts.join(", "))
}

fn system_time(time: &Asn1TimeRef) -> SystemTime {
    let seconds = openssl::asn1::Asn1Time::from_unix(0)
        .and_then(|epoch| epoch.diff(time))
        .map(|diff| i64::from(diff.days) * 86_400 + i64::from(diff.secs))
        .unwrap_or(0);
    if seconds >= 0 {
        UNIX_EPOCH + Duration::from_secs(seconds.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use openssl::sign::Verifier;

    use super::*;
    use crate::crypto::testpki::{ALIAS, ORGNR, PASSWORD, TestPki};

    fn pki(days_valid: u32) -> (tempfile::TempDir, TestPki) {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = TestPki::new(dir.path(), days_valid);
        (dir, pki)
    }

    #[test]
    fn loads_pkcs12_and_pem_alike() {
        let (_dir, pki) = pki(365);
        let from_p12 = pki.business_certificate();
        let from_pem = BusinessCertificate::from_pem(&pki.key_pem(), &pki.chain_pem()).unwrap();
        for loaded in [&from_p12, &from_pem] {
            assert_eq!(
                loaded.certificate().to_der().unwrap(),
                pki.leaf.to_der().unwrap()
            );
            assert_eq!(loaded.chain().len(), 1);
            assert_eq!(
                loaded.chain()[0].to_der().unwrap(),
                pki.ca.to_der().unwrap()
            );
            assert_eq!(loaded.organisation_number(), Some(ORGNR));
            let x5c = loaded.x5c();
            assert_eq!(x5c.len(), 2);
            assert_eq!(BASE64.decode(&x5c[0]).unwrap(), pki.leaf.to_der().unwrap());
        }
        assert!(!from_p12.serial_hex().is_empty());
        assert_eq!(from_p12.serial_hex(), from_pem.serial_hex());
    }

    #[test]
    fn rs256_signature_verifies_with_the_certificate() {
        let (_dir, pki) = pki(365);
        let signature = pki
            .business_certificate()
            .sign_rs256(b"header.payload")
            .unwrap();
        let public = pki.leaf.public_key().unwrap();
        let mut verifier = Verifier::new(MessageDigest::sha256(), &public).unwrap();
        verifier.update(b"header.payload").unwrap();
        assert!(verifier.verify(&signature).unwrap());
    }

    #[test]
    fn errors_name_the_file_and_the_reason() {
        let (dir, pki) = pki(365);
        let message = |result: Result<BusinessCertificate, KeystoreError>| {
            result.expect_err("must fail").to_string()
        };
        let wrong = message(BusinessCertificate::from_pkcs12(&pki.p12(), "nope", None));
        assert!(
            wrong.contains("keystore.p12") && wrong.contains("wrong password"),
            "{wrong}"
        );
        let alias = message(BusinessCertificate::from_pkcs12(
            &pki.p12(),
            PASSWORD,
            Some("other"),
        ));
        assert!(
            alias.contains("\"other\"") && alias.contains(ALIAS),
            "{alias}"
        );
        let missing = message(BusinessCertificate::from_pkcs12(
            &dir.path().join("absent.p12"),
            PASSWORD,
            None,
        ));
        assert!(
            missing.contains("absent.p12") && missing.contains("cannot read"),
            "{missing}"
        );
        let not_p12 = message(BusinessCertificate::from_pkcs12(
            &pki.leaf_pem(),
            PASSWORD,
            None,
        ));
        assert!(not_p12.contains("not a PKCS#12"), "{not_p12}");
        let no_key = message(BusinessCertificate::from_pem(
            &pki.leaf_pem(),
            &pki.leaf_pem(),
        ));
        assert!(
            no_key.contains("leaf.pem") && no_key.contains("no private key"),
            "{no_key}"
        );
        let other_dir = dir.path().join("other");
        std::fs::create_dir(&other_dir).unwrap();
        let other = TestPki::new(&other_dir, 365);
        let mismatch = message(BusinessCertificate::from_pem(
            &other.key_pem(),
            &pki.leaf_pem(),
        ));
        assert!(mismatch.contains("does not match"), "{mismatch}");
        let encrypted = dir.path().join("encrypted.pem");
        let pem = pki
            .leaf_key
            .private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_256_cbc(), b"secret")
            .unwrap();
        std::fs::write(&encrypted, pem).unwrap();
        let encrypted = message(BusinessCertificate::from_pem(&encrypted, &pki.leaf_pem()));
        assert!(encrypted.contains("encrypted"), "{encrypted}");
    }

    #[test]
    fn expiry_warns_thirty_days_ahead_and_fails_once_expired() {
        let (_dir, pki) = pki(60);
        let certificate = pki.business_certificate();
        let not_after = certificate.not_after();
        let day = Duration::from_secs(86_400);
        assert_eq!(
            certificate.check_expiry(SystemTime::now()),
            ExpiryStatus::Valid
        );
        let ExpiryStatus::ExpiresSoon(soon) = certificate.check_expiry(not_after - 10 * day) else {
            panic!("expected a warning ten days ahead");
        };
        assert!(
            soon.contains(&utc(not_after)) && soon.contains("in 10 days"),
            "{soon}"
        );
        let ExpiryStatus::Invalid(expired) = certificate.check_expiry(not_after + day) else {
            panic!("expected an error after expiry");
        };
        assert!(
            expired.contains("expired") && expired.contains(&utc(not_after)),
            "{expired}"
        );
        let early = certificate.check_expiry(certificate.not_before() - day);
        assert!(
            matches!(early, ExpiryStatus::Invalid(message) if message.contains("not valid before"))
        );
    }
}
