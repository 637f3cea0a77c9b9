//! `cargo xtask bench crypto`: a CMS encrypt-then-decrypt round trip of a large file through the
//! blob store, beside `openssl cms -encrypt -stream` on the same file, with our peak memory.
//!
//! The file is `CRYPTO_BENCH_BYTES` long (default 2 GiB). The round trip must give back the same
//! SHA-256, and its peak resident set (VmHWM, reset just before) must stay under 64 MiB; the
//! bench fails otherwise.

use std::io::{self, Read, Write};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use integrasjonspunkt::blobs::{Blob, BlobStore, FileBlobStore};
use integrasjonspunkt::crypto::BusinessCertificate;
use integrasjonspunkt::crypto::cms::{self, KeyTransport};
use openssl::hash::{Hasher, MessageDigest};

const DEFAULT_BYTES: u64 = 2 << 30;
const RSS_TARGET_MIB: u64 = 64;

fn main() -> anyhow::Result<()> {
    let size = match std::env::var("CRYPTO_BENCH_BYTES") {
        Ok(value) => value
            .parse()
            .context("CRYPTO_BENCH_BYTES must be a byte count")?,
        Err(_) => DEFAULT_BYTES,
    };
    let dir = tempfile::tempdir()?;
    let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
    run(Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=bench/O=Bench"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert))?;
    let certificate = BusinessCertificate::from_pem(&key, &cert)?;
    let files = Arc::new(FileBlobStore::open(dir.path().join("blobs"))?);
    let store: Arc<dyn BlobStore> = files.clone();

    eprintln!("writing {size} bytes of test data ...");
    let (plain, plain_digest) = write_test_data(&store, size)?;

    reset_peak_rss()?;
    let started = Instant::now();
    let enveloped = cms::encrypt_blob(
        &store,
        &plain,
        certificate.certificate(),
        KeyTransport::RsaOaepSha256,
    )?;
    let encrypt_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let decrypted = cms::decrypt_blob(&store, &enveloped, &certificate)?;
    let decrypt_seconds = started.elapsed().as_secs_f64();
    let peak_mib = peak_rss_kib()? / 1024;
    let round_trip_ok = digest(&mut decrypted.open()?)? == plain_digest;
    drop((enveloped, decrypted));

    // The file store keeps each blob as a file named by its id.
    let plain_path = files.dir().join(plain.id().as_str());
    let theirs = dir.path().join("openssl.cms");
    let started = Instant::now();
    run(Command::new("openssl")
        .args([
            "cms", "-encrypt", "-stream", "-binary", "-aes256", "-outform", "DER",
        ])
        .arg("-in")
        .arg(&plain_path)
        .arg("-out")
        .arg(&theirs)
        .arg("-recip")
        .arg(&cert))?;
    let openssl_seconds = started.elapsed().as_secs_f64();
    std::fs::remove_file(&theirs)?;

    let rate = |seconds: f64| size as f64 / 1e6 / seconds;
    println!(
        "CMS EnvelopedData, AES-256-CBC, {size} bytes ({:.2} GiB)",
        size as f64 / (1u64 << 30) as f64
    );
    println!("| operation | seconds | MB/s |");
    println!("|---|---:|---:|");
    println!(
        "| ours: encrypt (RSA-OAEP-SHA256, DER, streaming) | {encrypt_seconds:.2} | {:.0} |",
        rate(encrypt_seconds)
    );
    println!(
        "| ours: decrypt (streaming) | {decrypt_seconds:.2} | {:.0} |",
        rate(decrypt_seconds)
    );
    println!(
        "| openssl cms -encrypt -stream -binary -aes256 | {openssl_seconds:.2} | {:.0} |",
        rate(openssl_seconds)
    );
    println!(
        "| ratio ours/openssl (encrypt) | | {:.2} |",
        openssl_seconds / encrypt_seconds
    );
    println!("peak RSS during our round trip: {peak_mib} MiB (target < {RSS_TARGET_MIB} MiB)");
    println!(
        "round trip sha256: {}",
        if round_trip_ok {
            "identical"
        } else {
            "DIFFERENT"
        }
    );
    ensure!(
        round_trip_ok,
        "the decrypted content differs from the original"
    );
    ensure!(
        peak_mib < RSS_TARGET_MIB,
        "peak RSS {peak_mib} MiB is over the {RSS_TARGET_MIB} MiB target"
    );
    Ok(())
}

/// Writes `size` pseudo-random bytes as a blob; returns it and its SHA-256.
fn write_test_data(store: &Arc<dyn BlobStore>, size: u64) -> anyhow::Result<(Blob, Vec<u8>)> {
    let mut writer = store.create()?;
    let mut hasher = Hasher::new(MessageDigest::sha256())?;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for word in chunk.chunks_exact_mut(8) {
            // xorshift64: incompressible enough, and far faster than a CSPRNG.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let take = left.min(chunk.len() as u64) as usize;
        writer.write_all(&chunk[..take])?;
        hasher.update(&chunk[..take])?;
        left -= take as u64;
    }
    let (id, length) = writer.commit()?;
    Ok((
        Blob::temporary(store.clone(), id, length),
        hasher.finish()?.to_vec(),
    ))
}

fn digest(reader: &mut dyn Read) -> anyhow::Result<Vec<u8>> {
    let mut hasher = Hasher::new(MessageDigest::sha256())?;
    io::copy(reader, &mut hasher)?;
    Ok(hasher.finish()?.to_vec())
}

fn reset_peak_rss() -> anyhow::Result<()> {
    std::fs::write("/proc/self/clear_refs", "5").context("resetting VmHWM")
}

fn peak_rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .context("no VmHWM in /proc/self/status")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("VmHWM value")?
        .parse()?)
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command.output().context("running openssl")?;
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
