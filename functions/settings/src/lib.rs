//! The settings function: the admin API of contract section 2 ("Company Settings >
//! Integrations > Ashby"), as an axum router served through `lambda_http`.
//!
//! One module per resource; [`auth`] checks the caller before anything else; [`error`] is the
//! one error type and its mapping to the contract's error body.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::routing::{get, post, put};
use reimbi_shared::cache::Invalidate;
use reimbi_shared::domain::{CompanyId, WebhookId};
use reimbi_shared::ports::{AshbyApi, CandidateStore, Clock, EventLog, SecretStore, SettingsStore, WebhookStore};

pub mod auth;
mod candidates;
mod credentials;
pub mod error;
mod events;
mod health;
mod input;
mod integration;
mod policies;
mod staff;

pub use error::ApiError;

/// Everything the handlers use, injected once.
pub struct SettingsDeps {
    pub settings: Arc<dyn SettingsStore>,
    pub webhooks: Arc<dyn WebhookStore>,
    pub events: Arc<dyn EventLog>,
    pub candidates: Arc<dyn CandidateStore>,
    pub secrets: Arc<dyn SecretStore>,
    pub ashby: Arc<dyn AshbyApi>,
    pub clock: Arc<dyn Clock>,
    /// Base of the Webhook API URL (`PUBLIC_BASE_URL`); when `None`, taken from the request.
    pub public_base_url: Option<String>,
    /// How long a replaced webhook credential keeps working (`WEBHOOK_ROTATION_GRACE`).
    pub rotation_grace: Duration,
    /// Caches in this process to drop when a company changes (the local runner's webhook and
    /// processor handlers; empty in Lambda, where the caches' TTL bounds staleness).
    pub invalidators: Vec<Arc<dyn Invalidate>>,
}

impl SettingsDeps {
    pub(crate) fn company_changed(&self, company: &CompanyId) {
        for i in &self.invalidators {
            i.company_changed(company);
        }
    }
}

pub const SETTINGS_PATH: &str = "/companies/{companyId}/integrations/ashby";
pub const CREDENTIALS_PATH: &str = "/companies/{companyId}/integrations/ashby/webhook-credentials";
pub const EVENTS_PATH: &str = "/companies/{companyId}/integrations/ashby/events";
pub const HEALTH_PATH: &str = "/companies/{companyId}/integrations/ashby/health";
pub const POLICIES_PATH: &str = "/companies/{companyId}/policies";
pub const POLICY_PATH: &str = "/companies/{companyId}/policies/{policyId}";
pub const STAFF_PATH: &str = "/companies/{companyId}/staff";
pub const STAFF_MEMBER_PATH: &str = "/companies/{companyId}/staff/{email}";
pub const CANDIDATES_PATH: &str = "/companies/{companyId}/candidates";
pub const CANDIDATE_PATH: &str = "/companies/{companyId}/candidates/{candidateId}";

/// Every (method, path) this function serves; `docs/openapi.yaml` is checked against it and
/// the router is checked to serve exactly these.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", SETTINGS_PATH),
    ("PUT", SETTINGS_PATH),
    ("POST", CREDENTIALS_PATH),
    ("GET", EVENTS_PATH),
    ("GET", HEALTH_PATH),
    ("GET", POLICIES_PATH),
    ("PUT", POLICY_PATH),
    ("GET", STAFF_PATH),
    ("PUT", STAFF_MEMBER_PATH),
    ("GET", CANDIDATES_PATH),
    ("GET", CANDIDATE_PATH),
];

/// The admin API.
pub fn router(deps: Arc<SettingsDeps>) -> Router {
    Router::new()
        .route(SETTINGS_PATH, get(integration::get_settings).put(integration::put_settings))
        .route(CREDENTIALS_PATH, post(credentials::rotate))
        .route(EVENTS_PATH, get(events::list))
        .route(HEALTH_PATH, get(health::check))
        .route(POLICIES_PATH, get(policies::list))
        .route(POLICY_PATH, put(policies::put))
        .route(STAFF_PATH, get(staff::list))
        .route(STAFF_MEMBER_PATH, put(staff::put))
        .route(CANDIDATES_PATH, get(candidates::list))
        .route(CANDIDATE_PATH, get(candidates::get))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed("this route does not take that method".into())
        })
        .with_state(deps)
}

/// Where Webhook API URLs start: `PUBLIC_BASE_URL`, else the HTTP API's domain and stage, else
/// the `Host` header (the local runner, plain HTTP). `None` when none is known.
#[derive(Debug, Clone)]
pub(crate) struct BaseUrl(Option<String>);

impl BaseUrl {
    pub(crate) fn webhook_url(&self, id: &WebhookId) -> String {
        format!("{}/webhooks/ashby/{id}", self.0.as_deref().unwrap_or(""))
    }

    fn from_request(deps: &SettingsDeps, parts: &Parts) -> Self {
        if let Some(base) = deps.public_base_url.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
            return Self(Some(base.trim_end_matches('/').to_owned()));
        }
        if let Some(ctx) = auth::http_api_context(parts)
            && let Some(domain) = ctx.domain_name.as_deref().filter(|d| !d.is_empty())
        {
            let stage = match ctx.stage.as_deref() {
                None | Some("") | Some("$default") => String::new(),
                Some(s) => format!("/{s}"),
            };
            return Self(Some(format!("https://{domain}{stage}")));
        }
        let host = parts.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).filter(|h| is_host(h));
        Self(host.map(|h| format!("http://{h}")))
    }
}

/// A plausible `host[:port]`: nothing that could inject a path or a scheme into the URL.
fn is_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

impl FromRequestParts<Arc<SettingsDeps>> for BaseUrl {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, deps: &Arc<SettingsDeps>) -> Result<Self, Self::Rejection> {
        Ok(Self::from_request(deps, parts))
    }
}

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
