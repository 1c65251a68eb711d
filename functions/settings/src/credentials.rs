//! `POST /companies/{companyId}/integrations/ashby/webhook-credentials`: "Generate new Secret
//! Key and API URL". The new secret is shown once, in this response; the previous credential
//! keeps working for the rotation grace period so that no event is lost while the admin
//! updates Ashby.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use reimbi_shared::domain::{
    CompanyId, SecretRef, SigningSecret, Timestamp, WebhookCredential, WebhookId, format_time,
};
use reimbi_shared::ports::StoreError;
use serde_json::{Value, json};

use crate::auth::CompanyAdmin;
use crate::error::ApiError;
use crate::integration::load;
use crate::{BaseUrl, SettingsDeps};

pub(crate) async fn rotate(
    State(deps): State<Arc<SettingsDeps>>,
    admin: CompanyAdmin,
    base: BaseUrl,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let company = &admin.company;
    let now = deps.clock.now();
    let webhook_id = WebhookId::generate();
    let secret = SigningSecret::generate();

    // The secret first: a credential record never points at a missing secret.
    deps.secrets.put_secret(&SecretRef::WebhookSigning(webhook_id.clone()), secret.as_secret()).await?;
    let credential = WebhookCredential {
        webhook_id: webhook_id.clone(),
        company_id: company.clone(),
        created_at: now,
        expires_at: None,
    };
    deps.webhooks.put_webhook(&credential).await?;

    let previous_valid_until = match switch_to(&deps, company, &webhook_id, now).await {
        Ok(until) => until,
        Err(e) => {
            // Nobody has seen the new secret: retire the orphan credential at once.
            let retired = WebhookCredential { expires_at: Some(now), ..credential };
            if let Err(retire) = deps.webhooks.put_webhook(&retired).await {
                tracing::error!(company_id = %company, webhook_id = %webhook_id, error = %retire, "could not retire an unused webhook credential");
            }
            return Err(e);
        }
    };
    tracing::info!(company_id = %company, webhook_id = %webhook_id, "webhook credentials rotated");
    deps.company_changed(company);
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "webhookUrl": base.webhook_url(&webhook_id),
            "secretKey": secret.expose(),
            "previousValidUntil": previous_valid_until.as_ref().map(format_time),
        })),
    ))
}

/// Makes `new_id` the company's current credential and starts the grace period of the one it
/// replaces. Returns the end of that grace period, if there was a previous credential.
async fn switch_to(
    deps: &SettingsDeps,
    company: &CompanyId,
    new_id: &WebhookId,
    now: Timestamp,
) -> Result<Option<Timestamp>, ApiError> {
    let grace = chrono::Duration::from_std(deps.rotation_grace).unwrap_or(chrono::Duration::MAX);
    let grace_end = now.checked_add_signed(grace).unwrap_or(Timestamp::MAX_UTC);
    let mut previous_valid_until = None;
    // A concurrent change of the settings means one more read and one more try.
    for attempt in 0..2 {
        let settings = load(deps, company).await?;
        if let Some(previous) = settings.current_webhook_id.as_ref().filter(|p| *p != new_id)
            && let Some(mut old) = deps.webhooks.get_webhook(previous).await?
        {
            // A credential that was already on its way out keeps its earlier end.
            let until = old.expires_at.map_or(grace_end, |t| t.min(grace_end));
            old.expires_at = Some(until);
            deps.webhooks.put_webhook(&old).await?;
            previous_valid_until = Some(until);
        }
        let mut next = settings.clone();
        next.current_webhook_id = Some(new_id.clone());
        next.webhook_secret_created_at = Some(now);
        next.updated_at = Some(now);
        next.revision = settings.revision + 1;
        match deps.settings.save_settings(&next).await {
            Ok(()) => return Ok(previous_valid_until),
            Err(StoreError::Conflict) if attempt == 0 => continue,
            Err(StoreError::Conflict) => return Err(ApiError::Conflict),
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Conflict)
}
