//! The company's event log: what happened to each webhook delivery Ashby made.

use serde::{Deserialize, Serialize};

use super::Timestamp;
use super::ids::{CandidateId, CompanyId, EventId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// Queued, not yet processed.
    Accepted,
    Invited,
    AlreadyInvited,
    Ignored,
    Failed,
    Retrying,
}

impl Outcome {
    /// A final outcome is never changed by a later delivery of the same event.
    pub fn is_final(&self) -> bool {
        matches!(self, Outcome::Invited | Outcome::AlreadyInvited | Outcome::Ignored | Outcome::Failed)
    }
}

/// Stable reason codes shown to admins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    NotFlagged,
    PolicyNotFound,
    PolicyRequired,
    NoCandidateEmail,
    InvalidCandidateEmail,
    NoApprover,
    AshbyApiKeyRejected,
    AshbyApiKeyMissing,
    AshbyMissingPermission,
    AshbyCandidateNotFound,
    AshbyRateLimited,
    AshbyUnavailable,
    AshbyError,
    EmailDeliveryFailed,
    StoreUnavailable,
    IntegrationDisabled,
    UnsupportedAction,
    MalformedEvent,
}

impl Reason {
    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::NotFlagged => "not_flagged",
            Reason::PolicyNotFound => "policy_not_found",
            Reason::PolicyRequired => "policy_required",
            Reason::NoCandidateEmail => "no_candidate_email",
            Reason::InvalidCandidateEmail => "invalid_candidate_email",
            Reason::NoApprover => "no_approver",
            Reason::AshbyApiKeyRejected => "ashby_api_key_rejected",
            Reason::AshbyApiKeyMissing => "ashby_api_key_missing",
            Reason::AshbyMissingPermission => "ashby_missing_permission",
            Reason::AshbyCandidateNotFound => "ashby_candidate_not_found",
            Reason::AshbyRateLimited => "ashby_rate_limited",
            Reason::AshbyUnavailable => "ashby_unavailable",
            Reason::AshbyError => "ashby_error",
            Reason::EmailDeliveryFailed => "email_delivery_failed",
            Reason::StoreUnavailable => "store_unavailable",
            Reason::IntegrationDisabled => "integration_disabled",
            Reason::UnsupportedAction => "unsupported_action",
            Reason::MalformedEvent => "malformed_event",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventLogEntry {
    pub company_id: CompanyId,
    pub event_id: EventId,
    pub received_at: Timestamp,
    pub action: String,
    pub ashby_candidate_id: Option<String>,
    pub outcome: Outcome,
    pub reason: Option<Reason>,
    pub candidate_id: Option<CandidateId>,
    pub updated_at: Timestamp,
}

/// An outcome the processor records for an event.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeUpdate {
    pub outcome: Outcome,
    pub reason: Option<Reason>,
    pub candidate_id: Option<CandidateId>,
    pub at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_serialise_as_their_codes() {
        for r in [Reason::NotFlagged, Reason::PolicyNotFound, Reason::AshbyApiKeyRejected, Reason::IntegrationDisabled]
        {
            assert_eq!(serde_json::to_value(r).unwrap(), serde_json::Value::String(r.as_str().into()));
        }
        assert_eq!(serde_json::to_value(Outcome::AlreadyInvited).unwrap(), "alreadyInvited");
    }
}
