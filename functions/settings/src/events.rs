//! `GET /companies/{companyId}/integrations/ashby/events`: the event log, newest first.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use reimbi_shared::domain::{CandidateId, EventLogEntry, format_time};
use serde_json::{Value, json};

use crate::SettingsDeps;
use crate::auth::CompanyAdmin;
use crate::error::ApiError;
use crate::input::{PageQuery, page_body};

fn view(e: &EventLogEntry) -> Value {
    json!({
        "eventId": e.event_id.as_str(),
        "receivedAt": format_time(&e.received_at),
        "action": e.action,
        "ashbyCandidateId": e.ashby_candidate_id,
        "outcome": e.outcome,
        "reason": e.reason.map(|r| r.as_str()),
        "candidateId": e.candidate_id.as_ref().map(CandidateId::as_str),
    })
}

pub(crate) async fn list(
    State(deps): State<Arc<SettingsDeps>>,
    admin: CompanyAdmin,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = PageQuery::parse(query.as_deref())?;
    let page = deps.events.list_events(&admin.company, q.limit, q.cursor.as_deref()).await?;
    Ok(Json(page_body(&page, view)))
}
