//! A company's Ashby integration settings and its webhook credentials.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Timestamp;
use super::ids::{CompanyId, EmailAddress, WebhookId};

/// The default title of the Yes/No candidate field that sends a candidate to Reimbi.
pub const DEFAULT_TRIGGER_FIELD_TITLE: &str = "Send to Reimbi";
/// The default title of the single-select candidate field naming the Reimbi policy.
pub const DEFAULT_POLICY_FIELD_TITLE: &str = "Reimbi Reimbursement Policy";
/// How long a replaced webhook URL keeps working unless `WEBHOOK_ROTATION_GRACE` says otherwise.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);

/// Who approves a candidate's expenses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ApproverRole {
    /// The member of the application's hiring team with the configured role.
    HiringTeam,
    /// The policy's default approver in Reimbi.
    ReimbiDefault,
}

impl ApproverRole {
    pub fn as_str(&self) -> &'static str {
        match self {
            ApproverRole::HiringTeam => "hiringTeam",
            ApproverRole::ReimbiDefault => "reimbiDefault",
        }
    }
}

/// A company's integration settings as stored. The API key itself lives in the secret store;
/// only its hint is kept here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationSettings {
    pub company_id: CompanyId,
    pub enabled: bool,
    /// `…` and the key's last four characters; `Some` exactly when a key is stored.
    pub api_key_hint: Option<String>,
    /// Unset means [`ApproverRole::ReimbiDefault`] (the documented default).
    pub approver_role: Option<ApproverRole>,
    pub hiring_team_role: Option<String>,
    pub backup_approver_email: Option<EmailAddress>,
    pub trigger_field_title: String,
    pub policy_field_title: String,
    /// The webhook credential in use, if one was generated.
    pub current_webhook_id: Option<WebhookId>,
    pub webhook_secret_created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
    /// Incremented by every save; saves are conditional on it (optimistic concurrency).
    pub revision: u64,
}

impl IntegrationSettings {
    /// What a company that never configured anything has.
    pub fn unconfigured(company_id: CompanyId) -> Self {
        Self {
            company_id,
            enabled: false,
            api_key_hint: None,
            approver_role: None,
            hiring_team_role: None,
            backup_approver_email: None,
            trigger_field_title: DEFAULT_TRIGGER_FIELD_TITLE.to_owned(),
            policy_field_title: DEFAULT_POLICY_FIELD_TITLE.to_owned(),
            current_webhook_id: None,
            webhook_secret_created_at: None,
            updated_at: None,
            revision: 0,
        }
    }

    pub fn api_key_configured(&self) -> bool {
        self.api_key_hint.is_some()
    }

    /// The approver role in effect.
    pub fn effective_approver_role(&self) -> ApproverRole {
        self.approver_role.unwrap_or(ApproverRole::ReimbiDefault)
    }
}

/// A Webhook API URL's credential: which company it belongs to and until when it works.
/// Its signing secret is in the secret store under [`super::SecretRef::WebhookSigning`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookCredential {
    pub webhook_id: WebhookId,
    pub company_id: CompanyId,
    pub created_at: Timestamp,
    /// `None` while current; set to the end of the grace period when replaced.
    pub expires_at: Option<Timestamp>,
}

impl WebhookCredential {
    pub fn is_valid_at(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|t| now < t)
    }
}

/// Parses a duration such as `24h`, `90m`, `1h30m` or `3600s` (for `WEBHOOK_ROTATION_GRACE`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("'{s}' is not a duration such as 24h or 90m: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_replaced_credential_works_until_its_grace_ends() {
        let t0 = chrono::Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap();
        let mut c = WebhookCredential {
            webhook_id: WebhookId::generate(),
            company_id: CompanyId::parse("acme").unwrap(),
            created_at: t0,
            expires_at: None,
        };
        assert!(c.is_valid_at(t0 + chrono::Duration::days(400)));
        c.expires_at = Some(t0 + chrono::Duration::hours(24));
        assert!(c.is_valid_at(t0 + chrono::Duration::hours(23)));
        assert!(!c.is_valid_at(t0 + chrono::Duration::hours(24)));
    }

    #[test]
    fn parses_grace_periods() {
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("soon").is_err());
    }
}
