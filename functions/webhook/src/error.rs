//! Why a webhook delivery was refused, and the one table that maps each reason to a status and code.

use std::fmt;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use reimbi_shared::domain::{EnvelopeError, SignatureError};
use reimbi_shared::ports::{QueueError, SecretError, StoreError};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// Unknown, malformed or expired webhook id.
    #[error("no webhook is configured at this URL")]
    UnknownWebhook,
    #[error("the body is larger than 1 MiB")]
    PayloadTooLarge,
    /// The body stream broke before it was read completely.
    #[error("the request body could not be read")]
    UnreadableBody(#[source] axum::Error),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("the body is not Ashby's webhook envelope: {0}")]
    MalformedPayload(EnvelopeError),
    #[error("the store failed")]
    Store(#[from] StoreError),
    #[error("the queue failed")]
    Queue(#[from] QueueError),
    #[error("the secret store failed")]
    Secret(#[from] SecretError),
    /// The credential exists but its signing secret does not: a broken rotation or a manual
    /// deletion. Answered as unavailable so Ashby retries while an operator fixes it.
    #[error("the webhook's signing secret is missing from the secret store")]
    MissingSecret,
}

impl WebhookError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebhookError::UnknownWebhook => StatusCode::NOT_FOUND,
            WebhookError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            WebhookError::Signature(_) => StatusCode::UNAUTHORIZED,
            WebhookError::UnreadableBody(_) | WebhookError::MalformedPayload(_) => StatusCode::BAD_REQUEST,
            WebhookError::Store(_) | WebhookError::Queue(_) | WebhookError::Secret(_) | WebhookError::MissingSecret => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// The contract's stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::UnknownWebhook => "unknown_webhook",
            WebhookError::PayloadTooLarge => "payload_too_large",
            WebhookError::Signature(e) => e.code(),
            WebhookError::UnreadableBody(_) | WebhookError::MalformedPayload(_) => "malformed_payload",
            WebhookError::Store(_) | WebhookError::Queue(_) | WebhookError::Secret(_) | WebhookError::MissingSecret => {
                "temporarily_unavailable"
            }
        }
    }

    /// The message shown to the caller: for 5xx a fixed sentence, never the cause.
    pub fn public_message(&self) -> String {
        if self.status().is_server_error() {
            return "the service is temporarily unavailable; retry later".to_owned();
        }
        self.to_string()
    }
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        error_response(self.status(), self.code(), &self.public_message())
    }
}

/// The contract's error body: `{"error":{"code":…,"message":…}}`.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({ "error": { "code": code, "message": message } }))).into_response()
}

/// Displays an error with its whole `source()` chain, for log lines.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_never_show_their_cause() {
        let e = WebhookError::Store(StoreError::Corrupt("pk=COMPANY#acme broken".into()));
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!e.public_message().contains("acme"));
        assert!(ErrorChain(&e).to_string().contains("pk=COMPANY#acme broken"));
    }
}
