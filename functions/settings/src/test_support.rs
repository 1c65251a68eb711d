//! What the handler tests share: the router over embedded stores (with injectable faults), the
//! Ashby simulator, a manual clock, a request helper that records every response body, and a
//! log capture.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::TimeZone;
use http_body_util::BodyExt;
use reimbi_shared::adapters::ashby_http::HttpAshbyApi;
use reimbi_shared::adapters::embedded::{EmbeddedSecretStore, EmbeddedStore};
use reimbi_shared::cache::Invalidate;
use reimbi_shared::domain::*;
use reimbi_shared::ports::*;
use secrecy::SecretString;
use serde_json::Value;
use tower::ServiceExt;

use crate::{SettingsDeps, auth, router};

pub const ACME: &str = "acme";
pub const GLOBEX: &str = "globex";
pub const GOOD_KEY: &str = "ashby_live_key_GOOD_x7Qa";
pub const OTHER_KEY: &str = "ashby_live_key_OTHER_z9Zz";
pub const BAD_KEY: &str = "ashby_live_key_WRONG_b4dK";
pub const HOST: &str = "settings.test";

/// Faults the tests switch on.
#[derive(Default)]
pub struct Faults {
    /// The next N `save_settings` calls lose to a concurrent writer.
    pub settings_conflicts: AtomicUsize,
    pub secrets_down: AtomicBool,
}

pub struct FaultySettings {
    inner: EmbeddedStore,
    faults: Arc<Faults>,
}

#[async_trait]
impl SettingsStore for FaultySettings {
    async fn get_settings(&self, c: &CompanyId) -> Result<Option<IntegrationSettings>, StoreError> {
        self.inner.get_settings(c).await
    }
    async fn save_settings(&self, s: &IntegrationSettings) -> Result<(), StoreError> {
        let pending = &self.faults.settings_conflicts;
        if pending.load(Ordering::SeqCst) > 0 {
            pending.fetch_sub(1, Ordering::SeqCst);
            return Err(StoreError::Conflict);
        }
        self.inner.save_settings(s).await
    }
    async fn get_policy(&self, c: &CompanyId, p: &PolicyId) -> Result<Option<Policy>, StoreError> {
        self.inner.get_policy(c, p).await
    }
    async fn put_policy(&self, p: &Policy) -> Result<(), StoreError> {
        self.inner.put_policy(p).await
    }
    async fn list_policies(&self, c: &CompanyId) -> Result<Vec<Policy>, StoreError> {
        self.inner.list_policies(c).await
    }
    async fn get_staff(&self, c: &CompanyId, e: &EmailAddress) -> Result<Option<StaffMember>, StoreError> {
        self.inner.get_staff(c, e).await
    }
    async fn put_staff(&self, m: &StaffMember) -> Result<(), StoreError> {
        self.inner.put_staff(m).await
    }
    async fn list_staff(&self, c: &CompanyId) -> Result<Vec<StaffMember>, StoreError> {
        self.inner.list_staff(c).await
    }
}

#[derive(Debug, thiserror::Error)]
#[error("secret backend exploded at arn:aws:secretsmanager:internal-detail")]
struct Boom;

pub struct FaultySecrets {
    inner: EmbeddedSecretStore,
    faults: Arc<Faults>,
}

#[async_trait]
impl SecretStore for FaultySecrets {
    async fn get_secret(&self, s: &SecretRef) -> Result<Option<SecretString>, SecretError> {
        if self.faults.secrets_down.load(Ordering::SeqCst) {
            return Err(SecretError::Unavailable(Box::new(Boom)));
        }
        self.inner.get_secret(s).await
    }
    async fn put_secret(&self, s: &SecretRef, v: &SecretString) -> Result<(), SecretError> {
        if self.faults.secrets_down.load(Ordering::SeqCst) {
            return Err(SecretError::Unavailable(Box::new(Boom)));
        }
        self.inner.put_secret(s, v).await
    }
}

/// Counts invalidations per company.
#[derive(Default)]
pub struct RecordingInvalidator(pub Mutex<Vec<String>>);

impl Invalidate for RecordingInvalidator {
    fn company_changed(&self, company: &CompanyId) {
        self.0.lock().unwrap().push(company.to_string());
    }
}

/// Who calls.
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    Admin(&'a str),
    Member(&'a str),
    NoToken,
    /// A context whose claims lack `company_id`.
    NoCompanyClaim,
}

pub fn t0() -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap()
}

pub struct World {
    pub router: Router,
    pub store: EmbeddedStore,
    pub secrets: EmbeddedSecretStore,
    pub clock: Arc<ManualClock>,
    pub sim: ashby_sim::AshbySim,
    pub faults: Arc<Faults>,
    pub invalidations: Arc<RecordingInvalidator>,
    /// Every response body this world answered, in order.
    pub bodies: Mutex<Vec<String>>,
}

pub struct Options {
    pub public_base_url: Option<String>,
    pub ashby_url: Option<String>,
}

impl World {
    pub async fn new() -> Self {
        Self::with(Options { public_base_url: None, ashby_url: None }).await
    }

    pub async fn with(o: Options) -> Self {
        let sim = ashby_sim::AshbySim::start().await;
        ashby_sim::demo_data(&sim, GOOD_KEY);
        sim.add_api_key(OTHER_KEY);
        let store = EmbeddedStore::in_memory();
        let secrets = EmbeddedSecretStore::in_memory();
        let faults = Arc::new(Faults::default());
        let clock = Arc::new(ManualClock::new(t0()));
        let invalidations = Arc::new(RecordingInvalidator::default());
        let ashby = HttpAshbyApi::new(o.ashby_url.unwrap_or_else(|| sim.url()))
            .with_timeouts(Duration::from_secs(2), Duration::from_secs(3))
            .with_retry_budget(1, Duration::from_secs(1));
        let deps = Arc::new(SettingsDeps {
            settings: Arc::new(FaultySettings { inner: store.clone(), faults: faults.clone() }),
            webhooks: Arc::new(store.clone()),
            events: Arc::new(store.clone()),
            candidates: Arc::new(store.clone()),
            secrets: Arc::new(FaultySecrets { inner: secrets.clone(), faults: faults.clone() }),
            ashby: Arc::new(ashby),
            clock: clock.clone(),
            public_base_url: o.public_base_url,
            rotation_grace: Duration::from_secs(24 * 3600),
            invalidators: vec![invalidations.clone()],
        });
        Self { router: router(deps), store, secrets, clock, sim, faults, invalidations, bodies: Mutex::new(Vec::new()) }
    }

    pub fn request(method: &str, uri: &str, caller: Caller<'_>, body: Option<&str>) -> Request<Body> {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", HOST)
            .header("content-type", "application/json")
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
            .unwrap();
        let ctx = match caller {
            Caller::Admin(c) => Some(auth::request_context(&[("company_id", c), ("role", "admin"), ("sub", "u1")])),
            Caller::Member(c) => Some(auth::request_context(&[("company_id", c), ("role", "member")])),
            Caller::NoCompanyClaim => Some(auth::request_context(&[("role", "admin")])),
            Caller::NoToken => None,
        };
        if let Some(ctx) = ctx {
            req.extensions_mut().insert(ctx);
        }
        req
    }

    pub async fn send(&self, req: Request<Body>) -> (StatusCode, Value) {
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        self.bodies.lock().unwrap().push(text.clone());
        let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() };
        (status, value)
    }

    pub async fn call(&self, method: &str, uri: &str, caller: Caller<'_>, body: Option<&str>) -> (StatusCode, Value) {
        self.send(Self::request(method, uri, caller, body)).await
    }

    /// As an admin of `acme`.
    pub async fn admin(&self, method: &str, uri: &str, body: Option<&str>) -> (StatusCode, Value) {
        self.call(method, uri, Caller::Admin(ACME), body).await
    }

    pub fn acme() -> CompanyId {
        CompanyId::parse(ACME).unwrap()
    }

    pub async fn stored_settings(&self) -> Option<IntegrationSettings> {
        self.store.get_settings(&Self::acme()).await.unwrap()
    }

    pub async fn stored_key(&self) -> Option<String> {
        use secrecy::ExposeSecret;
        self.secrets
            .get_secret(&SecretRef::AshbyApiKey(Self::acme()))
            .await
            .unwrap()
            .map(|s| s.expose_secret().to_owned())
    }

    pub async fn add_staff(&self, email: &str, can_approve: bool) {
        let body = format!(r#"{{"name":"Staff {email}","canApprove":{can_approve}}}"#);
        let (status, _) = self.admin("PUT", &format!("/companies/acme/staff/{email}"), Some(&body)).await;
        assert_eq!(status, StatusCode::OK);
    }

    pub async fn add_policy(&self, id: &str, name: &str, enabled: bool) {
        let body = format!(r#"{{"name":"{name}","enabled":{enabled},"submissionGuidelines":"Keep receipts."}}"#);
        let (status, _) = self.admin("PUT", &format!("/companies/acme/policies/{id}"), Some(&body)).await;
        assert_eq!(status, StatusCode::OK);
    }

    /// A fully configured company: key, backup approver, enabled, one credential.
    pub async fn configure(&self) {
        self.add_staff("ops@acme.example", true).await;
        let body = format!(r#"{{"apiKey":"{GOOD_KEY}","backupApproverEmail":"ops@acme.example","enabled":true}}"#);
        let (status, v) = self.admin("PUT", "/companies/acme/integrations/ashby", Some(&body)).await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }

    pub async fn rotate(&self) -> Value {
        let (status, v) = self.admin("POST", "/companies/acme/integrations/ashby/webhook-credentials", None).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v
    }
}

/// Asserts the contract's error body and returns it.
pub fn assert_error(got: &(StatusCode, Value), status: u16, code: &str, field: Option<&str>) {
    assert_eq!(got.0.as_u16(), status, "{}", got.1);
    assert_eq!(got.1["error"]["code"], code, "{}", got.1);
    assert!(got.1["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", got.1);
    match field {
        Some(f) => assert_eq!(got.1["error"]["field"], f, "{}", got.1),
        None => assert!(got.1["error"].get("field").is_none(), "{}", got.1),
    }
}

/// Captures log lines written while the returned guard lives (the test's thread only).
pub fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = Sink(buf.clone());
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    (buf, tracing::subscriber::set_default(subscriber))
}
