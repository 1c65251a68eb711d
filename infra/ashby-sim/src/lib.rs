//! A simulated Ashby for tests, the local runner and the demo.
//!
//! [`AshbySim`] is an HTTP server on loopback that answers the five API endpoints the integration
//! calls the way Ashby does (see `shared/ashby/README.md` and `infra/fixtures/ashby/`): `POST
//! /<category>.<method>` with a JSON body, HTTP Basic auth with the key as user name, the
//! `{ success, results }` envelope, `success: false` for missing objects, 401/403 for keys,
//! cursor pagination. Tests inject faults ([`AshbySim::fail_next`]) and read the call log.
//! [`webhook`] signs and delivers webhook payloads as Ashby does.

pub mod webhook;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// The id of the demo candidate (the one in `candidate-info-flagged.json`).
pub const DEMO_CANDIDATE_ID: &str = "b2e47d19-3c5a-4f8e-9d61-07a8c3f2e4d5";
/// The id of the demo candidate's application (the one in `webhook-candidateStageChange.json`).
pub const DEMO_APPLICATION_ID: &str = "4f6a2c1e-8b3d-4e7f-a1c2-5d9e0b7f3a64";

/// The scopes Ashby reports for a key with every permission the integration needs.
pub const ALL_SCOPES: [&str; 4] =
    ["candidates:read", "hiringProcessMetadata:read", "organization:read", "apiKeys:read"];

/// What the next API calls answer instead of (or before) their normal answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 429, with a `Retry-After: <secs>` header when given.
    RateLimited { retry_after_secs: Option<u64> },
    /// This HTTP status (a 5xx) with an opaque body.
    ServerError(u16),
    /// Waits this long, then answers normally.
    Hang(Duration),
    /// HTTP 403 `missing_endpoint_permission`, as for a key without the module permission.
    MissingPermission,
}

/// One API call the simulator received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// `category.method`, e.g. `candidate.info`.
    pub endpoint: String,
    /// The Basic auth user name, when the request carried a readable one.
    pub api_key: Option<String>,
}

#[derive(Default)]
struct State_ {
    /// Key → the scopes it was created with.
    keys: HashMap<String, Vec<String>>,
    candidates: HashMap<String, Value>,
    applications: HashMap<String, Value>,
    custom_fields: Vec<Value>,
    hiring_team_roles: Vec<Value>,
    faults: VecDeque<Fault>,
    calls: Vec<Call>,
}

struct Shared {
    state: Mutex<State_>,
    request_ids: AtomicU64,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State_> {
        // A panicking test thread must not poison the simulator for the others.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn request_id(&self) -> String {
        format!("01JSIM{:020}", self.request_ids.fetch_add(1, Ordering::Relaxed))
    }
}

/// Stops the server when the last handle to the simulator is dropped.
struct ServerTask(Mutex<Option<JoinHandle<std::io::Result<()>>>>);

impl Drop for ServerTask {
    fn drop(&mut self) {
        if let Some(handle) = self.0.lock().unwrap_or_else(|e| e.into_inner()).take() {
            handle.abort();
        }
    }
}

/// A running simulated Ashby. Cheap to clone; the server stops when the last clone is dropped.
#[derive(Clone)]
pub struct AshbySim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: Arc<ServerTask>,
}

impl std::fmt::Debug for AshbySim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AshbySim").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl AshbySim {
    /// Starts a simulator on `127.0.0.1` with a free port. Panics when loopback cannot be bound.
    pub async fn start() -> AshbySim {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("the Ashby simulator can bind a loopback port")
    }

    /// Starts a simulator on `addr` (e.g. a fixed port for `reimbi-local ashby-sim`).
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<AshbySim> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared { state: Mutex::new(State_::default()), request_ids: AtomicU64::new(1) });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let handle = tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(AshbySim { shared, addr, server: Arc::new(ServerTask(Mutex::new(Some(handle)))) })
    }

    /// The base URL to configure as `ASHBY_API_URL`, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Accepts `key` with every permission the integration needs ([`ALL_SCOPES`]).
    pub fn add_api_key(&self, key: impl Into<String>) {
        self.add_api_key_with_scopes(key, ALL_SCOPES);
    }

    /// Accepts `key` with only these scopes (e.g. `["apiKeys:read"]`); other endpoints answer
    /// 403 `missing_endpoint_permission`.
    pub fn add_api_key_with_scopes<I>(&self, key: impl Into<String>, scopes: I)
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let scopes = scopes.into_iter().map(|s| s.as_ref().to_owned()).collect();
        self.shared.lock().keys.insert(key.into(), scopes);
    }

    /// Forgets `key`: later calls with it answer 403 as for a deactivated key.
    pub fn remove_api_key(&self, key: &str) {
        self.shared.lock().keys.remove(key);
    }

    /// Stores a `candidate.info` results object (keyed by its `id`), replacing one with that id.
    pub fn set_candidate(&self, candidate: Value) {
        let id = object_id(&candidate, "set_candidate");
        self.shared.lock().candidates.insert(id, candidate);
    }

    /// Stores an `application.info` results object (keyed by its `id`).
    pub fn set_application(&self, application: Value) {
        let id = object_id(&application, "set_application");
        self.shared.lock().applications.insert(id, application);
    }

    /// The custom field definitions `customField.list` pages through, in order.
    pub fn set_custom_fields(&self, fields: Vec<Value>) {
        self.shared.lock().custom_fields = fields;
    }

    /// The roles `hiringTeamRole.list` returns, as `{ id, title }` objects.
    pub fn set_hiring_team_roles<I>(&self, roles: I)
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let roles = roles
            .into_iter()
            .enumerate()
            .map(|(i, title)| json!({ "id": format!("role-{}", i + 1), "title": title.as_ref() }))
            .collect();
        self.shared.lock().hiring_team_roles = roles;
    }

    /// The `hiringTeamRole.list` results exactly as given (e.g. plain strings).
    pub fn set_hiring_team_roles_raw(&self, roles: Vec<Value>) {
        self.shared.lock().hiring_team_roles = roles;
    }

    /// The next `n` API calls (any endpoint) get `fault`, after any faults already queued.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut state = self.shared.lock();
        state.faults.extend(std::iter::repeat_n(fault, n));
    }

    /// Every API call received so far, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// How many calls were made to `endpoint` (e.g. `candidate.info`).
    pub fn calls_to(&self, endpoint: &str) -> usize {
        self.shared.lock().calls.iter().filter(|c| c.endpoint == endpoint).count()
    }

    pub fn reset_calls(&self) {
        self.shared.lock().calls.clear();
    }
}

fn object_id(value: &Value, what: &str) -> String {
    value
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{what}: the object needs a string `id`"))
        .to_owned()
}

/// What the sample data is: ids to put in webhook payloads.
#[derive(Debug, Clone, PartialEq)]
pub struct Demo {
    pub candidate_id: String,
    pub application_id: String,
    /// The application's hiring team (Rae Cruiter, Recruiter; Hal Manager, Hiring Manager).
    pub hiring_team: Value,
}

impl Demo {
    /// A `candidateStageChange` payload for the demo application (see [`webhook::stage_change`]).
    pub fn stage_change(&self, webhook_action_id: impl webhook::IntoActionId) -> Vec<u8> {
        webhook::stage_change(webhook_action_id, &self.candidate_id, &self.application_id, self.hiring_team.clone())
    }
}

fn fixture(json: &str) -> Value {
    serde_json::from_str(json).expect("the Ashby fixtures are valid JSON")
}

/// Seeds the simulator with the demo story: `api_key` with every scope; Jane Doe
/// (jane.doe@example.com), flagged "Send to Reimbi" with policy "Onsite Interview"; her
/// application with a hiring team (Rae Cruiter, Recruiter, rae@acme.example; Hal Manager, Hiring
/// Manager, hal@acme.example); the two custom field definitions; three hiring team roles.
pub fn demo_data(sim: &AshbySim, api_key: impl Into<String>) -> Demo {
    sim.add_api_key(api_key);
    let candidate = fixture(include_str!("../../fixtures/ashby/candidate-info-flagged.json"))["results"].clone();
    sim.set_candidate(candidate);
    let hiring_team = webhook::demo_hiring_team();
    sim.set_application(json!({
        "id": DEMO_APPLICATION_ID,
        "createdAt": "2026-11-20T09:12:44.031Z",
        "updatedAt": "2026-12-04T15:21:07.112Z",
        "status": "Active",
        "customFields": [],
        "candidate": { "id": DEMO_CANDIDATE_ID, "name": "Jane Doe",
                       "primaryEmailAddress": { "value": "jane.doe@example.com", "type": "Personal", "isPrimary": true } },
        "currentInterviewStage": { "id": "e1d2c3b4-a5f6-4789-8a0b-1c2d3e4f5a6b", "title": "Onsite", "type": "Active" },
        "job": { "id": "c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f", "title": "Backend Engineer" },
        "hiringTeam": hiring_team,
    }));
    let fields = fixture(include_str!("../../fixtures/ashby/customField-list.json"))["results"].clone();
    sim.set_custom_fields(fields.as_array().cloned().unwrap_or_default());
    sim.set_hiring_team_roles(["Recruiter", "Hiring Manager", "Recruiting Coordinator"]);
    Demo { candidate_id: DEMO_CANDIDATE_ID.to_owned(), application_id: DEMO_APPLICATION_ID.to_owned(), hiring_team }
}

/// Runs a simulator seeded with [`demo_data`] on `listen` until the server fails or the future
/// is dropped.
pub async fn serve(listen: SocketAddr, api_key: &str) -> std::io::Result<()> {
    let sim = AshbySim::start_on(listen).await?;
    demo_data(&sim, api_key);
    tracing::info!(url = %sim.url(), "Ashby simulator listening");
    let handle = sim.server.0.lock().unwrap_or_else(|e| e.into_inner()).take();
    let Some(handle) = handle else { return Ok(()) };
    // Aborts the server if this future is dropped (e.g. on Ctrl-C in a `select!`).
    struct AbortOnDrop(tokio::task::AbortHandle);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let _guard = AbortOnDrop(handle.abort_handle());
    match handle.await {
        Ok(result) => result,
        Err(e) => Err(std::io::Error::other(e)),
    }
}

/// The scope each endpoint needs, and Ashby's name for the permission in its error message.
fn required_scope(endpoint: &str) -> Option<(&'static str, &'static str)> {
    match endpoint {
        "candidate.info" | "application.info" => Some(("candidates:read", "candidatesRead")),
        "customField.list" => Some(("hiringProcessMetadata:read", "hiringProcessMetadataRead")),
        "hiringTeamRole.list" => Some(("organization:read", "organizationRead")),
        "apiKey.info" => Some(("apiKeys:read", "apiKeysRead")),
        _ => None,
    }
}

/// The user name of an HTTP Basic `Authorization` header.
fn basic_user(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, _password) = decoded.split_once(':')?;
    Some(user.to_owned())
}

fn error_body(shared: &Shared, code: &str, message: &str) -> Value {
    json!({
        "success": false,
        "errors": [code],
        "errorInfo": { "code": code, "message": message, "requestId": shared.request_id(), "meta": {} }
    })
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn ok(results: Value) -> Response {
    answer(StatusCode::OK, json!({ "success": true, "results": results }))
}

fn missing_permission(shared: &Shared, permission: &str) -> Response {
    let message = format!("The API key is missing the {permission} permission");
    answer(StatusCode::FORBIDDEN, error_body(shared, "missing_endpoint_permission", &message))
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let endpoint = uri.path().trim_start_matches('/').to_owned();
    let api_key = basic_user(&headers);
    let fault = {
        let mut state = shared.lock();
        state.calls.push(Call { endpoint: endpoint.clone(), api_key: api_key.clone() });
        state.faults.pop_front()
    };
    match fault {
        Some(Fault::RateLimited { retry_after_secs }) => {
            let mut response =
                answer(StatusCode::TOO_MANY_REQUESTS, error_body(&shared, "rate_limit_exceeded", "Too many requests"));
            if let Some(secs) = retry_after_secs {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            return response;
        }
        Some(Fault::ServerError(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return answer(status, error_body(&shared, "internal_error", "An unexpected error occurred"));
        }
        Some(Fault::Hang(duration)) => tokio::time::sleep(duration).await,
        Some(Fault::MissingPermission) => {
            let permission = required_scope(&endpoint).map_or("candidatesRead", |(_, p)| p);
            return missing_permission(&shared, permission);
        }
        None => {}
    }

    if method != Method::POST {
        return answer(StatusCode::METHOD_NOT_ALLOWED, error_body(&shared, "method_not_allowed", "Use POST"));
    }
    let Some(key) = api_key else {
        return answer(StatusCode::UNAUTHORIZED, error_body(&shared, "unauthenticated", "No API key was provided"));
    };
    let Some((scope, permission)) = required_scope(&endpoint) else {
        return answer(StatusCode::NOT_FOUND, error_body(&shared, "endpoint_not_found", "No such endpoint"));
    };
    let scopes = shared.lock().keys.get(&key).cloned();
    let Some(scopes) = scopes else {
        let body = error_body(&shared, "invalid_api_key", "The API key is invalid or has been deactivated");
        return answer(StatusCode::FORBIDDEN, body);
    };
    if !scopes.iter().any(|s| s == scope) {
        return missing_permission(&shared, permission);
    }

    let params: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v @ Value::Object(_)) => v,
            _ => return answer(StatusCode::OK, error_body(&shared, "invalid_input", "The body must be a JSON object")),
        }
    };

    match endpoint.as_str() {
        "candidate.info" => {
            let Some(id) = params.get("id").and_then(Value::as_str) else {
                return answer(StatusCode::OK, error_body(&shared, "invalid_input", "id is required"));
            };
            let candidate = shared.lock().candidates.get(id).cloned();
            match candidate {
                Some(c) => ok(c),
                None => answer(StatusCode::OK, error_body(&shared, "candidate_not_found", "Candidate not found")),
            }
        }
        "application.info" => {
            let Some(id) = params.get("applicationId").and_then(Value::as_str) else {
                return answer(StatusCode::OK, error_body(&shared, "invalid_input", "applicationId is required"));
            };
            let application = shared.lock().applications.get(id).cloned();
            match application {
                Some(a) => ok(a),
                None => answer(StatusCode::OK, error_body(&shared, "application_not_found", "Application not found")),
            }
        }
        "customField.list" => custom_field_list(&shared, &params),
        "hiringTeamRole.list" => ok(Value::Array(shared.lock().hiring_team_roles.clone())),
        "apiKey.info" => ok(json!({
            "title": "Reimbi integration",
            "createdAt": "2026-12-01T12:00:00.000Z",
            "scopes": scopes,
        })),
        _ => answer(StatusCode::NOT_FOUND, error_body(&shared, "endpoint_not_found", "No such endpoint")),
    }
}

fn encode_cursor(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("offset:{offset}"))
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?;
    String::from_utf8(bytes).ok()?.strip_prefix("offset:")?.parse().ok()
}

fn custom_field_list(shared: &Shared, params: &Value) -> Response {
    // Ashby caps a page at 100.
    let limit = params.get("limit").and_then(Value::as_u64).map_or(100, |l| l.clamp(1, 100)) as usize;
    let offset = match params.get("cursor") {
        None | Some(Value::Null) => 0,
        Some(Value::String(c)) => match decode_cursor(c) {
            Some(o) => o,
            None => return answer(StatusCode::OK, error_body(shared, "invalid_cursor", "The cursor is not valid")),
        },
        Some(_) => return answer(StatusCode::OK, error_body(shared, "invalid_input", "cursor must be a string")),
    };
    let fields = shared.lock().custom_fields.clone();
    let page: Vec<Value> = fields.iter().skip(offset).take(limit).cloned().collect();
    let end = offset + page.len();
    let more = end < fields.len();
    answer(
        StatusCode::OK,
        json!({
            "success": true,
            "results": page,
            "moreDataAvailable": more,
            "nextCursor": if more { Value::String(encode_cursor(end)) } else { Value::Null },
        }),
    )
}
