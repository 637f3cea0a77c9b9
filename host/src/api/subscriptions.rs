//! `/api/subscriptions`: webhook subscriptions, checked with a ping before they are kept.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::ApiState;
use super::error::{ApiError, ApiResult, FieldError};
use super::page::{PageParams, page_json};
use super::query::ApiQuery;
use crate::store::{EventFilter, StoreError, Subscription, now_millis};
use crate::timefmt;

fn parse(body: &[u8]) -> ApiResult<Subscription> {
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        ApiError::bad_request(
            "org.springframework.http.converter.HttpMessageNotReadableException",
            format!("JSON parse error: {error}"),
        )
    })?;
    let text = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let mut errors = Vec::new();
    let mut required = |key: &str| {
        let found = text(key);
        if found.is_none() {
            errors.push(FieldError::new(
                key,
                "NotNull",
                "must not be null",
                Value::Null,
            ));
        }
        found.unwrap_or_default()
    };
    let subscription = Subscription {
        id: 0,
        name: required("name"),
        push_endpoint: required("pushEndpoint"),
        resource: required("resource"),
        event: required("event"),
        filter: text("filter"),
    };
    if !errors.is_empty() {
        return Err(ApiError::violations(errors));
    }
    let url = reqwest::Url::parse(&subscription.push_endpoint)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https"));
    if url.is_none() {
        return Err(ApiError::violations(vec![FieldError::new(
            "pushEndpoint",
            "URL",
            "must be an http or https URL",
            json!(subscription.push_endpoint),
        )]));
    }
    for (key, allowed) in [
        ("resource", ["all", "messages"]),
        ("event", ["all", "status"]),
    ] {
        let given = if key == "resource" {
            &subscription.resource
        } else {
            &subscription.event
        };
        if !allowed.contains(&given.as_str()) {
            return Err(ApiError::violations(vec![FieldError::new(
                key,
                "Pattern",
                format!("must be one of {allowed:?}"),
                json!(given),
            )]));
        }
    }
    EventFilter::parse(subscription.filter.as_deref())
        .map_err(|reason| ApiError::bad_request("WebhookUnknownFilterException", reason))?;
    Ok(subscription)
}

/// POSTs the ping the real integration point sends before it keeps a subscription.
async fn ping(state: &ApiState, endpoint: &str) -> ApiResult<()> {
    let body = json!({"createdTs": timefmt::format_millis(now_millis()), "event": "ping"});
    let answer = state
        .http
        .post(endpoint)
        .timeout(state.settings.webhook_timeout)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await;
    match answer {
        Ok(answer) if answer.status().is_success() => Ok(()),
        Ok(answer) => Err(ApiError::bad_request(
            "WebhookPushEndpointPingFailedException",
            format!("The ping to {endpoint} was answered {}", answer.status()),
        )),
        Err(error) => Err(ApiError::bad_request(
            "WebhookPushEndpointPingFailedException",
            format!("The ping to {endpoint} failed: {error}"),
        )),
    }
}

fn not_found(id: i64) -> ApiError {
    ApiError::not_found(
        "SubscriptionNotFoundException",
        format!("Subscription with id {id} not found"),
    )
}

fn duplicate(error: StoreError) -> ApiError {
    match error {
        StoreError::Duplicate(message) => {
            ApiError::bad_request("SubscriptionAlreadyExistsException", message)
        }
        other => other.into(),
    }
}

/// `POST /api/subscriptions`.
pub async fn create(State(state): State<Arc<ApiState>>, body: Bytes) -> ApiResult<Json<Value>> {
    let subscription = parse(&body)?;
    ping(&state, &subscription.push_endpoint).await?;
    let created = state
        .store
        .create_subscription(&subscription)
        .await
        .map_err(duplicate)?;
    Ok(Json(json!(created)))
}

/// `PUT /api/subscriptions/{id}`: pings again when the endpoint changes.
pub async fn update(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let subscription = parse(&body)?;
    let existing = state
        .store
        .subscription(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    if existing.push_endpoint != subscription.push_endpoint {
        ping(&state, &subscription.push_endpoint).await?;
    }
    if !state
        .store
        .update_subscription(id, &subscription)
        .await
        .map_err(duplicate)?
    {
        return Err(not_found(id));
    }
    Ok(StatusCode::OK)
}

/// `GET /api/subscriptions/{id}`.
pub async fn get(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Value>> {
    let subscription = state
        .store
        .subscription(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(Json(json!(subscription)))
}

/// `GET /api/subscriptions`.
pub async fn list(
    State(state): State<Arc<ApiState>>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<Value>> {
    let request = params.request(&[("id", "id"), ("name", "name")], ("id", false))?;
    let page = state.store.subscriptions(&request).await?;
    Ok(Json(page_json(
        &page,
        &request,
        Some(request.sort_column),
        |s| json!(s),
    )))
}

/// `DELETE /api/subscriptions/{id}`.
pub async fn remove(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    if state.store.delete_subscription(id).await? {
        Ok(StatusCode::OK)
    } else {
        Err(not_found(id))
    }
}

/// `DELETE /api/subscriptions`.
pub async fn remove_all(State(state): State<Arc<ApiState>>) -> ApiResult<StatusCode> {
    state.store.delete_all_subscriptions().await?;
    Ok(StatusCode::OK)
}
