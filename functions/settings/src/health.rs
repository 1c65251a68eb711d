//! `GET /companies/{companyId}/integrations/ashby/health`: is everything in place for a
//! flagged candidate to be invited? Each check says, in words an admin can act on, what is
//! wrong and how to fix it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use reimbi_shared::domain::ashby::CustomFieldDefinition;
use reimbi_shared::domain::{ApiKey, ApproverRole, IntegrationSettings, Policy, SecretRef, format_time, match_policy};
use reimbi_shared::ports::AshbyError;
use serde::Serialize;
use serde_json::{Value, json};

use crate::SettingsDeps;
use crate::auth::CompanyAdmin;
use crate::error::ApiError;
use crate::integration::{CANDIDATES_READ, load};

/// Ashby permissions the integration uses: candidates (flag, policy, emails) and hiring process
/// metadata (this health check reads the custom field definitions).
const REQUIRED_SCOPES: &[(&str, &str)] =
    &[(CANDIDATES_READ, "Candidates read"), ("hiringProcessMetadata:read", "Hiring process metadata read")];

#[derive(Debug, Serialize)]
struct Check {
    check: &'static str,
    ok: bool,
    detail: String,
}

fn pass(check: &'static str, detail: impl Into<String>) -> Check {
    Check { check, ok: true, detail: detail.into() }
}

fn fail(check: &'static str, detail: impl Into<String>) -> Check {
    Check { check, ok: false, detail: detail.into() }
}

/// Why a call to Ashby failed, in words that carry no internal detail.
fn describe(e: &AshbyError) -> String {
    match e {
        AshbyError::KeyRejected => "Ashby rejects the saved API key".into(),
        AshbyError::MissingPermission { message } => format!("the API key lacks a permission (Ashby says: {message})"),
        AshbyError::RateLimited { .. } => "Ashby is rate-limiting this API key; try again in a minute".into(),
        AshbyError::Server { .. } | AshbyError::Timeout | AshbyError::Unreachable(_) => {
            "Ashby could not be reached; try again in a moment".into()
        }
        AshbyError::NotFound { .. } | AshbyError::Malformed(_) | AshbyError::Api { .. } => {
            "Ashby gave an unexpected answer; try again, and contact support if it persists".into()
        }
    }
}

pub(crate) async fn check(State(deps): State<Arc<SettingsDeps>>, admin: CompanyAdmin) -> Result<Json<Value>, ApiError> {
    let company = &admin.company;
    let settings = load(&deps, company).await?;
    let policies = deps.settings.list_policies(company).await?;
    let key = match settings.api_key_configured() {
        true => deps.secrets.get_secret(&SecretRef::AshbyApiKey(company.clone())).await?.map(ApiKey::new),
        false => None,
    };

    let (api_key_check, usable_key) = check_api_key(&deps, &settings, key).await;
    let fields = match &usable_key {
        Some(k) => Some(deps.ashby.custom_fields(k).await.map_err(|e| describe(&e))),
        None => None,
    };
    let checks = vec![
        api_key_check,
        check_trigger_field(&settings, fields.as_ref()),
        check_policy_field(&settings, &policies, fields.as_ref()),
        check_hiring_team_role(&deps, &settings, usable_key.as_ref()).await,
        check_backup_approver(&deps, &settings).await?,
        check_webhook_credentials(&deps, &settings).await?,
    ];
    let ok = checks.iter().all(|c| c.ok);
    tracing::info!(company_id = %company, ok, "health checked");
    Ok(Json(json!({ "ok": ok, "checks": checks })))
}

/// The key check, and the key when it is worth calling Ashby with it.
async fn check_api_key(deps: &SettingsDeps, s: &IntegrationSettings, key: Option<ApiKey>) -> (Check, Option<ApiKey>) {
    const NAME: &str = "apiKey";
    let Some(key) = key else {
        return (
            fail(
                NAME,
                "No Ashby API key is saved. Create one in Ashby (Admin > API Keys) with the Candidates read and Hiring process metadata read permissions, and save it as apiKey.",
            ),
            None,
        );
    };
    let hint = s.api_key_hint.clone().unwrap_or_default();
    match deps.ashby.api_key_info(&key).await {
        Ok(info) => {
            let missing: Vec<&str> = REQUIRED_SCOPES
                .iter()
                .filter(|(scope, _)| !info.scopes.is_empty() && !info.scopes.iter().any(|s| s == scope))
                .map(|(_, label)| *label)
                .collect();
            if missing.is_empty() {
                (pass(NAME, format!("Ashby accepts the API key {hint}.")), Some(key))
            } else {
                let detail = format!(
                    "Ashby accepts the API key {hint}, but it lacks the {} permission; edit the key in Ashby (Admin > API Keys) to add it.",
                    missing.join(" and ")
                );
                (fail(NAME, detail), Some(key))
            }
        }
        Err(AshbyError::KeyRejected) => (
            fail(
                NAME,
                format!(
                    "Ashby rejects the saved API key {hint}: it is wrong or was deactivated. Create a new key in Ashby and save it as apiKey."
                ),
            ),
            None,
        ),
        Err(e @ AshbyError::MissingPermission { .. }) => {
            (fail(NAME, format!("The API key {hint} works, but {}.", describe(&e))), Some(key))
        }
        Err(e) => (fail(NAME, format!("The API key could not be checked: {}.", describe(&e))), None),
    }
}

fn not_checked(name: &'static str, fields: Option<&Result<Vec<CustomFieldDefinition>, String>>) -> Option<Check> {
    match fields {
        None => Some(fail(name, "Cannot be checked until Ashby accepts the API key (see the apiKey check).")),
        Some(Err(why)) => Some(fail(name, format!("The custom fields could not be read from Ashby: {why}."))),
        Some(Ok(_)) => None,
    }
}

/// The live candidate fields titled `title` (exact, as Ashby shows titles).
fn candidate_field<'a>(fields: &'a [CustomFieldDefinition], title: &str) -> Result<&'a CustomFieldDefinition, String> {
    let live: Vec<&CustomFieldDefinition> = fields.iter().filter(|f| !f.is_archived && f.title == title).collect();
    if let Some(f) = live.iter().find(|f| f.object_type.as_deref() == Some("Candidate")) {
        return Ok(f);
    }
    if let Some(f) = live.first() {
        return Err(format!(
            "The field '{title}' exists in Ashby on {} objects, but it must be a candidate field.",
            f.object_type.as_deref().unwrap_or("other")
        ));
    }
    let near = fields.iter().find(|f| !f.is_archived && f.title.trim().eq_ignore_ascii_case(title.trim()));
    Err(match near {
        Some(f) => format!(
            "No candidate field is titled exactly '{title}', but '{}' is close: titles must match exactly.",
            f.title
        ),
        None => format!("No candidate field titled '{title}' exists in Ashby."),
    })
}

fn check_trigger_field(s: &IntegrationSettings, fields: Option<&Result<Vec<CustomFieldDefinition>, String>>) -> Check {
    const NAME: &str = "triggerField";
    if let Some(c) = not_checked(NAME, fields) {
        return c;
    }
    let Some(Ok(fields)) = fields else { unreachable!("not_checked covers the other cases") };
    let title = &s.trigger_field_title;
    match candidate_field(fields, title) {
        Err(why) => fail(
            NAME,
            format!(
                "{why} Create a Yes/No candidate field titled '{title}' in Ashby (Admin > Custom Fields), or set triggerFieldTitle to your field's title."
            ),
        ),
        Ok(f) if f.field_type.as_deref() != Some("Boolean") => fail(
            NAME,
            format!(
                "The candidate field '{title}' is of type {}, but it must be a Yes/No (Boolean) field.",
                f.field_type.as_deref().unwrap_or("unknown")
            ),
        ),
        Ok(_) => pass(NAME, format!("'{title}' is a Yes/No candidate field in Ashby.")),
    }
}

fn check_policy_field(
    s: &IntegrationSettings,
    policies: &[Policy],
    fields: Option<&Result<Vec<CustomFieldDefinition>, String>>,
) -> Check {
    const NAME: &str = "policyField";
    let enabled: Vec<&Policy> = policies.iter().filter(|p| p.enabled).collect();
    if enabled.len() <= 1 {
        let detail = match enabled.first() {
            Some(p) => format!("Not needed: '{}' is the only enabled policy, so every flagged candidate gets it.", p.name),
            None => "Not needed while there is at most one enabled policy (there is none yet: add one so candidates can be invited).".to_owned(),
        };
        return pass(NAME, detail);
    }
    if let Some(c) = not_checked(NAME, fields) {
        return c;
    }
    let Some(Ok(fields)) = fields else { unreachable!("not_checked covers the other cases") };
    let title = &s.policy_field_title;
    let field = match candidate_field(fields, title) {
        Err(why) => {
            return fail(
                NAME,
                format!(
                    "{why} With {} enabled policies, create a single-select candidate field titled '{title}' whose options are the policy names, or set policyFieldTitle to your field's title.",
                    enabled.len()
                ),
            );
        }
        Ok(f) => f,
    };
    if field.field_type.as_deref() != Some("ValueSelect") {
        return fail(
            NAME,
            format!(
                "The candidate field '{title}' is of type {}, but it must be a single select (ValueSelect).",
                field.field_type.as_deref().unwrap_or("unknown")
            ),
        );
    }
    let options: Vec<&str> =
        field.selectable_values.iter().filter(|v| !v.is_archived).map(|v| v.label.as_str()).collect();
    let unmatched: Vec<&str> = options.iter().copied().filter(|o| match_policy(policies, Some(o)).is_err()).collect();
    let without_option: Vec<&str> = enabled
        .iter()
        .filter(|p| !options.iter().any(|o| match_policy(policies, Some(o)).is_ok_and(|m| m.policy_id == p.policy_id)))
        .map(|p| p.name.as_str())
        .collect();
    let not_offered = if without_option.is_empty() {
        String::new()
    } else {
        format!(" Enabled policies with no option: {}.", quote(&without_option))
    };
    if options.is_empty() {
        return fail(
            NAME,
            format!(
                "The field '{title}' has no options; add one per enabled policy: {}.",
                quote(&enabled.iter().map(|p| p.name.as_str()).collect::<Vec<_>>())
            ),
        );
    }
    if !unmatched.is_empty() {
        return fail(
            NAME,
            format!(
                "These options of '{title}' name no enabled Reimbi policy, so candidates given them will fail with policy_not_found: {}. Rename the options or the policies so they match.{not_offered}",
                quote(&unmatched)
            ),
        );
    }
    pass(
        NAME,
        format!("Every option of the single-select candidate field '{title}' names an enabled policy.{not_offered}"),
    )
}

fn quote(names: &[&str]) -> String {
    names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
}

async fn check_hiring_team_role(deps: &SettingsDeps, s: &IntegrationSettings, key: Option<&ApiKey>) -> Check {
    const NAME: &str = "hiringTeamRole";
    if s.effective_approver_role() == ApproverRole::ReimbiDefault {
        return pass(
            NAME,
            "Not used: approverRole is reimbiDefault, so approvers come from each policy's default approver, else the backup approver.",
        );
    }
    let Some(role) = s.hiring_team_role.as_deref() else {
        return fail(
            NAME,
            "approverRole is hiringTeam but hiringTeamRole is not set, so every approval goes to the backup approver. Set hiringTeamRole (e.g. Recruiter).",
        );
    };
    let Some(key) = key else {
        return fail(NAME, "Cannot be checked until Ashby accepts the API key (see the apiKey check).");
    };
    match deps.ashby.hiring_team_roles(key).await {
        Ok(roles) if roles.iter().any(|r| r.trim().eq_ignore_ascii_case(role.trim())) => {
            pass(NAME, format!("'{role}' is a hiring team role in Ashby."))
        }
        Ok(roles) => fail(
            NAME,
            format!(
                "No hiring team role named '{role}' exists in Ashby; its roles are: {}. Set hiringTeamRole to one of them.",
                quote(&roles.iter().map(String::as_str).collect::<Vec<_>>())
            ),
        ),
        // The role list is advisory (an unknown role only sends approvals to the backup approver),
        // so failing to read it does not make the integration unhealthy.
        Err(e) => pass(
            NAME,
            format!(
                "'{role}' could not be verified: the hiring team roles could not be read from Ashby ({}).",
                describe(&e)
            ),
        ),
    }
}

async fn check_backup_approver(deps: &SettingsDeps, s: &IntegrationSettings) -> Result<Check, ApiError> {
    const NAME: &str = "backupApprover";
    let Some(email) = &s.backup_approver_email else {
        return Ok(fail(
            NAME,
            "No backup approver is set. Set backupApproverEmail to a staff member who can approve; approvals go there when no other approver is found.",
        ));
    };
    Ok(match deps.settings.get_staff(&s.company_id, email).await? {
        Some(m) if m.can_approve => pass(NAME, format!("{email} is a staff member who can approve.")),
        Some(_) => fail(
            NAME,
            format!(
                "{email} is a staff member but cannot approve: allow them to approve, or choose another backup approver."
            ),
        ),
        None => {
            fail(NAME, format!("{email} is no longer a staff member: add them, or choose another backup approver."))
        }
    })
}

async fn check_webhook_credentials(deps: &SettingsDeps, s: &IntegrationSettings) -> Result<Check, ApiError> {
    const NAME: &str = "webhookCredentials";
    let generate = "Generate new webhook credentials and paste the URL and secret key into Ashby's webhook settings (Candidate Application Changed Stage).";
    let Some(id) = &s.current_webhook_id else {
        return Ok(fail(NAME, format!("No webhook credentials exist yet. {generate}")));
    };
    let now = deps.clock.now();
    Ok(match deps.webhooks.get_webhook(id).await? {
        Some(c) if c.is_valid_at(now) => pass(
            NAME,
            format!(
                "Webhook credentials exist (created {}).",
                s.webhook_secret_created_at.as_ref().map_or_else(|| format_time(&c.created_at), format_time)
            ),
        ),
        _ => fail(NAME, format!("The current webhook credentials are missing or expired. {generate}")),
    })
}
