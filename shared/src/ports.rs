//! Ports: one narrow trait per capability. Functions depend on these, never on an SDK.
//!
//! Every adapter exists twice: for AWS (`Dynamo…`, `Sqs…`, `SecretsManager…`, `Ses…`) and
//! embedded (`Embedded…`: redb in memory for tests or on disk for `reimbi-local`).

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::ashby::{ApiKeyInfo, AshbyApplication, AshbyCandidate, CustomFieldDefinition};
use crate::domain::*;

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A storage failure. `Unavailable` (throttling, network, service errors) is worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store is unavailable")]
    Unavailable(#[source] BoxError),
    /// A conditional write lost (e.g. the settings changed since they were read).
    #[error("the stored item changed concurrently")]
    Conflict,
    #[error("a stored item could not be read: {0}")]
    Corrupt(String),
    #[error("the cursor is not one this service issued")]
    InvalidCursor,
}

impl StoreError {
    pub fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Unavailable(Box::new(e))
    }
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Conflict)
    }
}

/// A company's integration settings, policies and staff.
#[async_trait]
pub trait SettingsStore: Send + Sync {
    async fn get_settings(&self, company: &CompanyId) -> Result<Option<IntegrationSettings>, StoreError>;
    /// Writes `settings` (whose `revision` the caller has already incremented) if the stored
    /// revision is still `settings.revision - 1` (or nothing is stored and it is 1).
    /// Otherwise [`StoreError::Conflict`] and nothing is written.
    async fn save_settings(&self, settings: &IntegrationSettings) -> Result<(), StoreError>;

    async fn get_policy(&self, company: &CompanyId, policy: &PolicyId) -> Result<Option<Policy>, StoreError>;
    async fn put_policy(&self, policy: &Policy) -> Result<(), StoreError>;
    /// All of the company's policies (a company has a handful), ordered by id.
    async fn list_policies(&self, company: &CompanyId) -> Result<Vec<Policy>, StoreError>;

    async fn get_staff(&self, company: &CompanyId, email: &EmailAddress) -> Result<Option<StaffMember>, StoreError>;
    async fn put_staff(&self, member: &StaffMember) -> Result<(), StoreError>;
    /// All of the company's staff, ordered by email.
    async fn list_staff(&self, company: &CompanyId) -> Result<Vec<StaffMember>, StoreError>;
}

/// Webhook credentials: which company a webhook id belongs to and until when it works.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn get_webhook(&self, id: &WebhookId) -> Result<Option<WebhookCredential>, StoreError>;
    /// Creates or replaces the credential record.
    async fn put_webhook(&self, credential: &WebhookCredential) -> Result<(), StoreError>;
}

/// The company's event log.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Records the entry unless one with the same company and event id exists.
    /// Returns `true` when it was recorded.
    async fn insert_if_absent(&self, entry: &EventLogEntry) -> Result<bool, StoreError>;
    /// Records the entry, replacing one with the same id (used for pings).
    async fn upsert(&self, entry: &EventLogEntry) -> Result<(), StoreError>;
    async fn get_event(&self, company: &CompanyId, event: &EventId) -> Result<Option<EventLogEntry>, StoreError>;
    /// Sets the outcome of an existing entry (no-op if the entry does not exist).
    async fn set_outcome(&self, company: &CompanyId, event: &EventId, update: &OutcomeUpdate)
    -> Result<(), StoreError>;
    /// Newest first (by `received_at`, then event id).
    async fn list_events(
        &self,
        company: &CompanyId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<EventLogEntry>, StoreError>;
}

/// Candidates created by the integration.
#[async_trait]
pub trait CandidateStore: Send + Sync {
    /// Creates the record unless the company already has one with this candidate id.
    /// Returns the stored record and whether this call created it.
    async fn create_if_absent(&self, record: &CandidateRecord) -> Result<(CandidateRecord, bool), StoreError>;
    async fn get_candidate(&self, company: &CompanyId, id: &CandidateId)
    -> Result<Option<CandidateRecord>, StoreError>;
    /// Newest first (by `invited_at`, then candidate id).
    async fn list_candidates(
        &self,
        company: &CompanyId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<CandidateRecord>, StoreError>;
    /// Claims the right to send the invitation: succeeds (`true`) when the invitation is
    /// `Pending`, or `Sending` with a lease that lapsed before `now`; it becomes `Sending` until
    /// `lease_until`. `false` when it was sent or another attempt holds a live lease.
    async fn claim_invitation(
        &self,
        company: &CompanyId,
        id: &CandidateId,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Marks the invitation `Sent` with SES's message id.
    async fn mark_invitation_sent(
        &self,
        company: &CompanyId,
        id: &CandidateId,
        message_id: &str,
        sent_at: Timestamp,
    ) -> Result<(), StoreError>;
    /// Gives a claim back after a failed send (`Sending` → `Pending`).
    async fn release_invitation(&self, company: &CompanyId, id: &CandidateId) -> Result<(), StoreError>;
    async fn put_invite_token(&self, token: &InviteToken) -> Result<(), StoreError>;
}

/// An accepted webhook delivery on its way to the processor.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedEvent {
    pub event_id: EventId,
    pub company_id: CompanyId,
    pub webhook_id: WebhookId,
    pub received_at: Timestamp,
    /// The exact verified body (Ashby sends JSON, so it is UTF-8).
    pub body: String,
}

/// Message attribute names carried with a queued event (SQS message attributes).
pub mod queue_attributes {
    pub const EVENT_ID: &str = "eventId";
    pub const COMPANY_ID: &str = "companyId";
    pub const WEBHOOK_ID: &str = "webhookId";
    pub const RECEIVED_AT: &str = "receivedAt";
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the queue is unavailable")]
    Unavailable(#[source] BoxError),
}

/// Where accepted events go.
#[async_trait]
pub trait EventQueue: Send + Sync {
    async fn enqueue(&self, event: &QueuedEvent) -> Result<(), QueueError>;
}

/// Lets the processor choose when a failed message comes back (its visibility timeout).
#[async_trait]
pub trait Redelivery: Send + Sync {
    async fn redeliver_after(&self, receipt_handle: &str, delay: Duration) -> Result<(), QueueError>;
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the secret store is unavailable")]
    Unavailable(#[source] BoxError),
}

/// Per-company secrets: webhook signing secrets and Ashby API keys.
#[async_trait]
pub trait SecretStore: Send + Sync {
    async fn get_secret(&self, secret: &SecretRef) -> Result<Option<secrecy::SecretString>, SecretError>;
    /// Creates the secret or stores a new value for it.
    async fn put_secret(&self, secret: &SecretRef, value: &secrecy::SecretString) -> Result<(), SecretError>;
}

/// An email ready to send: both parts rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingEmail {
    pub from: EmailAddress,
    pub to: EmailAddress,
    pub to_name: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Throttling, network, service errors: worth retrying.
    #[error("the mail service is unavailable")]
    Unavailable(#[source] BoxError),
    /// The service refused this message (e.g. unverified sender): retrying will not help.
    #[error("the mail service refused the message")]
    Rejected(#[source] BoxError),
}

#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends the email; returns the provider's message id.
    async fn send(&self, email: &OutgoingEmail) -> Result<String, MailError>;
}

/// What went wrong calling Ashby. Whether a retry can help is a property of the variant.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AshbyError {
    /// HTTP 401, or 403 for a wrong or deactivated key.
    #[error("Ashby rejected the API key")]
    KeyRejected,
    /// HTTP 403 `missing_endpoint_permission`: the key works but lacks a module permission.
    #[error("the Ashby API key lacks a permission: {message}")]
    MissingPermission { message: String },
    #[error("Ashby has no such object ({code})")]
    NotFound { code: String },
    /// HTTP 429, with Ashby's `Retry-After` when it sent one.
    #[error("Ashby rate-limited the request")]
    RateLimited { retry_after: Option<Duration> },
    #[error("Ashby answered HTTP {status}")]
    Server { status: u16 },
    #[error("Ashby did not answer in time")]
    Timeout,
    #[error("Ashby could not be reached: {0}")]
    Unreachable(String),
    #[error("Ashby's answer could not be read: {0}")]
    Malformed(String),
    /// `success: false` with another error code.
    #[error("Ashby refused the request ({code}): {message}")]
    Api { code: String, message: String },
}

impl AshbyError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            AshbyError::RateLimited { .. }
                | AshbyError::Server { .. }
                | AshbyError::Timeout
                | AshbyError::Unreachable(_)
        )
    }
    /// Ashby's `Retry-After`, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            AshbyError::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }
}

/// The Ashby API calls the integration makes, each with the company's key.
#[async_trait]
pub trait AshbyApi: Send + Sync {
    async fn api_key_info(&self, key: &ApiKey) -> Result<ApiKeyInfo, AshbyError>;
    async fn candidate_info(&self, key: &ApiKey, candidate_id: &str) -> Result<AshbyCandidate, AshbyError>;
    async fn application_info(&self, key: &ApiKey, application_id: &str) -> Result<AshbyApplication, AshbyError>;
    /// Every custom field definition (all pages).
    async fn custom_fields(&self, key: &ApiKey) -> Result<Vec<CustomFieldDefinition>, AshbyError>;
    /// The hiring team role titles that exist in the company's Ashby.
    async fn hiring_team_roles(&self, key: &ApiKey) -> Result<Vec<String>, AshbyError>;
}

/// The time. Handlers never read the system clock directly, so tests can move time.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
}

/// A clock tests set and advance.
#[derive(Debug)]
pub struct ManualClock(std::sync::Mutex<Timestamp>);

impl ManualClock {
    pub fn new(at: Timestamp) -> Self {
        Self(std::sync::Mutex::new(at))
    }
    pub fn set(&self, at: Timestamp) {
        *self.0.lock().unwrap() = at;
    }
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap();
        *t += chrono::Duration::from_std(by).expect("a test duration fits");
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}
