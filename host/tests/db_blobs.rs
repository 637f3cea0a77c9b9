//! The database blob store on PostgreSQL: what is written reads back byte for byte at any offset,
//! a blob exists only once committed, removal is idempotent, the async adapters and encryption at
//! rest work over it, and a large blob goes into bounded chunk rows.
//!
//! Each test gets a database of its own, so the tests run in parallel. PostgreSQL being
//! unreachable fails the tests; it never skips them.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt as _;
use integrasjonspunkt::blobs::{Blob, BlobId, BlobStore, DbBlobStore, read_stream, write_stream};
use integrasjonspunkt::crypto::BusinessCertificate;
use integrasjonspunkt::crypto::at_rest::EncryptedBlobStore;
use integrasjonspunkt::store::Store;
use sha2::{Digest, Sha256};
use sqlx::{AnyPool, Connection as _, Executor as _, Row as _};
use tokio::runtime::Runtime;

/// Where PostgreSQL is when `IP_TEST_POSTGRES` does not say.
const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";
/// The store's chunk size; the tests aim at its boundaries.
const CHUNK: usize = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// The fixture.

/// A blob store on a database of its own, with a plain pool for counting rows. Fields drop in
/// order: the pools before the database, the runtime they run on last.
struct Fixture {
    blobs: Arc<DbBlobStore>,
    raw: AnyPool,
    _database: PostgresDatabase,
    runtime: Runtime,
}

impl Fixture {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let (store, raw, database) = runtime.block_on(async {
            let admin_url =
                std::env::var("IP_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_POSTGRES.to_owned());
            let name = format!("ip_blobs_{}", uuid::Uuid::new_v4().simple());
            let mut admin = sqlx::PgConnection::connect(&admin_url)
                .await
                .unwrap_or_else(|error| {
                    panic!(
                        "PostgreSQL is unreachable at {admin_url} (set IP_TEST_POSTGRES to point \
                         elsewhere); the database blob store cannot be tested without it: {error}"
                    )
                });
            admin
                .execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .unwrap_or_else(|error| panic!("CREATE DATABASE {name}: {error}"));
            admin.close().await.ok();
            let database = PostgresDatabase {
                admin_url: admin_url.clone(),
                name: name.clone(),
            };
            let url = database_url(&admin_url, &name);
            let store = Store::open(&url)
                .await
                .expect("open the store on PostgreSQL");
            let raw = AnyPool::connect(&url).await.expect("a plain pool");
            (store, raw, database)
        });
        let blobs = Arc::new(DbBlobStore::new(&store, runtime.handle().clone()));
        Self {
            blobs,
            raw,
            _database: database,
            runtime,
        }
    }

    fn dyn_store(&self) -> Arc<dyn BlobStore> {
        self.blobs.clone()
    }

    /// An integer the SQL returns, `$1` bound to `parameter` when given.
    fn number(&self, sql: &str, parameter: Option<&BlobId>) -> i64 {
        self.runtime.block_on(async {
            let mut query = sqlx::query(sql);
            if let Some(parameter) = parameter {
                query = query.bind(parameter.as_str().to_owned());
            }
            query
                .fetch_one(&self.raw)
                .await
                .unwrap_or_else(|error| panic!("{sql}: {error}"))
                .get::<i64, _>(0)
        })
    }

    /// Rows in both blob tables together.
    fn all_rows(&self) -> i64 {
        self.number(
            "SELECT (SELECT COUNT(*) FROM blob_chunk) + (SELECT COUNT(*) FROM blob_object)",
            None,
        )
    }
}

/// `admin_url` with its database replaced by `name`.
fn database_url(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (admin_url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |at| at + 3);
    let server = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    format!("{server}/{name}{query}")
}

/// Drops the test's database, best effort.
struct PostgresDatabase {
    admin_url: String,
    name: String,
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // A thread of its own, so this works whatever runtime the dropping thread is in.
        let dropper = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    admin.execute(sql.as_str()).await.ok();
                    admin.close().await.ok();
                }
            });
        });
        dropper.join().ok();
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn random(length: usize) -> Vec<u8> {
    let mut bytes = vec![0; length];
    openssl::rand::rand_bytes(&mut bytes).expect("random bytes");
    bytes
}

/// Writes `bytes` in uneven pieces and commits them as a kept blob.
fn store_in_pieces(store: &Arc<dyn BlobStore>, bytes: &[u8]) -> Blob {
    let mut writer = store.create().expect("create");
    for piece in bytes.chunks(100_003) {
        writer.write_all(piece).expect("write");
    }
    let (id, size) = writer.commit().expect("commit");
    assert_eq!(
        size,
        bytes.len() as u64,
        "commit reports the length written"
    );
    Blob::kept(store.clone(), id, size)
}

fn read_all(blob: &Blob) -> Vec<u8> {
    let mut read = Vec::new();
    blob.open()
        .expect("open")
        .read_to_end(&mut read)
        .expect("read");
    read
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Checks `read_at` and a seeking reader against `plain` at offsets around chunk boundaries.
fn check_offsets(blob: &Blob, plain: &[u8]) {
    let chunk = CHUNK;
    let length = plain.len();
    let offsets = [
        0,
        1,
        chunk - 1,
        chunk,
        chunk + 1,
        2 * chunk - 3,
        2 * chunk,
        length / 2,
        length.saturating_sub(1),
        length,
        length + 10,
    ];
    for offset in offsets {
        for want in [1, 7, chunk, chunk + 2, 3 * chunk] {
            let end = (offset + want).min(length).max(offset.min(length));
            let expected = &plain[offset.min(length)..end];
            let got = blob.read_at(offset as u64, want).expect("read_at");
            assert!(got == expected, "read_at({offset}, {want}) differs");
        }
    }

    let mut reader = blob.open().expect("open");
    let mut eight = [0; 8];
    for offset in [chunk + 3, 5, 2 * chunk - 4, chunk - 4, length - 8] {
        assert_eq!(
            reader.seek(SeekFrom::Start(offset as u64)).unwrap(),
            offset as u64
        );
        reader.read_exact(&mut eight).expect("read after seek");
        assert_eq!(eight, plain[offset..offset + 8], "8 bytes at {offset}");
    }
    let at = reader.seek(SeekFrom::End(-5)).unwrap();
    assert_eq!(at, length as u64 - 5);
    let mut tail = Vec::new();
    reader.read_to_end(&mut tail).unwrap();
    assert_eq!(tail, plain[length - 5..]);
    let back = reader
        .seek(SeekFrom::Current(-(chunk as i64) - 10))
        .unwrap();
    assert_eq!(back, (length - chunk - 10) as u64);
    reader.read_exact(&mut eight).unwrap();
    assert_eq!(eight, plain[length - chunk - 10..length - chunk - 2]);
    let error = reader
        .seek(SeekFrom::Current(-(length as i64) - 1))
        .unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    reader.seek(SeekFrom::Start(length as u64 + 100)).unwrap();
    assert_eq!(reader.read(&mut eight).unwrap(), 0, "nothing past the end");
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn a_blob_that_is_not_chunk_aligned_reads_back_identically_in_chunk_rows() {
    let f = Fixture::new();
    let store = f.dyn_store();
    let plain = random(5 * CHUNK + 17);
    let blob = store_in_pieces(&store, &plain);

    let read = read_all(&blob);
    assert_eq!(read.len(), plain.len());
    assert_eq!(sha256(&read), sha256(&plain));

    let id = Some(blob.id());
    assert_eq!(
        f.number("SELECT size FROM blob_object WHERE blob_id = $1", id),
        plain.len() as i64
    );
    assert_eq!(
        f.number("SELECT COUNT(*) FROM blob_chunk WHERE blob_id = $1", id),
        6
    );
    assert_eq!(
        f.number(
            "SELECT CAST(octet_length(data) AS BIGINT) FROM blob_chunk \
             WHERE blob_id = $1 AND seq = 5",
            id
        ),
        17,
        "the last chunk holds the remainder"
    );

    let empty = store_in_pieces(&store, b"");
    assert!(read_all(&empty).is_empty(), "an empty blob reads as empty");
    assert!(empty.read_at(0, 10).unwrap().is_empty());
}

#[test]
fn seeking_and_read_at_agree_with_the_bytes_across_chunk_boundaries() {
    let f = Fixture::new();
    let store = f.dyn_store();
    let plain = random(3 * CHUNK + 12_345);
    let blob = store_in_pieces(&store, &plain);
    check_offsets(&blob, &plain);
}

#[test]
fn an_uncommitted_writer_leaves_no_rows_and_is_not_found() {
    let f = Fixture::new();
    let store = f.dyn_store();

    let mut writer = store.create().unwrap();
    writer.write_all(&random(2 * CHUNK + 100)).unwrap();
    assert_eq!(
        f.number("SELECT COUNT(*) FROM blob_chunk", None),
        2,
        "full chunks are stored as they are written"
    );
    assert_eq!(f.number("SELECT COUNT(*) FROM blob_object", None), 0);
    drop(writer);
    assert_eq!(f.all_rows(), 0, "a dropped writer's chunks are removed");

    let mut writer = store.create().unwrap();
    writer.write_all(b"less than a chunk").unwrap();
    writer.flush().unwrap();
    drop(writer);
    assert_eq!(
        f.all_rows(),
        0,
        "a partial chunk never reaches the database"
    );

    let error = store
        .open(&BlobId::new(uuid::Uuid::new_v4().to_string()))
        .err()
        .expect("an unknown blob does not open");
    assert_eq!(error.kind(), io::ErrorKind::NotFound);
}

#[test]
fn removing_twice_is_fine_and_a_removed_blob_is_not_found() {
    let f = Fixture::new();
    let store = f.dyn_store();
    let blob = store_in_pieces(&store, &random(CHUNK + 1));
    let other = store_in_pieces(&store, b"stays");
    let id = blob.id().clone();

    store.remove(&id).expect("remove");
    store.remove(&id).expect("removing again is not an error");
    let error = store.open(&id).err().expect("removed");
    assert_eq!(error.kind(), io::ErrorKind::NotFound);
    assert_eq!(
        f.number(
            "SELECT (SELECT COUNT(*) FROM blob_chunk WHERE blob_id = $1) \
             + (SELECT COUNT(*) FROM blob_object WHERE blob_id = $1)",
            Some(&id)
        ),
        0,
        "no row of it is left"
    );
    assert_eq!(read_all(&other), b"stays", "other blobs are untouched");

    let temporary = Blob::from_bytes(&store, b"temporary").unwrap();
    let id = temporary.id().clone();
    drop(temporary);
    assert_eq!(
        store.open(&id).err().expect("gone").kind(),
        io::ErrorKind::NotFound,
        "a temporary blob goes with its last handle"
    );
}

#[test]
fn streams_go_through_it_in_a_multi_thread_runtime() {
    let f = Fixture::new();
    let store = f.dyn_store();
    let plain = Bytes::from(random(2 * CHUNK + 70_000));
    let pieces: Vec<Result<Bytes, io::Error>> = (0..plain.len())
        .step_by(50_000)
        .map(|at| Ok(plain.slice(at..(at + 50_000).min(plain.len()))))
        .collect();

    let (id, read) = f.runtime.block_on(async {
        let blob = write_stream(store.clone(), futures::stream::iter(pieces), None)
            .await
            .expect("write_stream");
        assert_eq!(blob.size(), plain.len() as u64);
        let read: Vec<u8> = read_stream(blob.clone())
            .map(|chunk| chunk.expect("read_stream").to_vec())
            .concat()
            .await;
        let id = blob.id().clone();
        // The last handle goes in async code, on a runtime thread: the removal must still work.
        drop(blob);
        (id, read)
    });
    assert_eq!(sha256(&read), sha256(&plain));
    assert_eq!(
        store.open(&id).err().expect("removed").kind(),
        io::ErrorKind::NotFound
    );

    let too_much: Vec<Result<Bytes, io::Error>> =
        (0..4).map(|_| Ok(Bytes::from(random(CHUNK)))).collect();
    let error = f
        .runtime
        .block_on(write_stream(
            store.clone(),
            futures::stream::iter(too_much),
            Some(3 * CHUNK as u64 - 1),
        ))
        .expect_err("over the limit");
    assert_eq!(error.kind(), io::ErrorKind::FileTooLarge);
    assert_eq!(f.all_rows(), 0, "a refused stream leaves no rows");
}

#[test]
fn encryption_at_rest_round_trips_over_it() {
    let f = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let pki = simulators::pki::TestPki::new(&dir.path().join("pki")).unwrap();
    let issued = pki
        .issue("910075918", "Testetat", -1, 30, "keystore-pw")
        .unwrap();
    let certificate =
        BusinessCertificate::from_pem(&issued.key_pem, &issued.certificate_pem).unwrap();
    let encrypted: Arc<dyn BlobStore> =
        Arc::new(EncryptedBlobStore::new(f.dyn_store(), certificate));

    let plain = random(2 * CHUNK + 1_000);
    let blob = store_in_pieces(&encrypted, &plain);
    assert_eq!(sha256(&read_all(&blob)), sha256(&plain));
    check_offsets(&blob, &plain);

    let mut stored = Vec::new();
    f.blobs
        .open(blob.id())
        .unwrap()
        .read_to_end(&mut stored)
        .unwrap();
    assert!(stored.len() > plain.len(), "stored with the CMS envelope");
    assert!(
        !stored.windows(32).any(|window| window == &plain[..32]),
        "the plaintext is not stored"
    );
}

#[test]
fn a_64_mib_blob_goes_in_and_out_in_bounded_chunk_rows() {
    let f = Fixture::new();
    let store = f.dyn_store();
    const SIZE: usize = 64 * CHUNK;

    let mut written = Sha256::new();
    let mut writer = store.create().unwrap();
    let mut piece = vec![0; 300_007];
    let mut left = SIZE;
    while left > 0 {
        let piece = &mut piece[..left.min(300_007)];
        openssl::rand::rand_bytes(piece).unwrap();
        written.update(&*piece);
        writer.write_all(piece).unwrap();
        left -= piece.len();
    }
    let (id, size) = writer.commit().unwrap();
    assert_eq!(size, SIZE as u64);

    let mut reader = store.open(&id).unwrap();
    let mut read = Sha256::new();
    let mut buffer = vec![0; 256 * 1024];
    let mut total = 0;
    loop {
        let n = reader.read(&mut buffer).unwrap();
        if n == 0 {
            break;
        }
        read.update(&buffer[..n]);
        total += n;
    }
    assert_eq!(total, SIZE);
    assert_eq!(read.finalize(), written.finalize());

    let id = Some(&id);
    assert_eq!(
        f.number("SELECT COUNT(*) FROM blob_chunk WHERE blob_id = $1", id),
        64
    );
    assert_eq!(
        f.number(
            "SELECT CAST(MAX(octet_length(data)) AS BIGINT) FROM blob_chunk WHERE blob_id = $1",
            id
        ),
        CHUNK as i64,
        "no row is larger than a chunk"
    );
}

#[test]
fn a_current_thread_runtime_is_refused_instead_of_deadlocking() {
    let f = Fixture::new();
    let blob = store_in_pieces(&f.dyn_store(), b"kept");
    let current_thread = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    current_thread.block_on(async {
        let error = f.blobs.create().err().expect("create is refused");
        assert_eq!(error.kind(), io::ErrorKind::Unsupported);
        assert!(error.to_string().contains("current-thread"), "{error}");
        let error = f.blobs.open(blob.id()).err().expect("open is refused");
        assert_eq!(error.kind(), io::ErrorKind::Unsupported);
    });
    drop(current_thread);
    assert_eq!(
        read_all(&blob),
        b"kept",
        "usable again outside that runtime"
    );

    // A writer dropped there cannot clean up by blocking; its clean-up runs on the store's
    // runtime instead, so the rows go soon after rather than at once.
    let mut writer = f.blobs.create().unwrap();
    writer.write_all(&random(CHUNK)).unwrap();
    assert_eq!(f.number("SELECT COUNT(*) FROM blob_chunk", None), 2);
    let current_thread = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    current_thread.block_on(async move { drop(writer) });
    let mut checks = 0;
    while f.number("SELECT COUNT(*) FROM blob_chunk", None) != 1 {
        checks += 1;
        assert!(
            checks < 3_000,
            "the dropped writer's chunk is never removed"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
