//! The one error type of the settings API and its mapping to the contract's error body
//! `{"error":{"code","message","field"?}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use reimbi_shared::ports::{AshbyError, SecretError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No claims in the request context: the request did not pass an authorizer.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// The token belongs to another company or is not an admin's.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The request (body, path or query) is not acceptable; `field` names the culprit.
    #[error("{message}")]
    Validation { field: Option<String>, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{message}")]
    AshbyKeyRejected { message: String },
    #[error("Ashby could not be reached to check the API key")]
    AshbyUnavailable(#[source] AshbyError),
    #[error("{message}")]
    UnknownApprover { field: &'static str, message: String },
    #[error("{0}")]
    IncompleteSettings(String),
    #[error("the settings changed concurrently; read them again and retry")]
    Conflict,
    #[error("the store failed")]
    Store(#[source] StoreError),
    #[error("the secret store failed")]
    Secret(#[source] SecretError),
}

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation { field: Some(field.into()), message: message.into() }
    }

    /// A validation error about the request as a whole (e.g. a body that is not JSON).
    pub fn invalid_body(message: impl Into<String>) -> Self {
        ApiError::Validation { field: None, message: message.into() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Validation { .. }
            | ApiError::AshbyKeyRejected { .. }
            | ApiError::UnknownApprover { .. }
            | ApiError::IncompleteSettings(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::AshbyUnavailable(_) => StatusCode::BAD_GATEWAY,
            ApiError::Conflict => StatusCode::CONFLICT,
            ApiError::Store(StoreError::Unavailable(_)) | ApiError::Secret(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(StoreError::Conflict) => StatusCode::CONFLICT,
            ApiError::Store(StoreError::InvalidCursor) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Store(StoreError::Corrupt(_)) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The contract's stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Validation { .. } | ApiError::Store(StoreError::InvalidCursor) => "validation_failed",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::AshbyKeyRejected { .. } => "ashby_api_key_rejected",
            ApiError::AshbyUnavailable(_) => "ashby_unavailable",
            ApiError::UnknownApprover { .. } => "unknown_approver",
            ApiError::IncompleteSettings(_) => "incomplete_settings",
            ApiError::Conflict | ApiError::Store(StoreError::Conflict) => "conflict",
            ApiError::Store(StoreError::Unavailable(_)) | ApiError::Secret(_) => "temporarily_unavailable",
            ApiError::Store(StoreError::Corrupt(_)) => "internal_error",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            ApiError::Validation { field, .. } => field.as_deref(),
            ApiError::UnknownApprover { field, .. } => Some(field),
            ApiError::AshbyKeyRejected { .. } => Some("apiKey"),
            ApiError::Store(StoreError::InvalidCursor) => Some("cursor"),
            _ => None,
        }
    }

    /// What the client reads. Server-side failures say only what to do; their cause goes to the log.
    fn public_message(&self) -> String {
        match self {
            ApiError::Store(StoreError::Unavailable(_)) | ApiError::Secret(_) => {
                "a backing service is temporarily unavailable; retry shortly".into()
            }
            ApiError::Store(StoreError::Corrupt(_)) => "an internal error occurred".into(),
            ApiError::Store(StoreError::InvalidCursor) => "cursor is not one this API issued".into(),
            ApiError::AshbyUnavailable(_) => "Ashby could not be reached to check the API key; retry shortly".into(),
            other => other.to_string(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Store(e)
    }
}

impl From<SecretError> for ApiError {
    fn from(e: SecretError) -> Self {
        ApiError::Secret(e)
    }
}

/// The full error chain, for the log only.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(code = self.code(), error = %chain(&self), "request failed");
        } else {
            tracing::info!(code = self.code(), status = status.as_u16(), "request refused");
        }
        let mut error = serde_json::json!({ "code": self.code(), "message": self.public_message() });
        if let Some(field) = self.field() {
            error["field"] = serde_json::Value::String(field.to_owned());
        }
        (status, Json(serde_json::json!({ "error": error }))).into_response()
    }
}
