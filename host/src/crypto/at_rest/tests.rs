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
    let out = f.dir.path().join("out.bin");
    let output = Command::new("openssl")
        .args(["cms", "-decrypt", "-binary", "-inform", "DER", "-in"])
        .arg(&path)
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
    assert!(std::fs::read(&out).unwrap() == plain);
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
    let blob = store(&f, &random(CHUNK + 50));
    let path = f.plain_store.dir().join(blob.id().as_str());
    let good = std::fs::read(&path).unwrap();

    let mut truncated = good.clone();
    truncated.truncate(good.len() - 11);
    let mut padding = good.clone();
    let last = good.len() - TRAILER.len() - 1;
    padding[last] ^= 0xFF;
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
