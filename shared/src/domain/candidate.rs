//! Candidates the integration created in Reimbi, and their invitation.

use serde::{Deserialize, Serialize};

use super::Timestamp;
use super::approver::ApproverSource;
use super::ids::{CandidateId, CompanyId, EmailAddress, EventId, PolicyId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CandidateStatus {
    Invited,
}

/// Where the invitation email is. Sending is claimed (with a lease) before SES is called, so
/// that two deliveries racing for one candidate send one email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum InviteEmailStatus {
    Pending,
    Sending,
    Sent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteEmail {
    pub status: InviteEmailStatus,
    pub message_id: Option<String>,
    /// While `Sending`: when the claim lapses and another attempt may send.
    pub lease_until: Option<Timestamp>,
    pub sent_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CandidateRecord {
    pub candidate_id: CandidateId,
    pub company_id: CompanyId,
    pub status: CandidateStatus,
    pub name: String,
    pub email: EmailAddress,
    pub ashby_candidate_id: String,
    pub ashby_application_id: String,
    pub policy_id: PolicyId,
    pub policy_name: String,
    pub approver_email: EmailAddress,
    pub approver_source: ApproverSource,
    pub invited_at: Timestamp,
    pub invite_email: InviteEmail,
    /// The event that created the record.
    pub source_event_id: EventId,
}

/// A single-use account set-up token: only its SHA-256 is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteToken {
    /// Lowercase hex SHA-256 of the token sent in the link.
    pub token_hash: String,
    pub company_id: CompanyId,
    pub candidate_id: CandidateId,
    pub expires_at: Timestamp,
}
