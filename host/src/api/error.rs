//! The error body of the real integration point, so archive systems that parse it keep working.
//!
//! Spring's error attributes plus its additions: `timestamp`, `status`, `error` (the reason
//! phrase), `exception` (the Java class name clients match on), `message`, `path`, and `errors`
//! for constraint violations. Handlers do not know the request path, so an error travels as a
//! response extension and [`add_path`] writes the body once the path is at hand.

use axum::Json;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::sbd::SbdError;
use crate::store::{StoreError, now_millis};
use crate::timefmt;

/// The Java package of the real exceptions.
const EXCEPTIONS: &str = "no.difi.meldingsutveksling.exceptions.";

/// One constraint violation.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldError {
    /// The constraint's codes.
    pub codes: Vec<String>,
    /// What is wrong.
    pub default_message: String,
    /// The object, as a path.
    pub object_name: String,
    /// The field, as a path.
    pub field: String,
    /// The value refused.
    pub rejected_value: serde_json::Value,
    /// Always false: the value was read, it is just not allowed.
    pub binding_failure: bool,
    /// The constraint.
    pub code: String,
}

impl FieldError {
    /// A violation of `code` at `field`.
    pub fn new(
        field: &str,
        code: &str,
        message: impl Into<String>,
        rejected: serde_json::Value,
    ) -> Self {
        Self {
            codes: vec![code.to_owned()],
            default_message: message.into(),
            object_name: field.to_owned(),
            field: field.to_owned(),
            rejected_value: rejected,
            binding_failure: false,
            code: code.to_owned(),
        }
    }
}

/// An API error.
#[derive(Clone, Debug)]
pub struct ApiError {
    status: StatusCode,
    exception: String,
    message: String,
    errors: Vec<FieldError>,
}

impl ApiError {
    /// An error with `status`, the real exception's simple name and a message.
    pub fn new(status: StatusCode, exception: &str, message: impl Into<String>) -> Self {
        let exception = if exception.contains('.') {
            exception.to_owned()
        } else {
            format!("{EXCEPTIONS}{exception}")
        };
        Self {
            status,
            exception,
            message: message.into(),
            errors: Vec::new(),
        }
    }

    /// 400 with the real exception's simple name.
    pub fn bad_request(exception: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, exception, message)
    }

    /// 404 with the real exception's simple name.
    pub fn not_found(exception: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, exception, message)
    }

    /// 500 for a failure of this service.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "MessagePersistException",
            message,
        )
    }

    /// 400 for constraint violations, listed in `errors`.
    pub fn violations(errors: Vec<FieldError>) -> Self {
        let message = errors
            .iter()
            .map(|error| format!("{}: {}", error.field, error.default_message))
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            status: StatusCode::BAD_REQUEST,
            exception: "jakarta.validation.ConstraintViolationException".into(),
            message,
            errors,
        }
    }

    /// The same error reported as another of the real exceptions.
    pub fn with_exception(mut self, exception: &str) -> Self {
        self.exception = format!("{EXCEPTIONS}{exception}");
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    fn body(&self, path: &str) -> serde_json::Value {
        let mut body = serde_json::json!({
            "timestamp": timefmt::format_millis(now_millis()),
            "status": self.status.as_u16(),
            "error": self.status.canonical_reason().unwrap_or("Error"),
            "exception": self.exception,
            "message": self.message,
            "path": path,
        });
        if !self.errors.is_empty() {
            body["errors"] = serde_json::to_value(&self.errors).unwrap_or_default();
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body(""))).into_response();
        response.extensions_mut().insert(self);
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Duplicate(message) => {
                Self::bad_request("MessageAlreadyExistsException", message)
            }
            StoreError::NotFound(message) => Self::not_found("MessageNotFoundException", message),
            StoreError::Conflict(message) => Self::bad_request("MessageConflictException", message),
            other => {
                tracing::error!(error = %other, "the store failed");
                Self::internal(other.to_string())
            }
        }
    }
}

/// Rewrites an error response's body with the request's path.
pub async fn add_path(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    match response.extensions().get::<ApiError>().cloned() {
        Some(error) => {
            let mut rewritten = (error.status, Json(error.body(&path))).into_response();
            if let Some(challenge) = response.headers().get(header::WWW_AUTHENTICATE) {
                rewritten
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, challenge.clone());
            }
            rewritten
        }
        None => response,
    }
}

/// What a handler returns.
pub type ApiResult<T> = Result<T, ApiError>;

/// A refused SBD in the integration point's error body: the exception it names, or the field
/// violations with the status code they always had.
impl From<SbdError> for ApiError {
    fn from(error: SbdError) -> Self {
        match error {
            SbdError::Unreadable(message) => Self::internal(message),
            SbdError::Refused { exception, message } => Self::bad_request(exception, message),
            SbdError::Violations(violations) => Self::violations(
                violations
                    .into_iter()
                    .map(|v| FieldError::new(&v.field, v.code, v.message, v.rejected_value))
                    .collect(),
            ),
        }
    }
}
