//! Containers we build verify with `openssl cms -verify` and with our reader; tampering fails.

use std::io::{Cursor, Read, Write};
use std::process::Command;

use openssl::x509::store::X509StoreBuilder;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use super::*;
use crate::blobs::Blob;
use crate::crypto::testpki::{Fixture, TestPki, fixture};

fn container(f: &Fixture) -> Blob {
    let entries = vec![
        AsicEntry {
            name: "manifest.xml".into(),
            mime_type: "application/xml".into(),
            content: Blob::from_bytes(&f.store, b"<manifest/>").unwrap(),
        },
        AsicEntry {
            name: "docs/hoveddokument.pdf".into(),
            mime_type: "application/pdf".into(),
            content: Blob::from_bytes(&f.store, &vec![7u8; 300_000]).unwrap(),
        },
    ];
    build(&f.store, &f.pki.business_certificate(), entries).unwrap()
}

fn bytes(blob: &Blob) -> Vec<u8> {
    let mut bytes = Vec::new();
    blob.open().unwrap().read_to_end(&mut bytes).unwrap();
    bytes
}

fn entries(zip: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = ZipArchive::new(Cursor::new(zip)).unwrap();
    (0..archive.len())
        .map(|index| {
            let mut file = archive.by_index(index).unwrap();
            let mut content = Vec::new();
            file.read_to_end(&mut content).unwrap();
            (file.name().unwrap().into_owned(), content)
        })
        .collect()
}

/// A container with the same entries, where `change` may alter them.
fn rebuilt(f: &Fixture, original: &Blob, change: impl Fn(&mut Vec<(String, Vec<u8>)>)) -> Blob {
    let mut entries = entries(&bytes(original));
    change(&mut entries);
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in entries {
        let method = if name == "mimetype" {
            CompressionMethod::Stored
        } else {
            CompressionMethod::Deflated
        };
        zip.start_file(
            name,
            SimpleFileOptions::default().compression_method(method),
        )
        .unwrap();
        zip.write_all(&content).unwrap();
    }
    let zip = zip.finish().unwrap().into_inner();
    Blob::from_bytes(&f.store, &zip).unwrap()
}

fn openssl(arguments: &[&str]) -> std::process::Output {
    Command::new("openssl")
        .args(arguments)
        .output()
        .expect("run openssl")
}

#[test]
fn openssl_verifies_the_signature_over_the_manifest() {
    let f = fixture();
    let asic = bytes(&container(&f));
    let entries = entries(&asic);
    let names: Vec<&str> = entries.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "mimetype",
            "manifest.xml",
            "docs/hoveddokument.pdf",
            OASIS_MANIFEST,
            ASIC_MANIFEST,
            SIGNATURE
        ]
    );
    let file = |name: &str| entries.iter().find(|(n, _)| n == name).unwrap().1.clone();
    let (manifest, signature) = (f.dir.path().join("m.xml"), f.dir.path().join("s.p7s"));
    std::fs::write(&manifest, file(ASIC_MANIFEST)).unwrap();
    std::fs::write(&signature, file(SIGNATURE)).unwrap();
    let (manifest, signature) = (manifest.to_str().unwrap(), signature.to_str().unwrap());
    let ca = f.pki.ca_pem();
    for trust in [vec!["-noverify"], vec!["-CAfile", ca.to_str().unwrap()]] {
        let mut arguments = vec![
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            signature,
            "-content",
            manifest,
            "-out",
            "/dev/null",
        ];
        arguments.extend(trust);
        let output = openssl(&arguments);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // A manifest that differs by one byte does not verify.
    let mut altered = file(ASIC_MANIFEST);
    altered[100] ^= 1;
    let altered_path = f.dir.path().join("altered.xml");
    std::fs::write(&altered_path, altered).unwrap();
    let output = openssl(&[
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        signature,
        "-content",
        altered_path.to_str().unwrap(),
        "-noverify",
        "-out",
        "/dev/null",
    ]);
    assert!(!output.status.success());
    // The CAdES-BES signed attributes are there.
    let printed = openssl(&[
        "cms", "-cmsout", "-print", "-inform", "DER", "-in", signature,
    ]);
    let printed = String::from_utf8_lossy(&printed.stdout);
    for attribute in [
        "contentType",
        "signingTime",
        "messageDigest",
        "signingCertificateV2",
    ] {
        assert!(
            printed.contains(attribute),
            "{attribute} missing:\n{printed}"
        );
    }
}

#[test]
fn mimetype_is_first_stored_and_at_the_fixed_offset() {
    let f = fixture();
    let asic = bytes(&container(&f));
    assert_eq!(&asic[0..4], b"PK\x03\x04");
    assert_eq!(&asic[30..38], b"mimetype");
    assert_eq!(&asic[38..38 + MIME_TYPE.len()], MIME_TYPE.as_bytes());
}

#[test]
fn our_reader_verifies_our_container() {
    let f = fixture();
    let blob = container(&f);
    let verified = verify(&blob, None).unwrap();
    assert_eq!(
        verified.signer.to_der().unwrap(),
        f.pki.leaf.to_der().unwrap()
    );
    let listed: Vec<(&str, &str, u64)> = verified
        .entries
        .iter()
        .map(|entry| (entry.name.as_str(), entry.mime_type.as_str(), entry.size))
        .collect();
    assert_eq!(
        listed,
        [
            ("manifest.xml", "application/xml", 11),
            ("docs/hoveddokument.pdf", "application/pdf", 300_000)
        ]
    );
    let mut trusted = X509StoreBuilder::new().unwrap();
    trusted.add_cert(f.pki.ca.clone()).unwrap();
    verify(&blob, Some(&trusted.build())).unwrap();
    // A store with an unrelated anchor refuses the chain.
    let other_dir = f.dir.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    let other = TestPki::new(&other_dir, 365);
    let mut untrusted = X509StoreBuilder::new().unwrap();
    untrusted.add_cert(other.ca.clone()).unwrap();
    let error = verify(&blob, Some(&untrusted.build())).unwrap_err();
    assert!(matches!(error, AsicError::Signature(_)), "{error}");
}

#[test]
fn a_tampered_entry_fails_the_reader() {
    let f = fixture();
    let original = container(&f);
    let swapped = rebuilt(&f, &original, |entries| {
        let pdf = entries
            .iter_mut()
            .find(|(name, _)| name == "docs/hoveddokument.pdf")
            .unwrap();
        pdf.1[1000] ^= 1;
    });
    let error = verify(&swapped, None).unwrap_err();
    assert!(
        matches!(&error, AsicError::Tampered(name, reason) if name == "docs/hoveddokument.pdf" && reason.contains("digest")),
        "{error}"
    );
    // Flipping a stored byte of the zip itself is caught too (by the zip CRC, then the digest).
    let mut raw = bytes(&original);
    let at = raw
        .windows(11)
        .position(|w| w == b"<manifest/>")
        .unwrap_or(45);
    raw[at] ^= 1;
    let error = verify(&Blob::from_bytes(&f.store, &raw).unwrap(), None).unwrap_err();
    assert!(
        matches!(error, AsicError::Tampered(..) | AsicError::Invalid(_)),
        "{error}"
    );

    let removed = rebuilt(&f, &original, |entries| {
        entries.retain(|(name, _)| name != "manifest.xml")
    });
    let error = verify(&removed, None).unwrap_err();
    assert!(error.to_string().contains("missing"), "{error}");
    let extra = rebuilt(&f, &original, |entries| {
        entries.push(("extra.txt".into(), b"unsigned".to_vec()))
    });
    let error = verify(&extra, None).unwrap_err();
    assert!(error.to_string().contains("not covered"), "{error}");
    let manifest_changed = rebuilt(&f, &original, |entries| {
        let manifest = entries
            .iter_mut()
            .find(|(name, _)| name == ASIC_MANIFEST)
            .unwrap();
        manifest.1 = String::from_utf8(manifest.1.clone())
            .unwrap()
            .replace("application/pdf", "application/xyz")
            .into_bytes();
    });
    let error = verify(&manifest_changed, None).unwrap_err();
    assert!(matches!(error, AsicError::Signature(_)), "{error}");
    let not_first = rebuilt(&f, &original, |entries| entries.rotate_left(1));
    let error = verify(&not_first, None).unwrap_err();
    assert!(
        error.to_string().contains("first entry is not mimetype"),
        "{error}"
    );
}

#[test]
fn refuses_reserved_duplicate_and_unsafe_names() {
    let f = fixture();
    let certificate = f.pki.business_certificate();
    let entry = |name: &str| AsicEntry {
        name: name.into(),
        mime_type: "text/plain".into(),
        content: Blob::from_bytes(&f.store, b"x").unwrap(),
    };
    for (entries, expected) in [
        (vec![entry("mimetype")], "reserved"),
        (vec![entry("META-INF/x.xml")], "reserved"),
        (vec![entry("a.txt"), entry("a.txt")], "duplicate"),
        (vec![entry("../a.txt")], "unsafe"),
    ] {
        let error = build(&f.store, &certificate, entries).unwrap_err();
        assert!(error.to_string().contains(expected), "{error}");
    }
}
