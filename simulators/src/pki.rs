//! A fresh test PKI: a CA and a business certificate (virksomhetssertifikat) per organisation.
//!
//! Nothing external may be trusted offline, and certificates committed to a repository expire
//! (the upstream mocks' fixtures did, in 2024, and then every start failed its certificate
//! check). So the simulators make their PKI at start: a CA, and for each organisation a key
//! pair and a certificate naming its organisation number, written as the PKCS#12 keystore and
//! PEM files an integration point of the local environment loads.
//!
//! RSA key generation is most of the simulators' start-up, so a PKI opened with
//! [`TestPki::open`] keeps its keys in a cache directory of their own and reuses them on the
//! next start: the CA while its certificate has [`CA_MIN_REMAINING_DAYS`] left, and each
//! organisation's key pair. Certificates and keystores are still issued afresh into the PKI
//! directory each time (cheap), so a PKI directory removed between runs only means fresh
//! certificates, never stale ones. Tests use [`TestPki::new`], which always makes new keys.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, KeyUsage};
use openssl::x509::{X509, X509NameBuilder};

/// How long a reused CA must still be valid; a shorter-lived one is replaced.
pub const CA_MIN_REMAINING_DAYS: u32 = 30;

/// A CA that issues business certificates.
pub struct TestPki {
    dir: PathBuf,
    ca_key: PKey<Private>,
    ca: X509,
    /// Where keys are kept between runs, when they are.
    key_cache: Option<PathBuf>,
}

/// A business certificate and where its files are.
pub struct Issued {
    /// The certificate.
    pub certificate: X509,
    /// Its private key.
    pub key: PKey<Private>,
    /// The PKCS#12 keystore (key, certificate, CA), alias = the organisation number.
    pub keystore: PathBuf,
    /// The certificate and the CA, PEM.
    pub certificate_pem: PathBuf,
    /// The private key, PKCS#8 PEM.
    pub key_pem: PathBuf,
}

impl TestPki {
    /// A new CA, its certificate written to `dir/ca.pem`.
    pub fn new(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let ca_key = PKey::from_rsa(Rsa::generate(2048)?)?;
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_text("C", "NO")?;
        name.append_entry_by_text("O", "Simulators test CA")?;
        name.append_entry_by_text("CN", "Simulators test CA")?;
        let name = name.build();
        let mut builder = X509::builder()?;
        builder.set_version(2)?;
        builder.set_serial_number(&*serial()?.to_asn1_integer()?)?;
        builder.set_subject_name(&name)?;
        builder.set_issuer_name(&name)?;
        builder.set_pubkey(&ca_key)?;
        builder.set_not_before(&*Asn1Time::days_from_now(0)?)?;
        builder.set_not_after(&*Asn1Time::days_from_now(3650)?)?;
        builder.append_extension(BasicConstraints::new().critical().ca().build()?)?;
        builder.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()?,
        )?;
        builder.sign(&ca_key, MessageDigest::sha256())?;
        let ca = builder.build();
        write_atomically(&dir.join("ca.pem"), &ca.to_pem()?)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            ca_key,
            ca,
            key_cache: None,
        })
    }

    /// A PKI writing to `dir` whose CA and keys come from `key_cache` when they are there (the
    /// CA only while valid for [`CA_MIN_REMAINING_DAYS`]), else are made and kept there.
    pub fn open(dir: &Path, key_cache: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(key_cache)
            .with_context(|| format!("creating {}", key_cache.display()))?;
        let cached = Self::load_ca(key_cache).ok().flatten();
        let (ca_key, ca) = match cached {
            Some((ca_key, ca)) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                write_atomically(&dir.join("ca.pem"), &ca.to_pem()?)?;
                (ca_key, ca)
            }
            None => {
                let fresh = Self::new(dir)?;
                let key = fresh.ca_key.private_key_to_pem_pkcs8()?;
                write_atomically(&key_cache.join("ca-key.pem"), &key)?;
                write_atomically(&key_cache.join("ca.pem"), &fresh.ca.to_pem()?)?;
                (fresh.ca_key, fresh.ca)
            }
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            ca_key,
            ca,
            key_cache: Some(key_cache.to_path_buf()),
        })
    }

    /// The CA key and certificate kept in `key_cache`, if both are there, match, and the
    /// certificate is valid long enough.
    fn load_ca(key_cache: &Path) -> anyhow::Result<Option<(PKey<Private>, X509)>> {
        let ca = X509::from_pem(&std::fs::read(key_cache.join("ca.pem"))?)?;
        let ca_key = PKey::private_key_from_pem(&std::fs::read(key_cache.join("ca-key.pem"))?)?;
        let lasts = ca.not_after() >= Asn1Time::days_from_now(CA_MIN_REMAINING_DAYS)?;
        let started = ca.not_before() <= Asn1Time::days_from_now(0)?;
        let matches = ca.public_key()?.public_eq(&ca_key);
        Ok((lasts && started && matches).then_some((ca_key, ca)))
    }

    /// The key pair named `owner` (an organisation number, or a simulator's name for its
    /// signing key): the cached one when this PKI keeps keys and the cache holds a 2048-bit RSA
    /// key or larger, else a new one (then kept).
    pub fn key(&self, owner: &str) -> anyhow::Result<PKey<Private>> {
        let Some(cache) = &self.key_cache else {
            return Ok(PKey::from_rsa(Rsa::generate(2048)?)?);
        };
        let path = key_path(cache, owner);
        if let Some(key) = reusable_key(&path) {
            return Ok(key);
        }
        let key = PKey::from_rsa(Rsa::generate(2048)?)?;
        write_atomically(&path, &key.private_key_to_pem_pkcs8()?)?;
        Ok(key)
    }

    /// Makes, side by side, the key pairs of `owners` that `key_cache` lacks, for a PKI
    /// [`TestPki::open`]ed with it: start-up can make them while it does other work. Must
    /// finish before that PKI issues for, or hands out the keys of, the same owners.
    pub fn prepare_keys(key_cache: &Path, owners: &[String]) -> anyhow::Result<()> {
        std::fs::create_dir_all(key_cache)
            .with_context(|| format!("creating {}", key_cache.display()))?;
        std::thread::scope(|scope| {
            let making: Vec<_> = owners
                .iter()
                .map(|number| key_path(key_cache, number))
                .filter(|path| reusable_key(path).is_none())
                .map(|path| {
                    scope.spawn(move || {
                        let key = PKey::from_rsa(Rsa::generate(2048)?)?;
                        write_atomically(&path, &key.private_key_to_pem_pkcs8()?)
                    })
                })
                .collect();
            making.into_iter().try_for_each(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
        })
    }

    /// The CA certificate.
    pub fn ca(&self) -> &X509 {
        &self.ca
    }

    /// Issues a business certificate for `organisation_number`, valid from `valid_from_days`
    /// (negative: in the past) for `valid_days`, and writes its files protected by `password`.
    pub fn issue(
        &self,
        organisation_number: &str,
        name: &str,
        valid_from_days: i64,
        valid_days: u32,
        password: &str,
    ) -> anyhow::Result<Issued> {
        let key = self.key(organisation_number)?;
        let mut subject = X509NameBuilder::new()?;
        subject.append_entry_by_text("C", "NO")?;
        subject.append_entry_by_text("O", name)?;
        subject.append_entry_by_text("serialNumber", organisation_number)?;
        subject.append_entry_by_text("CN", name)?;
        let subject = subject.build();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs() as i64;
        let from = now + valid_from_days * 86_400;
        let mut builder = X509::builder()?;
        builder.set_version(2)?;
        builder.set_serial_number(&*serial()?.to_asn1_integer()?)?;
        builder.set_subject_name(&subject)?;
        builder.set_issuer_name(self.ca.subject_name())?;
        builder.set_pubkey(&key)?;
        builder.set_not_before(&*Asn1Time::from_unix(from)?)?;
        builder.set_not_after(&*Asn1Time::from_unix(
            from + i64::from(valid_days) * 86_400,
        )?)?;
        builder.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_encipherment()
                .non_repudiation()
                .build()?,
        )?;
        builder.sign(&self.ca_key, MessageDigest::sha256())?;
        let certificate = builder.build();

        let mut chain = openssl::stack::Stack::new()?;
        chain.push(self.ca.clone())?;
        let keystore = Pkcs12::builder()
            .name(organisation_number)
            .pkey(&key)
            .cert(&certificate)
            .ca(chain)
            .build2(password)?;
        let keystore_path = self.dir.join(format!("{organisation_number}.p12"));
        write_atomically(&keystore_path, &keystore.to_der()?)?;
        let certificate_pem = self.dir.join(format!("{organisation_number}.pem"));
        let mut pem = certificate.to_pem()?;
        pem.extend(self.ca.to_pem()?);
        write_atomically(&certificate_pem, &pem)?;
        let key_pem = key_path(&self.dir, organisation_number);
        write_atomically(&key_pem, &key.private_key_to_pem_pkcs8()?)?;
        Ok(Issued {
            certificate,
            key,
            keystore: keystore_path,
            certificate_pem,
            key_pem,
        })
    }
}

/// KS's organisation number: SvarUt's certificate names it. Senders encrypt every document to
/// that certificate, so the SvarUt simulator holds its key.
pub const SVARUT_ORGNR: &str = "971032146";

/// The organisation number the DPI meldingsformidler's receipt-signing certificate names (a
/// synthetic one: no fixture organisation and no other simulator uses it).
pub const MELDINGSFORMIDLER_ORGNR: &str = "910078402";

impl TestPki {
    /// Issues SvarUt's encryption certificate, also written as `svarut.pem` (with the CA) so the
    /// local environment can point at it by role.
    pub fn issue_svarut(&self, password: &str) -> anyhow::Result<Issued> {
        self.issue_service("svarut", SVARUT_ORGNR, "KS SvarUt", password)
    }

    /// Issues the DPI meldingsformidler's receipt-signing certificate, also written as
    /// `meldingsformidler.pem` (with the CA).
    pub fn issue_meldingsformidler(&self, password: &str) -> anyhow::Result<Issued> {
        self.issue_service(
            "meldingsformidler",
            MELDINGSFORMIDLER_ORGNR,
            "Simulert meldingsformidler",
            password,
        )
    }

    /// The certificate and key [`TestPki::issue`] wrote for `organisation_number`, for a
    /// simulator that must decrypt with a key another one issued (the DPI mailbox provider's,
    /// which Virksert issues; SvarUt's, when the registry issued it).
    pub fn issued_identity(
        &self,
        organisation_number: &str,
    ) -> anyhow::Result<(X509, PKey<Private>)> {
        let certificate_pem = self.dir.join(format!("{organisation_number}.pem"));
        let key_pem = self.dir.join(format!("{organisation_number}-key.pem"));
        let certificate = X509::from_pem(
            &std::fs::read(&certificate_pem)
                .with_context(|| format!("reading {}", certificate_pem.display()))?,
        )?;
        let key = PKey::private_key_from_pem(
            &std::fs::read(&key_pem).with_context(|| format!("reading {}", key_pem.display()))?,
        )?;
        Ok((certificate, key))
    }

    fn issue_service(
        &self,
        role: &str,
        organisation_number: &str,
        name: &str,
        password: &str,
    ) -> anyhow::Result<Issued> {
        let mut issued = self.issue(organisation_number, name, -1, 365, password)?;
        let role_pem = self.dir.join(format!("{role}.pem"));
        write_atomically(&role_pem, &std::fs::read(&issued.certificate_pem)?)?;
        issued.certificate_pem = role_pem;
        Ok(issued)
    }
}

/// Where the key pair of `owner` is kept, PKCS#8 PEM.
fn key_path(dir: &Path, owner: &str) -> PathBuf {
    dir.join(format!("{owner}-key.pem"))
}

/// The key at `path` if it is an RSA key of 2048 bits or more.
fn reusable_key(path: &Path) -> Option<PKey<Private>> {
    let key = PKey::private_key_from_pem(&std::fs::read(path).ok()?).ok()?;
    key.rsa().is_ok_and(|rsa| rsa.size() >= 256).then_some(key)
}

/// Writes a file so that a reader never sees it half written: a host may be polling for it.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

fn serial() -> anyhow::Result<BigNum> {
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    Ok(serial)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_keystores_open_with_their_password_and_chain_to_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::new(dir.path()).unwrap();
        let issued = pki.issue("910075918", "Testetat", -1, 365, "pw").unwrap();
        let keystore = Pkcs12::from_der(&std::fs::read(&issued.keystore).unwrap()).unwrap();
        assert!(keystore.parse2("wrong").is_err());
        let parsed = keystore.parse2("pw").unwrap();
        let certificate = parsed.cert.unwrap();
        assert_eq!(certificate.alias(), Some(&b"910075918"[..]));
        assert!(certificate.verify(&pki.ca().public_key().unwrap()).unwrap());
        let serial_number = certificate
            .subject_name()
            .entries_by_nid(openssl::nid::Nid::SERIALNUMBER)
            .next()
            .unwrap()
            .data()
            .to_string()
            .unwrap();
        assert_eq!(serial_number, "910075918");
    }

    #[test]
    fn an_opened_pki_reuses_its_ca_and_keys_but_issues_new_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let first = TestPki::open(dir.path(), cache.path()).unwrap();
        let issued = first.issue("910075918", "Testetat", -1, 365, "pw").unwrap();
        // The PKI directory may be removed between runs; the cache is what is reused.
        std::fs::remove_dir_all(dir.path()).unwrap();
        let again = TestPki::open(dir.path(), cache.path()).unwrap();
        assert!(dir.path().join("ca.pem").exists());
        assert_eq!(again.ca().to_der().unwrap(), first.ca().to_der().unwrap());
        let reissued = again.issue("910075918", "Testetat", -1, 365, "pw").unwrap();
        assert!(reissued.key.public_eq(&issued.key));
        assert_ne!(
            reissued.certificate.serial_number().to_bn().unwrap(),
            issued.certificate.serial_number().to_bn().unwrap()
        );
        assert!(
            reissued
                .certificate
                .verify(&first.ca().public_key().unwrap())
                .unwrap()
        );

        // Prepared keys are the ones issued with; present ones are kept.
        let numbers = ["910076787".to_owned(), "910075918".to_owned()];
        TestPki::prepare_keys(cache.path(), &numbers).unwrap();
        let prepared = std::fs::read(cache.path().join("910076787-key.pem")).unwrap();
        let prepared = PKey::private_key_from_pem(&prepared).unwrap();
        let second = again.issue("910076787", "Mottaker", -1, 365, "pw").unwrap();
        assert!(second.key.public_eq(&prepared));
        let kept = again.issue("910075918", "Testetat", -1, 365, "pw").unwrap();
        assert!(kept.key.public_eq(&issued.key));

        // A PKI made with `new` never reuses, and a broken CA file means a new CA.
        let fresh = TestPki::new(dir.path()).unwrap();
        let other = fresh.issue("910075918", "Testetat", -1, 365, "pw").unwrap();
        assert!(!other.key.public_eq(&issued.key));
        std::fs::write(cache.path().join("ca-key.pem"), "not a key").unwrap();
        let replaced = TestPki::open(dir.path(), cache.path()).unwrap();
        assert_ne!(
            replaced.ca().to_der().unwrap(),
            first.ca().to_der().unwrap()
        );
    }

    #[test]
    fn service_certificates_are_written_by_role_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::new(dir.path()).unwrap();
        let svarut = pki.issue_svarut("pw").unwrap();
        assert_eq!(svarut.certificate_pem, dir.path().join("svarut.pem"));
        let written = X509::from_pem(&std::fs::read(&svarut.certificate_pem).unwrap()).unwrap();
        assert_eq!(
            written.to_der().unwrap(),
            svarut.certificate.to_der().unwrap()
        );
        let formidler = pki.issue_meldingsformidler("pw").unwrap();
        assert!(dir.path().join("meldingsformidler.pem").exists());
        let (certificate, key) = pki.issued_identity(MELDINGSFORMIDLER_ORGNR).unwrap();
        assert_eq!(
            certificate.to_der().unwrap(),
            formidler.certificate.to_der().unwrap()
        );
        assert!(key.public_eq(&formidler.key));
        assert!(pki.issued_identity("910075918").is_err());
        assert!(crate::fixture::valid_orgnr(SVARUT_ORGNR));
        assert!(crate::fixture::valid_orgnr(MELDINGSFORMIDLER_ORGNR));
    }
}
