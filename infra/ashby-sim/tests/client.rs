//! `HttpAshbyApi` against the simulator over real HTTP on loopback: the error table, the in-call
//! retries, timeouts, pagination; and the simulator's own behaviour that the client cannot show.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ashby_sim::{AshbySim, Call, Fault, demo_data, webhook};
use reimbi_shared::ApiKey;
use reimbi_shared::adapters::ashby_http::HttpAshbyApi;
use reimbi_shared::ports::{AshbyApi, AshbyError};
use serde_json::{Value, json};

const KEY: &str = "sim-key-4f9c2e71d0a8";

fn key(k: &str) -> ApiKey {
    ApiKey::new(secrecy::SecretString::from(k.to_owned()))
}

async fn demo() -> (AshbySim, HttpAshbyApi) {
    let sim = AshbySim::start().await;
    demo_data(&sim, KEY);
    let api = HttpAshbyApi::new(sim.url());
    (sim, api)
}

#[tokio::test]
async fn reads_the_demo_candidate_application_fields_roles_and_key() {
    let (_sim, api) = demo().await;
    let k = key(KEY);

    let candidate = api.candidate_info(&k, ashby_sim::DEMO_CANDIDATE_ID).await.unwrap();
    assert_eq!(candidate.name.as_deref(), Some("Jane Doe"));
    assert_eq!(candidate.email(), Some("jane.doe@example.com"));
    assert!(candidate.is_flagged("Send to Reimbi"));
    assert_eq!(candidate.selected_option("Reimbi Reimbursement Policy").as_deref(), Some("Onsite Interview"));

    let application = api.application_info(&k, ashby_sim::DEMO_APPLICATION_ID).await.unwrap();
    let team: Vec<_> =
        application.hiring_team.iter().map(|m| (m.role.clone().unwrap(), m.email.clone().unwrap())).collect();
    assert_eq!(
        team,
        [("Recruiter".to_owned(), "rae@acme.example".to_owned()), ("Hiring Manager".into(), "hal@acme.example".into())]
    );

    let fields = api.custom_fields(&k).await.unwrap();
    assert_eq!(fields.len(), 2);
    assert_eq!(fields[0].title, "Send to Reimbi");
    assert_eq!(fields[0].field_type.as_deref(), Some("Boolean"));
    assert_eq!(fields[1].field_type.as_deref(), Some("ValueSelect"));
    let options: Vec<_> = fields[1].selectable_values.iter().map(|v| v.label.as_str()).collect();
    assert_eq!(options, ["Onsite Interview", "Final Round Travel"]);

    assert_eq!(api.hiring_team_roles(&k).await.unwrap(), ["Recruiter", "Hiring Manager", "Recruiting Coordinator"]);
    assert!(api.api_key_info(&k).await.unwrap().scopes.contains(&"candidates:read".to_owned()));
}

#[tokio::test]
async fn the_simulator_logs_each_call_with_its_endpoint_and_key() {
    let (sim, api) = demo().await;
    api.api_key_info(&key(KEY)).await.unwrap();
    let _ = api.candidate_info(&key("other-key"), "x").await;
    assert_eq!(
        sim.calls(),
        [
            Call { endpoint: "apiKey.info".into(), api_key: Some(KEY.into()) },
            Call { endpoint: "candidate.info".into(), api_key: Some("other-key".into()) },
        ]
    );
    sim.reset_calls();
    assert!(sim.calls().is_empty());
}

#[tokio::test]
async fn a_request_without_credentials_is_answered_401() {
    let (sim, _api) = demo().await;
    let response =
        reqwest::Client::new().post(format!("{}/apiKey.info", sim.url())).json(&json!({})).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(sim.calls(), [Call { endpoint: "apiKey.info".into(), api_key: None }]);
}

#[tokio::test]
async fn an_unknown_key_is_rejected_and_not_retried() {
    let (sim, api) = demo().await;
    assert_eq!(api.api_key_info(&key("not-a-key")).await.unwrap_err(), AshbyError::KeyRejected);
    assert_eq!(sim.calls().len(), 1);
}

#[tokio::test]
async fn a_key_without_the_module_permission_reports_which_one() {
    let (sim, api) = demo().await;
    sim.add_api_key_with_scopes("narrow", ["apiKeys:read"]);
    let k = key("narrow");
    assert_eq!(api.api_key_info(&k).await.unwrap().scopes, ["apiKeys:read"]);
    assert_eq!(
        api.candidate_info(&k, ashby_sim::DEMO_CANDIDATE_ID).await.unwrap_err(),
        AshbyError::MissingPermission { message: "The API key is missing the candidatesRead permission".into() }
    );
    assert!(matches!(api.custom_fields(&k).await.unwrap_err(), AshbyError::MissingPermission { .. }));
}

#[tokio::test]
async fn an_injected_missing_permission_is_reported_as_such() {
    let (sim, api) = demo().await;
    sim.fail_next(1, Fault::MissingPermission);
    let err = api.hiring_team_roles(&key(KEY)).await.unwrap_err();
    assert!(matches!(err, AshbyError::MissingPermission { .. }), "{err:?}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn an_unknown_candidate_or_application_is_not_found() {
    let (_sim, api) = demo().await;
    assert_eq!(
        api.candidate_info(&key(KEY), "nobody").await.unwrap_err(),
        AshbyError::NotFound { code: "candidate_not_found".into() }
    );
    assert_eq!(
        api.application_info(&key(KEY), "nothing").await.unwrap_err(),
        AshbyError::NotFound { code: "application_not_found".into() }
    );
}

#[tokio::test]
async fn an_http_404_is_not_found() {
    let (sim, _api) = demo().await;
    let api = HttpAshbyApi::new(format!("{}/no-such-prefix", sim.url()));
    assert_eq!(
        api.api_key_info(&key(KEY)).await.unwrap_err(),
        AshbyError::NotFound { code: "endpoint_not_found".into() }
    );
}

#[tokio::test]
async fn a_transient_server_error_is_retried_within_the_call() {
    let (sim, api) = demo().await;
    sim.fail_next(1, Fault::ServerError(502));
    let candidate = api.candidate_info(&key(KEY), ashby_sim::DEMO_CANDIDATE_ID).await.unwrap();
    assert_eq!(candidate.id, ashby_sim::DEMO_CANDIDATE_ID);
    assert_eq!(sim.calls_to("candidate.info"), 2);
}

#[tokio::test]
async fn a_persistent_server_error_is_returned_after_three_attempts() {
    let (sim, api) = demo().await;
    sim.fail_next(5, Fault::ServerError(503));
    let err = api.candidate_info(&key(KEY), ashby_sim::DEMO_CANDIDATE_ID).await.unwrap_err();
    assert_eq!(err, AshbyError::Server { status: 503 });
    assert!(err.is_retryable());
    assert_eq!(sim.calls_to("candidate.info"), 3);
}

#[tokio::test]
async fn a_retry_after_that_fits_the_budget_is_waited_for() {
    let (sim, api) = demo().await;
    sim.fail_next(1, Fault::RateLimited { retry_after_secs: Some(1) });
    let started = Instant::now();
    api.api_key_info(&key(KEY)).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "waited only {:?}", started.elapsed());
    assert_eq!(sim.calls().len(), 2);
}

#[tokio::test]
async fn a_retry_after_beyond_the_budget_is_returned_at_once_for_the_queue_to_honour() {
    let (sim, api) = demo().await;
    sim.fail_next(1, Fault::RateLimited { retry_after_secs: Some(30) });
    let started = Instant::now();
    let err = api.api_key_info(&key(KEY)).await.unwrap_err();
    assert_eq!(err, AshbyError::RateLimited { retry_after: Some(Duration::from_secs(30)) });
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(sim.calls().len(), 1);
}

#[tokio::test]
async fn rate_limiting_that_outlasts_the_attempts_is_returned_as_rate_limited() {
    let (sim, api) = demo().await;
    sim.fail_next(3, Fault::RateLimited { retry_after_secs: None });
    let err = api.custom_fields(&key(KEY)).await.unwrap_err();
    assert_eq!(err, AshbyError::RateLimited { retry_after: None });
    assert_eq!(sim.calls().len(), 3);
}

#[tokio::test]
async fn a_zero_wait_budget_returns_the_first_retryable_error() {
    let (sim, _api) = demo().await;
    let api = HttpAshbyApi::new(sim.url()).with_retry_budget(3, Duration::ZERO);
    sim.fail_next(1, Fault::ServerError(500));
    assert_eq!(api.api_key_info(&key(KEY)).await.unwrap_err(), AshbyError::Server { status: 500 });
    assert_eq!(sim.calls().len(), 1);
}

#[tokio::test]
async fn an_answer_slower_than_the_timeout_is_a_timeout() {
    let (sim, _api) = demo().await;
    let api = HttpAshbyApi::new(sim.url()).with_timeouts(Duration::from_secs(2), Duration::from_millis(300));
    sim.fail_next(1, Fault::Hang(Duration::from_secs(3)));
    let started = Instant::now();
    let err = api.candidate_info(&key(KEY), ashby_sim::DEMO_CANDIDATE_ID).await.unwrap_err();
    assert_eq!(err, AshbyError::Timeout);
    assert!(err.is_retryable());
    assert!(started.elapsed() < Duration::from_millis(1500), "took {:?}", started.elapsed());
    assert_eq!(sim.calls().len(), 1);
}

#[tokio::test]
async fn a_short_hang_within_the_timeout_still_answers() {
    let (sim, api) = demo().await;
    sim.fail_next(1, Fault::Hang(Duration::from_millis(100)));
    assert!(api.api_key_info(&key(KEY)).await.is_ok());
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let api = HttpAshbyApi::new(format!("http://127.0.0.1:{port}")).with_retry_budget(1, Duration::ZERO);
    let err = api.api_key_info(&key(KEY)).await.unwrap_err();
    assert!(matches!(err, AshbyError::Unreachable(_)), "{err:?}");
    assert!(err.is_retryable());
}

/// A server that answers every request with this status and body.
async fn fixed_server(status: u16, body: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app =
        axum::Router::new().fallback(move || async move { (axum::http::StatusCode::from_u16(status).unwrap(), body) });
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_body_that_is_not_the_envelope_is_malformed() {
    let api = HttpAshbyApi::new(fixed_server(200, "<html>maintenance</html>").await);
    assert!(matches!(api.api_key_info(&key(KEY)).await.unwrap_err(), AshbyError::Malformed(_)));
    let api = HttpAshbyApi::new(fixed_server(200, r#"{"success":true,"results":{"id":42}}"#).await);
    assert!(matches!(api.candidate_info(&key(KEY), "c").await.unwrap_err(), AshbyError::Malformed(_)));
}

#[tokio::test]
async fn success_false_with_another_code_is_an_api_error() {
    let body =
        r#"{"success":false,"errors":["invalid_input"],"errorInfo":{"code":"invalid_input","message":"bad id"}}"#;
    let api = HttpAshbyApi::new(fixed_server(200, body).await);
    assert_eq!(
        api.candidate_info(&key(KEY), "c").await.unwrap_err(),
        AshbyError::Api { code: "invalid_input".into(), message: "bad id".into() }
    );
}

#[tokio::test]
async fn a_403_without_the_permission_code_is_a_rejected_key() {
    let api = HttpAshbyApi::new(fixed_server(403, "Forbidden").await);
    assert_eq!(api.api_key_info(&key(KEY)).await.unwrap_err(), AshbyError::KeyRejected);
}

#[tokio::test]
async fn custom_fields_follows_the_cursor_to_the_last_page() {
    let (sim, api) = demo().await;
    let fields: Vec<Value> = (0..250)
        .map(|i| {
            json!({ "id": format!("f{i}"), "title": format!("Field {i}"), "objectType": "Candidate",
                         "fieldType": "String", "isArchived": false, "isPrivate": false })
        })
        .collect();
    sim.set_custom_fields(fields);
    let got = api.custom_fields(&key(KEY)).await.unwrap();
    let titles: Vec<String> = got.into_iter().map(|f| f.title).collect();
    assert_eq!(titles, (0..250).map(|i| format!("Field {i}")).collect::<Vec<_>>());
    assert_eq!(sim.calls_to("customField.list"), 3);
}

#[tokio::test]
async fn the_simulator_pages_by_the_requested_limit() {
    let (sim, _api) = demo().await;
    let client = reqwest::Client::new();
    let page = |cursor: Value| {
        let client = client.clone();
        let url = format!("{}/customField.list", sim.url());
        async move {
            let body = json!({ "limit": 1, "cursor": cursor });
            let r = client.post(url).basic_auth(KEY, Some("")).json(&body).send().await.unwrap();
            r.json::<Value>().await.unwrap()
        }
    };
    let first = page(Value::Null).await;
    assert_eq!(first["results"][0]["title"], "Send to Reimbi");
    assert_eq!(first["moreDataAvailable"], true);
    let second = page(first["nextCursor"].clone()).await;
    assert_eq!(second["results"][0]["title"], "Reimbi Reimbursement Policy");
    assert_eq!(second["moreDataAvailable"], false);
    assert_eq!(second["nextCursor"], Value::Null);
}

#[tokio::test]
async fn hiring_team_roles_accepts_plain_titles_too() {
    let (sim, api) = demo().await;
    sim.set_hiring_team_roles_raw(vec![json!("Recruiter"), json!({ "id": "r2", "title": "Sourcer" })]);
    assert_eq!(api.hiring_team_roles(&key(KEY)).await.unwrap(), ["Recruiter", "Sourcer"]);
}

#[tokio::test]
async fn a_fault_applies_to_exactly_the_next_n_calls() {
    let (sim, _api) = demo().await;
    let api = HttpAshbyApi::new(sim.url()).with_retry_budget(1, Duration::ZERO);
    sim.fail_next(2, Fault::ServerError(500));
    let k = key(KEY);
    assert!(api.api_key_info(&k).await.is_err());
    assert!(api.api_key_info(&k).await.is_err());
    assert!(api.api_key_info(&k).await.is_ok());
}

/// Collects formatted log lines.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_api_key_never_reaches_the_log() {
    let (sim, api) = demo().await;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber =
        tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || writer.clone()).finish();
    let _default = tracing::subscriber::set_default(subscriber);
    sim.fail_next(1, Fault::ServerError(500));
    api.candidate_info(&key(KEY), ashby_sim::DEMO_CANDIDATE_ID).await.unwrap();
    let _ = api.candidate_info(&key(KEY), "nobody").await;
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("candidate.info"), "the client logs its calls: {log}");
    assert!(!log.contains(KEY), "the key leaked into the log");
}

/// The signature header and body a test endpoint received.
type Delivery = (String, Vec<u8>);

#[tokio::test]
async fn a_delivered_webhook_carries_the_exact_body_and_its_signature() {
    let received: Arc<Mutex<Option<Delivery>>> = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/webhooks/ashby/{id}",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let sig = headers.get("ashby-signature").unwrap().to_str().unwrap().to_owned();
                *sink.lock().unwrap() = Some((sig, body.to_vec()));
                axum::http::StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let body = webhook::stage_change(None, "cand-1", "app-1", webhook::demo_hiring_team());
    let response = webhook::deliver(format!("http://{addr}/webhooks/ashby/wh_1"), "s3cret", &body).await;
    assert_eq!(response.status().as_u16(), 202);
    let (signature, got) = received.lock().unwrap().clone().unwrap();
    assert_eq!(got, body);
    assert_eq!(signature, webhook::sign("s3cret", &body));
}

#[test]
fn the_signature_helper_reproduces_the_documented_example() {
    let body = include_bytes!("../../fixtures/ashby/webhook-candidateStageChange.json");
    let secret = include_str!("../../fixtures/ashby/example-secret.txt");
    assert_eq!(webhook::sign(secret, body), "sha256=6d10569c489f234c0d4be358dd68d48d76a7aa01c9a083869ab2fb443fc3a8b2");
}
