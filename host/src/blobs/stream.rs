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

/// The blob's bytes as a stream of chunks read on the blocking pool.
pub fn read_stream(blob: Blob) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
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
    let (tx, mut rx) = mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    let writer_store = store.clone();
    let writer = tokio::task::spawn_blocking(move || -> io::Result<_> {
        let mut writer = writer_store.create()?;
        while let Some(chunk) = rx.blocking_recv() {
            writer.write_all(&chunk)?;
        }
        Ok(writer)
    });

    let mut stream = std::pin::pin!(stream);
    let mut total = 0u64;
    let mut failure = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => {
                total += chunk.len() as u64;
                if limit.is_some_and(|limit| total > limit) {
                    failure = Some(io::Error::new(
                        io::ErrorKind::FileTooLarge,
                        format!("more than {} bytes", limit.unwrap_or_default()),
                    ));
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
}
