//! The webhook intake function: `POST /webhooks/ashby/{webhookId}` (contract section 1).
//!
//! Checks run in the contract's order: the webhook id (404), the size (413), the signature over
//! the exact raw bytes (401), the envelope (400). Then a `ping` is answered and logged, a
//! delivery while the integration is disabled is logged as ignored, a stage change is logged as
//! `accepted` and queued, and any other action is ignored without a trace in the event log.
//!
//! Order of the two writes for a stage change: the event log entry first (insert-if-absent),
//! then the queue. The processor therefore never receives a message whose entry does not exist
//! yet (its outcome would be lost). If the enqueue fails the answer is 503: Ashby retries, the
//! entry stays `accepted` and the retry enqueues. Were Ashby to give up while the queue stays
//! down, the entry would still say `accepted` (arrived, never processed), which is the truth.
//!
//! The credential, its signing secret and the company's `enabled` flag are cached per webhook
//! id for [`DEFAULT_CACHE_TTL`] (30 s) on the injected clock, so a warm invocation calls neither
//! DynamoDB nor Secrets Manager to check a delivery. Expiry is checked on every request against
//! the cached credential; the rotation grace (at least 5 min) always outlasts the TTL, so a
//! replaced credential is never refused early nor accepted late by more than the TTL.
//! A change of `enabled` reaches another process within the TTL (the processor re-reads the
//! settings anyway); in the same process [`Invalidate`] drops the company's entries at once.

mod error;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use reimbi_shared::cache::{DEFAULT_CACHE_TTL, Invalidate, TtlCache};
use reimbi_shared::domain::{
    ACTION_PING, ACTION_STAGE_CHANGE, CompanyId, EventId, EventLogEntry, Outcome, Reason, SIGNATURE_HEADER, SecretRef,
    SigningSecret, Timestamp, WebhookCredential, WebhookEnvelope, WebhookId, truncate, verify_signature,
};
use reimbi_shared::ports::{Clock, EventLog, EventQueue, QueuedEvent, SecretStore, SettingsStore, WebhookStore};
use serde_json::json;
use tracing::{Instrument, field};

pub use error::{ErrorChain, WebhookError, error_response};

/// The route Ashby posts to.
pub const ROUTE: &str = "/webhooks/ashby/{webhookId}";
/// Bodies above this are refused with 413 (Ashby's payloads are a few KB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What a webhook id resolves to, cached for the TTL.
#[derive(Debug, Clone)]
struct Resolved {
    credential: WebhookCredential,
    secret: SigningSecret,
    enabled: bool,
}

/// Everything the handler needs, as ports.
pub struct WebhookDeps {
    pub webhooks: Arc<dyn WebhookStore>,
    pub settings: Arc<dyn SettingsStore>,
    pub secrets: Arc<dyn SecretStore>,
    pub events: Arc<dyn EventLog>,
    pub queue: Arc<dyn EventQueue>,
    pub clock: Arc<dyn Clock>,
    cache: TtlCache<WebhookId, Arc<Resolved>>,
}

impl WebhookDeps {
    /// Dependencies with a cache of [`DEFAULT_CACHE_TTL`].
    pub fn new(
        webhooks: Arc<dyn WebhookStore>,
        settings: Arc<dyn SettingsStore>,
        secrets: Arc<dyn SecretStore>,
        events: Arc<dyn EventLog>,
        queue: Arc<dyn EventQueue>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self::with_cache_ttl(webhooks, settings, secrets, events, queue, clock, DEFAULT_CACHE_TTL)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn with_cache_ttl(
        webhooks: Arc<dyn WebhookStore>,
        settings: Arc<dyn SettingsStore>,
        secrets: Arc<dyn SecretStore>,
        events: Arc<dyn EventLog>,
        queue: Arc<dyn EventQueue>,
        clock: Arc<dyn Clock>,
        cache_ttl: Duration,
    ) -> Self {
        let cache = TtlCache::new(cache_ttl, clock.clone());
        Self { webhooks, settings, secrets, events, queue, clock, cache }
    }

    /// The credential, secret and `enabled` flag for a webhook id: from the cache, else the stores.
    /// `None` when the id is unknown or its credential expired.
    async fn resolve(&self, id: &WebhookId, now: Timestamp) -> Result<Option<Arc<Resolved>>, WebhookError> {
        let resolved = match self.cache.get(id) {
            Some(r) => r,
            None => {
                let Some(credential) = self.webhooks.get_webhook(id).await? else {
                    return Ok(None);
                };
                let secret_ref = SecretRef::WebhookSigning(id.clone());
                let (secret, settings) = futures::join!(
                    self.secrets.get_secret(&secret_ref),
                    self.settings.get_settings(&credential.company_id)
                );
                let secret = secret?.ok_or(WebhookError::MissingSecret)?;
                let enabled = settings?.is_some_and(|s| s.enabled);
                let r = Arc::new(Resolved { credential, secret: SigningSecret::new(secret), enabled });
                self.cache.insert(id.clone(), r.clone());
                r
            }
        };
        Ok(resolved.credential.is_valid_at(now).then_some(resolved))
    }
}

impl Invalidate for WebhookDeps {
    fn company_changed(&self, company: &CompanyId) {
        self.cache.retain(|_, r| &r.credential.company_id != company);
    }
}

/// The router serving [`ROUTE`]; the same one runs in Lambda and in the local runner.
pub fn router(deps: Arc<WebhookDeps>) -> Router {
    Router::new()
        // The handler reads the body itself, with its own limit, after the id check.
        .route(ROUTE, post(route).layer(DefaultBodyLimit::disable()))
        .fallback(|| async { error_response(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            error_response(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "use POST")
        })
        .with_state(deps)
}

async fn route(
    State(deps): State<Arc<WebhookDeps>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // A path segment that does not decode is as unknown as any other id.
    let id = path.map(|Path(id)| id).unwrap_or_default();
    handle(&deps, &id, &headers, body).await
}

/// What a delivery that passed every check led to.
#[derive(Debug)]
enum Handled {
    Pong,
    Accepted(EventId),
    Ignored(Reason),
}

/// Handles one delivery: the function the route calls, and tests call directly.
pub async fn handle(deps: &WebhookDeps, webhook_id: &str, headers: &HeaderMap, body: Body) -> Response {
    let span = tracing::info_span!(
        "webhook",
        webhook_id = %truncate(webhook_id, 80),
        company_id = field::Empty,
        event_id = field::Empty,
    );
    async move {
        match process(deps, webhook_id, headers, body).await {
            Ok(handled) => {
                let (status, body, outcome) = match handled {
                    Handled::Pong => (StatusCode::OK, json!({ "status": "pong" }), "pong"),
                    Handled::Accepted(id) => {
                        (StatusCode::ACCEPTED, json!({ "status": "accepted", "eventId": id.as_str() }), "accepted")
                    }
                    Handled::Ignored(reason) => {
                        (StatusCode::OK, json!({ "status": "ignored", "reason": reason.as_str() }), reason.as_str())
                    }
                };
                tracing::info!(status = status.as_u16(), outcome, "webhook delivery handled");
                (status, axum::Json(body)).into_response()
            }
            Err(e) => {
                let status = e.status().as_u16();
                let code = e.code();
                match &e {
                    WebhookError::Signature(_) | WebhookError::PayloadTooLarge => {
                        tracing::warn!(status, code, "webhook delivery rejected")
                    }
                    _ if e.status().is_server_error() => {
                        tracing::error!(status, code, error = %ErrorChain(&e), "webhook delivery failed")
                    }
                    _ => tracing::info!(status, code, "webhook delivery rejected"),
                }
                e.into_response()
            }
        }
    }
    .instrument(span)
    .await
}

async fn process(
    deps: &WebhookDeps,
    webhook_id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Handled, WebhookError> {
    let now = deps.clock.now();

    // 1. The webhook id (404).
    let id = WebhookId::parse(webhook_id).map_err(|_| WebhookError::UnknownWebhook)?;
    let resolved = deps.resolve(&id, now).await?.ok_or(WebhookError::UnknownWebhook)?;

    // 2. The size (413), read only once the id is known to be ours.
    let bytes = read_body(body).await?;

    // 3. The signature, over the exact bytes received (401).
    let header = headers.get(SIGNATURE_HEADER).map(|v| v.as_bytes());
    let verified = verify_signature(&resolved.secret, header, &bytes)?;
    let company = &resolved.credential.company_id;
    tracing::Span::current().record("company_id", company.as_str());

    // 4. The envelope (400).
    let envelope = WebhookEnvelope::parse(verified.bytes()).map_err(WebhookError::MalformedPayload)?;
    let event_id = EventId::derive(company, envelope.webhook_action_id.as_deref(), verified.bytes());
    tracing::Span::current().record("event_id", event_id.as_str());

    let entry = |outcome, reason| EventLogEntry {
        company_id: company.clone(),
        event_id: event_id.clone(),
        received_at: now,
        action: envelope.action.clone(),
        ashby_candidate_id: envelope.ashby_candidate_id().map(str::to_owned),
        outcome,
        reason,
        candidate_id: None,
        updated_at: now,
    };

    if envelope.action == ACTION_PING {
        // Every ping has the same body, hence the same id: the entry shows the latest one.
        deps.events.upsert(&entry(Outcome::Ignored, None)).await?;
        return Ok(Handled::Pong);
    }
    if !resolved.enabled {
        deps.events.insert_if_absent(&entry(Outcome::Ignored, Some(Reason::IntegrationDisabled))).await?;
        return Ok(Handled::Ignored(Reason::IntegrationDisabled));
    }
    if envelope.action != ACTION_STAGE_CHANGE {
        return Ok(Handled::Ignored(Reason::UnsupportedAction));
    }

    // Ashby sends JSON, which is UTF-8; anything else is not its envelope.
    let body = String::from_utf8(verified.bytes().to_vec()).map_err(|_| {
        WebhookError::MalformedPayload(reimbi_shared::domain::EnvelopeError("the body is not UTF-8".into()))
    })?;
    // Log entry first, then the queue: see the module documentation. A redelivery keeps the
    // existing entry and enqueues again; the processor de-duplicates on the event id.
    deps.events.insert_if_absent(&entry(Outcome::Accepted, None)).await?;
    let queued =
        QueuedEvent { event_id: event_id.clone(), company_id: company.clone(), webhook_id: id, received_at: now, body };
    deps.queue.enqueue(&queued).await?;
    Ok(Handled::Accepted(event_id))
}

/// Reads at most [`MAX_BODY_BYTES`]; a longer body is [`WebhookError::PayloadTooLarge`].
async fn read_body(body: Body) -> Result<bytes::Bytes, WebhookError> {
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => Ok(b),
        Err(e) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(s) = source {
                if s.is::<http_body_util::LengthLimitError>() {
                    return Err(WebhookError::PayloadTooLarge);
                }
                source = s.source();
            }
            Err(WebhookError::UnreadableBody(e))
        }
    }
}
