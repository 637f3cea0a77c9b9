//! A fresh test PKI: a CA and a business certificate (virksomhetssertifikat) per organisation.
//!
//! Nothing external may be trusted offline, and certificates committed to a repository expire
//! (the upstream mocks' fixtures did, in 2024, and then every start failed its certificate
//! check). So the simulators make their PKI at start: a CA, and for each organisation a key
//! pair and a certificate naming its organisation number, written as the PKCS#12 keystore and
//! PEM files an integration point of the local environment loads.

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

/// A CA that issues business certificates.
pub struct TestPki {
    dir: PathBuf,
    ca_key: PKey<Private>,
    ca: X509,
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
        let key = PKey::from_rsa(Rsa::generate(2048)?)?;
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
        let key_pem = self.dir.join(format!("{organisation_number}-key.pem"));
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
    /// which the registry issues).
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
