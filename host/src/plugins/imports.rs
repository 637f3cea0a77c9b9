//! The host's implementations of the imports a plugin sees.
//!
//! Each function converts the guest's values to the host's own types and hands the work to the
//! module that owns it: HTTP to the egress chokepoint, zips to `archive`, blob bytes to the blob
//! store, CMS, ASiC-E and JWS to `crypto` (through `crypto_imports`). Blocking work runs on
//! tokio's blocking pool so a plugin call never stalls the runtime. Failures the guest can act on
//! are returned as WIT errors; only a broken invariant (a handle that is not in the table, an
//! oversized constructor) traps the guest.

use std::time::Duration;

use wasmtime::component::Resource;

use super::base64_stream;
use super::bindings::eformidling::transport::{archive, config, http, log, types};
use super::egress::{self, EgressError, ResponseBody, ResponseTarget};
use super::sandbox::CallState;
use crate::archive::{self as zip_archive, ArchiveError, EntrySource, NewEntry};
use crate::blobs::{Blob, BlobStore};
use crate::logmask::mask_identity_numbers;

mod crypto_imports;

/// The most one blob constructor or read carries across the boundary.
const MAX_INLINE_BLOB: usize = 1 << 20;

impl CallState {
    fn blob(&self, handle: &Resource<Blob>) -> wasmtime::Result<Blob> {
        Ok(self.table.get(handle)?.clone())
    }

    fn push_blob(&mut self, blob: Blob) -> wasmtime::Result<Resource<Blob>> {
        Ok(self.table.push(blob)?)
    }

    /// Whether work on `blob` alone, making at most its size, can run in place
    /// ([`small_in_memory`]).
    fn in_place_on(&self, blob: &Blob) -> bool {
        small_in_memory(&*self.plugin.services.blobs, [blob], 0)
    }
}

/// The most bytes a host function works on in place, on the thread that runs the plugin call,
/// when they are all in memory: for so few, a hand-over to the blocking pool (a thread woken,
/// then the call's thread woken again) costs more than the copy, zip or slice itself.
const IN_PLACE_BYTES: u64 = 16 * 1024;

/// A zip's local and central directory headers for one entry, its name aside, at most.
const ZIP_HEADERS_PER_ENTRY: u64 = 128;

/// Whether work on `blobs` and `bytes` more from the guest can run in place: the blobs are all
/// held in memory and, with the bytes, come to at most [`IN_PLACE_BYTES`], and a new blob that
/// large would be held too ([`BlobStore::has_room_for`]). Only for work whose result is no
/// larger than what it is given (a copy, slice, decoding, listing or zip of it; not inflating
/// a zip's entry). Other work may read or write files, or take long, so it goes to the
/// blocking pool. Should the room be taken meanwhile, the result, of at most
/// [`IN_PLACE_BYTES`], is written to the durable store in place: rare, and small.
fn small_in_memory<'a>(
    store: &dyn BlobStore,
    blobs: impl IntoIterator<Item = &'a Blob>,
    bytes: u64,
) -> bool {
    let mut total = bytes;
    for blob in blobs {
        total = total.saturating_add(blob.size());
        if total > IN_PLACE_BYTES || blob.held().is_none() {
            return false;
        }
    }
    total <= IN_PLACE_BYTES && store.has_room_for(total)
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> wasmtime::Result<T> {
    Ok(tokio::task::spawn_blocking(work).await?)
}

/// Runs `work` in place when `in_place` ([`small_in_memory`]), else on the blocking pool.
async fn in_place_or_blocking<T: Send + 'static>(
    in_place: bool,
    work: impl FnOnce() -> T + Send + 'static,
) -> wasmtime::Result<T> {
    if in_place {
        Ok(work())
    } else {
        blocking(work).await
    }
}

impl types::Host for CallState {}

impl types::HostBlob for CallState {
    async fn new(&mut self, data: Vec<u8>) -> wasmtime::Result<Resource<Blob>> {
        if data.len() > MAX_INLINE_BLOB {
            wasmtime::bail!(
                "blob constructor: {} bytes is more than the 1 MiB allowed; compose large content by handle",
                data.len()
            );
        }
        let store = self.plugin.services.blobs.clone();
        let in_place = small_in_memory(&*store, [], data.len() as u64);
        let blob =
            in_place_or_blocking(in_place, move || Blob::from_bytes(&store, &data)).await??;
        self.push_blob(blob)
    }

    async fn size(&mut self, handle: Resource<Blob>) -> wasmtime::Result<u64> {
        Ok(self.blob(&handle)?.size())
    }

    async fn read(
        &mut self,
        handle: Resource<Blob>,
        offset: u64,
        length: u32,
    ) -> wasmtime::Result<Vec<u8>> {
        let blob = self.blob(&handle)?;
        let length = (length as usize).min(MAX_INLINE_BLOB);
        let in_place = self.in_place_on(&blob);
        Ok(in_place_or_blocking(in_place, move || blob.read_at(offset, length)).await??)
    }

    async fn slice(
        &mut self,
        handle: Resource<Blob>,
        offset: u64,
        length: u64,
    ) -> wasmtime::Result<Resource<Blob>> {
        let blob = self.blob(&handle)?;
        let in_place = self.in_place_on(&blob);
        let sliced = in_place_or_blocking(in_place, move || blob.slice(offset, length)).await??;
        self.push_blob(sliced)
    }

    async fn decode_base64(
        &mut self,
        handle: Resource<Blob>,
        offset: u64,
        length: u64,
        rounds: u8,
    ) -> wasmtime::Result<Result<Resource<Blob>, String>> {
        let blob = self.blob(&handle)?;
        let in_place = self.in_place_on(&blob);
        match in_place_or_blocking(in_place, move || {
            base64_stream::decode_range(&blob, offset, length, rounds)
        })
        .await?
        {
            Ok(decoded) => Ok(Ok(self.push_blob(decoded)?)),
            Err(error) => Ok(Err(error)),
        }
    }

    async fn drop(&mut self, handle: Resource<Blob>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        Ok(())
    }
}

impl CallState {
    fn content(&self, content: http::Content) -> wasmtime::Result<egress::Content> {
        Ok(match content {
            http::Content::Bytes(bytes) => egress::Content::Bytes(bytes),
            http::Content::Blob(handle) => egress::Content::Blob(self.blob(&handle)?),
            http::Content::Composed(segments) => self.composed(segments)?,
        })
    }

    fn composed(&self, segments: Vec<http::Segment>) -> wasmtime::Result<egress::Content> {
        let segments = segments
            .into_iter()
            .map(|segment| {
                Ok(match segment {
                    http::Segment::Bytes(bytes) => egress::Segment::Bytes(bytes),
                    http::Segment::Blob(handle) => egress::Segment::Blob(self.blob(&handle)?),
                    http::Segment::Base64(encoded) => {
                        egress::Segment::Base64(self.blob(&encoded.content)?, encoded.rounds)
                    }
                })
            })
            .collect::<wasmtime::Result<_>>()?;
        Ok(egress::Content::Composed(segments))
    }

    fn request(&self, request: http::Request) -> wasmtime::Result<egress::Request> {
        let body = match request.body {
            http::Body::Empty => egress::Body::Empty,
            http::Body::Bytes(bytes) => egress::Body::Single(egress::Content::Bytes(bytes)),
            http::Body::Blob(handle) => {
                egress::Body::Single(egress::Content::Blob(self.blob(&handle)?))
            }
            http::Body::Composed(segments) => egress::Body::Single(self.composed(segments)?),
            http::Body::Multipart(multipart) => egress::Body::Multipart {
                subtype: multipart.subtype,
                parameters: multipart.parameters,
                parts: multipart
                    .parts
                    .into_iter()
                    .map(|part| {
                        Ok(egress::Part {
                            headers: part.headers,
                            content: self.content(part.content)?,
                        })
                    })
                    .collect::<wasmtime::Result<_>>()?,
            },
        };
        let credentials = match request.credentials {
            http::Credentials::None => egress::Credentials::None,
            http::Credentials::Maskinporten(scopes) => egress::Credentials::Maskinporten(scopes),
            http::Credentials::AltinnExchange(scopes) => {
                egress::Credentials::AltinnExchange(scopes)
            }
            http::Credentials::Basic(name) => egress::Credentials::Basic(name),
            http::Credentials::ServiceBusSas(name) => egress::Credentials::ServiceBusSas(name),
        };
        let method = match request.method {
            http::Method::Get => ::http::Method::GET,
            http::Method::Head => ::http::Method::HEAD,
            http::Method::Post => ::http::Method::POST,
            http::Method::Put => ::http::Method::PUT,
            http::Method::Patch => ::http::Method::PATCH,
            http::Method::Delete => ::http::Method::DELETE,
        };
        Ok(egress::Request {
            method,
            url: request.url,
            headers: request.headers,
            body,
            credentials,
            timeout: request
                .timeout_ms
                .map(|ms| Duration::from_millis(ms.into())),
        })
    }
}

impl CallState {
    /// Sends a guest's request through the egress chokepoint under this plugin's policy.
    async fn through_egress(
        &mut self,
        request: http::Request,
        target: ResponseTarget,
    ) -> wasmtime::Result<Result<egress::Response, http::Error>> {
        let request = self.request(request)?;
        let plugin = self.plugin.clone();
        Ok(plugin
            .services
            .egress
            .send(&plugin.policy, request, target)
            .await
            .map_err(http_error))
    }
}

fn http_error(error: EgressError) -> http::Error {
    match error {
        EgressError::Denied(reason) => http::Error::Denied(reason),
        EgressError::Invalid(reason) => http::Error::Invalid(reason),
        EgressError::Credentials(reason) => http::Error::Credentials(reason),
        EgressError::Timeout => http::Error::Timeout,
        EgressError::Connection(reason) => http::Error::Connection(reason),
        EgressError::TooLarge(limit) => http::Error::TooLarge(limit),
    }
}

impl http::Host for CallState {
    async fn send(
        &mut self,
        request: http::Request,
        max_body: u32,
    ) -> wasmtime::Result<Result<http::Response, http::Error>> {
        let target = ResponseTarget::Memory(max_body as usize);
        Ok(match self.through_egress(request, target).await? {
            Ok(egress::Response {
                status,
                headers,
                body: ResponseBody::Bytes(body),
            }) => Ok(http::Response {
                status,
                headers,
                body,
            }),
            Ok(_) => wasmtime::bail!("a buffered request was answered into a blob"),
            Err(error) => Err(error),
        })
    }

    async fn fetch(
        &mut self,
        request: http::Request,
    ) -> wasmtime::Result<Result<http::Download, http::Error>> {
        let target = ResponseTarget::Blob(self.plugin.services.blobs.clone());
        Ok(match self.through_egress(request, target).await? {
            Ok(egress::Response {
                status,
                headers,
                body: ResponseBody::Blob(blob),
            }) => Ok(http::Download {
                status,
                headers,
                body: self.push_blob(blob)?,
            }),
            Ok(_) => wasmtime::bail!("a download was answered into memory"),
            Err(error) => Err(error),
        })
    }
}

fn archive_error(error: ArchiveError) -> archive::Error {
    match error {
        ArchiveError::Invalid(reason) => archive::Error::Invalid(reason),
        ArchiveError::NotFound(name) => archive::Error::NotFound(name),
        ArchiveError::Io(error) => archive::Error::Io(error.to_string()),
    }
}

impl archive::Host for CallState {
    async fn zip(
        &mut self,
        entries: Vec<archive::Entry>,
    ) -> wasmtime::Result<Result<Resource<Blob>, archive::Error>> {
        let entries = entries
            .into_iter()
            .map(|entry| {
                Ok(NewEntry {
                    name: entry.name,
                    source: match entry.content {
                        archive::EntryContent::Bytes(bytes) => EntrySource::Bytes(bytes),
                        archive::EntryContent::Blob(handle) => {
                            EntrySource::Blob(self.blob(&handle)?)
                        }
                    },
                    compress: entry.compress,
                })
            })
            .collect::<wasmtime::Result<Vec<_>>>()?;
        let store = self.plugin.services.blobs.clone();
        // The archive holds every entry's content, its name twice (entry and directory) and a
        // header of each kind; beyond the blobs, that much more.
        let archive_size: u64 = entries
            .iter()
            .map(|entry| entry.source.size() + 2 * entry.name.len() as u64 + ZIP_HEADERS_PER_ENTRY)
            .sum();
        let blobs: Vec<&Blob> = entries
            .iter()
            .filter_map(|entry| entry.source.blob())
            .collect();
        let beyond_blobs = archive_size - blobs.iter().map(|blob| blob.size()).sum::<u64>();
        let in_place = small_in_memory(&*store, blobs, beyond_blobs);
        match in_place_or_blocking(in_place, move || zip_archive::zip(&store, entries)).await? {
            Ok(blob) => Ok(Ok(self.push_blob(blob)?)),
            Err(error) => Ok(Err(archive_error(error))),
        }
    }

    async fn entries(
        &mut self,
        handle: Resource<Blob>,
    ) -> wasmtime::Result<Result<Vec<archive::EntryInfo>, archive::Error>> {
        let blob = self.blob(&handle)?;
        let in_place = self.in_place_on(&blob);
        Ok(
            in_place_or_blocking(in_place, move || zip_archive::list(&blob))
                .await?
                .map_err(archive_error)
                .map(|entries| {
                    entries
                        .into_iter()
                        .map(|entry| archive::EntryInfo {
                            name: entry.name,
                            size: entry.size,
                        })
                        .collect()
                }),
        )
    }

    async fn open(
        &mut self,
        handle: Resource<Blob>,
        name: String,
    ) -> wasmtime::Result<Result<Resource<Blob>, archive::Error>> {
        let blob = self.blob(&handle)?;
        let store = self.plugin.services.blobs.clone();
        // Inflating an entry can make far more than the archive: never in place.
        match blocking(move || zip_archive::open(&store, &blob, &name)).await? {
            Ok(entry) => Ok(Ok(self.push_blob(entry)?)),
            Err(error) => Ok(Err(archive_error(error))),
        }
    }
}

impl config::Host for CallState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.plugin.settings.get(&key).cloned())
    }

    async fn get_all(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self
            .plugin
            .settings
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect())
    }
}

impl log::Host for CallState {
    async fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let plugin = self.plugin.name.as_str();
        let message = mask_identity_numbers(&message);
        match level {
            log::Level::Trace => tracing::trace!(target: "plugin", plugin, "{message}"),
            log::Level::Debug => tracing::debug!(target: "plugin", plugin, "{message}"),
            log::Level::Info => tracing::info!(target: "plugin", plugin, "{message}"),
            log::Level::Warn => tracing::warn!(target: "plugin", plugin, "{message}"),
            log::Level::Error => tracing::error!(target: "plugin", plugin, "{message}"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::blobs::{FileBlobStore, ScratchBlobStore};

    #[test]
    fn only_small_work_on_blobs_in_memory_runs_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let durable: Arc<dyn BlobStore> = Arc::new(FileBlobStore::open(dir.path()).unwrap());
        let scratch: Arc<dyn BlobStore> = Arc::new(ScratchBlobStore::new(durable.clone()));
        let half = IN_PLACE_BYTES as usize / 2;
        let held = Blob::from_bytes(&scratch, &vec![1; half]).unwrap();
        let on_disk = Blob::from_bytes(&durable, b"small, but in a file").unwrap();

        assert!(small_in_memory(&*scratch, [], IN_PLACE_BYTES));
        assert!(small_in_memory(&*scratch, [&held, &held], 0));
        assert!(
            !small_in_memory(&*scratch, [&held, &held], 1),
            "together over the bound"
        );
        assert!(!small_in_memory(&*scratch, [], IN_PLACE_BYTES + 1));
        assert!(
            !small_in_memory(&*scratch, [&held, &on_disk], 0),
            "a blob in a file is read on the blocking pool"
        );
        assert!(
            !small_in_memory(&*durable, [], 1),
            "a store that holds nothing in memory would write the result"
        );
    }
}
