//! Base64 encoding as a body streams, for documents that travel inside a text body.
//!
//! Some providers want the documents inside the request text: Altinn 2's InsertCorrespondenceV2
//! carries each attachment base64-encoded in the SOAP XML, and DPE's Service Bus message is a
//! JSON document whose `asic` field is base64 of base64 of the CMS. A plugin must not read
//! document bytes, so it names the blob and the number of rounds, and the host encodes while it
//! streams: each round keeps at most two bytes between chunks, so memory does not grow with the
//! size, and the encoded length is known before the first byte is sent (for `content-length`).
//!
//! Receiving is the mirror: DPE's message arrives as JSON with the package base64-encoded twice
//! in a field; the plugin finds where the field's text lies and the host decodes that range of
//! the downloaded blob into a new blob, reading and writing in chunks.

use std::io;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, stream::BoxStream};

use crate::blobs::Blob;

/// The most rounds a segment may ask for; each makes the body a third longer.
pub const MAX_ROUNDS: u8 = 4;

/// The length of `length` bytes after `rounds` rounds of padded base64.
pub fn encoded_len(length: u64, rounds: u8) -> u64 {
    (0..rounds).fold(length, |length, _| length.div_ceil(3) * 4)
}

/// `stream` base64-encoded `rounds` times, without line breaks.
pub fn encode(
    stream: BoxStream<'static, io::Result<Bytes>>,
    rounds: u8,
) -> BoxStream<'static, io::Result<Bytes>> {
    (0..rounds).fold(stream, |stream, _| encode_once(stream))
}

/// One round: whole groups of three bytes are encoded as they arrive, the rest (at most two
/// bytes) waits for the next chunk, and the end pads it.
fn encode_once(
    stream: BoxStream<'static, io::Result<Bytes>>,
) -> BoxStream<'static, io::Result<Bytes>> {
    struct State {
        input: Option<BoxStream<'static, io::Result<Bytes>>>,
        carry: BytesMut,
    }
    let state = State {
        input: Some(stream),
        carry: BytesMut::new(),
    };
    futures::stream::unfold(state, |mut state| async move {
        loop {
            let input = state.input.as_mut()?;
            match input.next().await {
                Some(Ok(chunk)) => {
                    state.carry.extend_from_slice(&chunk);
                    let whole = state.carry.len() / 3 * 3;
                    if whole == 0 {
                        continue;
                    }
                    let group = state.carry.split_to(whole);
                    let text = STANDARD.encode(&group);
                    return Some((Ok(Bytes::from(text)), state));
                }
                Some(Err(error)) => {
                    state.input = None;
                    return Some((Err(error), state));
                }
                None => {
                    state.input = None;
                    if state.carry.is_empty() {
                        return None;
                    }
                    let text = STANDARD.encode(&state.carry);
                    state.carry.clear();
                    return Some((Ok(Bytes::from(text)), state));
                }
            }
        }
    })
    .boxed()
}

/// A new temporary blob of `length` bytes of `blob` from `offset`, base64-decoded `rounds`
/// times. Blocking; the error says what is wrong with the range or the text.
pub fn decode_range(blob: &Blob, offset: u64, length: u64, rounds: u8) -> Result<Blob, String> {
    if rounds > MAX_ROUNDS {
        return Err(format!("{rounds} base64 rounds; at most {MAX_ROUNDS}"));
    }
    let end = offset.checked_add(length).filter(|&end| end <= blob.size());
    if end.is_none() {
        return Err(format!(
            "{length} bytes from offset {offset} run past the end of a blob of {} bytes",
            blob.size()
        ));
    }
    blob.copy_range(offset, length, |mut decoded| {
        for _ in 0..rounds {
            decoded = Box::new(base64::read::DecoderReader::new(decoded, &STANDARD));
        }
        decoded
    })
    .map_err(|error| format!("the range cannot be decoded: {error}"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::blobs::BlobStore;
    use futures::TryStreamExt as _;

    fn chunked(data: &[u8], sizes: &[usize]) -> BoxStream<'static, io::Result<Bytes>> {
        let mut chunks = Vec::new();
        let mut at = 0;
        for size in sizes.iter().cycle() {
            if at >= data.len() {
                break;
            }
            let end = (at + size).min(data.len());
            chunks.push(Ok(Bytes::copy_from_slice(&data[at..end])));
            at = end;
        }
        futures::stream::iter(chunks).boxed()
    }

    async fn collect(stream: BoxStream<'static, io::Result<Bytes>>) -> io::Result<Vec<u8>> {
        let chunks: Vec<Bytes> = stream.try_collect().await?;
        Ok(chunks.concat())
    }

    #[tokio::test]
    async fn any_chunking_encodes_as_the_whole_does() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 256) as u8).collect();
        for length in [0, 1, 2, 3, 4, 5, 998, 1000] {
            let data = &data[..length];
            for sizes in [&[1][..], &[2], &[5, 1, 7], &[64 * 1024]] {
                let encoded = collect(encode(chunked(data, sizes), 1)).await.unwrap();
                assert_eq!(
                    encoded,
                    STANDARD.encode(data).into_bytes(),
                    "{length} {sizes:?}"
                );
                assert_eq!(encoded.len() as u64, encoded_len(length as u64, 1));
            }
        }
    }

    #[tokio::test]
    async fn two_rounds_are_base64_of_the_base64_text() {
        let data = b"%PDF-1.7 two rounds".to_vec();
        let encoded = collect(encode(chunked(&data, &[4, 1]), 2)).await.unwrap();
        let once = STANDARD.encode(&data);
        assert_eq!(encoded, STANDARD.encode(once.as_bytes()).into_bytes());
        assert_eq!(encoded.len() as u64, encoded_len(data.len() as u64, 2));
        let decoded = STANDARD.decode(STANDARD.decode(&encoded).unwrap()).unwrap();
        assert_eq!(decoded, data);
    }

    #[test]
    fn lengths_grow_by_a_third_rounded_up_to_whole_groups() {
        assert_eq!(encoded_len(0, 3), 0);
        assert_eq!(encoded_len(1, 1), 4);
        assert_eq!(encoded_len(3, 1), 4);
        assert_eq!(encoded_len(4, 1), 8);
        assert_eq!(encoded_len(4, 2), 12);
        assert_eq!(encoded_len(10, 0), 10);
    }

    #[test]
    fn a_range_decodes_into_a_new_blob_and_bad_input_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn BlobStore> =
            Arc::new(crate::blobs::FileBlobStore::open(dir.path()).unwrap());
        let document: Vec<u8> = (0..100_000u32).map(|i| (i * 13 % 256) as u8).collect();
        let twice = STANDARD.encode(STANDARD.encode(&document));
        let json = format!("{{\"sbd\":{{}},\"asic\":\"{twice}\"}}");
        let blob = Blob::from_bytes(&store, json.as_bytes()).unwrap();
        let start = json.find(&twice).unwrap() as u64;
        let decoded = decode_range(&blob, start, twice.len() as u64, 2).unwrap();
        assert_eq!(decoded.read_at(0, 1 << 20).unwrap(), document);
        let copied = decode_range(&blob, 0, 8, 0).unwrap();
        assert_eq!(copied.read_at(0, 100).unwrap(), b"{\"sbd\":{");

        let past = decode_range(&blob, start, json.len() as u64, 2).unwrap_err();
        assert!(past.contains("run past the end"), "{past}");
        let not_base64 = decode_range(&blob, 0, start, 1).unwrap_err();
        assert!(
            not_base64.starts_with("the range cannot be decoded"),
            "{not_base64}"
        );
        assert!(decode_range(&blob, 0, 4, 5).is_err());
    }

    #[tokio::test]
    async fn a_read_error_is_passed_on() {
        let failing = futures::stream::iter(vec![
            Ok(Bytes::from_static(b"abcd")),
            Err(io::Error::other("disk gone")),
        ])
        .boxed();
        let error = collect(encode(failing, 2)).await.unwrap_err();
        assert_eq!(error.to_string(), "disk gone");
    }
}
