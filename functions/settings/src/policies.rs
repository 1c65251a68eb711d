//! `PUT /companies/{companyId}/policies/{policyId}` and `GET /companies/{companyId}/policies`:
//! the reimbursement policies the policy field in Ashby names.
//!
//! A PUT replaces the policy: `name` is required; `enabled` defaults to true,
//! `submissionGuidelines` to empty and `defaultApproverEmail` to none.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use reimbi_shared::domain::{EmailAddress, Policy, PolicyId, format_time};
use serde_json::{Value, json};

use crate::SettingsDeps;
use crate::auth::CompanyAdmin;
use crate::error::ApiError;
use crate::input::{Body, MAX_GUIDELINES, MAX_SHORT, Patch, not_null, required};

const FIELDS: &[&str] = &["name", "enabled", "submissionGuidelines", "defaultApproverEmail"];

pub(crate) fn view(p: &Policy) -> Value {
    json!({
        "policyId": p.policy_id.as_str(),
        "name": p.name,
        "enabled": p.enabled,
        "submissionGuidelines": p.submission_guidelines,
        "defaultApproverEmail": p.default_approver_email.as_ref().map(EmailAddress::as_str),
        "updatedAt": format_time(&p.updated_at),
    })
}

pub(crate) async fn list(State(deps): State<Arc<SettingsDeps>>, admin: CompanyAdmin) -> Result<Json<Value>, ApiError> {
    let policies = deps.settings.list_policies(&admin.company).await?;
    Ok(Json(json!({ "items": policies.iter().map(view).collect::<Vec<_>>() })))
}

pub(crate) async fn put(
    State(deps): State<Arc<SettingsDeps>>,
    admin: CompanyAdmin,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path((_, policy_id)) = path.map_err(|_| ApiError::validation("policyId", "policyId is not valid"))?;
    let policy_id = PolicyId::parse(&policy_id).map_err(|e| ApiError::validation("policyId", e.message))?;
    let body = body.map_err(|_| ApiError::invalid_body("the body could not be read"))?;
    let body = Body::parse(&body, FIELDS)?;
    let name = required(body.string("name", MAX_SHORT)?, "name")?;
    let enabled = body.bool("enabled")?.unwrap_or(true);
    let submission_guidelines =
        not_null(body.text("submissionGuidelines", MAX_GUIDELINES)?, "submissionGuidelines", "must be a string")?
            .unwrap_or_default();
    let default_approver_email = match body.email("defaultApproverEmail")? {
        Patch::Value(e) => Some(e),
        Patch::Null | Patch::Absent => None,
    };
    let policy = Policy {
        company_id: admin.company.clone(),
        policy_id,
        name,
        enabled,
        submission_guidelines,
        default_approver_email,
        updated_at: deps.clock.now(),
    };
    deps.settings.put_policy(&policy).await?;
    tracing::info!(company_id = %admin.company, policy_id = %policy.policy_id, "policy saved");
    deps.company_changed(&admin.company);
    Ok(Json(view(&policy)))
}
