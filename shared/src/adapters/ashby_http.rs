//! `HttpAshbyApi`: the [`AshbyApi`] port over Ashby's HTTP API.
//!
//! Ashby's API is RPC over POST: `POST {base}/{category}.{method}` with a JSON body, HTTP Basic
//! auth with the key as user name and an empty password, answers in `{ success, results }`.
//! What would be a 4xx comes back as HTTP 200 with `success: false`, so `success` is always
//! checked. Retryable failures (429, 5xx, connection errors) are retried a few times within one
//! call, with a bounded total wait; beyond that the error goes back to the caller (the processor
//! lets SQS redeliver later).

use std::time::Duration;

use async_trait::async_trait;
use rand::Rng as _;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::domain::ApiKey;
use crate::domain::ashby::{ApiKeyInfo, AshbyApplication, AshbyCandidate, CustomFieldDefinition};
use crate::ports::{AshbyApi, AshbyError};

/// Ashby's production API.
pub const DEFAULT_BASE_URL: &str = "https://api.ashbyhq.com";
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(8);
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
pub const DEFAULT_MAX_TOTAL_WAIT: Duration = Duration::from_secs(3);
/// The first back-off; it doubles per attempt, with jitter.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Ashby's largest page.
const PAGE_LIMIT: u32 = 100;
/// A guard against a server that keeps answering `moreDataAvailable` (100 000 fields).
const MAX_PAGES: usize = 1000;

/// Ashby's HTTP API. One `reqwest::Client` (and its connection pool) per instance: build it once.
#[derive(Debug, Clone)]
pub struct HttpAshbyApi {
    client: reqwest::Client,
    base_url: String,
    connect_timeout: Duration,
    total_timeout: Duration,
    max_attempts: u32,
    max_total_wait: Duration,
}

impl HttpAshbyApi {
    /// A client for the API at `base_url` (e.g. [`DEFAULT_BASE_URL`] or a simulator's URL).
    pub fn new(base_url: impl Into<String>) -> Self {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        Self {
            client: build_client(DEFAULT_CONNECT_TIMEOUT, DEFAULT_TOTAL_TIMEOUT),
            base_url,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            total_timeout: DEFAULT_TOTAL_TIMEOUT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            max_total_wait: DEFAULT_MAX_TOTAL_WAIT,
        }
    }

    /// Time allowed to open a connection, and for one whole request (connect, send, read).
    pub fn with_timeouts(mut self, connect: Duration, total: Duration) -> Self {
        self.connect_timeout = connect;
        self.total_timeout = total;
        self.client = build_client(connect, total);
        self
    }

    /// At most `max_attempts` requests per call (at least 1), waiting at most `max_total_wait`
    /// in total between them. A `Retry-After` longer than what is left is not waited for.
    pub fn with_retry_budget(mut self, max_attempts: u32, max_total_wait: Duration) -> Self {
        self.max_attempts = max_attempts.max(1);
        self.max_total_wait = max_total_wait;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// One API call with the in-call retries.
    async fn call<T: DeserializeOwned>(&self, key: &ApiKey, endpoint: &str, body: &Value) -> Result<T, AshbyError> {
        Ok(self.call_envelope::<T>(key, endpoint, body).await?.results)
    }

    async fn call_envelope<T: DeserializeOwned>(
        &self,
        key: &ApiKey,
        endpoint: &str,
        body: &Value,
    ) -> Result<Success<T>, AshbyError> {
        let mut waited = Duration::ZERO;
        let mut attempt = 1;
        loop {
            let error = match self.attempt::<T>(key, endpoint, body).await {
                Ok(success) => return Ok(success),
                Err(e) => e,
            };
            // A timed-out attempt already spent the whole request budget: another one would
            // only make the caller wait longer than it configured.
            if !error.is_retryable() || matches!(error, AshbyError::Timeout) || attempt >= self.max_attempts {
                return Err(error);
            }
            let delay = error.retry_after().unwrap_or_else(|| backoff(attempt));
            if waited + delay > self.max_total_wait {
                tracing::debug!(
                    endpoint,
                    attempt,
                    delay_ms = delay.as_millis() as u64,
                    "Ashby retry does not fit the budget"
                );
                return Err(error);
            }
            tracing::info!(endpoint, attempt, delay_ms = delay.as_millis() as u64, error = %error, "retrying Ashby call");
            tokio::time::sleep(delay).await;
            waited += delay;
            attempt += 1;
        }
    }

    /// One HTTP request, its answer mapped to a result.
    async fn attempt<T: DeserializeOwned>(
        &self,
        key: &ApiKey,
        endpoint: &str,
        body: &Value,
    ) -> Result<Success<T>, AshbyError> {
        let url = format!("{}/{endpoint}", self.base_url);
        let response = self
            .client
            .post(&url)
            // reqwest marks the Authorization header sensitive: it never shows in debug output.
            .basic_auth(key.expose(), Some(""))
            .header(reqwest::header::ACCEPT, "application/json; version=1")
            .json(body)
            .send()
            .await
            .map_err(|e| transport_error(&e))?;
        let status = response.status();
        let retry_after = parse_retry_after(response.headers());
        let text = response.text().await.map_err(|e| transport_error(&e))?;
        tracing::debug!(endpoint, status = status.as_u16(), "Ashby answered");
        map_response(status.as_u16(), retry_after, &text)
    }
}

impl Default for HttpAshbyApi {
    fn default() -> Self {
        Self::new(DEFAULT_BASE_URL)
    }
}

fn build_client(connect: Duration, total: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(connect)
        .timeout(total)
        .user_agent(concat!("reimbi-ashby-integration/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client's TLS backend initialises")
}

/// Exponential back-off from [`FIRST_BACKOFF`] with "equal jitter": half fixed, half random,
/// so concurrent callers spread out but never retry immediately.
fn backoff(attempt: u32) -> Duration {
    let full = FIRST_BACKOFF.saturating_mul(1u32 << (attempt - 1).min(10));
    let half = full / 2;
    let jitter = rand::rng().random_range(0..=half.as_millis() as u64);
    half + Duration::from_millis(jitter)
}

/// `Retry-After` in seconds (the HTTP-date form is not used by APIs like Ashby's; it is ignored).
fn parse_retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn transport_error(e: &reqwest::Error) -> AshbyError {
    if e.is_timeout() {
        AshbyError::Timeout
    } else if e.is_connect() {
        AshbyError::Unreachable(error_chain(e))
    } else if e.is_decode() {
        AshbyError::Malformed(error_chain(e))
    } else {
        // The connection broke mid-exchange: as unreachable as a refused one.
        AshbyError::Unreachable(error_chain(e))
    }
}

/// The error and its causes on one line (reqwest's own message hides the cause).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A `success: true` envelope.
#[derive(Debug)]
struct Success<T> {
    results: T,
    more_data_available: bool,
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    success: bool,
    #[serde(default)]
    results: Option<Value>,
    #[serde(default)]
    error_info: Option<ErrorInfo>,
    #[serde(default)]
    errors: Vec<Value>,
    #[serde(default)]
    more_data_available: bool,
    #[serde(default)]
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct ErrorInfo {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl Envelope {
    /// Ashby's error code and message, from `errorInfo`, else the first of `errors`.
    fn error(&self) -> (String, String) {
        let info_code = self.error_info.as_ref().and_then(|i| i.code.clone());
        let first = self.errors.first().and_then(|e| e.as_str()).map(str::to_owned);
        let code = info_code.or(first).unwrap_or_else(|| "unknown_error".to_owned());
        let message = self.error_info.as_ref().and_then(|i| i.message.clone()).unwrap_or_else(|| code.clone());
        (code, message)
    }
}

fn parse_envelope(text: &str) -> Option<Envelope> {
    serde_json::from_str(text).ok()
}

/// The status table: HTTP status first (auth, rate limit, server), then the `success` flag.
fn map_response<T: DeserializeOwned>(
    status: u16,
    retry_after: Option<Duration>,
    text: &str,
) -> Result<Success<T>, AshbyError> {
    match status {
        401 => return Err(AshbyError::KeyRejected),
        403 => {
            return Err(match parse_envelope(text).map(|e| e.error()) {
                Some((code, message)) if code == "missing_endpoint_permission" => {
                    AshbyError::MissingPermission { message }
                }
                _ => AshbyError::KeyRejected,
            });
        }
        404 => {
            let code = parse_envelope(text).map(|e| e.error().0).filter(|c| c != "unknown_error");
            return Err(AshbyError::NotFound { code: code.unwrap_or_else(|| "not_found".to_owned()) });
        }
        429 => return Err(AshbyError::RateLimited { retry_after }),
        500..=599 => return Err(AshbyError::Server { status }),
        _ => {}
    }
    let envelope = parse_envelope(text);
    let Some(envelope) = envelope else {
        return Err(if (200..300).contains(&status) {
            AshbyError::Malformed(format!("HTTP {status}: the body is not Ashby's JSON envelope"))
        } else {
            AshbyError::Api { code: format!("http_{status}"), message: format!("Ashby answered HTTP {status}") }
        });
    };
    if !envelope.success {
        let (code, message) = envelope.error();
        return Err(if code == "missing_endpoint_permission" {
            AshbyError::MissingPermission { message }
        } else if code.ends_with("_not_found") {
            AshbyError::NotFound { code }
        } else {
            AshbyError::Api { code, message }
        });
    }
    if !(200..300).contains(&status) {
        return Err(AshbyError::Malformed(format!("HTTP {status} with success: true")));
    }
    let results = envelope.results.unwrap_or(Value::Null);
    let results = serde_json::from_value(results).map_err(|e| AshbyError::Malformed(format!("results: {e}")))?;
    Ok(Success { results, more_data_available: envelope.more_data_available, next_cursor: envelope.next_cursor })
}

/// A `hiringTeamRole.list` item: a role title, or an object carrying one.
#[derive(Deserialize)]
#[serde(untagged)]
enum RoleItem {
    Title(String),
    Object { title: String },
}

#[async_trait]
impl AshbyApi for HttpAshbyApi {
    async fn api_key_info(&self, key: &ApiKey) -> Result<ApiKeyInfo, AshbyError> {
        self.call(key, "apiKey.info", &json!({})).await
    }

    async fn candidate_info(&self, key: &ApiKey, candidate_id: &str) -> Result<AshbyCandidate, AshbyError> {
        self.call(key, "candidate.info", &json!({ "id": candidate_id })).await
    }

    async fn application_info(&self, key: &ApiKey, application_id: &str) -> Result<AshbyApplication, AshbyError> {
        self.call(key, "application.info", &json!({ "applicationId": application_id })).await
    }

    async fn custom_fields(&self, key: &ApiKey) -> Result<Vec<CustomFieldDefinition>, AshbyError> {
        let mut fields = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let body = match &cursor {
                Some(c) => json!({ "limit": PAGE_LIMIT, "cursor": c }),
                None => json!({ "limit": PAGE_LIMIT }),
            };
            let page = self.call_envelope::<Vec<CustomFieldDefinition>>(key, "customField.list", &body).await?;
            fields.extend(page.results);
            match page.next_cursor {
                Some(next) if page.more_data_available => {
                    if cursor.as_deref() == Some(next.as_str()) {
                        return Err(AshbyError::Malformed("customField.list returned the same cursor twice".into()));
                    }
                    cursor = Some(next);
                }
                _ => return Ok(fields),
            }
        }
        Err(AshbyError::Malformed(format!("customField.list did not end within {MAX_PAGES} pages")))
    }

    async fn hiring_team_roles(&self, key: &ApiKey) -> Result<Vec<String>, AshbyError> {
        let items: Vec<RoleItem> = self.call(key, "hiringTeamRole.list", &json!({})).await?;
        Ok(items
            .into_iter()
            .map(|item| match item {
                RoleItem::Title(t) | RoleItem::Object { title: t } => t,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(status: u16, body: &str) -> Result<Success<Value>, AshbyError> {
        map_response(status, None, body)
    }

    #[test]
    fn reads_the_documented_error_bodies() {
        let not_found = include_str!("../../../infra/fixtures/ashby/error-success-false.json");
        assert_eq!(map(200, not_found).unwrap_err(), AshbyError::NotFound { code: "candidate_not_found".into() });
        let permission = include_str!("../../../infra/fixtures/ashby/error-403-missing-permission.json");
        assert_eq!(
            map(403, permission).unwrap_err(),
            AshbyError::MissingPermission { message: "The API key is missing the candidatesRead permission".into() }
        );
    }

    #[test]
    fn success_false_with_another_code_is_an_api_error() {
        let body = r#"{"success":false,"errors":["invalid_input"]}"#;
        assert_eq!(
            map(200, body).unwrap_err(),
            AshbyError::Api { code: "invalid_input".into(), message: "invalid_input".into() }
        );
    }

    #[test]
    fn a_body_without_the_envelope_is_malformed() {
        assert!(matches!(map(200, "<html>").unwrap_err(), AshbyError::Malformed(_)));
        assert!(matches!(map(200, r#"{"results":[]}"#).unwrap_err(), AshbyError::Malformed(_)));
    }

    #[test]
    fn backoff_grows_and_stays_within_its_jitter_band() {
        for attempt in 1..=3 {
            let full = FIRST_BACKOFF * (1 << (attempt - 1));
            let d = backoff(attempt);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
    }
}
