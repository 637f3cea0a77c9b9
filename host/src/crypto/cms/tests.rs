//! Interoperability with the `openssl cms` command both ways, and refusal of broken input.

use std::path::Path;
use std::process::Command;

use super::*;
use crate::crypto::testpki::{TestPki, fixture};

fn random(length: usize) -> Vec<u8> {
    let mut bytes = vec![0; length];
    openssl::rand::rand_bytes(&mut bytes).unwrap();
    bytes
}

fn openssl(arguments: &[&str]) {
    let output = Command::new("openssl")
        .args(arguments)
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {} failed: {}",
        arguments.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn blob_bytes(blob: &Blob) -> Vec<u8> {
    let mut bytes = Vec::new();
    blob.open().unwrap().read_to_end(&mut bytes).unwrap();
    bytes
}

use std::io::Read as _;

#[test]
fn openssl_decrypts_what_we_encrypt_with_either_key_transport() {
    let f = fixture();
    let plain = random(200_003);
    let content = Blob::from_bytes(&f.store, &plain).unwrap();
    for transport in [KeyTransport::RsaOaepSha256, KeyTransport::RsaPkcs1v15] {
        let enveloped = encrypt_blob(&f.store, &content, &f.pki.leaf, transport).unwrap();
        let (input, output) = (f.dir.path().join("ours.der"), f.dir.path().join("out.bin"));
        std::fs::write(&input, blob_bytes(&enveloped)).unwrap();
        openssl(&[
            "cms",
            "-decrypt",
            "-binary",
            "-inform",
            "DER",
            "-in",
            text(&input),
            "-inkey",
            text(&f.pki.key_pem()),
            "-recip",
            text(&f.pki.leaf_pem()),
            "-out",
            text(&output),
        ]);
        assert_eq!(std::fs::read(&output).unwrap(), plain, "{transport:?}");
        // Our output is DER: openssl's strict parser reads it and it re-encodes identically.
        let der = f.dir.path().join("reencoded.der");
        openssl(&[
            "cms",
            "-cmsout",
            "-inform",
            "DER",
            "-in",
            text(&input),
            "-outform",
            "DER",
            "-out",
            text(&der),
        ]);
        assert_eq!(
            std::fs::read(&der).unwrap(),
            blob_bytes(&enveloped),
            "{transport:?}"
        );
    }
}

#[test]
fn we_decrypt_what_openssl_encrypts_der_and_streamed_ber() {
    let f = fixture();
    let plain = random(300_001);
    let input = f.dir.path().join("plain.bin");
    std::fs::write(&input, &plain).unwrap();
    let certificate = f.pki.business_certificate();
    let oaep: &[&str] = &[
        "-keyopt",
        "rsa_padding_mode:oaep",
        "-keyopt",
        "rsa_oaep_md:sha256",
        "-keyopt",
        "rsa_mgf1_md:sha256",
    ];
    let cases: [(&str, &[&str], &[&str]); 5] = [
        ("pkcs1", &[], &[]),
        ("oaep", oaep, &[]),
        ("pkcs1 stream", &[], &["-stream"]),
        ("oaep stream", oaep, &["-stream"]),
        ("subject key id", &[], &["-keyid", "-stream"]),
    ];
    let leaf = f.pki.leaf_pem();
    for (name, key_options, options) in cases {
        let output = f.dir.path().join("theirs.der");
        let mut arguments = vec![
            "cms",
            "-encrypt",
            "-binary",
            "-aes256",
            "-in",
            text(&input),
            "-outform",
            "DER",
            "-out",
            text(&output),
        ];
        arguments.extend(options);
        arguments.extend(["-recip", text(&leaf)]);
        arguments.extend(key_options);
        openssl(&arguments);
        let enveloped = Blob::from_bytes(&f.store, &std::fs::read(&output).unwrap()).unwrap();
        let opened = decrypt_blob(&f.store, &enveloped, &certificate)
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert!(blob_bytes(&opened) == plain, "{name}: plaintext differs");
    }
}

#[test]
fn round_trips_every_padding_length() {
    let f = fixture();
    let certificate = f.pki.business_certificate();
    for length in [0, 1, 15, 16, 17, 65_536, 3 * 65_537] {
        let plain = random(length);
        let content = Blob::from_bytes(&f.store, &plain).unwrap();
        let enveloped =
            encrypt_blob(&f.store, &content, &f.pki.leaf, KeyTransport::RsaOaepSha256).unwrap();
        let opened = decrypt_blob(&f.store, &enveloped, &certificate).unwrap();
        assert_eq!(opened.size(), length as u64);
        assert!(blob_bytes(&opened) == plain, "length {length}");
    }
}

#[test]
fn refuses_content_for_another_recipient() {
    let f = fixture();
    let other_dir = f.dir.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    let other = TestPki::new(&other_dir, 365);
    let content = Blob::from_bytes(&f.store, b"secret").unwrap();
    let enveloped =
        encrypt_blob(&f.store, &content, &other.leaf, KeyTransport::RsaPkcs1v15).unwrap();
    let error = decrypt_blob(&f.store, &enveloped, &f.pki.business_certificate()).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, CmsError::Invalid(_)), "{message}");
    assert!(
        message.contains("not addressed to this organisation") && message.contains("CN=Test CA"),
        "{message}"
    );
}

#[test]
fn corrupted_or_truncated_input_fails_and_leaves_nothing() {
    let f = fixture();
    let certificate = f.pki.business_certificate();
    let content = Blob::from_bytes(&f.store, &random(100_000)).unwrap();
    let enveloped =
        encrypt_blob(&f.store, &content, &f.pki.leaf, KeyTransport::RsaPkcs1v15).unwrap();
    let good = blob_bytes(&enveloped);
    // A corrupted key wrapped with PKCS#1 v1.5 unwraps to a random key (OpenSSL's implicit
    // rejection), whose plaintext has valid padding one time in 256; OAEP always notices.
    let oaep = encrypt_blob(&f.store, &content, &f.pki.leaf, KeyTransport::RsaOaepSha256).unwrap();
    let oaep = blob_bytes(&oaep);
    let blobs_before = std::fs::read_dir(f.dir.path().join("blobs"))
        .unwrap()
        .count();

    let mut wrong_key = oaep.clone();
    let key_offset = oaep.len() - 100_016 - 300; // inside the wrapped key, before the content
    wrong_key[key_offset] ^= 1;
    // Flipping a bit of the next-to-last ciphertext block flips the same bit of the padding
    // (16 bytes of 0x10, as the content is a multiple of the block): 0x11 is never valid.
    let mut last_block = good.clone();
    let padding_byte = last_block.len() - 17;
    last_block[padding_byte] ^= 1;
    let truncated = good[..good.len() - 1000].to_vec();
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("wrapped key", wrong_key, "wrong key or corrupted"),
        ("last block", last_block, "wrong key or corrupted"),
        ("truncated", truncated, "truncated"),
        ("not CMS", b"hello world".to_vec(), "ContentInfo"),
    ];
    for (name, bytes, expected) in cases {
        let blob = Blob::from_bytes(&f.store, &bytes).unwrap();
        let error = decrypt_blob(&f.store, &blob, &certificate).unwrap_err();
        assert!(matches!(error, CmsError::Invalid(_)), "{name}: {error}");
        assert!(error.to_string().contains(expected), "{name}: {error}");
    }
    let blobs_after = std::fs::read_dir(f.dir.path().join("blobs"))
        .unwrap()
        .count();
    assert_eq!(
        blobs_before, blobs_after,
        "a failed decryption left a blob behind"
    );
}

#[test]
fn hostile_lengths_cost_an_error_not_memory() {
    let f = fixture();
    let certificate = f.pki.business_certificate();
    // ContentInfo, envelopedData, [0], EnvelopedData, version, then a SET claiming 2 GiB.
    let mut hostile = vec![0x30, 0x80, 0x06, 0x09];
    hostile.extend_from_slice(crate::crypto::der::oid::ENVELOPED_DATA);
    hostile.extend([
        0xA0, 0x80, 0x30, 0x80, 0x02, 0x01, 0x00, 0x31, 0x84, 0x7F, 0xFF, 0xFF, 0xFF,
    ]);
    let blob = Blob::from_bytes(&f.store, &hostile).unwrap();
    let error = decrypt_blob(&f.store, &blob, &certificate).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("larger than this reader accepts"),
        "{error}"
    );
}

#[test]
fn refuses_content_that_changes_length() {
    let f = fixture();
    let mut sink = Vec::new();
    let error = encrypt(
        &mut &b"four"[..],
        5,
        &f.pki.leaf,
        KeyTransport::RsaPkcs1v15,
        &mut sink,
    )
    .unwrap_err();
    assert!(error.to_string().contains("5 bytes long"), "{error}");
}
