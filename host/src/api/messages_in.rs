//! `/api/messages/in`: list, peek (locks), pop (streams the opened package), delete.
//!
//! A received package is stored as it arrived; for most channels that is a CMS envelope
//! addressed to this organisation, which pop opens while it streams, so a large message never
//! sits whole in memory or decrypted on disk.

use std::io::{Read as _, Seek as _};
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

use super::ApiState;
use super::error::{ApiError, ApiResult};
use super::messages_out::{MessageFilter, remove_blobs};
use super::page::{PageParams, page_json};
use super::query::ApiQuery;
use super::render::stored_sbd;
use crate::blobs::{BlobId, BlobReader};
use crate::crypto::cms::Decryptor;
use crate::engine::status_messages;
use crate::store::{InMessage, ReceiptStatus, StoreError, now_millis};

/// `GET /api/messages/in`.
pub async fn list(
    State(state): State<Arc<ApiState>>,
    ApiQuery(filter): ApiQuery<MessageFilter>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> ApiResult<Json<Value>> {
    let request = paging.request(&[("lastUpdated", "last_updated")], ("last_updated", false))?;
    let page = state.store.in_messages(&filter.query(), &request).await?;
    Ok(Json(page_json(&page, &request, None, |m| {
        stored_sbd(&m.sbd)
    })))
}

/// `GET /api/messages/in/peek`: the oldest unlocked message, now locked; 204 when none.
pub async fn peek(
    State(state): State<Arc<ApiState>>,
    ApiQuery(filter): ApiQuery<MessageFilter>,
) -> ApiResult<Response> {
    let now = now_millis();
    let lock = now + state.settings.lock_timeout.as_millis() as i64;
    match state
        .store
        .peek_incoming(&filter.query(), now, lock)
        .await?
    {
        Some(message) => Ok(Json(stored_sbd(&message.sbd)).into_response()),
        // 204 carries no body on the wire; the status is the answer.
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

async fn locked_message(state: &ApiState, message_id: &str) -> ApiResult<InMessage> {
    let message = state.store.in_message(message_id).await?.ok_or_else(|| {
        ApiError::not_found(
            "MessageNotFoundException",
            format!("Message with id {message_id} not found"),
        )
    })?;
    if message.lock_until.is_none_or(|until| until < now_millis()) {
        return Err(ApiError::bad_request(
            "MessageNotLockedException",
            format!("Message with id {message_id} is not locked; peek it first"),
        ));
    }
    Ok(message)
}

/// Whether a package is a CMS envelope (DER SEQUENCE) rather than a zip.
fn is_enveloped(first: &[u8]) -> bool {
    first.first() == Some(&0x30)
}

/// `GET /api/messages/in/pop/{messageId}`: the ASiC-E, opened; 204 for a message without one.
pub async fn pop(
    State(state): State<Arc<ApiState>>,
    Path(message_id): Path<String>,
) -> ApiResult<Response> {
    let message = locked_message(&state, &message_id).await?;
    let Some(package) = message.package_blob.clone() else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let blobs = state.blobs.clone();
    let certificate = state.certificate.clone();
    let opened =
        tokio::task::spawn_blocking(move || -> Result<Box<dyn std::io::Read + Send>, String> {
            let mut reader: Box<dyn BlobReader> = blobs
                .open(&BlobId::new(package))
                .map_err(|e| format!("the package cannot be read: {e}"))?;
            // One open: look at the first byte, then start over from it.
            let mut first = [0u8; 1];
            let n = reader.read(&mut first).map_err(|e| e.to_string())?;
            reader
                .seek(std::io::SeekFrom::Start(0))
                .map_err(|e| e.to_string())?;
            if n == 1 && is_enveloped(&first) {
                let certificate = certificate
                    .ok_or("the package is encrypted, but no business certificate is configured")?;
                let decryptor = Decryptor::new(std::io::BufReader::new(reader), &certificate)
                    .map_err(|e| format!("the package cannot be opened: {e}"))?;
                Ok(Box::new(decryptor))
            } else {
                Ok(Box::new(reader))
            }
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let reader = match opened {
        Ok(reader) => reader,
        Err(reason) => {
            let _ = state
                .store
                .discard_incoming(&message_id, crate::store::ReceiptStatus::Feil, &reason)
                .await;
            return Err(ApiError::internal(reason).with_exception("AsicReadException"));
        }
    };
    let body = Body::from_stream(stream_reader(reader));
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.etsi.asic-e+zip"),
            (header::CONTENT_DISPOSITION, "attachment; filename=asic.zip"),
        ],
        body,
    )
        .into_response())
}

/// Streams a blocking reader in chunks from tokio's blocking pool.
fn stream_reader(
    mut reader: Box<dyn std::io::Read + Send>,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => {
                    if tx
                        .blocking_send(Ok(Bytes::copy_from_slice(&buffer[..n])))
                        .is_err()
                    {
                        break;
                    }
                }
                Err(error) => {
                    let _ = tx.blocking_send(Err(error));
                    break;
                }
            }
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

/// `DELETE /api/messages/in/{messageId}`: needs the lock; registers INNKOMMENDE_LEVERT.
pub async fn remove(
    State(state): State<Arc<ApiState>>,
    Path(message_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let now = now_millis();
    let taken = state
        .store
        .take_incoming_replying(&message_id, now, |message| {
            status_messages::reply(
                &message.sbd,
                &message.service_identifier,
                &message.channel,
                ReceiptStatus::Levert,
                now,
            )
        })
        .await;
    let message = match taken {
        Ok(message) => message,
        Err(StoreError::Conflict(reason)) => {
            return Err(ApiError::bad_request("MessageNotLockedException", reason));
        }
        Err(StoreError::NotFound(reason)) => {
            return Err(ApiError::not_found("MessageNotFoundException", reason));
        }
        Err(other) => return Err(other.into()),
    };
    if let Some(package) = message.package_blob.clone() {
        remove_blobs(&state, vec![package]).await;
    }
    Ok(Json(stored_sbd(&message.sbd)))
}
