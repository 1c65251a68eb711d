//! Handler tests with the embedded adapters: every row of contract section 1, with its side effects.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use base64::Engine as _;
use chrono::TimeZone as _;
use http_body_util::BodyExt as _;
use reimbi_shared::adapters::embedded::{EmbeddedQueue, EmbeddedSecretStore, EmbeddedStore};
use reimbi_shared::cache::Invalidate;
use reimbi_shared::domain::{
    CompanyId, EventId, EventLogEntry, IntegrationSettings, Outcome, Reason, SecretRef, SigningSecret, Timestamp,
    WebhookCredential, WebhookId, sign,
};
use reimbi_shared::ports::{
    BoxError, EventLog, EventQueue, ManualClock, QueueError, QueuedEvent, SecretError, SecretStore, SettingsStore,
    StoreError, WebhookStore,
};
use secrecy::SecretString;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::*;

const STAGE_CHANGE: &[u8] = include_bytes!("../../../infra/fixtures/ashby/webhook-candidateStageChange.json");
const PING: &[u8] = include_bytes!("../../../infra/fixtures/ashby/webhook-ping.json");
const EXAMPLE_SECRET: &str = include_str!("../../../infra/fixtures/ashby/example-secret.txt");
const EXAMPLE_SIGNATURE: &str = "sha256=6d10569c489f234c0d4be358dd68d48d76a7aa01c9a083869ab2fb443fc3a8b2";
const OTHER_ACTION: &[u8] =
    br#"{"webhookActionId":"a-2","action":"applicationUpdate","data":{"application":{"id":"x"}}}"#;

fn t0() -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap()
}

/// Counts reads, so tests can tell a cached answer from a store call.
struct CountingSecrets {
    inner: EmbeddedSecretStore,
    reads: AtomicUsize,
}

#[async_trait]
impl SecretStore for CountingSecrets {
    async fn get_secret(&self, secret: &SecretRef) -> Result<Option<SecretString>, SecretError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get_secret(secret).await
    }
    async fn put_secret(&self, secret: &SecretRef, value: &SecretString) -> Result<(), SecretError> {
        self.inner.put_secret(secret, value).await
    }
}

struct CountingWebhooks {
    inner: EmbeddedStore,
    reads: AtomicUsize,
}

#[async_trait]
impl WebhookStore for CountingWebhooks {
    async fn get_webhook(&self, id: &WebhookId) -> Result<Option<WebhookCredential>, StoreError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get_webhook(id).await
    }
    async fn put_webhook(&self, credential: &WebhookCredential) -> Result<(), StoreError> {
        self.inner.put_webhook(credential).await
    }
}

/// A queue that fails the next `failures` sends, then delegates.
struct FlakyQueue {
    inner: EmbeddedQueue,
    failures: AtomicUsize,
}

#[async_trait]
impl EventQueue for FlakyQueue {
    async fn enqueue(&self, event: &QueuedEvent) -> Result<(), QueueError> {
        if self.failures.load(Ordering::SeqCst) > 0 {
            self.failures.fetch_sub(1, Ordering::SeqCst);
            return Err(QueueError::Unavailable(BoxError::from("sqs said: internal detail QueueDoesNotExist")));
        }
        self.inner.enqueue(event).await
    }
}

struct FailingSecrets;

#[async_trait]
impl SecretStore for FailingSecrets {
    async fn get_secret(&self, _: &SecretRef) -> Result<Option<SecretString>, SecretError> {
        Err(SecretError::Unavailable(BoxError::from("secrets manager throttled: internal detail")))
    }
    async fn put_secret(&self, _: &SecretRef, _: &SecretString) -> Result<(), SecretError> {
        unreachable!("the webhook function never writes secrets")
    }
}

struct FailingWebhooks;

#[async_trait]
impl WebhookStore for FailingWebhooks {
    async fn get_webhook(&self, _: &WebhookId) -> Result<Option<WebhookCredential>, StoreError> {
        Err(StoreError::Unavailable(BoxError::from("dynamodb throttled: internal detail")))
    }
    async fn put_webhook(&self, _: &WebhookCredential) -> Result<(), StoreError> {
        unreachable!("the webhook function never writes credentials")
    }
}

/// One company's integration with every fake the handler talks to.
struct App {
    clock: Arc<ManualClock>,
    store: EmbeddedStore,
    secrets: Arc<CountingSecrets>,
    webhooks: Arc<CountingWebhooks>,
    queue: Arc<FlakyQueue>,
    deps: Arc<WebhookDeps>,
    company: CompanyId,
    webhook_id: WebhookId,
    secret: SigningSecret,
}

impl App {
    async fn new(enabled: bool) -> Self {
        Self::with_secret(enabled, SigningSecret::generate()).await
    }

    async fn with_secret(enabled: bool, secret: SigningSecret) -> Self {
        let clock = Arc::new(ManualClock::new(t0()));
        let store = EmbeddedStore::in_memory();
        let secrets = Arc::new(CountingSecrets { inner: EmbeddedSecretStore::in_memory(), reads: AtomicUsize::new(0) });
        let webhooks = Arc::new(CountingWebhooks { inner: store.clone(), reads: AtomicUsize::new(0) });
        let queue =
            Arc::new(FlakyQueue { inner: EmbeddedQueue::on(&store, clock.clone()), failures: AtomicUsize::new(0) });
        let deps = Arc::new(WebhookDeps::new(
            webhooks.clone(),
            Arc::new(store.clone()),
            secrets.clone(),
            Arc::new(store.clone()),
            queue.clone(),
            clock.clone(),
        ));
        let app = Self {
            clock,
            store,
            secrets,
            webhooks,
            queue,
            deps,
            company: CompanyId::parse("acme").unwrap(),
            webhook_id: WebhookId::generate(),
            secret,
        };
        let mut settings = IntegrationSettings::unconfigured(app.company.clone());
        settings.enabled = enabled;
        settings.current_webhook_id = Some(app.webhook_id.clone());
        settings.revision = 1;
        app.store.save_settings(&settings).await.unwrap();
        app.put_credential(app.webhook_id.clone(), None, &app.secret.clone()).await;
        app
    }

    async fn put_credential(&self, id: WebhookId, expires_at: Option<Timestamp>, secret: &SigningSecret) {
        let credential = WebhookCredential {
            webhook_id: id.clone(),
            company_id: self.company.clone(),
            created_at: t0(),
            expires_at,
        };
        self.store.put_webhook(&credential).await.unwrap();
        self.secrets.put_secret(&SecretRef::WebhookSigning(id), secret.as_secret()).await.unwrap();
    }

    /// Deps sharing this app's stores but with some parts replaced.
    fn deps_with(&self, webhooks: Arc<dyn WebhookStore>, secrets: Arc<dyn SecretStore>) -> WebhookDeps {
        WebhookDeps::new(
            webhooks,
            Arc::new(self.store.clone()),
            secrets,
            Arc::new(self.store.clone()),
            self.queue.clone(),
            self.clock.clone(),
        )
    }

    /// Posts `body` signed with this app's secret.
    async fn deliver(&self, body: &[u8]) -> (StatusCode, Value) {
        let sig = sign(&self.secret, body);
        self.post(self.webhook_id.as_str(), &[("ashby-signature", &sig)], body.to_vec()).await
    }

    async fn post(&self, id: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (StatusCode, Value) {
        post_to(&self.deps, id, headers, body).await
    }

    async fn queued(&self) -> Vec<QueuedEvent> {
        self.queue.inner.receive(100).await.unwrap().into_iter().map(|m| m.event).collect()
    }

    async fn events(&self) -> Vec<EventLogEntry> {
        self.store.list_events(&self.company, 100, None).await.unwrap().items
    }

    async fn assert_nothing_stored(&self) {
        assert_eq!(self.queue.inner.len(), 0, "the queue must stay empty");
        assert!(self.events().await.is_empty(), "the event log must stay empty");
    }

    fn secret_reads(&self) -> usize {
        self.secrets.reads.load(Ordering::SeqCst)
    }
}

async fn post_to(deps: &WebhookDeps, id: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (StatusCode, Value) {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    read_response(handle(deps, id, &map, Body::from(body)).await).await
}

async fn read_response(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    assert_eq!(
        response.headers().get("content-type").map(|v| v.to_str().unwrap()),
        Some("application/json"),
        "every answer is JSON"
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// Asserts the contract's error body, exactly: `{"error":{"code":…,"message":…}}`.
fn assert_error(response: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(response.0, status, "{}", response.1);
    let error = response.1.get("error").and_then(Value::as_object).expect("an error object");
    assert_eq!(response.1.as_object().unwrap().len(), 1);
    assert_eq!(error.get("code"), Some(&json!(code)));
    assert!(error.get("message").and_then(Value::as_str).is_some_and(|m| !m.is_empty()));
    assert_eq!(error.len(), 2, "only code and message: {error:?}");
}

#[tokio::test]
async fn accepts_a_signed_stage_change_and_queues_exactly_the_verified_body() {
    let app = App::new(true).await;
    let (status, body) = app.deliver(STAGE_CHANGE).await;

    let expected_id = EventId::derive(&app.company, Some("9c1f3a52-6d0e-4b7a-9f7e-2a41d0c8e5b1"), STAGE_CHANGE);
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body, json!({ "status": "accepted", "eventId": expected_id.as_str() }));

    let queued = app.queued().await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].event_id, expected_id);
    assert_eq!(queued[0].company_id, app.company);
    assert_eq!(queued[0].webhook_id, app.webhook_id);
    assert_eq!(queued[0].received_at, t0());
    assert_eq!(queued[0].body.as_bytes(), STAGE_CHANGE);

    let events = app.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_id, expected_id);
    assert_eq!(events[0].outcome, Outcome::Accepted);
    assert_eq!(events[0].reason, None);
    assert_eq!(events[0].action, "candidateStageChange");
    assert_eq!(events[0].ashby_candidate_id.as_deref(), Some("b2e47d19-3c5a-4f8e-9d61-07a8c3f2e4d5"));
    assert_eq!(events[0].received_at, t0());
}

#[tokio::test]
async fn accepts_the_documented_signature_example() {
    let app = App::with_secret(true, SigningSecret::new(SecretString::from(EXAMPLE_SECRET.to_owned()))).await;
    let response =
        app.post(app.webhook_id.as_str(), &[("Ashby-Signature", EXAMPLE_SIGNATURE)], STAGE_CHANGE.to_vec()).await;
    assert_eq!(response.0, StatusCode::ACCEPTED, "{}", response.1);
    assert_eq!(app.queued().await.len(), 1);
}

#[tokio::test]
async fn redelivery_of_an_event_gets_the_same_event_id_and_keeps_the_first_log_entry() {
    let app = App::new(true).await;
    let (_, first) = app.deliver(STAGE_CHANGE).await;
    app.clock.advance(Duration::from_secs(70));
    // Ashby's retry of the same event: same webhookActionId, even if the body differs.
    let retried = String::from_utf8(STAGE_CHANGE.to_vec()).unwrap().replace("Onsite", "Onsite ");
    let (status, second) = app.deliver(retried.as_bytes()).await;

    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(first["eventId"], second["eventId"]);
    // Queued again: the processor de-duplicates on the event id.
    let queued = app.queued().await;
    assert_eq!(queued.len(), 2);
    assert_eq!(queued[0].event_id, queued[1].event_id);
    let events = app.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].received_at, t0());
}

#[tokio::test]
async fn answers_a_ping_with_pong_and_logs_it() {
    let app = App::new(true).await;
    let (status, body) = app.deliver(PING).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "status": "pong" }));
    assert_eq!(app.queue.inner.len(), 0);
    let events = app.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].action, "ping");
    assert_eq!(events[0].outcome, Outcome::Ignored);
    assert_eq!(events[0].reason, None);
}

#[tokio::test]
async fn a_second_ping_updates_the_single_ping_entry() {
    let app = App::new(true).await;
    app.deliver(PING).await;
    app.clock.advance(Duration::from_secs(3600));
    app.deliver(PING).await;
    let events = app.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].received_at, t0() + chrono::Duration::hours(1));
}

#[tokio::test]
async fn answers_a_ping_with_pong_while_the_integration_is_disabled() {
    let app = App::new(false).await;
    let (status, body) = app.deliver(PING).await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "status": "pong" })));
    assert_eq!(app.events().await[0].action, "ping");
}

#[tokio::test]
async fn ignores_a_stage_change_while_the_integration_is_disabled_and_logs_it() {
    let app = App::new(false).await;
    let (status, body) = app.deliver(STAGE_CHANGE).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "status": "ignored", "reason": "integration_disabled" }));
    assert_eq!(app.queue.inner.len(), 0);
    let events = app.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome, Outcome::Ignored);
    assert_eq!(events[0].reason, Some(Reason::IntegrationDisabled));
    assert_eq!(events[0].action, "candidateStageChange");
}

#[tokio::test]
async fn ignores_other_actions_without_storing_anything() {
    let app = App::new(true).await;
    let (status, body) = app.deliver(OTHER_ACTION).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "status": "ignored", "reason": "unsupported_action" }));
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn refuses_an_unknown_webhook_id() {
    let app = App::new(true).await;
    let other = WebhookId::generate();
    let sig = sign(&app.secret, STAGE_CHANGE);
    let response = app.post(other.as_str(), &[("ashby-signature", &sig)], STAGE_CHANGE.to_vec()).await;
    assert_error(&response, StatusCode::NOT_FOUND, "unknown_webhook");
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn refuses_a_malformed_webhook_id_without_asking_the_store() {
    let app = App::new(true).await;
    for id in ["", "wh/../x", "wh x", &"a".repeat(81)] {
        assert_error(&app.post(id, &[], STAGE_CHANGE.to_vec()).await, StatusCode::NOT_FOUND, "unknown_webhook");
    }
    assert_eq!(app.webhooks.reads.load(Ordering::SeqCst), 0);
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn a_replaced_credential_works_until_its_grace_ends_then_is_unknown() {
    let app = App::new(true).await;
    let grace_end = t0() + chrono::Duration::hours(24);
    app.put_credential(app.webhook_id.clone(), Some(grace_end), &app.secret).await;
    let new_id = WebhookId::generate();
    let new_secret = SigningSecret::generate();
    app.put_credential(new_id.clone(), None, &new_secret).await;
    app.deps.company_changed(&app.company);

    app.clock.set(grace_end - chrono::Duration::seconds(1));
    assert_eq!(app.deliver(STAGE_CHANGE).await.0, StatusCode::ACCEPTED);
    // Still cached, and the expiry is checked against the cached credential.
    app.clock.set(grace_end);
    assert_error(&app.deliver(STAGE_CHANGE).await, StatusCode::NOT_FOUND, "unknown_webhook");
    app.clock.advance(Duration::from_secs(3600));
    assert_error(&app.deliver(STAGE_CHANGE).await, StatusCode::NOT_FOUND, "unknown_webhook");

    let sig = sign(&new_secret, STAGE_CHANGE);
    let response = app.post(new_id.as_str(), &[("ashby-signature", &sig)], STAGE_CHANGE.to_vec()).await;
    assert_eq!(response.0, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn refuses_a_body_over_one_mebibyte_before_checking_the_signature() {
    let app = App::new(true).await;
    let response = app.post(app.webhook_id.as_str(), &[], vec![b' '; MAX_BODY_BYTES + 1]).await;
    assert_error(&response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn accepts_a_body_of_exactly_one_mebibyte() {
    let app = App::new(true).await;
    let mut body = br#"{"action":"ping","data":{"pad":""#.to_vec();
    let tail = br#""}}"#;
    body.resize(MAX_BODY_BYTES - tail.len(), b'x');
    body.extend_from_slice(tail);
    assert_eq!(body.len(), MAX_BODY_BYTES);
    assert_eq!(app.deliver(&body).await.0, StatusCode::OK);
}

#[tokio::test]
async fn checks_the_webhook_id_before_the_size() {
    let app = App::new(true).await;
    let response = app.post(WebhookId::generate().as_str(), &[], vec![b' '; MAX_BODY_BYTES + 1]).await;
    assert_error(&response, StatusCode::NOT_FOUND, "unknown_webhook");
}

#[tokio::test]
async fn refuses_a_request_without_signature() {
    let app = App::new(true).await;
    let id = app.webhook_id.as_str();
    assert_error(&app.post(id, &[], STAGE_CHANGE.to_vec()).await, StatusCode::UNAUTHORIZED, "missing_signature");
    assert_error(
        &app.post(id, &[("ashby-signature", "")], STAGE_CHANGE.to_vec()).await,
        StatusCode::UNAUTHORIZED,
        "missing_signature",
    );
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn refuses_a_malformed_signature_header() {
    let app = App::new(true).await;
    let hex = &sign(&app.secret, STAGE_CHANGE)[7..];
    for bad in [format!("sha1={hex}"), hex.to_owned(), format!("sha256={}", &hex[1..]), "sha256=xyz".to_owned()] {
        let response = app.post(app.webhook_id.as_str(), &[("ashby-signature", &bad)], STAGE_CHANGE.to_vec()).await;
        assert_error(&response, StatusCode::UNAUTHORIZED, "malformed_signature");
    }
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn refuses_a_body_signed_with_another_secret() {
    let app = App::new(true).await;
    let sig = sign(&SigningSecret::generate(), STAGE_CHANGE);
    let response = app.post(app.webhook_id.as_str(), &[("ashby-signature", &sig)], STAGE_CHANGE.to_vec()).await;
    assert_error(&response, StatusCode::UNAUTHORIZED, "invalid_signature");
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn refuses_a_body_changed_after_signing() {
    let app = App::new(true).await;
    let sig = sign(&app.secret, STAGE_CHANGE);
    let mut body = STAGE_CHANGE.to_vec();
    body.push(b'\n');
    let response = app.post(app.webhook_id.as_str(), &[("ashby-signature", &sig)], body).await;
    assert_error(&response, StatusCode::UNAUTHORIZED, "invalid_signature");
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn checks_the_signature_before_the_payload() {
    let app = App::new(true).await;
    let sig = sign(&SigningSecret::generate(), b"not json");
    let response = app.post(app.webhook_id.as_str(), &[("ashby-signature", &sig)], b"not json".to_vec()).await;
    assert_error(&response, StatusCode::UNAUTHORIZED, "invalid_signature");
}

#[tokio::test]
async fn refuses_a_signed_body_that_is_not_the_envelope() {
    let app = App::new(true).await;
    for body in [
        &b"not json"[..],
        b"[]",
        br#"{"action":"candidateStageChange","data":{}}"#,
        br#"{"webhookActionId":"x","data":{}}"#,
    ] {
        assert_error(&app.deliver(body).await, StatusCode::BAD_REQUEST, "malformed_payload");
    }
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn answers_503_without_detail_when_the_queue_fails_and_the_retry_queues_the_event() {
    let app = App::new(true).await;
    app.queue.failures.store(1, Ordering::SeqCst);
    let response = app.deliver(STAGE_CHANGE).await;
    assert_error(&response, StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
    assert!(!response.1.to_string().contains("internal detail"));
    assert_eq!(app.queue.inner.len(), 0);
    // Documented: the entry is written first and stays `accepted` until the retry gets through.
    assert_eq!(app.events().await[0].outcome, Outcome::Accepted);

    let (status, body) = app.deliver(STAGE_CHANGE).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let queued = app.queued().await;
    assert_eq!(queued.len(), 1);
    assert_eq!(body["eventId"], json!(queued[0].event_id.as_str()));
}

#[tokio::test]
async fn answers_503_without_detail_when_the_secret_store_fails() {
    let app = App::new(true).await;
    let deps = app.deps_with(app.webhooks.clone(), Arc::new(FailingSecrets));
    let sig = sign(&app.secret, STAGE_CHANGE);
    let response = post_to(&deps, app.webhook_id.as_str(), &[("ashby-signature", &sig)], STAGE_CHANGE.to_vec()).await;
    assert_error(&response, StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
    assert!(!response.1.to_string().contains("internal detail"));
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn answers_503_when_the_webhook_store_fails() {
    let app = App::new(true).await;
    let deps = app.deps_with(Arc::new(FailingWebhooks), app.secrets.clone());
    let sig = sign(&app.secret, STAGE_CHANGE);
    let response = post_to(&deps, app.webhook_id.as_str(), &[("ashby-signature", &sig)], STAGE_CHANGE.to_vec()).await;
    assert_error(&response, StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn answers_503_when_the_signing_secret_is_missing_so_ashby_retries() {
    let app = App::new(true).await;
    let orphan = WebhookId::generate();
    let credential = WebhookCredential {
        webhook_id: orphan.clone(),
        company_id: app.company.clone(),
        created_at: t0(),
        expires_at: None,
    };
    app.store.put_webhook(&credential).await.unwrap();
    let sig = sign(&app.secret, STAGE_CHANGE);
    let response = app.post(orphan.as_str(), &[("ashby-signature", &sig)], STAGE_CHANGE.to_vec()).await;
    assert_error(&response, StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn a_warm_request_reads_neither_the_secret_nor_the_credential_again() {
    let app = App::new(true).await;
    app.deliver(STAGE_CHANGE).await;
    app.clock.advance(Duration::from_secs(29));
    assert_eq!(app.deliver(STAGE_CHANGE).await.0, StatusCode::ACCEPTED);
    assert_eq!(app.secret_reads(), 1);
    assert_eq!(app.webhooks.reads.load(Ordering::SeqCst), 1);

    app.clock.advance(DEFAULT_CACHE_TTL);
    app.deliver(STAGE_CHANGE).await;
    assert_eq!(app.secret_reads(), 2, "read again once the TTL passed");
}

#[tokio::test]
async fn a_company_change_drops_that_companys_cached_entries_only() {
    let app = App::new(true).await;
    let other = CompanyId::parse("globex").unwrap();
    let other_id = WebhookId::generate();
    let other_secret = SigningSecret::generate();
    let credential = WebhookCredential {
        webhook_id: other_id.clone(),
        company_id: other.clone(),
        created_at: t0(),
        expires_at: None,
    };
    app.store.put_webhook(&credential).await.unwrap();
    app.secrets.put_secret(&SecretRef::WebhookSigning(other_id.clone()), other_secret.as_secret()).await.unwrap();
    let other_sig = sign(&other_secret, PING);
    app.deliver(PING).await;
    app.post(other_id.as_str(), &[("ashby-signature", &other_sig)], PING.to_vec()).await;
    assert_eq!(app.secret_reads(), 2);

    // The settings handler disables acme in the same process and tells the cache.
    let mut settings = app.store.get_settings(&app.company).await.unwrap().unwrap();
    settings.enabled = false;
    settings.revision += 1;
    app.store.save_settings(&settings).await.unwrap();
    app.deps.company_changed(&app.company);

    let (_, body) = app.deliver(STAGE_CHANGE).await;
    assert_eq!(body, json!({ "status": "ignored", "reason": "integration_disabled" }));
    app.post(other_id.as_str(), &[("ashby-signature", &other_sig)], PING.to_vec()).await;
    assert_eq!(app.secret_reads(), 3, "acme read again, globex still cached");
}

#[tokio::test]
async fn the_router_serves_the_route_and_answers_json_elsewhere() {
    let app = App::new(true).await;
    let sig = sign(&app.secret, STAGE_CHANGE);
    let request = Request::post(format!("/webhooks/ashby/{}", app.webhook_id))
        .header("Ashby-Signature", &sig)
        .body(Body::from(STAGE_CHANGE))
        .unwrap();
    let (status, _) = read_response(router(app.deps.clone()).oneshot(request).await.unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let request = Request::post("/webhooks/ashby/%FF%FE").body(Body::from(STAGE_CHANGE)).unwrap();
    let response = read_response(router(app.deps.clone()).oneshot(request).await.unwrap()).await;
    assert_error(&response, StatusCode::NOT_FOUND, "unknown_webhook");

    let request = Request::get(format!("/webhooks/ashby/{}", app.webhook_id)).body(Body::empty()).unwrap();
    let response = read_response(router(app.deps.clone()).oneshot(request).await.unwrap()).await;
    assert_error(&response, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

#[tokio::test]
async fn the_router_answers_413_itself_for_bodies_over_axums_default_limit() {
    let app = App::new(true).await;
    // 3 MB is above axum's default 2 MB limit: the answer must still be the contract's JSON.
    let request =
        Request::post(format!("/webhooks/ashby/{}", app.webhook_id)).body(Body::from(vec![b' '; 3_000_000])).unwrap();
    let response = read_response(router(app.deps.clone()).oneshot(request).await.unwrap()).await;
    assert_error(&response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

#[tokio::test]
async fn header_names_are_case_insensitive_on_the_wire() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let app = App::new(true).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(axum::serve(listener, router(app.deps.clone())).into_future());

    let sig = sign(&app.secret, STAGE_CHANGE);
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /webhooks/ashby/{} HTTP/1.1\r\nHost: x\r\naShBy-SIGNATURE: {sig}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        app.webhook_id,
        STAGE_CHANGE.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(STAGE_CHANGE).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    server.abort();
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    assert_eq!(app.queued().await.len(), 1);
}

#[tokio::test]
async fn verifies_the_decoded_bytes_of_a_base64_encoded_api_gateway_body() {
    let app = App::new(true).await;
    let sig = sign(&app.secret, STAGE_CHANGE);
    let path = format!("/webhooks/ashby/{}", app.webhook_id);
    let event = json!({
        "version": "2.0",
        "routeKey": "POST /webhooks/ashby/{webhookId}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": { "ashby-signature": sig, "content-type": "application/json" },
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com", "domainPrefix": "api",
            "http": { "method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "Ashby" },
            "requestId": "r-1", "routeKey": "POST /webhooks/ashby/{webhookId}", "stage": "$default",
            "time": "04/Dec/2026:10:00:00 +0000", "timeEpoch": 1796378400000u64
        },
        "pathParameters": { "webhookId": app.webhook_id.as_str() },
        "body": base64::engine::general_purpose::STANDARD.encode(STAGE_CHANGE),
        "isBase64Encoded": true
    });
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = router(app.deps.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(app.queued().await[0].body.as_bytes(), STAGE_CHANGE);
}

/// Collects everything logged while it is the thread's default subscriber.
#[derive(Clone, Default)]
struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_carry_ids_and_outcomes_but_never_the_secret_signature_or_body() {
    let app = App::new(true).await;
    let capture = LogCapture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let good = sign(&app.secret, STAGE_CHANGE);
    let bad = sign(&SigningSecret::generate(), STAGE_CHANGE);
    app.deliver(STAGE_CHANGE).await;
    app.post(app.webhook_id.as_str(), &[("ashby-signature", &bad)], STAGE_CHANGE.to_vec()).await;
    app.queue.failures.store(1, Ordering::SeqCst);
    app.deliver(STAGE_CHANGE).await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains(app.webhook_id.as_str()));
    assert!(logs.contains("\"outcome\":\"accepted\""));
    assert!(logs.contains("invalid_signature"));
    assert!(logs.contains("internal detail"), "the 503's cause is logged: {logs}");
    for leak in [app.secret.expose(), &good[7..], &bad[7..], "jane.doe@example.com", "Jane Doe"] {
        assert!(!logs.contains(leak), "the logs contain {leak}");
    }
}
