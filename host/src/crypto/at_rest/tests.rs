//! The encrypted store gives back what was written, at any offset, to zips too, and what it
//! stores is standard CMS that `openssl cms -decrypt` opens.

use std::io::{Read, Seek, SeekFrom, Write};
use std::process::Command;

use super::*;
use crate::archive::{self, EntrySource, NewEntry};
use crate::blobs::{Blob, FileBlobStore};
use crate::crypto::testpki::TestPki;

struct Fixture {
    dir: tempfile::TempDir,
    pki: TestPki,
    plain_store: Arc<FileBlobStore>,
    store: Arc<dyn BlobStore>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path(), 365);
    let plain_store = Arc::new(FileBlobStore::open(dir.path().join("blobs")).unwrap());
    let store: Arc<dyn BlobStore> = Arc::new(EncryptedBlobStore::new(
        plain_store.clone(),
        pki.business_certificate(),
    ));
    Fixture {
        dir,
        pki,
        plain_store,
        store,
    }
}

fn random(length: usize) -> Vec<u8> {
    let mut bytes = vec![0; length];
    openssl::rand::rand_bytes(&mut bytes).unwrap();
    bytes
}

/// Writes `plain` in uneven pieces.
fn store(f: &Fixture, plain: &[u8]) -> Blob {
    let mut writer = f.store.create().unwrap();
    for piece in plain.chunks(7_777) {
        writer.write_all(piece).unwrap();
    }
    let (id, size) = writer.commit().unwrap();
    assert_eq!(size, plain.len() as u64);
    Blob::kept(f.store.clone(), id, size)
}

/// What `openssl cms -decrypt` makes of the DER file at `path` with the organisation's key.
fn openssl_decrypt(f: &Fixture, path: &std::path::Path) -> Vec<u8> {
    let out = f.dir.path().join("decrypted.bin");
    let output = Command::new("openssl")
        .args(["cms", "-decrypt", "-binary", "-inform", "DER", "-in"])
        .arg(path)
        .arg("-inkey")
        .arg(f.pki.key_pem())
        .arg("-out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(&out).unwrap()
}

#[test]
fn reads_back_every_length_sequentially_and_at_any_offset() {
    let f = fixture();
    for length in [
        0,
        1,
        16,
        CHUNK - 1,
        CHUNK,
        CHUNK + 1,
        2 * CHUNK,
        3 * CHUNK + 12_345,
    ] {
        let plain = random(length);
        let blob = store(&f, &plain);
        let mut read = Vec::new();
        blob.open().unwrap().read_to_end(&mut read).unwrap();
        assert!(read == plain, "length {length}: sequential read differs");
        let offsets = [
            0,
            1,
            15,
            16,
            17,
            CHUNK - 1,
            CHUNK,
            CHUNK + 5,
            2 * CHUNK - 3,
            length.saturating_sub(1),
        ];
        for offset in offsets.into_iter().filter(|&offset| offset <= length) {
            let got = blob.read_at(offset as u64, 100_000).unwrap();
            let end = length.min(offset + 100_000);
            assert!(
                got == plain[offset..end],
                "length {length}, offset {offset}"
            );
        }
        let mut reader = blob.open().unwrap();
        assert_eq!(reader.seek(SeekFrom::End(0)).unwrap(), length as u64);
        assert!(
            reader
                .seek(SeekFrom::Current(-(length as i64) - 1))
                .is_err()
        );
    }
}

#[test]
fn stored_bytes_are_cms_that_openssl_decrypts() {
    let f = fixture();
    let plain = random(3 * CHUNK + 100);
    let blob = store(&f, &plain);
    let path = f.plain_store.dir().join(blob.id().as_str());
    let stored = std::fs::read(&path).unwrap();
    assert!(
        !stored
            .windows(64)
            .any(|window| window == &plain[1000..1064]),
        "plaintext at rest"
    );
    assert!(openssl_decrypt(&f, &path) == plain);
    // Our streaming decryption reads it too.
    let own = Blob::from_bytes(&(f.plain_store.clone() as Arc<dyn BlobStore>), &stored).unwrap();
    let opened = crate::crypto::cms::decrypt_blob(&f.store, &own, &f.pki.business_certificate());
    let mut read = Vec::new();
    opened
        .unwrap()
        .open()
        .unwrap()
        .read_to_end(&mut read)
        .unwrap();
    assert!(read == plain);
}

#[test]
fn zips_are_written_and_read_through_it() {
    let f = fixture();
    let document = store(&f, &random(200_000));
    let entries = vec![
        NewEntry {
            name: "a.bin".into(),
            source: EntrySource::Blob(document.clone()),
            compress: false,
        },
        NewEntry {
            name: "b.txt".into(),
            source: EntrySource::Bytes(b"hello".to_vec()),
            compress: true,
        },
    ];
    let zip = archive::zip(&f.store, entries).unwrap();
    let listed = archive::list(&zip).unwrap();
    assert_eq!(listed.len(), 2);
    let opened = archive::open(&f.store, &zip, "a.bin").unwrap();
    assert_eq!(
        opened.read_at(0, 300_000).unwrap(),
        document.read_at(0, 300_000).unwrap()
    );
}

#[test]
fn corrupted_or_foreign_blobs_fail_clearly() {
    let f = fixture();
    let length = CHUNK + 50;
    let blob = store(&f, &random(length));
    let path = f.plain_store.dir().join(blob.id().as_str());
    let good = std::fs::read(&path).unwrap();

    let mut truncated = good.clone();
    truncated.truncate(good.len() - 11);
    // CBC: a byte changed in the block before the last changes the same byte of the last
    // block's plaintext. The last byte is a padding byte; turned into 0 it is never valid
    // padding. (Changing the last block itself leaves random plaintext, whose padding looks
    // valid about once in 256 runs.)
    let mut padding = good.clone();
    let last = good.len() - TRAILER.len() - 1;
    let pad = u8::try_from(16 - length % 16).unwrap();
    padding[last - 16] ^= pad;
    let other_dir = f.dir.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    let other = TestPki::new(&other_dir, 365);
    let foreign_store =
        EncryptedBlobStore::new(f.plain_store.clone(), other.business_certificate());
    let mut writer = foreign_store.create().unwrap();
    writer.write_all(b"someone else's").unwrap();
    let (foreign, _) = writer.commit().unwrap();
    let foreign = std::fs::read(f.plain_store.dir().join(foreign.as_str())).unwrap();

    for (name, bytes, expected) in [
        ("truncated", truncated, "corrupted"),
        ("padding", padding, "bad padding"),
        ("foreign", foreign, "not addressed to this organisation"),
        ("plain", b"not encrypted".to_vec(), "ContentInfo"),
    ] {
        let mut writer = f.plain_store.create().unwrap();
        writer.write_all(&bytes).unwrap();
        let (id, _) = writer.commit().unwrap();
        let error = f
            .store
            .open(&id)
            .err()
            .unwrap_or_else(|| panic!("{name}: opened"));
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData, "{name}");
        assert!(error.to_string().contains(expected), "{name}: {error}");
    }
}

#[test]
fn sealed_bytes_are_the_stored_form_and_unseal_to_what_was_sealed() {
    let f = fixture();
    for length in [0, 1, 15, 16, 1024, CHUNK - 1, CHUNK, CHUNK + 1, 256 * 1024] {
        let plain = random(length);
        let sealed = f.store.seal(&plain).unwrap();
        assert!(
            length < 64 || !sealed.windows(64).any(|window| window == &plain[..64]),
            "plaintext in the sealed bytes at {length}"
        );
        assert!(f.store.unseal(&sealed).unwrap() == plain, "length {length}");
        // What a row holds opens as a stored blob would: the same at-rest layout.
        let mut writer = f.plain_store.create().unwrap();
        writer.write_all(&sealed).unwrap();
        let (id, _) = writer.commit().unwrap();
        let mut read = Vec::new();
        f.store.open(&id).unwrap().read_to_end(&mut read).unwrap();
        assert!(read == plain, "opened as a blob at {length}");
    }

    // And it is CMS that openssl opens.
    let plain = random(1000);
    let path = f.dir.path().join("sealed.der");
    std::fs::write(&path, f.store.seal(&plain).unwrap()).unwrap();
    assert!(openssl_decrypt(&f, &path) == plain);

    // Sealed for another organisation, or not sealed at all: a clear error, no bytes.
    let other_dir = f.dir.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    let other = TestPki::new(&other_dir, 365);
    let foreign = EncryptedBlobStore::new(f.plain_store.clone(), other.business_certificate())
        .seal(b"someone else's")
        .unwrap();
    for (bytes, expected) in [
        (foreign, "not addressed to this organisation"),
        (b"not sealed".to_vec(), "cannot be decrypted"),
    ] {
        let error = f.store.unseal(&bytes).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains(expected), "{error}");
    }
}

#[test]
fn one_content_key_serves_many_blobs_each_with_its_own_iv() {
    let f = fixture();
    let plain = b"the same small document";
    let first = f.store.seal(plain).unwrap();
    let second = f.store.seal(plain).unwrap();
    // The header up to the IV carries the RecipientInfos (the RSA-wrapped key): the same for
    // both. The ciphertexts differ, as their IVs do.
    let common = |a: &[u8], b: &[u8]| a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let shared = common(&first, &second);
    assert!(
        shared > 256,
        "only {shared} bytes in common: a new key each time"
    );
    assert_ne!(first, second, "the same plaintext sealed twice must differ");
    for sealed in [&first, &second] {
        assert_eq!(f.store.unseal(sealed).unwrap(), plain);
    }
    // After KEY_USES blobs, a new key: the wrapped key is no longer the same.
    for _ in 2..KEY_USES {
        f.store.seal(plain).unwrap();
    }
    let renewed = f.store.seal(plain).unwrap();
    let shared_after = common(&first, &renewed);
    assert!(
        shared_after < shared,
        "key not renewed after {KEY_USES} uses"
    );
    assert_eq!(f.store.unseal(&renewed).unwrap(), plain);
}
