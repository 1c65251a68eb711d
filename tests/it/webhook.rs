//! The webhook handler with the real AWS adapters against moto: every row of contract
//! section 1, with the SQS message really on the queue (or the queue really empty).

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::Message;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use chrono::{SubsecRound, Utc};
use http_body_util::BodyExt as _;
use reimbi_shared::domain::*;
use reimbi_shared::ports::*;
use secrecy::SecretString;
use serde_json::{Value, json};
use webhook::{MAX_BODY_BYTES, WebhookDeps, handle};

use crate::harness::{AwsEnv, unique};

const STAGE_CHANGE: &[u8] = include_bytes!("../../infra/fixtures/ashby/webhook-candidateStageChange.json");
const PING: &[u8] = include_bytes!("../../infra/fixtures/ashby/webhook-ping.json");
const EXAMPLE_SECRET: &str = include_str!("../../infra/fixtures/ashby/example-secret.txt");
const EXAMPLE_SIGNATURE: &str = "sha256=6d10569c489f234c0d4be358dd68d48d76a7aa01c9a083869ab2fb443fc3a8b2";

/// One company's integration in fresh moto resources, served by the handler.
struct Intake {
    env: AwsEnv,
    clock: Arc<ManualClock>,
    deps: WebhookDeps,
    company: CompanyId,
    webhook_id: WebhookId,
    secret: SigningSecret,
}

impl Intake {
    async fn new(enabled: bool) -> Self {
        Self::with_secret(enabled, SigningSecret::generate()).await
    }

    async fn with_secret(enabled: bool, secret: SigningSecret) -> Self {
        let env = AwsEnv::new().await;
        // DynamoDB keeps microseconds: start on a whole second so timestamps compare equal.
        let clock = Arc::new(ManualClock::new(Utc::now().trunc_subsecs(0)));
        let deps = deps_for(&env, clock.clone());
        let company = CompanyId::parse(&unique("acme")).unwrap();
        let webhook_id = WebhookId::generate();

        let mut settings = IntegrationSettings::unconfigured(company.clone());
        settings.enabled = enabled;
        settings.current_webhook_id = Some(webhook_id.clone());
        settings.revision = 1;
        env.dynamo_store().save_settings(&settings).await.unwrap();
        let intake = Self { env, clock, deps, company, webhook_id, secret };
        intake.put_credential(&intake.webhook_id, None, true).await;
        intake
    }

    async fn put_credential(&self, id: &WebhookId, expires_at: Option<Timestamp>, with_secret: bool) {
        let credential = WebhookCredential {
            webhook_id: id.clone(),
            company_id: self.company.clone(),
            created_at: self.clock.now(),
            expires_at,
        };
        self.env.dynamo_store().put_webhook(&credential).await.unwrap();
        if with_secret {
            let secret = SecretRef::WebhookSigning(id.clone());
            self.env.secret_store().put_secret(&secret, self.secret.as_secret()).await.unwrap();
        }
    }

    async fn deliver(&self, body: &[u8]) -> (StatusCode, Value) {
        let sig = sign(&self.secret, body);
        self.post(&self.deps, self.webhook_id.as_str(), Some(&sig), body.to_vec()).await
    }

    async fn post(&self, deps: &WebhookDeps, id: &str, signature: Option<&str>, body: Vec<u8>) -> (StatusCode, Value) {
        let mut headers = HeaderMap::new();
        if let Some(sig) = signature {
            headers.insert("ashby-signature", HeaderValue::from_str(sig).unwrap());
        }
        let response = handle(deps, id, &headers, Body::from(body)).await;
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    async fn events(&self) -> Vec<EventLogEntry> {
        self.env.dynamo_store().list_events(&self.company, 50, None).await.unwrap().items
    }

    async fn assert_nothing_stored(&self) {
        assert!(self.env.receive_all().await.is_empty(), "the queue must stay empty");
        assert!(self.events().await.is_empty(), "the event log must stay empty");
    }
}

fn deps_for(env: &AwsEnv, clock: Arc<ManualClock>) -> WebhookDeps {
    let store = Arc::new(env.dynamo_store());
    WebhookDeps::new(
        store.clone(),
        store.clone(),
        Arc::new(env.secret_store()),
        store,
        Arc::new(env.sqs_queue()),
        clock,
    )
}

fn attribute<'a>(message: &'a Message, name: &str) -> &'a str {
    let value = message.message_attributes().and_then(|a| a.get(name)).unwrap_or_else(|| panic!("attribute {name}"));
    assert_eq!(value.data_type(), "String");
    value.string_value().unwrap()
}

fn assert_error(response: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(response.0, status, "{}", response.1);
    assert_eq!(response.1["error"]["code"], json!(code), "{}", response.1);
}

#[tokio::test]
async fn a_signed_stage_change_is_on_the_sqs_queue_with_its_attributes() {
    let intake = Intake::new(true).await;
    let (status, body) = intake.deliver(STAGE_CHANGE).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let event_id = EventId::derive(&intake.company, Some("9c1f3a52-6d0e-4b7a-9f7e-2a41d0c8e5b1"), STAGE_CHANGE);
    assert_eq!(body, json!({ "status": "accepted", "eventId": event_id.as_str() }));

    let messages = intake.env.receive_all().await;
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m.body().unwrap().as_bytes(), STAGE_CHANGE);
    assert_eq!(attribute(m, queue_attributes::EVENT_ID), event_id.as_str());
    assert_eq!(attribute(m, queue_attributes::COMPANY_ID), intake.company.as_str());
    assert_eq!(attribute(m, queue_attributes::WEBHOOK_ID), intake.webhook_id.as_str());
    let received_at = chrono::DateTime::parse_from_rfc3339(attribute(m, queue_attributes::RECEIVED_AT)).unwrap();
    assert_eq!(received_at, intake.clock.now());

    let entry = intake.env.dynamo_store().get_event(&intake.company, &event_id).await.unwrap().unwrap();
    assert_eq!(entry.outcome, Outcome::Accepted);
    assert_eq!(entry.action, ACTION_STAGE_CHANGE);
    assert_eq!(entry.ashby_candidate_id.as_deref(), Some("b2e47d19-3c5a-4f8e-9d61-07a8c3f2e4d5"));
}

#[tokio::test]
async fn the_documented_signature_example_is_accepted() {
    let secret = SigningSecret::new(SecretString::from(EXAMPLE_SECRET.to_owned()));
    let intake = Intake::with_secret(true, secret).await;
    let response =
        intake.post(&intake.deps, intake.webhook_id.as_str(), Some(EXAMPLE_SIGNATURE), STAGE_CHANGE.to_vec()).await;
    assert_eq!(response.0, StatusCode::ACCEPTED, "{}", response.1);
    assert_eq!(intake.env.receive_all().await.len(), 1);
}

#[tokio::test]
async fn redelivery_of_the_same_webhook_action_id_gives_the_same_event_id() {
    let intake = Intake::new(true).await;
    let (_, first) = intake.deliver(STAGE_CHANGE).await;
    intake.clock.advance(Duration::from_secs(10));
    let (status, second) = intake.deliver(STAGE_CHANGE).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(first["eventId"], second["eventId"]);

    let messages = intake.env.receive_all().await;
    assert_eq!(messages.len(), 2);
    for m in &messages {
        assert_eq!(json!(attribute(m, queue_attributes::EVENT_ID)), first["eventId"]);
    }
    assert_eq!(intake.events().await.len(), 1, "one log entry per event");
}

#[tokio::test]
async fn a_ping_is_answered_with_pong_and_logged_but_not_queued() {
    let intake = Intake::new(false).await;
    let (status, body) = intake.deliver(PING).await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "status": "pong" })));
    assert!(intake.env.receive_all().await.is_empty());
    let events = intake.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].action.as_str(), events[0].outcome, events[0].reason), ("ping", Outcome::Ignored, None));
}

#[tokio::test]
async fn a_signed_event_while_disabled_is_ignored_and_logged_but_not_queued() {
    let intake = Intake::new(false).await;
    let (status, body) = intake.deliver(STAGE_CHANGE).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "status": "ignored", "reason": "integration_disabled" }));
    assert!(intake.env.receive_all().await.is_empty());
    let events = intake.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].outcome, events[0].reason), (Outcome::Ignored, Some(Reason::IntegrationDisabled)));
}

#[tokio::test]
async fn a_signed_event_of_another_action_is_ignored_without_a_trace() {
    let intake = Intake::new(true).await;
    let (status, body) = intake.deliver(br#"{"webhookActionId":"w-9","action":"candidateHire","data":{}}"#).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "status": "ignored", "reason": "unsupported_action" }));
    intake.assert_nothing_stored().await;
}

#[tokio::test]
async fn an_unknown_or_expired_webhook_id_is_404_and_leaves_the_queue_empty() {
    let intake = Intake::new(true).await;
    let sig = sign(&intake.secret, STAGE_CHANGE);
    let unknown = WebhookId::generate();
    let response = intake.post(&intake.deps, unknown.as_str(), Some(&sig), STAGE_CHANGE.to_vec()).await;
    assert_error(&response, StatusCode::NOT_FOUND, "unknown_webhook");
    let response = intake.post(&intake.deps, "not/an id", Some(&sig), STAGE_CHANGE.to_vec()).await;
    assert_error(&response, StatusCode::NOT_FOUND, "unknown_webhook");

    let replaced = WebhookId::generate();
    let grace_end = intake.clock.now() + chrono::Duration::hours(24);
    intake.put_credential(&replaced, Some(grace_end), true).await;
    intake.clock.set(grace_end);
    let response = intake.post(&intake.deps, replaced.as_str(), Some(&sig), STAGE_CHANGE.to_vec()).await;
    assert_error(&response, StatusCode::NOT_FOUND, "unknown_webhook");
    intake.assert_nothing_stored().await;
}

#[tokio::test]
async fn a_replaced_credential_still_works_before_its_grace_ends() {
    let intake = Intake::new(true).await;
    let grace_end = intake.clock.now() + chrono::Duration::hours(24);
    intake.put_credential(&intake.webhook_id, Some(grace_end), false).await;
    intake.clock.set(grace_end - chrono::Duration::seconds(1));
    assert_eq!(intake.deliver(STAGE_CHANGE).await.0, StatusCode::ACCEPTED);
    assert_eq!(intake.env.receive_all().await.len(), 1);
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_413_and_leaves_the_queue_empty() {
    let intake = Intake::new(true).await;
    let body = vec![b' '; MAX_BODY_BYTES + 1];
    let sig = sign(&intake.secret, &body);
    let response = intake.post(&intake.deps, intake.webhook_id.as_str(), Some(&sig), body).await;
    assert_error(&response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    intake.assert_nothing_stored().await;
}

#[tokio::test]
async fn missing_malformed_and_wrong_signatures_are_401_and_leave_the_queue_empty() {
    let intake = Intake::new(true).await;
    let id = intake.webhook_id.as_str();
    let other = sign(&SigningSecret::generate(), STAGE_CHANGE);
    for (signature, code) in [
        (None, "missing_signature"),
        (Some("sha256=abc"), "malformed_signature"),
        (Some(other.as_str()), "invalid_signature"),
    ] {
        let response = intake.post(&intake.deps, id, signature, STAGE_CHANGE.to_vec()).await;
        assert_error(&response, StatusCode::UNAUTHORIZED, code);
    }
    intake.assert_nothing_stored().await;
}

#[tokio::test]
async fn a_signed_body_that_is_not_the_envelope_is_400_and_leaves_the_queue_empty() {
    let intake = Intake::new(true).await;
    assert_error(&intake.deliver(b"{not json").await, StatusCode::BAD_REQUEST, "malformed_payload");
    assert_error(
        &intake.deliver(br#"{"action":"candidateStageChange","data":{}}"#).await,
        StatusCode::BAD_REQUEST,
        "malformed_payload",
    );
    intake.assert_nothing_stored().await;
}

#[tokio::test]
async fn an_unavailable_queue_is_503_without_detail_and_ashbys_retry_gets_through() {
    let intake = Intake::new(true).await;
    let store = Arc::new(intake.env.dynamo_store());
    let missing_queue = reimbi_shared::adapters::sqs::SqsEventQueue::new(
        intake.env.sqs_client(),
        format!("{}-does-not-exist", intake.env.queue_url),
    );
    let broken = WebhookDeps::new(
        store.clone(),
        store.clone(),
        Arc::new(intake.env.secret_store()),
        store,
        Arc::new(missing_queue),
        intake.clock.clone(),
    );
    let sig = sign(&intake.secret, STAGE_CHANGE);
    let response = intake.post(&broken, intake.webhook_id.as_str(), Some(&sig), STAGE_CHANGE.to_vec()).await;
    assert_error(&response, StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
    assert!(!response.1.to_string().to_lowercase().contains("queue"), "no detail: {}", response.1);
    assert!(intake.env.receive_all().await.is_empty());

    // Ashby retries; with the queue back the event is queued under the same id.
    let (status, body) = intake.deliver(STAGE_CHANGE).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let messages = intake.env.receive_all().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(json!(attribute(&messages[0], queue_attributes::EVENT_ID)), body["eventId"]);
}

#[tokio::test]
async fn an_unreachable_secret_store_or_a_missing_secret_is_503() {
    let intake = Intake::new(true).await;
    // Nothing listens on port 1: every Secrets Manager call fails to connect.
    let unreachable = intake.env.config.to_builder().endpoint_url("http://127.0.0.1:1").build();
    let store = Arc::new(intake.env.dynamo_store());
    let broken = WebhookDeps::new(
        store.clone(),
        store.clone(),
        Arc::new(reimbi_shared::adapters::secretsmanager::SecretsManagerSecretStore::new(
            aws_sdk_secretsmanager::Client::new(&unreachable),
            &intake.env.secrets_prefix,
        )),
        store,
        Arc::new(intake.env.sqs_queue()),
        intake.clock.clone(),
    );
    let sig = sign(&intake.secret, STAGE_CHANGE);
    let response = intake.post(&broken, intake.webhook_id.as_str(), Some(&sig), STAGE_CHANGE.to_vec()).await;
    assert_error(&response, StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");

    let orphan = WebhookId::generate();
    intake.put_credential(&orphan, None, false).await;
    let response = intake.post(&intake.deps, orphan.as_str(), Some(&sig), STAGE_CHANGE.to_vec()).await;
    assert_error(&response, StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
    intake.assert_nothing_stored().await;
}
