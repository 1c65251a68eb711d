//! `GET /companies/{companyId}/candidates[/{candidateId}]`: the candidates the integration created.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use reimbi_shared::domain::{CandidateId, CandidateRecord, format_time};
use serde_json::{Value, json};

use crate::SettingsDeps;
use crate::auth::CompanyAdmin;
use crate::error::ApiError;
use crate::input::{PageQuery, page_body};

fn view(c: &CandidateRecord) -> Value {
    json!({
        "candidateId": c.candidate_id.as_str(),
        "status": c.status,
        "name": c.name,
        "email": c.email.as_str(),
        "ashbyCandidateId": c.ashby_candidate_id,
        "ashbyApplicationId": c.ashby_application_id,
        "policyId": c.policy_id.as_str(),
        "policyName": c.policy_name,
        "approverEmail": c.approver_email.as_str(),
        "approverSource": c.approver_source,
        "invitedAt": format_time(&c.invited_at),
        "inviteEmail": { "status": c.invite_email.status, "messageId": c.invite_email.message_id },
    })
}

pub(crate) async fn list(
    State(deps): State<Arc<SettingsDeps>>,
    admin: CompanyAdmin,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = PageQuery::parse(query.as_deref())?;
    let page = deps.candidates.list_candidates(&admin.company, q.limit, q.cursor.as_deref()).await?;
    Ok(Json(page_body(&page, view)))
}

pub(crate) async fn get(
    State(deps): State<Arc<SettingsDeps>>,
    admin: CompanyAdmin,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let not_found = || ApiError::NotFound("no candidate with this id".into());
    let Path((_, id)) = path.map_err(|_| not_found())?;
    // An id that cannot exist is simply not found.
    let id = CandidateId::parse(&id).map_err(|_| not_found())?;
    let record = deps.candidates.get_candidate(&admin.company, &id).await?.ok_or_else(not_found)?;
    // Stores key records by company; this guards against an adapter that does not.
    if record.company_id != admin.company {
        return Err(not_found());
    }
    Ok(Json(view(&record)))
}
