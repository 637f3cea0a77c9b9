//! `/api/conversations`: a message's life as the archive system follows it.
//!
//! As in the real integration point, lookups by id or message id see outgoing conversations
//! only; listings see both directions and filter by `direction`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::ApiState;
use super::error::{ApiError, ApiResult};
use super::page::{PageParams, page_json};
use super::query::ApiQuery;
use super::render;
use crate::store::{Conversation, ConversationQuery, Direction};
use crate::timefmt;

/// The properties conversations sort by.
const SORTABLE: &[(&str, &str)] = &[
    ("lastUpdate", "last_update"),
    ("id", "id"),
    ("messageId", "message_id"),
    ("conversationId", "conversation_id"),
    ("expiry", "expiry"),
];

/// `ConversationQueryInput`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationFilter {
    conversation_id: Option<String>,
    message_id: Option<String>,
    receiver: Option<String>,
    receiver_identifier: Option<String>,
    sender: Option<String>,
    sender_identifier: Option<String>,
    service_identifier: Option<String>,
    message_reference: Option<String>,
    message_title: Option<String>,
    pollable: Option<bool>,
    finished: Option<bool>,
    direction: Option<String>,
    last_update_from: Option<String>,
    last_update_to: Option<String>,
}

fn bad_filter(message: String) -> ApiError {
    ApiError::bad_request(
        "org.springframework.web.method.annotation.MethodArgumentTypeMismatchException",
        message,
    )
}

impl ConversationFilter {
    fn query(&self) -> Result<ConversationQuery, ApiError> {
        let direction = self
            .direction
            .as_deref()
            .map(str::parse::<Direction>)
            .transpose()
            .map_err(bad_filter)?;
        let day = 24 * 3_600_000;
        Ok(ConversationQuery {
            conversation_id: self.conversation_id.clone(),
            message_id: self.message_id.clone(),
            receiver: self.receiver.clone(),
            receiver_identifier: self.receiver_identifier.clone(),
            sender: self.sender.clone(),
            sender_identifier: self.sender_identifier.clone(),
            service_identifier: self.service_identifier.clone(),
            message_reference: self.message_reference.clone(),
            message_title: self.message_title.clone(),
            pollable: self.pollable,
            finished: self.finished,
            direction,
            last_update_from: self
                .last_update_from
                .as_deref()
                .map(timefmt::parse_date)
                .transpose()
                .map_err(bad_filter)?,
            // The `to` date includes its whole day.
            last_update_to: self
                .last_update_to
                .as_deref()
                .map(|d| timefmt::parse_date(d).map(|start| start + day))
                .transpose()
                .map_err(bad_filter)?,
        })
    }
}

async fn page(
    state: &ApiState,
    query: ConversationQuery,
    params: &PageParams,
) -> ApiResult<Json<Value>> {
    let request = params.request(SORTABLE, ("last_update", true))?;
    let page = state.store.conversations(&query, &request).await?;
    Ok(Json(page_json(
        &page,
        &request,
        Some(request.sort_column),
        render::conversation,
    )))
}

/// `GET /api/conversations`.
pub async fn list(
    State(state): State<Arc<ApiState>>,
    ApiQuery(filter): ApiQuery<ConversationFilter>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> ApiResult<Json<Value>> {
    page(&state, filter.query()?, &paging).await
}

/// `GET /api/conversations/queue`: conversations whose statuses are still polled.
pub async fn queue(
    State(state): State<Arc<ApiState>>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<Value>> {
    let query = ConversationQuery {
        pollable: Some(true),
        ..Default::default()
    };
    page(&state, query, &params).await
}

fn not_found(what: &str) -> ApiError {
    ApiError::not_found(
        "ConversationNotFoundException",
        format!("Conversation with {what} not found"),
    )
}

async fn outgoing_by_id(state: &ApiState, id: &str) -> ApiResult<Conversation> {
    let id: i64 = id
        .parse()
        .map_err(|_| bad_filter(format!("conversation id {id:?} is not a number")))?;
    state
        .store
        .conversation_by_id(id)
        .await?
        .filter(|c| c.direction == Direction::Outgoing)
        .ok_or_else(|| not_found(&format!("id {id}")))
}

/// `GET /api/conversations/{id}`.
pub async fn get(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(render::conversation(
        &outgoing_by_id(&state, &id).await?,
    )))
}

/// `GET /api/conversations/messageId/{messageId}`.
pub async fn by_message_id(
    State(state): State<Arc<ApiState>>,
    Path(message_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let conversation = state
        .store
        .conversation(&message_id, Direction::Outgoing)
        .await?
        .ok_or_else(|| not_found(&format!("messageId {message_id}")))?;
    Ok(Json(render::conversation(&conversation)))
}

/// `DELETE /api/conversations/{id}`.
pub async fn remove(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let conversation = outgoing_by_id(&state, &id).await?;
    state.store.delete_conversation(conversation.id).await?;
    Ok(StatusCode::OK)
}

/// `DELETE /api/conversations/messageId/{messageId}`.
pub async fn remove_by_message_id(
    State(state): State<Arc<ApiState>>,
    Path(message_id): Path<String>,
) -> ApiResult<StatusCode> {
    let conversation = state
        .store
        .conversation(&message_id, Direction::Outgoing)
        .await?
        .ok_or_else(|| not_found(&format!("messageId {message_id}")))?;
    state.store.delete_conversation(conversation.id).await?;
    Ok(StatusCode::OK)
}
