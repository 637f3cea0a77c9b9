//! `/api/messages/out`: create, upload, send (also in one multipart call), list, get, delete.
//!
//! Create looks the receiver up in the ServiceRegistry and picks the loaded channel plugin whose
//! service identifier the registry named, so an unknown receiver or a disabled channel is refused
//! before anything is stored. Uploads stream into the blob store; send only writes the outbox row.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use futures::TryStreamExt as _;
use serde::Deserialize;
use serde_json::Value;

use super::ApiState;
use super::arkivmelding;
use super::error::{ApiError, ApiResult};
use super::page::{PageParams, page_json};
use super::query::ApiQuery;
use super::render::{party_columns, stored_sbd};
use crate::blobs::{Blob, KeptFile, keep_files, read_all, write_stream};
use crate::engine::{Accepted, InHand, SendWrite, persist_named_blobs};
use crate::registry::{LookupOptions, RegistryError, ServiceRecord};
use crate::sbd::{Sbd, parties, primary_identifier};
use crate::store::{
    FileContent, MessageFile, MessageQuery, NewConversation, OutMessage, QueuedMessage,
    ReceiptStatus, StoreError, now_millis,
};

/// The file the arkivmelding of a message must be uploaded as.
const ARKIVMELDING_FILE: &str = "arkivmelding.xml";

/// The largest `arkivmelding.xml` read for its title and references.
const MAX_ARKIVMELDING: u64 = 16 << 20;

/// The loaded plugin that carries `service` (a registry service identifier).
fn channel_for(state: &ApiState, service: &str) -> Option<(String, Option<u64>)> {
    let set = state.plugins.current();
    set.plugins()
        .find(|plugin| plugin.description().service.eq_ignore_ascii_case(service))
        .map(|plugin| {
            (
                plugin.name().to_owned(),
                plugin.description().max_message_size,
            )
        })
}

fn registry_error(error: RegistryError) -> ApiError {
    match error {
        RegistryError::NotFound { .. } | RegistryError::DocumentTypeNotAccepted { .. } => {
            ApiError::bad_request("ReceiverDoesNotAcceptProcessException", error.to_string())
        }
        RegistryError::NoDefaultRecord { .. } => {
            ApiError::bad_request("ReceiverDoesNotAcceptProcessException", error.to_string())
        }
        other => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceRegistryLookupException",
            other.to_string(),
        ),
    }
}

/// A new message checked and ready to store: its SBD with the defaults, its row, its
/// conversation and the registry's record its row holds.
struct NewMessage {
    sbd: Sbd,
    message: OutMessage,
    conversation: NewConversation,
    record: ServiceRecord,
}

/// Reads and checks a new message's SBD, looks the receiver up and applies the defaults;
/// stores nothing.
async fn prepare_message(state: &ApiState, body: &[u8]) -> ApiResult<NewMessage> {
    let now = now_millis();
    let settings = &state.settings;
    let mut sbd = Sbd::from_request(body, &settings.organisation_number, now)?;
    let receiver = sbd.receiver.clone().ok_or_else(|| {
        ApiError::bad_request(
            "MissingAddressInformationException",
            "the message has no receiver",
        )
    })?;
    let record: ServiceRecord = state
        .registry
        .service_record(
            &primary_identifier(&receiver),
            &sbd.process,
            &sbd.standard,
            &LookupOptions {
                security_level: sbd.security_level(),
                conversation_id: Some(sbd.conversation_id.clone()),
            },
        )
        .await
        .map_err(registry_error)?;
    let service = record.service.identifier.clone();
    let (channel, _) = channel_for(state, &service).ok_or_else(|| {
        ApiError::bad_request(
            "ServiceNotEnabledException",
            format!("Service {service} is not enabled"),
        )
    })?;
    // The lifetime default depends on the channel, known only now.
    let lifetime_hours = settings.lifetime_hours.get(&channel).copied().unwrap_or(24);
    sbd.default_expiry(now + i64::try_from(lifetime_hours).unwrap_or(24) * 3_600_000);
    let (sender, sender_identifier) = party_columns(Some(&sbd.sender));
    let (receiver_full, receiver_identifier) = party_columns(Some(&receiver));
    let message = OutMessage {
        message_id: sbd.message_id.clone(),
        conversation_id: sbd.conversation_id.clone(),
        process_identifier: sbd.process.clone(),
        document_type: sbd.standard.clone(),
        sender_identifier: sender_identifier.clone().unwrap_or_default(),
        receiver_identifier: receiver_identifier.clone(),
        service_identifier: service.clone(),
        channel: channel.clone(),
        sbd: sbd.json.to_string(),
        service_record: serde_json::to_string(&record)
            .map_err(|e| ApiError::internal(e.to_string()))?,
        expiry: sbd.expires_at,
        queued: false,
        created: now,
    };
    let conversation = NewConversation {
        conversation_id: sbd.conversation_id.clone(),
        message_id: sbd.message_id.clone(),
        sender,
        sender_identifier,
        receiver: receiver_full,
        receiver_identifier,
        process_identifier: Some(sbd.process.clone()),
        document_identifier: Some(sbd.standard.clone()),
        service_identifier: Some(service),
        channel: Some(channel),
        expiry: sbd.expires_at,
    };
    Ok(NewMessage {
        sbd,
        message,
        conversation,
        record,
    })
}

/// The error of a store refusal of a new message.
fn creation_error(error: StoreError) -> ApiError {
    match error {
        StoreError::Duplicate(message) => {
            ApiError::bad_request("MessageAlreadyExistsException", message)
        }
        other => other.into(),
    }
}

/// Reads, checks and stores a new message; the SBD with its defaults.
async fn create_message(state: &ApiState, body: &[u8]) -> ApiResult<Sbd> {
    let new = prepare_message(state, body).await?;
    state
        .store
        .create_out_message(&new.message, &new.conversation)
        .await
        .map_err(creation_error)?;
    Ok(new.sbd)
}

/// `POST /api/messages/out`.
pub async fn create(State(state): State<Arc<ApiState>>, body: Bytes) -> ApiResult<Json<Value>> {
    if body.len() > state.settings.max_json_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "MaxUploadSizeExceededException",
            format!(
                "the SBD is larger than {} bytes",
                state.settings.max_json_bytes
            ),
        ));
    }
    let sbd = create_message(&state, &body).await?;
    Ok(Json(sbd.json))
}

/// The name, title and media type of an upload, from its headers.
struct Upload {
    filename: String,
    title: Option<String>,
    mime_type: String,
}

/// The value of `key` in a `Content-Disposition` header, quoted or not.
fn disposition_parameter(disposition: &str, key: &str) -> Option<String> {
    disposition.split(';').skip(1).find_map(|part| {
        let (name, value) = part.split_once('=')?;
        (name.trim().eq_ignore_ascii_case(key)).then(|| {
            let value = value.trim();
            value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value)
                .to_owned()
        })
    })
}

/// Refuses a file name that could name something outside the message.
fn check_filename(filename: &str) -> ApiResult<()> {
    let bad = filename.is_empty()
        || filename.contains(['/', '\\', '\0'])
        || filename == "."
        || filename.contains("..");
    if bad {
        return Err(ApiError::bad_request(
            "InvalidFilenameException",
            format!(
                "Invalid filename {filename:?}: a file name must not be empty, contain a path separator or '..'"
            ),
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct UploadQuery {
    title: Option<String>,
}

fn upload_headers(headers: &HeaderMap, query: &UploadQuery) -> ApiResult<Upload> {
    let mime_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "org.springframework.web.HttpMediaTypeNotSupportedException",
                "Content-Type is required",
            )
        })?
        .to_owned();
    let disposition = headers
        .get(header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "org.springframework.web.bind.MissingRequestHeaderException",
                "Required header 'Content-Disposition' is not present",
            )
        })?;
    let filename = disposition_parameter(disposition, "filename").ok_or_else(|| {
        ApiError::bad_request(
            "InvalidFilenameException",
            "Content-Disposition has no filename",
        )
    })?;
    check_filename(&filename)?;
    let title = query
        .title
        .clone()
        .or_else(|| disposition_parameter(disposition, "name"));
    Ok(Upload {
        filename,
        title,
        mime_type,
    })
}

/// The rules of a new file for `message`; returns the channel's upload limit left.
async fn check_new_file(
    state: &ApiState,
    message: &OutMessage,
    sbd: &Sbd,
    upload: &Upload,
) -> ApiResult<u64> {
    if message.queued {
        return Err(ApiError::bad_request(
            "MessageAlreadySentException",
            format!("Message with id {} has been sent", message.message_id),
        ));
    }
    let files = state.store.files(&message.message_id).await?;
    file_rules(state, message, sbd, upload, &files)
}

/// The rules of a new file beside the message's `files`; returns the channel's upload limit
/// left.
fn file_rules(
    state: &ApiState,
    message: &OutMessage,
    sbd: &Sbd,
    upload: &Upload,
    files: &[MessageFile],
) -> ApiResult<u64> {
    if files.iter().any(|f| f.filename == upload.filename) {
        return Err(ApiError::bad_request(
            "DuplicateFilenameException",
            format!("Duplicate filename: {}", upload.filename),
        ));
    }
    if (sbd.message_type == "digital_dpv" || message.service_identifier == "DPV")
        && upload.title.as_deref().is_none_or(str::is_empty)
    {
        return Err(ApiError::bad_request(
            "MissingFileTitleException",
            format!("File {} needs a title", upload.filename),
        ));
    }
    let limit = channel_for(state, &message.service_identifier)
        .and_then(|(_, limit)| limit)
        .unwrap_or(state.settings.default_upload_limit);
    let used: u64 = files.iter().map(|f| f.size.max(0) as u64).sum();
    Ok(limit.saturating_sub(used))
}

fn too_large(limit: u64) -> ApiError {
    ApiError::bad_request(
        "MaxFileSizeExceededException",
        format!("The message's files exceed the channel's limit of {limit} bytes"),
    )
}

/// Reads an uploaded `arkivmelding.xml` for its title, reference and the files it names.
async fn read_arkivmelding(blob: &Blob) -> ApiResult<arkivmelding::Arkivmelding> {
    if blob.size() > MAX_ARKIVMELDING {
        return Err(ApiError::bad_request(
            "ArkivmeldingProcessingException",
            "arkivmelding.xml is too large",
        ));
    }
    let xml = read_all(blob)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    arkivmelding::read(&xml).map_err(|reason| {
        ApiError::bad_request(
            "ArkivmeldingProcessingException",
            format!("arkivmelding.xml: {reason}"),
        )
    })
}

/// The row of an uploaded blob as a file of `message`.
fn file_row(message: &OutMessage, sbd: &Sbd, upload: Upload, blob: &Blob) -> MessageFile {
    MessageFile {
        message_id: message.message_id.clone(),
        ordinal: 0,
        primary_document: sbd.primary_document() == Some(upload.filename.as_str()),
        filename: upload.filename,
        title: upload.title,
        mime_type: upload.mime_type,
        size: blob.size() as i64,
        content: FileContent::Blob(blob.id().as_str().to_owned()),
    }
}

/// Keeps the uploaded `blobs` of `files` (in their order), each in its row when small, and
/// records in each row where its bytes are now; returns each file's bytes in their order: the
/// blob its row names (to persist once the row has committed, [`persist_named_blobs`]), or the
/// upload its row's sealed copy was made from.
async fn keep_uploads(files: &mut [MessageFile], blobs: Vec<Blob>) -> ApiResult<Vec<Blob>> {
    let kept = keep_files(blobs)
        .await
        .map_err(|e| ApiError::internal(format!("the files could not be kept: {e}")))?;
    let mut contents = Vec::with_capacity(kept.len());
    for (file, kept) in files.iter_mut().zip(kept) {
        file.content = match kept {
            KeptFile::Blob(blob) => {
                let content = FileContent::Blob(blob.id().as_str().to_owned());
                contents.push(blob);
                content
            }
            KeptFile::Inline { sealed, plain } => {
                contents.push(plain);
                FileContent::Inline(sealed)
            }
        };
    }
    Ok(contents)
}

/// Keeps an uploaded blob as a file of `message`, reading an arkivmelding for its title.
async fn keep_file(
    state: &ApiState,
    message: &OutMessage,
    sbd: &Sbd,
    upload: Upload,
    blob: Blob,
) -> ApiResult<()> {
    let mut reference_and_title = None;
    if upload.filename == ARKIVMELDING_FILE {
        let read = read_arkivmelding(&blob).await?;
        reference_and_title = Some((read.reference, read.title));
    }
    let mut file = file_row(message, sbd, upload, &blob);
    let kept = keep_uploads(std::slice::from_mut(&mut file), vec![blob]).await?;
    match state.store.add_file(&file).await {
        Ok(()) => persist_named_blobs(std::slice::from_ref(&file), &kept),
        Err(StoreError::Duplicate(message)) => {
            return Err(ApiError::bad_request("DuplicateFilenameException", message));
        }
        Err(StoreError::NotFound(message)) => {
            return Err(ApiError::not_found("MessageNotFoundException", message));
        }
        Err(other) => return Err(other.into()),
    }
    if let Some((reference, title)) = reference_and_title {
        state
            .store
            .set_reference_and_title(&message.message_id, reference.as_deref(), title.as_deref())
            .await?;
    }
    Ok(())
}

async fn unsent_message(state: &ApiState, message_id: &str) -> ApiResult<(OutMessage, Sbd)> {
    let message = state.store.out_message(message_id).await?.ok_or_else(|| {
        ApiError::not_found(
            "MessageNotFoundException",
            format!("Message with id {message_id} not found"),
        )
    })?;
    let sbd = Sbd::from_stored(&message.sbd)?;
    Ok((message, sbd))
}

/// `PUT /api/messages/out/{messageId}`: the body is the file.
pub async fn upload(
    State(state): State<Arc<ApiState>>,
    Path(message_id): Path<String>,
    ApiQuery(query): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<StatusCode> {
    let (message, sbd) = unsent_message(&state, &message_id).await?;
    let upload = upload_headers(&headers, &query)?;
    let room = check_new_file(&state, &message, &sbd, &upload).await?;
    let mut stream = body.into_data_stream();
    let written = write_stream(state.blobs.clone(), &mut stream, Some(room)).await;
    if written.is_err() {
        drain(&mut stream).await;
    }
    let blob = written.map_err(|error| {
        if error.kind() == std::io::ErrorKind::FileTooLarge {
            too_large(room)
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "InputStreamException",
                format!("the upload could not be read: {error}"),
            )
        }
    })?;
    keep_file(&state, &message, &sbd, upload, blob).await?;
    Ok(StatusCode::OK)
}

/// The send rules of §1.3, then the outbox.
async fn send_message(state: &ApiState, message: &OutMessage, sbd: &Sbd) -> ApiResult<()> {
    if message.queued {
        return Err(ApiError::bad_request(
            "MessageAlreadySentException",
            format!(
                "Message with id {} has been sent already",
                message.message_id
            ),
        ));
    }
    let now = now_millis();
    if message.expiry.is_some_and(|expiry| expiry <= now) {
        let reason = "Levetiden for meldingen er utgått. Må sendes på nytt";
        let blobs =
            state
                .store
                .finish_unsent(
                    &message.message_id,
                    ReceiptStatus::LevetidUtlopt,
                    reason,
                    crate::store::StatusEffects {
                        starts_polling: false,
                        queue: state.settings.status_queue_includes.iter().any(|service| {
                            service.eq_ignore_ascii_case(&message.service_identifier)
                        }),
                    },
                )
                .await?;
        remove_blobs(state, blobs).await;
        return Err(ApiError::bad_request("TimeToLiveException", reason));
    }
    let files = state.store.files(&message.message_id).await?;
    let arkivmelding = match files.iter().find(|f| f.filename == ARKIVMELDING_FILE) {
        Some(file) if sbd.message_type == "arkivmelding" => {
            let blob = crate::engine::file_blob(file, &state.blobs)
                .map_err(|e| ApiError::internal(format!("{ARKIVMELDING_FILE}: {e}")))?;
            Some(read_arkivmelding(&blob).await?)
        }
        _ => None,
    };
    send_rules(message, sbd, &files, arkivmelding.as_ref())?;
    state.store.queue_for_sending(&message.message_id).await?;
    state.handoff.wake_for_store();
    Ok(())
}

/// The send rules of §1.3 about a message's files; `arkivmelding` is its `arkivmelding.xml`
/// read, when it has one.
fn send_rules(
    message: &OutMessage,
    sbd: &Sbd,
    files: &[MessageFile],
    arkivmelding: Option<&arkivmelding::Arkivmelding>,
) -> ApiResult<()> {
    if sbd.needs_files() && files.is_empty() {
        return Err(ApiError::bad_request(
            "MissingFileException",
            format!(
                "Message with id {} has no files; upload at least one",
                message.message_id
            ),
        ));
    }
    if sbd.message_type == "arkivmelding" {
        let Some(read) = arkivmelding else {
            return Err(ApiError::bad_request(
                "MissingArkivmeldingFileException",
                "An arkivmelding message needs the file arkivmelding.xml",
            ));
        };
        if let Some(missing) = read
            .files
            .iter()
            .find(|name| !files.iter().any(|f| &f.filename == *name))
        {
            return Err(ApiError::bad_request(
                "MissingArkivmeldingFileException",
                format!("arkivmelding.xml refers to {missing}, which is not uploaded"),
            ));
        }
    }
    if matches!(sbd.message_type.as_str(), "digital" | "print")
        && !files.iter().any(|f| f.primary_document)
    {
        return Err(ApiError::bad_request(
            "MissingPrimaryDocumentException",
            "The message needs its primary document (hoveddokument)",
        ));
    }
    Ok(())
}

/// Removes blobs no row refers to any more.
pub(super) async fn remove_blobs(state: &ApiState, blobs: Vec<String>) {
    let store = state.blobs.clone();
    let _ = tokio::task::spawn_blocking(move || {
        for id in blobs {
            if let Err(error) = store.remove(&crate::blobs::BlobId::new(id.clone())) {
                tracing::warn!(blob = %id, %error, "a file could not be removed");
            }
        }
    })
    .await;
}

/// `POST /api/messages/out/{messageId}`.
pub async fn send(
    State(state): State<Arc<ApiState>>,
    Path(message_id): Path<String>,
) -> ApiResult<StatusCode> {
    let (message, sbd) = unsent_message(&state, &message_id).await?;
    send_message(&state, &message, &sbd).await?;
    Ok(StatusCode::OK)
}

/// `POST /api/messages/out/multipart`: create, upload each file part, and send.
///
/// The parts are checked as they arrive and streamed into blobs, but nothing is stored until
/// the whole request has passed every rule of create, upload and send: then the message, its
/// conversation, its files and its outbox row are written in one transaction. A refused request
/// leaves nothing behind (its blobs go with their handles), and an accepted one costs one
/// write.
pub async fn multipart(
    State(state): State<Arc<ApiState>>,
    mut form: Multipart,
) -> ApiResult<Json<Value>> {
    let outcome = accept_multipart(&state, &mut form).await;
    if outcome.is_err() {
        while let Ok(Some(mut field)) = form.next_field().await {
            if !drain_field(&mut field).await {
                break;
            }
        }
    }
    outcome.map(Json)
}

/// Reads, checks and stores a multipart send; the SBD with its defaults.
async fn accept_multipart(state: &ApiState, form: &mut Multipart) -> ApiResult<Value> {
    let bad = |message: String| {
        ApiError::bad_request(
            "org.springframework.web.multipart.MultipartException",
            message,
        )
    };
    let first = form
        .next_field()
        .await
        .map_err(|e| bad(e.to_string()))?
        .ok_or_else(|| bad("the form is empty; the first part must be sbd".into()))?;
    if first.name() != Some("sbd") {
        return Err(bad("the first part must be named sbd".into()));
    }
    let sbd_bytes = first.bytes().await.map_err(|e| bad(e.to_string()))?;
    let NewMessage {
        sbd,
        message,
        conversation,
        record,
    } = prepare_message(state, &sbd_bytes).await?;
    let mut files: Vec<MessageFile> = Vec::new();
    // The uploaded blobs, kept only once the message is stored.
    let mut blobs: Vec<Blob> = Vec::new();
    let mut arkivmelding = None;
    while let Some(field) = form.next_field().await.map_err(|e| bad(e.to_string()))? {
        let filename = field
            .file_name()
            .map(str::to_owned)
            .ok_or_else(|| bad("a file part has no filename".into()))?;
        check_filename(&filename)?;
        let upload = Upload {
            filename,
            title: field.name().map(str::to_owned),
            mime_type: field
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_owned(),
        };
        let room = file_rules(state, &message, &sbd, &upload, &files)?
            .min(state.settings.multipart_file_limit);
        let stream = field.map_err(|e| std::io::Error::other(e.to_string()));
        let blob = write_stream(state.blobs.clone(), stream, Some(room))
            .await
            .map_err(|error| {
                if error.kind() == std::io::ErrorKind::FileTooLarge {
                    too_large(room)
                } else {
                    bad(format!("a file part could not be read: {error}"))
                }
            })?;
        if upload.filename == ARKIVMELDING_FILE {
            arkivmelding = Some(read_arkivmelding(&blob).await?);
        }
        files.push(file_row(&message, &sbd, upload, &blob));
        blobs.push(blob);
    }
    if message.expiry.is_some_and(|expiry| expiry <= now_millis()) {
        return Err(ApiError::bad_request(
            "TimeToLiveException",
            "Levetiden for meldingen er utgått. Må sendes på nytt",
        ));
    }
    let arkivmelding = arkivmelding.filter(|_| sbd.message_type == "arkivmelding");
    send_rules(&message, &sbd, &files, arkivmelding.as_ref())?;
    let (reference, title) = arkivmelding
        .map(|read| (read.reference, read.title))
        .unwrap_or_default();
    let contents = keep_uploads(&mut files, blobs).await?;
    let in_hand = InHand {
        contents,
        record,
        sender_and_receiver: parties(&sbd.json),
    };
    let queued = QueuedMessage {
        message,
        conversation,
        files,
        reference,
        title,
    };
    state
        .writes
        .write(SendWrite::Accept(Box::new(Accepted { queued, in_hand })))
        .await
        .map_err(creation_error)?;
    Ok(sbd.json)
}

/// How much of a refused request body is read and discarded, so that the client, still
/// writing, gets the answer instead of a broken connection; beyond it the connection is closed.
const DRAIN_LIMIT: u64 = 64 << 20;

/// Reads and discards what is left of a refused upload, up to [`DRAIN_LIMIT`].
async fn drain(stream: &mut axum::body::BodyDataStream) {
    use futures::StreamExt as _;
    let mut drained = 0u64;
    while let Some(Ok(chunk)) = stream.next().await {
        drained += chunk.len() as u64;
        if drained > DRAIN_LIMIT {
            break;
        }
    }
}

/// Reads and discards a multipart field; false when it was larger than [`DRAIN_LIMIT`].
async fn drain_field(field: &mut axum::extract::multipart::Field<'_>) -> bool {
    let mut drained = 0u64;
    while let Ok(Some(chunk)) = field.chunk().await {
        drained += chunk.len() as u64;
        if drained > DRAIN_LIMIT {
            return false;
        }
    }
    true
}

/// Filters of the messages listings.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageFilter {
    conversation_id: Option<String>,
    message_id: Option<String>,
    process_identifier: Option<String>,
    process: Option<String>,
    receiver_identifier: Option<String>,
    sender_identifier: Option<String>,
    service_identifier: Option<String>,
}

impl MessageFilter {
    pub(super) fn query(&self) -> MessageQuery {
        MessageQuery {
            conversation_id: self.conversation_id.clone(),
            message_id: self.message_id.clone(),
            process_identifier: self.process_identifier.clone().or(self.process.clone()),
            receiver_identifier: self.receiver_identifier.as_deref().map(primary_identifier),
            sender_identifier: self.sender_identifier.as_deref().map(primary_identifier),
            service_identifier: self.service_identifier.clone(),
        }
    }
}

/// `GET /api/messages/out`.
pub async fn list(
    State(state): State<Arc<ApiState>>,
    ApiQuery(filter): ApiQuery<MessageFilter>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> ApiResult<Json<Value>> {
    let request = paging.request(
        &[("lastUpdated", "last_updated"), ("messageId", "message_id")],
        ("created", false),
    )?;
    let page = state.store.out_messages(&filter.query(), &request).await?;
    Ok(Json(page_json(&page, &request, None, |m| {
        stored_sbd(&m.sbd)
    })))
}

/// `GET /api/messages/out/{messageId}`.
pub async fn get(
    State(state): State<Arc<ApiState>>,
    Path(message_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (message, _) = unsent_message(&state, &message_id).await?;
    Ok(Json(stored_sbd(&message.sbd)))
}

/// `DELETE /api/messages/out/{messageId}`: the files and the message; the conversation stays.
pub async fn remove(
    State(state): State<Arc<ApiState>>,
    Path(message_id): Path<String>,
) -> ApiResult<StatusCode> {
    // Forgotten first: the outbox worker takes what is handed over without reading the store,
    // and must not take the message once it is deleted.
    state.handoff.forget(&message_id);
    let deleted = state.store.delete_out_message(&message_id).await;
    if deleted.is_err() {
        // Still stored, and now for the worker to read there.
        state.handoff.wake_for_store();
    }
    match deleted? {
        Some(blobs) => {
            remove_blobs(&state, blobs).await;
            Ok(StatusCode::OK)
        }
        None => Err(ApiError::not_found(
            "MessageNotFoundException",
            format!("Message with id {message_id} not found"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_that_escape_are_refused() {
        for bad in ["", "../x.pdf", "a/b.pdf", "a\\b.pdf", "..", "x..pdf"] {
            assert!(check_filename(bad).is_err(), "{bad:?}");
        }
        check_filename("vedtak.pdf").expect("a plain name");
    }

    #[test]
    fn disposition_parameters_are_read_quoted_or_not() {
        let header = "attachment; name=\"Vedtak\"; filename=vedtak.pdf";
        assert_eq!(
            disposition_parameter(header, "filename").as_deref(),
            Some("vedtak.pdf")
        );
        assert_eq!(
            disposition_parameter(header, "name").as_deref(),
            Some("Vedtak")
        );
    }
}
