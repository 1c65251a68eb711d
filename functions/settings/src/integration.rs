//! `GET|PUT /companies/{companyId}/integrations/ashby`: the integration's settings.
//!
//! A PUT is all or nothing: every field is validated, the backup approver and completeness are
//! checked, a new API key is checked against Ashby, and only then is anything written (the key
//! to the secret store, then the settings, conditional on their revision).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use reimbi_shared::domain::{
    ApiKey, ApproverRole, CompanyId, DEFAULT_POLICY_FIELD_TITLE, DEFAULT_TRIGGER_FIELD_TITLE, EmailAddress,
    IntegrationSettings, SecretRef, Timestamp, format_time,
};
use reimbi_shared::ports::{AshbyError, StoreError};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::auth::CompanyAdmin;
use crate::error::ApiError;
use crate::input::{Body, MAX_API_KEY, MAX_SHORT, Patch, not_null};
use crate::{BaseUrl, SettingsDeps};

/// The permission every use of the key needs (Ashby's scope name); checked when a key is saved.
pub(crate) const CANDIDATES_READ: &str = "candidates:read";

const FIELDS: &[&str] = &[
    "enabled",
    "apiKey",
    "approverRole",
    "hiringTeamRole",
    "backupApproverEmail",
    "triggerFieldTitle",
    "policyFieldTitle",
];

/// The GET body. `approverRole` is null until set (the processor then uses `reimbiDefault`);
/// the field titles show their defaults until changed. The key itself is never part of it.
pub(crate) fn view(s: &IntegrationSettings, base: &BaseUrl) -> Value {
    json!({
        "enabled": s.enabled,
        "apiKeyConfigured": s.api_key_configured(),
        "apiKeyHint": s.api_key_hint,
        "approverRole": s.approver_role.map(|r| r.as_str()),
        "hiringTeamRole": s.hiring_team_role,
        "backupApproverEmail": s.backup_approver_email.as_ref().map(EmailAddress::as_str),
        "triggerFieldTitle": s.trigger_field_title,
        "policyFieldTitle": s.policy_field_title,
        "webhookUrl": s.current_webhook_id.as_ref().map(|id| base.webhook_url(id)),
        "webhookSecretCreatedAt": s.webhook_secret_created_at.as_ref().map(format_time),
        "updatedAt": s.updated_at.as_ref().map(format_time),
    })
}

/// The stored settings, or those of a company that never configured anything.
pub(crate) async fn load(deps: &SettingsDeps, company: &CompanyId) -> Result<IntegrationSettings, ApiError> {
    Ok(deps.settings.get_settings(company).await?.unwrap_or_else(|| IntegrationSettings::unconfigured(company.clone())))
}

pub(crate) async fn get_settings(
    State(deps): State<Arc<SettingsDeps>>,
    admin: CompanyAdmin,
    base: BaseUrl,
) -> Result<Json<Value>, ApiError> {
    let settings = load(&deps, &admin.company).await?;
    Ok(Json(view(&settings, &base)))
}

/// A validated PUT body. Explicit `null` clears a nullable field (`approverRole` back to its
/// default, the titles back to theirs); `enabled` and `apiKey` cannot be null.
struct SettingsPatch {
    enabled: Option<bool>,
    api_key: Option<ApiKey>,
    approver_role: Patch<ApproverRole>,
    hiring_team_role: Patch<String>,
    backup_approver: Patch<EmailAddress>,
    trigger_field_title: Patch<String>,
    policy_field_title: Patch<String>,
}

impl SettingsPatch {
    fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        let body = Body::parse(bytes, FIELDS)?;
        let enabled = body.bool("enabled")?;
        let api_key = not_null(body.string("apiKey", MAX_API_KEY)?, "apiKey", "cannot be removed; save another key")?;
        if api_key.as_deref().is_some_and(|k| k.chars().any(char::is_whitespace)) {
            return Err(ApiError::validation("apiKey", "apiKey must not contain spaces"));
        }
        let approver_role = match body.string("approverRole", MAX_SHORT) {
            Ok(Patch::Value(r)) => Patch::Value(match r.as_str() {
                "hiringTeam" => ApproverRole::HiringTeam,
                "reimbiDefault" => ApproverRole::ReimbiDefault,
                _ => return Err(role_error()),
            }),
            Ok(Patch::Null) => Patch::Null,
            Ok(Patch::Absent) => Patch::Absent,
            Err(_) => return Err(role_error()),
        };
        Ok(Self {
            enabled,
            api_key: api_key.map(|k| ApiKey::new(SecretString::from(k))),
            approver_role,
            hiring_team_role: body.string("hiringTeamRole", MAX_SHORT)?,
            backup_approver: body.email("backupApproverEmail")?,
            trigger_field_title: body.string("triggerFieldTitle", MAX_SHORT)?,
            policy_field_title: body.string("policyFieldTitle", MAX_SHORT)?,
        })
    }

    /// The settings after this patch, as the next revision.
    fn apply(&self, current: &IntegrationSettings, now: Timestamp) -> IntegrationSettings {
        fn set<T: Clone>(field: &mut Option<T>, p: &Patch<T>) {
            match p {
                Patch::Absent => {}
                Patch::Null => *field = None,
                Patch::Value(v) => *field = Some(v.clone()),
            }
        }
        fn title(field: &mut String, p: &Patch<String>, default: &str) {
            match p {
                Patch::Absent => {}
                Patch::Null => *field = default.to_owned(),
                Patch::Value(v) => *field = v.clone(),
            }
        }
        let mut next = current.clone();
        if let Some(e) = self.enabled {
            next.enabled = e;
        }
        if let Some(key) = &self.api_key {
            next.api_key_hint = Some(key.hint());
        }
        set(&mut next.approver_role, &self.approver_role);
        set(&mut next.hiring_team_role, &self.hiring_team_role);
        set(&mut next.backup_approver_email, &self.backup_approver);
        title(&mut next.trigger_field_title, &self.trigger_field_title, DEFAULT_TRIGGER_FIELD_TITLE);
        title(&mut next.policy_field_title, &self.policy_field_title, DEFAULT_POLICY_FIELD_TITLE);
        next.updated_at = Some(now);
        next.revision = current.revision + 1;
        next
    }
}

fn role_error() -> ApiError {
    ApiError::validation("approverRole", "approverRole must be hiringTeam or reimbiDefault")
}

/// `enabled: true` needs a key and a backup approver.
fn check_complete(s: &IntegrationSettings) -> Result<(), ApiError> {
    if !s.enabled {
        return Ok(());
    }
    let mut missing = Vec::new();
    if !s.api_key_configured() {
        missing.push("an Ashby API key (apiKey)");
    }
    if s.backup_approver_email.is_none() {
        missing.push("a backup approver (backupApproverEmail)");
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::IncompleteSettings(format!("enabling the integration needs {}", missing.join(" and "))))
    }
}

/// The approver must be a staff member who can approve.
pub(crate) async fn check_approver(
    deps: &SettingsDeps,
    company: &CompanyId,
    email: &EmailAddress,
    field: &'static str,
) -> Result<(), ApiError> {
    match deps.settings.get_staff(company, email).await? {
        Some(m) if m.can_approve => Ok(()),
        Some(_) => Err(ApiError::UnknownApprover {
            field,
            message: format!("{email} is a staff member who cannot approve expenses; allow them to approve first"),
        }),
        None => Err(ApiError::UnknownApprover {
            field,
            message: format!("{email} is not a staff member of this company; add them as staff who can approve first"),
        }),
    }
}

/// Asks Ashby whether it accepts the key (`apiKey.info`).
async fn verify_key(deps: &SettingsDeps, key: &ApiKey) -> Result<(), ApiError> {
    match deps.ashby.api_key_info(key).await {
        Ok(_) => Ok(()),
        Err(AshbyError::KeyRejected) => Err(ApiError::AshbyKeyRejected {
            message: "Ashby rejected this API key: it is wrong or deactivated".into(),
        }),
        Err(AshbyError::MissingPermission { message }) => Err(ApiError::AshbyKeyRejected {
            message: format!("the API key lacks a permission the integration needs (Ashby says: {message})"),
        }),
        Err(e) => Err(ApiError::AshbyUnavailable(e)),
    }
}

pub(crate) async fn put_settings(
    State(deps): State<Arc<SettingsDeps>>,
    admin: CompanyAdmin,
    base: BaseUrl,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body.map_err(|_| ApiError::invalid_body("the body could not be read"))?;
    let company = &admin.company;
    let patch = SettingsPatch::parse(&body)?;
    let now = deps.clock.now();
    let current = load(&deps, company).await?;
    if let Patch::Value(email) = &patch.backup_approver {
        check_approver(&deps, company, email, "backupApproverEmail").await?;
    }
    let next = patch.apply(&current, now);
    check_complete(&next)?;
    if let Some(key) = &patch.api_key {
        verify_key(&deps, key).await?;
    }

    // Writes. The key goes first so that saved settings never claim a key that is not stored;
    // if the settings cannot be saved, the previous key is put back.
    let key_ref = SecretRef::AshbyApiKey(company.clone());
    let previous_key = match &patch.api_key {
        Some(key) => {
            let previous = deps.secrets.get_secret(&key_ref).await?;
            deps.secrets.put_secret(&key_ref, key.as_secret()).await?;
            previous
        }
        None => None,
    };
    let saved = match save(&deps, company, &patch, next, now).await {
        Ok(s) => s,
        Err(e) => {
            if let Some(previous) = previous_key
                && let Err(restore) = deps.secrets.put_secret(&key_ref, &previous).await
            {
                tracing::error!(company_id = %company, error = %restore, "could not restore the previous API key");
            }
            return Err(e);
        }
    };
    tracing::info!(company_id = %company, revision = saved.revision, key_changed = patch.api_key.is_some(), "settings saved");
    deps.company_changed(company);
    Ok(Json(view(&saved, &base)))
}

/// Saves `next`; when another writer got there first, applies the patch to what it wrote
/// and tries once more.
async fn save(
    deps: &SettingsDeps,
    company: &CompanyId,
    patch: &SettingsPatch,
    next: IntegrationSettings,
    now: Timestamp,
) -> Result<IntegrationSettings, ApiError> {
    match deps.settings.save_settings(&next).await {
        Ok(()) => return Ok(next),
        Err(StoreError::Conflict) => {}
        Err(e) => return Err(e.into()),
    }
    let fresh = load(deps, company).await?;
    let retry = patch.apply(&fresh, now);
    check_complete(&retry)?;
    match deps.settings.save_settings(&retry).await {
        Ok(()) => Ok(retry),
        Err(StoreError::Conflict) => Err(ApiError::Conflict),
        Err(e) => Err(e.into()),
    }
}
