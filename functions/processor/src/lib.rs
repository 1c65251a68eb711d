//! The processor: turns an accepted Ashby stage change (an SQS message the webhook function
//! queued) into an invited Reimbi candidate and one invitation email (contract section 3).
//!
//! [`handle`] takes one SQS batch and answers with the records that failed (partial batch
//! failure): each record is parsed on its own, the records run concurrently with a small
//! bound, and every outcome is written to the company's event log.
//!
//! - [`message`]: reading an SQS record into an accepted event (or why it is malformed).
//! - [`steps`]: steps 1 to 6 of section 3, from the settings to the email.
//! - [`retry`]: which failures are retried and after what back-off.

pub mod message;
pub mod retry;
pub mod steps;

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::StreamExt as _;
use reimbi_shared::cache::{DEFAULT_CACHE_TTL, Invalidate, TtlCache};
use reimbi_shared::domain::{
    ApiKey, CandidateId, CompanyId, EmailAddress, EventLogEntry, Outcome, OutcomeUpdate, Reason, SecretRef,
};
use reimbi_shared::ports::{
    AshbyApi, CandidateStore, Clock, EventLog, Mailer, Redelivery, SecretError, SecretStore, SettingsStore, StoreError,
};
use tracing::{Instrument as _, field};

use crate::message::{Accepted, Malformed, ParsedRecord};
use crate::retry::{Disposition, ProcessError};

/// How many records of one batch are processed at the same time.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// Everything the processor talks to, built once per process.
pub struct ProcessorDeps {
    pub settings: Arc<dyn SettingsStore>,
    pub events: Arc<dyn EventLog>,
    pub candidates: Arc<dyn CandidateStore>,
    pub secrets: Arc<dyn SecretStore>,
    pub ashby: Arc<dyn AshbyApi>,
    pub mailer: Arc<dyn Mailer>,
    pub redelivery: Arc<dyn Redelivery>,
    pub clock: Arc<dyn Clock>,
    /// `SENDER_EMAIL`: the SES identity invitations come from.
    pub sender: EmailAddress,
    /// `APP_BASE_URL`: the set-up link is `{app_base_url}/invitations/{token}`.
    pub app_base_url: String,
    /// The queue's `maxReceiveCount`: on this receive a retryable failure is recorded as `failed`.
    pub max_receive_count: u32,
    pub concurrency: usize,
    /// Ashby API keys by company, so a warm function does not read Secrets Manager per record.
    api_keys: TtlCache<CompanyId, ApiKey>,
}

impl ProcessorDeps {
    // One argument per port: the wiring in `main.rs` and the local runner reads as a list.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: Arc<dyn SettingsStore>,
        events: Arc<dyn EventLog>,
        candidates: Arc<dyn CandidateStore>,
        secrets: Arc<dyn SecretStore>,
        ashby: Arc<dyn AshbyApi>,
        mailer: Arc<dyn Mailer>,
        redelivery: Arc<dyn Redelivery>,
        clock: Arc<dyn Clock>,
        sender: EmailAddress,
        app_base_url: impl Into<String>,
        max_receive_count: u32,
    ) -> Self {
        let api_keys = TtlCache::new(DEFAULT_CACHE_TTL, clock.clone());
        Self {
            settings,
            events,
            candidates,
            secrets,
            ashby,
            mailer,
            redelivery,
            clock,
            sender,
            app_base_url: app_base_url.into().trim_end_matches('/').to_owned(),
            max_receive_count: max_receive_count.max(1),
            concurrency: DEFAULT_CONCURRENCY,
            api_keys,
        }
    }

    /// Processes up to `n` records of a batch at once (at least one).
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The company's Ashby API key, from the cache or the secret store.
    async fn api_key(&self, company: &CompanyId) -> Result<Option<ApiKey>, SecretError> {
        if let Some(key) = self.api_keys.get(company) {
            return Ok(Some(key));
        }
        let key = self.secrets.get_secret(&SecretRef::AshbyApiKey(company.clone())).await?.map(ApiKey::new);
        if let Some(key) = &key {
            self.api_keys.insert(company.clone(), key.clone());
        }
        Ok(key)
    }

    /// Forgets a key Ashby refused, so that a key the admin replaces is read at once.
    fn forget_api_key(&self, company: &CompanyId) {
        self.api_keys.remove(company);
    }
}

impl Invalidate for ProcessorDeps {
    fn company_changed(&self, company: &CompanyId) {
        self.api_keys.remove(company);
    }
}

/// Handles one SQS batch: the answer lists only the records to retry.
pub async fn handle(deps: &ProcessorDeps, event: SqsEvent) -> SqsBatchResponse {
    let failed: Vec<String> = futures::stream::iter(event.records)
        .map(|record| process_record(deps, record))
        .buffer_unordered(deps.concurrency.max(1))
        .filter_map(futures::future::ready)
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    response.set_failures(failed);
    response
}

/// What happened to an event, as written to the event log.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub outcome: Outcome,
    pub reason: Option<Reason>,
    pub candidate_id: Option<CandidateId>,
}

impl Verdict {
    pub fn ignored(reason: Reason) -> Self {
        Self { outcome: Outcome::Ignored, reason: Some(reason), candidate_id: None }
    }
    pub fn failed(reason: Reason) -> Self {
        Self { outcome: Outcome::Failed, reason: Some(reason), candidate_id: None }
    }
    pub fn invited(candidate: CandidateId) -> Self {
        Self { outcome: Outcome::Invited, reason: None, candidate_id: Some(candidate) }
    }
    pub fn already_invited(candidate: CandidateId) -> Self {
        Self { outcome: Outcome::AlreadyInvited, reason: None, candidate_id: Some(candidate) }
    }
    fn retrying(reason: Reason) -> Self {
        Self { outcome: Outcome::Retrying, reason: Some(reason), candidate_id: None }
    }
}

/// Processes one record; `Some(message id)` when SQS must deliver it again.
async fn process_record(deps: &ProcessorDeps, record: SqsMessage) -> Option<String> {
    let message_id = record.message_id.clone().unwrap_or_default();
    let span = tracing::info_span!(
        "record",
        message_id = %message_id,
        company_id = field::Empty,
        event_id = field::Empty,
        receive_count = field::Empty,
    );
    async move {
        match message::parse(&record) {
            ParsedRecord::Accepted(accepted) => {
                let span = tracing::Span::current();
                span.record("company_id", accepted.event.company_id.as_str());
                span.record("event_id", accepted.event.event_id.as_str());
                span.record("receive_count", accepted.receive_count);
                process_accepted(deps, &accepted).await
            }
            ParsedRecord::Malformed(malformed) => {
                record_malformed(deps, &malformed).await;
                None
            }
        }
    }
    .instrument(span)
    .await
}

async fn process_accepted(deps: &ProcessorDeps, accepted: &Accepted) -> Option<String> {
    let event = &accepted.event;
    let existing = match deps.events.get_event(&event.company_id, &event.event_id).await {
        Ok(entry) => entry,
        Err(e) => return settle_error(deps, accepted, false, ProcessError::Store(e)).await,
    };
    if let Some(entry) = &existing
        && entry.outcome.is_final()
    {
        tracing::info!(outcome = ?entry.outcome, "event already handled; acknowledging the redelivery");
        return None;
    }
    let entry_exists = existing.is_some();
    match steps::run(deps, accepted).await {
        Ok(verdict) => match record_outcome(deps, accepted, entry_exists, &verdict).await {
            Ok(()) => {
                log_verdict(&verdict);
                None
            }
            // The work is idempotent: running it again is how the outcome gets recorded.
            Err(e) => settle_error(deps, accepted, entry_exists, ProcessError::Store(e)).await,
        },
        Err(error) => settle_error(deps, accepted, entry_exists, error).await,
    }
}

/// Records a permanent failure and acknowledges it, or records the retry and schedules it.
async fn settle_error(
    deps: &ProcessorDeps,
    accepted: &Accepted,
    entry_exists: bool,
    error: ProcessError,
) -> Option<String> {
    if matches!(error, ProcessError::Ashby(_)) && error.disposition() == Disposition::Fail(Reason::AshbyApiKeyRejected)
    {
        deps.forget_api_key(&accepted.event.company_id);
    }
    match error.disposition() {
        Disposition::Fail(reason) => {
            tracing::warn!(reason = reason.as_str(), error = %retry::describe(&error), "event failed");
            let verdict = Verdict::failed(reason);
            match record_outcome(deps, accepted, entry_exists, &verdict).await {
                Ok(()) => None,
                Err(e) => {
                    tracing::error!(error = %retry::describe(&e), "could not record the failure; retrying the event");
                    schedule_retry(deps, accepted, retry::retry_delay(accepted.receive_count, None)).await
                }
            }
        }
        Disposition::Retry { reason, retry_after } => {
            let delay = retry::retry_delay(accepted.receive_count, retry_after);
            let last = accepted.receive_count >= deps.max_receive_count;
            let verdict = match reason {
                // Another attempt at the same event holds the invitation: its outcome is the one
                // that counts, so this attempt writes nothing.
                None => None,
                Some(reason) if last => Some(Verdict::failed(reason)),
                Some(reason) => Some(Verdict::retrying(reason)),
            };
            tracing::warn!(
                reason = reason.map(|r| r.as_str()),
                last_receive = last,
                retry_in_ms = delay.as_millis() as u64,
                error = %retry::describe(&error),
                "event will be retried"
            );
            if let Some(verdict) = verdict
                && let Err(e) = record_outcome(deps, accepted, entry_exists, &verdict).await
            {
                tracing::error!(error = %retry::describe(&e), "could not record the retry");
            }
            schedule_retry(deps, accepted, delay).await
        }
    }
}

/// Sets the message's visibility so it comes back after `delay`, and reports it as failed.
async fn schedule_retry(deps: &ProcessorDeps, accepted: &Accepted, delay: Duration) -> Option<String> {
    match &accepted.receipt_handle {
        Some(handle) => {
            if let Err(e) = deps.redelivery.redeliver_after(handle, delay).await {
                // The queue's own visibility timeout still brings the message back.
                tracing::error!(error = %retry::describe(&e), "could not set the message's back-off");
            }
        }
        None => tracing::warn!("the record has no receipt handle; the queue's visibility timeout applies"),
    }
    Some(accepted.message_id.clone())
}

/// Writes the verdict to the event log. When the entry is missing (the webhook's write was
/// lost), it is created with the verdict.
async fn record_outcome(
    deps: &ProcessorDeps,
    accepted: &Accepted,
    entry_exists: bool,
    verdict: &Verdict,
) -> Result<(), StoreError> {
    let event = &accepted.event;
    let now = deps.clock.now();
    if !entry_exists {
        let entry = EventLogEntry {
            company_id: event.company_id.clone(),
            event_id: event.event_id.clone(),
            received_at: event.received_at,
            action: accepted.action.clone(),
            ashby_candidate_id: accepted.ashby_candidate_id.clone(),
            outcome: verdict.outcome,
            reason: verdict.reason,
            candidate_id: verdict.candidate_id.clone(),
            updated_at: now,
        };
        if deps.events.insert_if_absent(&entry).await? {
            return Ok(());
        }
    }
    let update = OutcomeUpdate {
        outcome: verdict.outcome,
        reason: verdict.reason,
        candidate_id: verdict.candidate_id.clone(),
        at: now,
    };
    deps.events.set_outcome(&event.company_id, &event.event_id, &update).await
}

/// A record that can never be processed: logged, recorded when its ids are readable, and
/// acknowledged so that it is not retried forever.
async fn record_malformed(deps: &ProcessorDeps, malformed: &Malformed) {
    tracing::warn!(problem = %malformed.problem, "malformed record; acknowledging it");
    let (Some(company), Some(event)) = (&malformed.company_id, &malformed.event_id) else {
        return;
    };
    let span = tracing::Span::current();
    span.record("company_id", company.as_str());
    span.record("event_id", event.as_str());
    let now = deps.clock.now();
    let entry = EventLogEntry {
        company_id: company.clone(),
        event_id: event.clone(),
        received_at: malformed.received_at.unwrap_or(now),
        action: malformed.action.clone().unwrap_or_else(|| "unknown".to_owned()),
        ashby_candidate_id: None,
        outcome: Outcome::Failed,
        reason: Some(Reason::MalformedEvent),
        candidate_id: None,
        updated_at: now,
    };
    let update =
        OutcomeUpdate { outcome: Outcome::Failed, reason: Some(Reason::MalformedEvent), candidate_id: None, at: now };
    let written = match deps.events.insert_if_absent(&entry).await {
        Ok(true) => Ok(()),
        Ok(false) => deps.events.set_outcome(company, event, &update).await,
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        tracing::error!(error = %retry::describe(&e), "could not record the malformed record");
    }
}

fn log_verdict(verdict: &Verdict) {
    tracing::info!(
        outcome = ?verdict.outcome,
        reason = verdict.reason.map(|r| r.as_str()),
        candidate_id = verdict.candidate_id.as_ref().map(|c| c.as_str()),
        "event processed"
    );
}

#[cfg(test)]
mod tests;
