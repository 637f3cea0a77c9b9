//! A throwaway PKI for tests: a CA and a business certificate it issued, made fresh in each test
//! so no key material is ever committed.

use std::path::{Path, PathBuf};

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};
use openssl::x509::{X509, X509Builder, X509NameBuilder};

use super::BusinessCertificate;

pub const PASSWORD: &str = "changeit";
pub const ALIAS: &str = "virksomhet";
pub const ORGNR: &str = "910075918";

/// A CA and one leaf, with their files written under `dir`.
pub struct TestPki {
    pub ca: X509,
    pub leaf: X509,
    pub leaf_key: PKey<Private>,
    pub dir: PathBuf,
}

impl TestPki {
    /// A leaf valid from a day ago for `days_valid` days.
    pub fn new(dir: &Path, days_valid: u32) -> Self {
        let ca_key = rsa_key();
        let ca = certificate(
            &[("CN", "Test CA"), ("O", "Test")],
            &ca_key,
            None,
            3650,
            true,
        );
        let leaf_key = rsa_key();
        let leaf = certificate(
            &[
                ("CN", "Testkommune"),
                ("O", "Testkommune"),
                ("organizationIdentifier", &format!("NTRNO-{ORGNR}")),
            ],
            &leaf_key,
            Some((&ca, &ca_key)),
            days_valid,
            false,
        );
        let pki = Self {
            ca,
            leaf,
            leaf_key,
            dir: dir.to_owned(),
        };
        pki.write_files();
        pki
    }

    fn write_files(&self) {
        let pem = |certificate: &X509| certificate.to_pem().expect("pem");
        std::fs::write(self.ca_pem(), pem(&self.ca)).expect("write");
        std::fs::write(self.leaf_pem(), pem(&self.leaf)).expect("write");
        let chain = [pem(&self.leaf), pem(&self.ca)].concat();
        std::fs::write(self.chain_pem(), chain).expect("write");
        let key = self.leaf_key.private_key_to_pem_pkcs8().expect("key");
        std::fs::write(self.key_pem(), key).expect("write");
        let mut cas = Stack::new().expect("stack");
        cas.push(self.ca.clone()).expect("push");
        let p12 = Pkcs12::builder()
            .name(ALIAS)
            .pkey(&self.leaf_key)
            .cert(&self.leaf)
            .ca(cas)
            .build2(PASSWORD)
            .expect("pkcs12");
        std::fs::write(self.p12(), p12.to_der().expect("der")).expect("write");
    }

    pub fn ca_pem(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn leaf_pem(&self) -> PathBuf {
        self.dir.join("leaf.pem")
    }
    pub fn chain_pem(&self) -> PathBuf {
        self.dir.join("chain.pem")
    }
    pub fn key_pem(&self) -> PathBuf {
        self.dir.join("key.pem")
    }
    pub fn p12(&self) -> PathBuf {
        self.dir.join("keystore.p12")
    }

    /// The business certificate, loaded from the PKCS#12 file.
    pub fn business_certificate(&self) -> BusinessCertificate {
        BusinessCertificate::from_pkcs12(&self.p12(), PASSWORD, Some(ALIAS)).expect("load")
    }
}

fn rsa_key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("pkey")
}

fn certificate(
    subject: &[(&str, &str)],
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    days_valid: u32,
    ca: bool,
) -> X509 {
    let mut name = X509NameBuilder::new().expect("name");
    for (field, value) in subject {
        name.append_entry_by_text(field, value).expect("entry");
    }
    let name = name.build();
    let mut builder = X509Builder::new().expect("builder");
    builder.set_version(2).expect("version");
    let serial = BigNum::from_u32(rand_serial()).and_then(|n| n.to_asn1_integer());
    builder
        .set_serial_number(&serial.expect("serial"))
        .expect("serial");
    builder.set_subject_name(&name).expect("subject");
    let issuer_name = issuer.map_or(&*name, |(ca, _)| ca.subject_name());
    builder.set_issuer_name(issuer_name).expect("issuer");
    builder.set_pubkey(key).expect("pubkey");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let not_before = Asn1Time::from_unix(now - 86_400).expect("time");
    let not_after = Asn1Time::from_unix(now - 86_400 + i64::from(days_valid) * 86_400);
    builder.set_not_before(&not_before).expect("not before");
    builder
        .set_not_after(&not_after.expect("time"))
        .expect("not after");
    let constraints = if ca {
        BasicConstraints::new().critical().ca().build()
    } else {
        BasicConstraints::new().build()
    };
    builder
        .append_extension(constraints.expect("ext"))
        .expect("ext");
    let usage = if ca {
        KeyUsage::new().key_cert_sign().crl_sign().build()
    } else {
        KeyUsage::new()
            .digital_signature()
            .non_repudiation()
            .key_encipherment()
            .data_encipherment()
            .build()
    };
    builder.append_extension(usage.expect("ext")).expect("ext");
    let key_id = SubjectKeyIdentifier::new().build(&builder.x509v3_context(None, None));
    builder.append_extension(key_id.expect("ext")).expect("ext");
    let signing_key = issuer.map_or(key, |(_, ca_key)| ca_key);
    builder
        .sign(signing_key, MessageDigest::sha256())
        .expect("sign");
    builder.build()
}

fn rand_serial() -> u32 {
    let mut bytes = [0; 4];
    openssl::rand::rand_bytes(&mut bytes).expect("rand");
    u32::from_be_bytes(bytes) >> 1
}

/// A test PKI and a blob store in one temporary directory, as the crypto tests use them.
pub(crate) struct Fixture {
    /// The directory (kept alive with the fixture).
    pub dir: tempfile::TempDir,
    /// The PKI, valid for a year.
    pub pki: TestPki,
    /// A file blob store in `dir/blobs`.
    pub store: std::sync::Arc<dyn crate::blobs::BlobStore>,
}

/// A fresh [`Fixture`].
pub(crate) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path(), 365);
    let store: std::sync::Arc<dyn crate::blobs::BlobStore> =
        std::sync::Arc::new(crate::blobs::FileBlobStore::open(dir.path().join("blobs")).unwrap());
    Fixture { dir, pki, store }
}
