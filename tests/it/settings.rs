//! The settings function on the real AWS adapters (DynamoDB and Secrets Manager on moto) with
//! the Ashby simulator: an admin's path from an empty company to "health: all checks ok", a key
//! Ashby rejects leaving nothing in AWS, and a rotation whose old URL works through the grace
//! period and answers 404 after it (through the webhook function's router).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::TimeZone;
use http_body_util::BodyExt;
use reimbi_shared::adapters::ashby_http::HttpAshbyApi;
use reimbi_shared::cache::Invalidate;
use reimbi_shared::ports::ManualClock;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::harness::AwsEnv;

const KEY: &str = "ashby_it_key_AbCd1234";
const BAD_KEY: &str = "ashby_it_key_wrong_9999";

struct App {
    env: AwsEnv,
    settings: Router,
    webhook: Router,
    clock: Arc<ManualClock>,
    company: String,
    _sim: ashby_sim::AshbySim,
    bodies: Vec<String>,
}

impl App {
    async fn new() -> Self {
        let env = AwsEnv::new().await;
        let sim = ashby_sim::AshbySim::start().await;
        ashby_sim::demo_data(&sim, KEY);
        let clock = Arc::new(ManualClock::new(chrono::Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap()));
        let store = Arc::new(env.dynamo_store());
        let secrets = Arc::new(env.secret_store());
        let webhook_deps = Arc::new(webhook::WebhookDeps::new(
            store.clone(),
            store.clone(),
            secrets.clone(),
            store.clone(),
            Arc::new(env.sqs_queue()),
            clock.clone(),
        ));
        let settings_deps = settings::SettingsDeps {
            settings: store.clone(),
            webhooks: store.clone(),
            events: store.clone(),
            candidates: store,
            secrets,
            ashby: Arc::new(HttpAshbyApi::new(sim.url()).with_retry_budget(1, Duration::from_secs(1))),
            clock: clock.clone(),
            public_base_url: Some("https://hooks.reimbi.example".into()),
            rotation_grace: Duration::from_secs(24 * 3600),
            invalidators: vec![webhook_deps.clone() as Arc<dyn Invalidate>],
        };
        Self {
            settings: settings::router(Arc::new(settings_deps)),
            webhook: webhook::router(webhook_deps),
            env,
            clock,
            company: crate::harness::unique("acme"),
            _sim: sim,
            bodies: Vec::new(),
        }
    }

    async fn admin(&mut self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let uri = format!("/companies/{}{path}", self.company);
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap();
        req.extensions_mut()
            .insert(settings::auth::request_context(&[("company_id", &self.company), ("role", "admin")]));
        let res = self.settings.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let text = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        self.bodies.push(text.clone());
        (status, serde_json::from_str(&text).unwrap())
    }

    /// Delivers a signed ping to `url`'s webhook id, as Ashby would.
    async fn ping(&self, url: &str, secret: &str) -> StatusCode {
        let path = url.strip_prefix("https://hooks.reimbi.example").expect(url);
        let body = ashby_sim::webhook::ping();
        let req = Request::builder()
            .method("POST")
            .uri(path)
            .header("content-type", "application/json")
            .header("Ashby-Signature", ashby_sim::webhook::sign(secret, &body))
            .body(Body::from(body))
            .unwrap();
        self.webhook.clone().oneshot(req).await.unwrap().status()
    }

    async fn secret_named(&self, name: &str) -> Option<String> {
        match self.env.secrets_client().get_secret_value().secret_id(name).send().await {
            Ok(v) => v.secret_string,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => None,
            Err(e) => panic!("moto answered {e:?}"),
        }
    }

    fn key_secret_name(&self) -> String {
        format!("{}ashby-api-key/{}", self.env.secrets_prefix, self.company)
    }
}

#[tokio::test]
async fn an_admin_goes_from_an_empty_company_to_all_health_checks_ok() {
    let mut app = App::new().await;
    let (status, v) = app.admin("GET", "/integrations/ashby", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((v["enabled"].clone(), v["apiKeyConfigured"].clone()), (json!(false), json!(false)));
    let (_, health) = app.admin("GET", "/integrations/ashby/health", None).await;
    assert_eq!(health["ok"], false);

    for (email, name) in [("ops@acme.example", "Ops Desk"), ("rae@acme.example", "Rae Cruiter")] {
        let (status, _) =
            app.admin("PUT", &format!("/staff/{email}"), Some(json!({ "name": name, "canApprove": true }))).await;
        assert_eq!(status, StatusCode::OK);
    }
    for (id, name) in [("onsite", "Onsite Interview"), ("travel", "Final Round Travel")] {
        let body = json!({ "name": name, "enabled": true, "submissionGuidelines": "Submit receipts within 30 days." });
        assert_eq!(app.admin("PUT", &format!("/policies/{id}"), Some(body)).await.0, StatusCode::OK);
    }
    let body = json!({ "apiKey": KEY, "approverRole": "hiringTeam", "hiringTeamRole": "Recruiter",
                       "backupApproverEmail": "ops@acme.example", "enabled": true });
    let (status, v) = app.admin("PUT", "/integrations/ashby", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["apiKeyHint"], "…1234");
    assert_eq!(app.secret_named(&app.key_secret_name()).await.as_deref(), Some(KEY), "the key is in Secrets Manager");

    let (status, creds) = app.admin("POST", "/integrations/ashby/webhook-credentials", None).await;
    assert_eq!(status, StatusCode::CREATED);
    let url = creds["webhookUrl"].as_str().unwrap().to_owned();
    let id = url.rsplit('/').next().unwrap();
    let signing = app.secret_named(&format!("{}webhook-signing/{id}", app.env.secrets_prefix)).await;
    assert_eq!(signing.as_deref(), creds["secretKey"].as_str(), "the signing secret is its own secret");
    assert_eq!(app.ping(&url, creds["secretKey"].as_str().unwrap()).await, StatusCode::OK);

    let (status, health) = app.admin("GET", "/integrations/ashby/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["ok"], true, "{health:#}");
    let (_, events) = app.admin("GET", "/integrations/ashby/events", None).await;
    assert_eq!(events["items"][0]["action"], "ping");
    let (_, staff) = app.admin("GET", "/staff", None).await;
    assert_eq!(staff["items"].as_array().unwrap().len(), 2);
    let (_, candidates) = app.admin("GET", "/candidates?limit=10", None).await;
    assert_eq!(candidates, json!({ "items": [], "nextCursor": null }));

    assert!(app.bodies.iter().all(|b| !b.contains(KEY)), "the API key is in no response");
    let secret = creds["secretKey"].as_str().unwrap();
    assert_eq!(app.bodies.iter().filter(|b| b.contains(secret)).count(), 1, "the secret only in its 201");
}

#[tokio::test]
async fn a_key_ashby_rejects_leaves_nothing_in_aws() {
    let mut app = App::new().await;
    let got = app
        .admin("PUT", "/integrations/ashby", Some(json!({ "apiKey": BAD_KEY, "hiringTeamRole": "Recruiter" })))
        .await;
    assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(got.1["error"]["code"], "ashby_api_key_rejected");
    assert_eq!(app.secret_named(&app.key_secret_name()).await, None);
    let (_, v) = app.admin("GET", "/integrations/ashby", None).await;
    assert_eq!(
        (v["apiKeyConfigured"].clone(), v["hiringTeamRole"].clone(), v["updatedAt"].clone()),
        (json!(false), Value::Null, Value::Null)
    );

    // With a good key stored, a rejected replacement keeps the good one.
    assert_eq!(app.admin("PUT", "/integrations/ashby", Some(json!({ "apiKey": KEY }))).await.0, StatusCode::OK);
    let got = app.admin("PUT", "/integrations/ashby", Some(json!({ "apiKey": BAD_KEY }))).await;
    assert_eq!(got.1["error"]["code"], "ashby_api_key_rejected");
    assert_eq!(app.secret_named(&app.key_secret_name()).await.as_deref(), Some(KEY));
}

#[tokio::test]
async fn a_rotated_url_keeps_working_through_the_grace_period_and_then_answers_404() {
    let mut app = App::new().await;
    let (_, first) = app.admin("POST", "/integrations/ashby/webhook-credentials", None).await;
    let (old_url, old_secret) =
        (first["webhookUrl"].as_str().unwrap().to_owned(), first["secretKey"].as_str().unwrap().to_owned());
    assert_eq!(app.ping(&old_url, &old_secret).await, StatusCode::OK);

    app.clock.advance(Duration::from_secs(3600));
    let (status, second) = app.admin("POST", "/integrations/ashby/webhook-credentials", None).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(second["previousValidUntil"], "2026-12-05T11:00:00Z");
    let (new_url, new_secret) =
        (second["webhookUrl"].as_str().unwrap().to_owned(), second["secretKey"].as_str().unwrap().to_owned());

    app.clock.advance(Duration::from_secs(24 * 3600 - 1));
    assert_eq!(app.ping(&old_url, &old_secret).await, StatusCode::OK, "within the grace period");
    assert_eq!(app.ping(&new_url, &new_secret).await, StatusCode::OK);
    assert_eq!(app.ping(&new_url, &old_secret).await, StatusCode::UNAUTHORIZED, "each URL has its own secret");
    app.clock.advance(Duration::from_secs(1));
    assert_eq!(app.ping(&old_url, &old_secret).await, StatusCode::NOT_FOUND, "after the grace period");
    assert_eq!(app.ping(&new_url, &new_secret).await, StatusCode::OK);
}

#[test]
fn the_openapi_document_describes_the_webhook_route_the_webhook_function_serves() {
    let yaml = include_str!("../../docs/openapi.yaml");
    let entry = format!("\n  {}:\n    post:", webhook::ROUTE);
    assert!(yaml.contains(&entry), "docs/openapi.yaml lacks POST {}", webhook::ROUTE);
    // The admin routes are compared exactly (paths and methods) by the settings crate's tests.
    for (_, path) in settings::ROUTES {
        assert!(yaml.contains(&format!("\n  {path}:\n")), "docs/openapi.yaml lacks {path}");
    }
}
