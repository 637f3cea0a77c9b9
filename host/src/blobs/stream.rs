//! Async streaming over the synchronous blob store.
//!
//! Network I/O is async and blob I/O is blocking; these two adapters join them with a small
//! bounded channel so that no more than a few chunks are ever in memory, whatever the size.

use std::io::{self, Read, Write};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;

use super::{Blob, BlobStore};

const CHUNK: usize = 64 * 1024;
const CHUNKS_IN_FLIGHT: usize = 4;

/// All of a blob's bytes: at once when it is held in memory, else read on the blocking pool.
/// For blobs known to be small.
pub async fn read_all(blob: &Blob) -> io::Result<Bytes> {
    if let Some(bytes) = blob.held() {
        return Ok(bytes);
    }
    let reading = blob.clone();
    let bytes = tokio::task::spawn_blocking(move || reading.read_at(0, reading.size() as usize))
        .await
        .map_err(io::Error::other)??;
    Ok(Bytes::from(bytes))
}

/// The blob's bytes as a stream: at once when it is held in memory, else as chunks read on the
/// blocking pool. Most bodies a plugin sends are small blobs in memory, and a hand-over to the
/// pool wakes a thread twice for what is a copy.
pub fn read_stream(blob: Blob) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    match blob.held() {
        Some(bytes) => futures::future::Either::Left(futures::stream::iter(
            (!bytes.is_empty()).then_some(Ok(bytes)),
        )),
        None => futures::future::Either::Right(read_chunks(blob)),
    }
}

/// The blob's bytes as chunks read on the blocking pool, a few at a time.
fn read_chunks(blob: Blob) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let mut reader = match blob.open() {
            Ok(reader) => reader,
            Err(error) => {
                let _ = tx.blocking_send(Err(error));
                return;
            }
        };
        loop {
            let mut chunk = BytesMut::zeroed(CHUNK);
            match reader.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => {
                    chunk.truncate(n);
                    if tx.blocking_send(Ok(chunk.freeze())).is_err() {
                        return;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    let _ = tx.blocking_send(Err(error));
                    return;
                }
            }
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

/// Up to this many bytes are gathered in memory and written in one trip to the blocking pool:
/// most documents and answers are small, and feeding a writer thread chunk by chunk costs
/// more than the copy for them. Larger streams go on chunk by chunk, so memory stays bounded.
const GATHERED: u64 = 256 * 1024;

/// Writes the stream into a new temporary blob. Refuses more than `limit` bytes with an error of
/// kind `FileTooLarge`; on any error nothing is committed.
pub async fn write_stream<S, E>(
    store: Arc<dyn BlobStore>,
    stream: S,
    limit: Option<u64>,
) -> io::Result<Blob>
where
    S: Stream<Item = Result<Bytes, E>> + Send,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut stream = std::pin::pin!(stream);
    let mut total = 0u64;
    let too_large = |limit: u64| {
        io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("more than {limit} bytes"),
        )
    };
    let mut gathered = Vec::new();
    while total <= GATHERED {
        match stream.next().await {
            Some(Ok(chunk)) => {
                total += chunk.len() as u64;
                if let Some(limit) = limit.filter(|&limit| total > limit) {
                    return Err(too_large(limit));
                }
                gathered.push(chunk);
            }
            Some(Err(error)) => return Err(io::Error::other(error)),
            None => {
                // All of it gathered: if the store holds it in memory, no thread hand-over.
                match store.hold(gathered.concat()) {
                    Ok(id) => return Ok(Blob::temporary(store, id, total)),
                    Err(bytes) => gathered = vec![Bytes::from(bytes)],
                }
                let writer_store = store.clone();
                let (id, size) = tokio::task::spawn_blocking(move || {
                    let mut writer = writer_store.create()?;
                    for chunk in &gathered {
                        writer.write_all(chunk)?;
                    }
                    writer.commit()
                })
                .await
                .map_err(io::Error::other)??;
                return Ok(Blob::temporary(store, id, size));
            }
        }
    }

    let (tx, mut rx) = mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    let writer_store = store.clone();
    let writer = tokio::task::spawn_blocking(move || -> io::Result<_> {
        let mut writer = writer_store.create()?;
        for chunk in gathered {
            writer.write_all(&chunk)?;
        }
        while let Some(chunk) = rx.blocking_recv() {
            writer.write_all(&chunk)?;
        }
        Ok(writer)
    });

    let mut failure = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => {
                total += chunk.len() as u64;
                if let Some(limit) = limit.filter(|&limit| total > limit) {
                    failure = Some(too_large(limit));
                    break;
                }
                if tx.send(chunk).await.is_err() {
                    break;
                }
            }
            Err(error) => {
                failure = Some(io::Error::other(error));
                break;
            }
        }
    }
    drop(tx);
    let writer = writer.await.map_err(io::Error::other)??;
    if let Some(error) = failure {
        return Err(error);
    }
    let (id, size) = tokio::task::spawn_blocking(move || writer.commit())
        .await
        .map_err(io::Error::other)??;
    Ok(Blob::temporary(store, id, size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blobs::FileBlobStore;

    #[tokio::test]
    async fn a_stream_round_trips_through_a_blob_and_a_limit_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn BlobStore> = Arc::new(FileBlobStore::open(dir.path()).unwrap());
        let chunks: Vec<Result<Bytes, io::Error>> = (0..40u8)
            .map(|i| Ok(Bytes::from(vec![i; 10_000])))
            .collect();
        let blob = write_stream(store.clone(), futures::stream::iter(chunks), None)
            .await
            .unwrap();
        assert_eq!(blob.size(), 400_000);
        let read: Vec<u8> = read_stream(blob.clone())
            .map(|chunk| chunk.unwrap().to_vec())
            .concat()
            .await;
        assert_eq!(read.len(), 400_000);
        assert!(read[..10_000].iter().all(|&b| b == 0));
        assert!(read[390_000..].iter().all(|&b| b == 39));
        drop(blob);

        let chunks: Vec<Result<Bytes, io::Error>> =
            (0..10).map(|_| Ok(Bytes::from(vec![1; 1000]))).collect();
        let error = write_stream(store, futures::stream::iter(chunks), Some(5_000))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn small_and_large_streams_alike_are_kept_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn BlobStore> = Arc::new(FileBlobStore::open(dir.path()).unwrap());
        let chunks = |count: usize, size: usize| -> Vec<Result<Bytes, io::Error>> {
            (0..count)
                .map(|i| Ok(Bytes::from(vec![i as u8; size])))
                .collect()
        };
        // Gathered in memory: three chunks, in order.
        let small = write_stream(store.clone(), futures::stream::iter(chunks(3, 1000)), None)
            .await
            .unwrap();
        assert_eq!(small.size(), 3000);
        assert_eq!(small.read_at(999, 2).unwrap(), [0, 1]);
        assert_eq!(small.read_at(2999, 1).unwrap(), [2]);
        drop(small);
        // Past the gathered part and then over the limit: refused, nothing left.
        let error = write_stream(
            store.clone(),
            futures::stream::iter(chunks(40, 10_000)),
            Some(300_000),
        )
        .await
        .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::FileTooLarge);
        // A stream that fails before its end leaves nothing either.
        let mut failing = chunks(2, 1000);
        failing.push(Err(io::Error::other("the client went away")));
        let error = write_stream(store, futures::stream::iter(failing), None)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("went away"), "{error}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_blob_held_in_memory_streams_at_once_with_no_runtime_or_thread() {
        let dir = tempfile::tempdir().unwrap();
        let durable: Arc<dyn BlobStore> = Arc::new(FileBlobStore::open(dir.path()).unwrap());
        let store: Arc<dyn BlobStore> = Arc::new(crate::blobs::ScratchBlobStore::new(durable));
        // Outside any tokio runtime: a trip to the blocking pool would panic.
        let chunks = |blob: Blob| {
            futures::executor::block_on(read_stream(blob).map(Result::unwrap).collect::<Vec<_>>())
        };
        let held = Blob::from_bytes(&store, b"held bytes").unwrap();
        assert!(held.held().is_some());
        assert_eq!(chunks(held), [Bytes::from_static(b"held bytes")]);
        let empty = Blob::from_bytes(&store, b"").unwrap();
        assert!(chunks(empty).is_empty(), "an empty blob streams no chunk");
    }
}
