//! `PUT /companies/{companyId}/staff/{email}` and `GET /companies/{companyId}/staff`: the
//! Reimbi staff, and which of them can approve expenses.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use reimbi_shared::domain::{EmailAddress, StaffMember, format_time};
use serde_json::{Value, json};

use crate::SettingsDeps;
use crate::auth::CompanyAdmin;
use crate::error::ApiError;
use crate::input::{Body, MAX_SHORT, required};

const FIELDS: &[&str] = &["name", "canApprove"];

fn view(m: &StaffMember) -> Value {
    json!({
        "email": m.email.as_str(),
        "name": m.name,
        "canApprove": m.can_approve,
        "updatedAt": format_time(&m.updated_at),
    })
}

pub(crate) async fn list(State(deps): State<Arc<SettingsDeps>>, admin: CompanyAdmin) -> Result<Json<Value>, ApiError> {
    let staff = deps.settings.list_staff(&admin.company).await?;
    Ok(Json(json!({ "items": staff.iter().map(view).collect::<Vec<_>>() })))
}

pub(crate) async fn put(
    State(deps): State<Arc<SettingsDeps>>,
    admin: CompanyAdmin,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    // The router has percent-decoded the segment once, so `a%40b.example` arrives as `a@b.example`.
    let Path((_, email)) = path.map_err(|_| ApiError::validation("email", "the email in the path is not valid"))?;
    let email = EmailAddress::parse(&email).map_err(|e| ApiError::validation("email", e.message))?;
    let body = body.map_err(|_| ApiError::invalid_body("the body could not be read"))?;
    let body = Body::parse(&body, FIELDS)?;
    let name = required(body.string("name", MAX_SHORT)?, "name")?;
    let can_approve =
        body.bool("canApprove")?.ok_or_else(|| ApiError::validation("canApprove", "canApprove is required"))?;
    let member =
        StaffMember { company_id: admin.company.clone(), email, name, can_approve, updated_at: deps.clock.now() };
    deps.settings.put_staff(&member).await?;
    tracing::info!(company_id = %admin.company, can_approve, "staff member saved");
    deps.company_changed(&admin.company);
    Ok(Json(view(&member)))
}
