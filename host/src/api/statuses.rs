//! `/api/statuses`: every registered status, and the status queue archive systems may drain
//! instead of polling conversations.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::ApiState;
use super::error::{ApiError, ApiResult};
use super::page::{PageParams, page_json};
use super::query::ApiQuery;
use super::render;
use crate::store::{ReceiptStatus, StatusQuery};
use crate::timefmt;

const SORTABLE: &[(&str, &str)] = &[("id", "s.id"), ("lastUpdate", "s.last_update")];

/// `MessageStatusQueryInput`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusFilter {
    id: Option<i64>,
    message_id: Option<String>,
    conversation_id: Option<String>,
    status: Option<String>,
    from_date_time: Option<String>,
    to_date_time: Option<String>,
}

fn bad(message: String) -> ApiError {
    ApiError::bad_request(
        "org.springframework.web.method.annotation.MethodArgumentTypeMismatchException",
        message,
    )
}

/// `GET /api/statuses`.
pub async fn list(
    State(state): State<Arc<ApiState>>,
    ApiQuery(filter): ApiQuery<StatusFilter>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> ApiResult<Json<Value>> {
    if filter.from_date_time.is_some() != filter.to_date_time.is_some() {
        return Err(bad(
            "fromDateTime and toDateTime must be given together".into()
        ));
    }
    let query = StatusQuery {
        id: filter.id,
        message_id: filter.message_id.clone(),
        conversation_id: filter.conversation_id.clone(),
        status: filter
            .status
            .as_deref()
            .map(str::parse::<ReceiptStatus>)
            .transpose()
            .map_err(bad)?,
        from: filter
            .from_date_time
            .as_deref()
            .map(timefmt::parse_date_time)
            .transpose()
            .map_err(bad)?,
        to: filter
            .to_date_time
            .as_deref()
            .map(timefmt::parse_date_time)
            .transpose()
            .map_err(bad)?,
    };
    let request = paging.request(SORTABLE, ("s.id", false))?;
    let page = state.store.statuses(&query, &request).await?;
    Ok(Json(page_json(
        &page,
        &request,
        Some(request.sort_column),
        render::status,
    )))
}

/// `GET /api/statuses/{messageId}`.
pub async fn by_message_id(
    State(state): State<Arc<ApiState>>,
    Path(message_id): Path<String>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<Value>> {
    let query = StatusQuery {
        message_id: Some(message_id),
        ..Default::default()
    };
    let request = params.request(SORTABLE, ("s.id", false))?;
    let page = state.store.statuses(&query, &request).await?;
    Ok(Json(page_json(
        &page,
        &request,
        Some(request.sort_column),
        render::status,
    )))
}

/// `GET /api/statuses/peek`: the head of the status queue; 204 when it is empty.
pub async fn peek(State(state): State<Arc<ApiState>>) -> ApiResult<Response> {
    Ok(match state.store.peek_status_queue().await? {
        Some(status) => Json(render::status(&status)).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// `DELETE /api/statuses/{id}`: takes a status off the queue.
pub async fn remove(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: i64 = id
        .parse()
        .map_err(|_| bad(format!("status id {id:?} is not a number")))?;
    if state.store.remove_from_status_queue(id).await? {
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::not_found(
            "MessageStatusNotFoundException",
            format!("Status with id {id} is not on the queue"),
        ))
    }
}
