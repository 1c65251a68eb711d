//! The handler through its ports: the embedded store, secret store and mailer, a recording
//! redelivery, a manual clock, and the Ashby simulator over HTTP (the real HTTP client).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ashby_sim::{AshbySim, Fault};
use async_trait::async_trait;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage, SqsMessageAttribute};
use chrono::TimeZone as _;
use reimbi_shared::adapters::ashby_http::HttpAshbyApi;
use reimbi_shared::adapters::embedded::{EmbeddedSecretStore, EmbeddedStore, MemoryMailer};
use reimbi_shared::domain::*;
use reimbi_shared::ports::*;
use secrecy::SecretString;
use serde_json::{Value, json};

use super::*;

const COMPANY: &str = "acme";
const API_KEY: &str = "ashby-key-for-acme-0001";
const APP_BASE_URL: &str = "https://app.reimbi.example";
const SENDER: &str = "invites@reimbi.example";
const GUIDELINES: &str = "Keep every receipt.\nSubmit within 30 days of the interview.";
const CANDIDATE: &str = ashby_sim::DEMO_CANDIDATE_ID;
const APPLICATION: &str = ashby_sim::DEMO_APPLICATION_ID;

fn t0() -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap()
}

fn company() -> CompanyId {
    CompanyId::parse(COMPANY).unwrap()
}

fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

/// Remembers every back-off the processor asked for.
#[derive(Default)]
struct RecordingRedelivery(Mutex<Vec<(String, Duration)>>);

impl RecordingRedelivery {
    fn requests(&self) -> Vec<(String, Duration)> {
        self.0.lock().unwrap().clone()
    }
}

#[async_trait]
impl Redelivery for RecordingRedelivery {
    async fn redeliver_after(&self, receipt_handle: &str, delay: Duration) -> Result<(), QueueError> {
        self.0.lock().unwrap().push((receipt_handle.to_owned(), delay));
        Ok(())
    }
}

/// A mailer SES refuses every message for (e.g. an unverified sender).
struct RejectingMailer;

#[async_trait]
impl Mailer for RejectingMailer {
    async fn send(&self, _: &OutgoingEmail) -> Result<String, MailError> {
        Err(MailError::Rejected("the sender is not verified".into()))
    }
}

/// A candidate store whose `create_if_absent` is unavailable the first `n` times.
struct FlakyCandidates {
    inner: EmbeddedStore,
    failures_left: Mutex<usize>,
}

#[async_trait]
impl CandidateStore for FlakyCandidates {
    async fn create_if_absent(&self, record: &CandidateRecord) -> Result<(CandidateRecord, bool), StoreError> {
        {
            let mut left = self.failures_left.lock().unwrap();
            if *left > 0 {
                *left -= 1;
                return Err(StoreError::Unavailable("throttled".into()));
            }
        }
        self.inner.create_if_absent(record).await
    }
    async fn get_candidate(&self, c: &CompanyId, id: &CandidateId) -> Result<Option<CandidateRecord>, StoreError> {
        self.inner.get_candidate(c, id).await
    }
    async fn list_candidates(
        &self,
        c: &CompanyId,
        l: usize,
        cur: Option<&str>,
    ) -> Result<Page<CandidateRecord>, StoreError> {
        self.inner.list_candidates(c, l, cur).await
    }
    async fn claim_invitation(
        &self,
        c: &CompanyId,
        id: &CandidateId,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        self.inner.claim_invitation(c, id, now, until).await
    }
    async fn mark_invitation_sent(
        &self,
        c: &CompanyId,
        id: &CandidateId,
        m: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.inner.mark_invitation_sent(c, id, m, at).await
    }
    async fn release_invitation(&self, c: &CompanyId, id: &CandidateId) -> Result<(), StoreError> {
        self.inner.release_invitation(c, id).await
    }
    async fn put_invite_token(&self, token: &InviteToken) -> Result<(), StoreError> {
        self.inner.put_invite_token(token).await
    }
}

fn settings() -> IntegrationSettings {
    IntegrationSettings {
        enabled: true,
        api_key_hint: Some("…0001".into()),
        approver_role: Some(ApproverRole::HiringTeam),
        hiring_team_role: Some("Recruiter".into()),
        backup_approver_email: Some(email("ops@acme.example")),
        updated_at: Some(t0()),
        revision: 1,
        ..IntegrationSettings::unconfigured(company())
    }
}

fn policy(id: &str, name: &str, default_approver: Option<&str>) -> Policy {
    Policy {
        company_id: company(),
        policy_id: PolicyId::parse(id).unwrap(),
        name: name.into(),
        enabled: true,
        submission_guidelines: GUIDELINES.into(),
        default_approver_email: default_approver.map(email),
        updated_at: t0(),
    }
}

fn staff(address: &str, can_approve: bool) -> StaffMember {
    StaffMember { company_id: company(), email: email(address), name: address.into(), can_approve, updated_at: t0() }
}

/// Jane Doe as `candidate.info` answers: flagged, policy "Onsite Interview".
fn jane() -> Value {
    let fixture: Value =
        serde_json::from_str(include_str!("../../../infra/fixtures/ashby/candidate-info-flagged.json")).unwrap();
    fixture["results"].clone()
}

fn set_field(candidate: &mut Value, title: &str, field: Option<Value>) {
    let fields = candidate["customFields"].as_array_mut().unwrap();
    fields.retain(|f| f["title"] != title);
    if let Some(f) = field {
        fields.push(f);
    }
}

/// What a world starts from; each test changes what it needs.
struct Setup {
    settings: Option<IntegrationSettings>,
    policies: Vec<Policy>,
    staff: Vec<StaffMember>,
    candidate: Value,
    key_stored: bool,
    key_known_to_ashby: bool,
    ashby_timeout: Duration,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            settings: Some(settings()),
            policies: vec![
                policy("onsite", "Onsite Interview", Some("pat@acme.example")),
                policy("travel", "Final Round Travel", None),
            ],
            staff: vec![staff("rae@acme.example", true), staff("ops@acme.example", true)],
            candidate: jane(),
            key_stored: true,
            key_known_to_ashby: true,
            ashby_timeout: Duration::from_secs(5),
        }
    }
}

struct World {
    sim: AshbySim,
    store: EmbeddedStore,
    mailer: Arc<MemoryMailer>,
    redelivery: Arc<RecordingRedelivery>,
    clock: Arc<ManualClock>,
    deps: ProcessorDeps,
    next_message: Mutex<u32>,
}

impl World {
    async fn new() -> Self {
        Self::build(Setup::default()).await
    }

    async fn build(setup: Setup) -> Self {
        Self::build_with(setup, |_, _| {}).await
    }

    /// `adjust` may replace ports of the deps before the world is assembled.
    async fn build_with(setup: Setup, adjust: impl FnOnce(&mut ProcessorDeps, &EmbeddedStore)) -> Self {
        let sim = AshbySim::start().await;
        ashby_sim::demo_data(&sim, API_KEY);
        if !setup.key_known_to_ashby {
            sim.remove_api_key(API_KEY);
        }
        sim.set_candidate(setup.candidate);
        let store = EmbeddedStore::in_memory();
        if let Some(s) = &setup.settings {
            store.save_settings(s).await.unwrap();
        }
        for p in &setup.policies {
            store.put_policy(p).await.unwrap();
        }
        for m in &setup.staff {
            store.put_staff(m).await.unwrap();
        }
        let secrets = EmbeddedSecretStore::in_memory();
        if setup.key_stored {
            secrets
                .put_secret(&SecretRef::AshbyApiKey(company()), &SecretString::from(API_KEY.to_owned()))
                .await
                .unwrap();
        }
        let clock = Arc::new(ManualClock::new(t0()));
        let mailer = Arc::new(MemoryMailer::new());
        let redelivery = Arc::new(RecordingRedelivery::default());
        // No retries inside the client: each test decides what Ashby answers to each call.
        let ashby = HttpAshbyApi::new(sim.url())
            .with_timeouts(Duration::from_secs(1), setup.ashby_timeout)
            .with_retry_budget(1, Duration::ZERO);
        let mut deps = ProcessorDeps::new(
            Arc::new(store.clone()),
            Arc::new(store.clone()),
            Arc::new(store.clone()),
            Arc::new(secrets),
            Arc::new(ashby),
            mailer.clone(),
            redelivery.clone(),
            clock.clone(),
            email(SENDER),
            APP_BASE_URL,
            5,
        );
        adjust(&mut deps, &store);
        Self { sim, store, mailer, redelivery, clock, deps, next_message: Mutex::new(0) }
    }

    fn body(&self, webhook_action_id: &str) -> Vec<u8> {
        ashby_sim::webhook::stage_change(
            webhook_action_id,
            CANDIDATE,
            APPLICATION,
            ashby_sim::webhook::demo_hiring_team(),
        )
    }

    fn event_id(body: &[u8]) -> EventId {
        let envelope = WebhookEnvelope::parse(body).unwrap();
        EventId::derive(&company(), envelope.webhook_action_id.as_deref(), body)
    }

    /// Logs the event as accepted, as the webhook function does before queueing it.
    async fn accept(&self, body: &[u8]) -> EventId {
        let event_id = Self::event_id(body);
        let envelope = WebhookEnvelope::parse(body).unwrap();
        self.store
            .insert_if_absent(&EventLogEntry {
                company_id: company(),
                event_id: event_id.clone(),
                received_at: self.clock.now(),
                action: envelope.action.clone(),
                ashby_candidate_id: envelope.ashby_candidate_id().map(str::to_owned),
                outcome: Outcome::Accepted,
                reason: None,
                candidate_id: None,
                updated_at: self.clock.now(),
            })
            .await
            .unwrap();
        event_id
    }

    /// An SQS record as Lambda hands it over, with a fresh message id.
    fn record(&self, body: &[u8], receive_count: u32) -> SqsMessage {
        let n = {
            let mut next = self.next_message.lock().unwrap();
            *next += 1;
            *next
        };
        let mut m = SqsMessage::default();
        m.message_id = Some(format!("msg-{n}"));
        m.receipt_handle = Some(format!("rh-{n}"));
        m.body = Some(String::from_utf8(body.to_vec()).unwrap());
        m.attributes.insert("ApproximateReceiveCount".into(), receive_count.to_string());
        let event_id = Self::event_id(body);
        for (name, value) in [
            (queue_attributes::EVENT_ID, event_id.to_string()),
            (queue_attributes::COMPANY_ID, COMPANY.to_owned()),
            (queue_attributes::WEBHOOK_ID, "wh_testtesttesttesttest01".to_owned()),
            (queue_attributes::RECEIVED_AT, format_time(&self.clock.now())),
        ] {
            let mut a = SqsMessageAttribute::default();
            a.string_value = Some(value);
            a.data_type = Some("String".into());
            m.message_attributes.insert(name.to_owned(), a);
        }
        m
    }

    async fn handle(&self, records: Vec<SqsMessage>) -> SqsBatchResponse {
        let mut event = SqsEvent::default();
        event.records = records;
        handle(&self.deps, event).await
    }

    /// Accepts and delivers the event once; returns the event id and the failed message ids.
    async fn deliver(&self, body: &[u8], receive_count: u32) -> (EventId, Vec<String>) {
        let event_id = self.accept(body).await;
        let response = self.handle(vec![self.record(body, receive_count)]).await;
        (event_id, failures(&response))
    }

    async fn entry(&self, event_id: &EventId) -> EventLogEntry {
        self.store.get_event(&company(), event_id).await.unwrap().expect("the event is in the log")
    }

    async fn outcome(&self, event_id: &EventId) -> (Outcome, Option<&'static str>) {
        let e = self.entry(event_id).await;
        (e.outcome, e.reason.map(|r| r.as_str()))
    }

    async fn candidate(&self) -> Option<CandidateRecord> {
        let id = CandidateId::for_ashby_candidate(&company(), CANDIDATE);
        self.store.get_candidate(&company(), &id).await.unwrap()
    }
}

fn failures(response: &SqsBatchResponse) -> Vec<String> {
    response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect()
}

/// The set-up link in a text part.
fn setup_link(text: &str) -> &str {
    let start = text.find(&format!("{APP_BASE_URL}/invitations/")).expect("the text part has the set-up link");
    text[start..].split_whitespace().next().unwrap()
}

#[tokio::test]
async fn a_flagged_candidate_is_stored_invited_and_emailed_once() {
    let w = World::new().await;
    let (event_id, failed) = w.deliver(&w.body("action-1"), 1).await;

    assert!(failed.is_empty());
    let entry = w.entry(&event_id).await;
    assert_eq!(entry.outcome, Outcome::Invited);
    assert_eq!(entry.reason, None);
    let record = w.candidate().await.expect("the candidate is stored");
    assert_eq!(entry.candidate_id.as_ref(), Some(&record.candidate_id));
    assert_eq!(record.status, CandidateStatus::Invited);
    assert_eq!(record.name, "Jane Doe");
    assert_eq!(record.email.as_str(), "jane.doe@example.com");
    assert_eq!(record.ashby_application_id, APPLICATION);
    assert_eq!(record.policy_id.as_str(), "onsite");
    assert_eq!(record.policy_name, "Onsite Interview");
    assert_eq!(record.approver_email.as_str(), "rae@acme.example");
    assert_eq!(record.approver_source, ApproverSource::HiringTeam);
    assert_eq!(record.source_event_id, event_id);
    assert_eq!(record.invite_email.status, InviteEmailStatus::Sent);

    let sent = w.mailer.sent();
    assert_eq!(sent.len(), 1);
    let mail = &sent[0];
    assert_eq!(mail.from.as_str(), SENDER);
    assert_eq!(mail.to.as_str(), "jane.doe@example.com");
    assert!(record.invite_email.message_id.is_some());
    for part in [&mail.text, &mail.html] {
        assert!(part.contains("Hi Jane Doe,"));
        assert!(part.contains("Keep every receipt."));
        assert!(part.contains("support@reimbi.com"));
    }
    let link = setup_link(&mail.text);
    let token = link.rsplit('/').next().unwrap();
    assert_eq!(token.len(), 43, "a 32-byte base64url token: {link}");
    assert!(mail.html.contains(link));
    assert!(w.redelivery.requests().is_empty());
}

#[tokio::test]
async fn the_same_event_three_times_makes_one_record_and_one_email() {
    let w = World::new().await;
    let body = w.body("action-1");
    for _ in 0..3 {
        let (event_id, failed) = w.deliver(&body, 1).await;
        assert!(failed.is_empty());
        assert_eq!(w.outcome(&event_id).await, (Outcome::Invited, None));
    }
    assert_eq!(w.mailer.sent().len(), 1);
    assert_eq!(w.store.list_candidates(&company(), 10, None).await.unwrap().items.len(), 1);
    // The second and third deliveries are acknowledged from the event log, without calling Ashby.
    assert_eq!(w.sim.calls_to("candidate.info"), 1);
}

#[tokio::test]
async fn a_later_stage_change_of_an_invited_candidate_is_already_invited() {
    let w = World::new().await;
    let (first, _) = w.deliver(&w.body("action-1"), 1).await;
    let (second, failed) = w.deliver(&w.body("action-2"), 1).await;

    assert!(failed.is_empty());
    assert_eq!(w.outcome(&first).await, (Outcome::Invited, None));
    let entry = w.entry(&second).await;
    assert_eq!(entry.outcome, Outcome::AlreadyInvited);
    assert_eq!(entry.candidate_id, Some(CandidateId::for_ashby_candidate(&company(), CANDIDATE)));
    assert_eq!(w.mailer.sent().len(), 1);
}

/// Every branch of steps 1 to 5 that ends without an invitation.
#[tokio::test]
async fn branches_that_end_without_an_invitation_record_their_outcome_and_reason() {
    type Change = fn(&mut Setup);
    let cases: Vec<(&str, Change, Outcome, &str)> = vec![
        (
            "integration disabled",
            |s| s.settings.as_mut().unwrap().enabled = false,
            Outcome::Ignored,
            "integration_disabled",
        ),
        ("never configured", |s| s.settings = None, Outcome::Ignored, "integration_disabled"),
        (
            "trigger field No",
            |s| set_field(&mut s.candidate, "Send to Reimbi", Some(json!({"title": "Send to Reimbi", "value": false}))),
            Outcome::Ignored,
            "not_flagged",
        ),
        (
            "trigger field absent",
            |s| set_field(&mut s.candidate, "Send to Reimbi", None),
            Outcome::Ignored,
            "not_flagged",
        ),
        (
            "custom trigger title the candidate lacks",
            |s| s.settings.as_mut().unwrap().trigger_field_title = "Reimburse".into(),
            Outcome::Ignored,
            "not_flagged",
        ),
        (
            "policy names no Reimbi policy",
            |s| {
                let f = json!({"title": "Reimbi Reimbursement Policy", "value": "reloc", "valueLabel": "Relocation"});
                set_field(&mut s.candidate, "Reimbi Reimbursement Policy", Some(f))
            },
            Outcome::Failed,
            "policy_not_found",
        ),
        ("policy names a disabled policy", |s| s.policies[0].enabled = false, Outcome::Failed, "policy_not_found"),
        (
            "no policy value and two policies",
            |s| set_field(&mut s.candidate, "Reimbi Reimbursement Policy", None),
            Outcome::Failed,
            "policy_required",
        ),
        (
            "no approver anywhere",
            |s| {
                let settings = s.settings.as_mut().unwrap();
                settings.approver_role = Some(ApproverRole::ReimbiDefault);
                settings.backup_approver_email = None;
                s.policies[0].default_approver_email = None;
            },
            Outcome::Failed,
            "no_approver",
        ),
        (
            "no email at all",
            |s| {
                s.candidate["primaryEmailAddress"] = Value::Null;
                s.candidate["emailAddresses"] = json!([]);
            },
            Outcome::Failed,
            "no_candidate_email",
        ),
        (
            "an email that is not an address",
            |s| {
                s.candidate["primaryEmailAddress"] = json!({"value": "jane at example", "type": "Personal"});
                s.candidate["emailAddresses"] = json!([]);
            },
            Outcome::Failed,
            "no_candidate_email",
        ),
        ("no API key stored", |s| s.key_stored = false, Outcome::Failed, "ashby_api_key_missing"),
        ("API key Ashby does not accept", |s| s.key_known_to_ashby = false, Outcome::Failed, "ashby_api_key_rejected"),
    ];
    for (name, change, outcome, reason) in cases {
        let mut setup = Setup::default();
        change(&mut setup);
        let w = World::build(setup).await;
        let (event_id, failed) = w.deliver(&w.body("action-1"), 1).await;
        assert!(failed.is_empty(), "{name}: a final outcome is acknowledged, not retried");
        assert_eq!(w.outcome(&event_id).await, (outcome, Some(reason)), "{name}");
        assert!(w.mailer.sent().is_empty(), "{name}: no email");
        assert!(w.candidate().await.is_none(), "{name}: no candidate record");
        assert!(w.redelivery.requests().is_empty(), "{name}: no back-off");
    }
}

#[tokio::test]
async fn a_candidate_ashby_does_not_know_fails_without_retry() {
    let w = World::new().await;
    let body =
        ashby_sim::webhook::stage_change("action-1", "nobody", APPLICATION, ashby_sim::webhook::demo_hiring_team());
    let (event_id, failed) = w.deliver(&body, 1).await;
    assert!(failed.is_empty());
    assert_eq!(w.outcome(&event_id).await, (Outcome::Failed, Some("ashby_candidate_not_found")));
    assert!(w.mailer.sent().is_empty());
}

/// The branches of steps 3 and 4 that still invite, with the policy and approver chosen.
#[tokio::test]
async fn policy_and_approver_choices_follow_the_settings() {
    type Change = fn(&mut Setup);
    let cases: Vec<(&str, Change, &str, &str, ApproverSource)> = vec![
        ("the hiring team's recruiter", |_| {}, "onsite", "rae@acme.example", ApproverSource::HiringTeam),
        (
            "role matched case-insensitively",
            |s| s.settings.as_mut().unwrap().hiring_team_role = Some("hiring MANAGER".into()),
            "onsite",
            // Hal is on the team but not a staff member who can approve: the backup.
            "ops@acme.example",
            ApproverSource::Backup,
        ),
        (
            "a recruiter who cannot approve falls to the backup",
            |s| s.staff[0].can_approve = false,
            "onsite",
            "ops@acme.example",
            ApproverSource::Backup,
        ),
        (
            "reimbiDefault takes the policy's default approver",
            |s| s.settings.as_mut().unwrap().approver_role = Some(ApproverRole::ReimbiDefault),
            "onsite",
            "pat@acme.example",
            ApproverSource::PolicyDefault,
        ),
        (
            "an unset approver role means reimbiDefault",
            |s| s.settings.as_mut().unwrap().approver_role = None,
            "onsite",
            "pat@acme.example",
            ApproverSource::PolicyDefault,
        ),
        (
            "the policy name after trimming and case-folding",
            |s| {
                let f =
                    json!({"title": "Reimbi Reimbursement Policy", "value": "x", "valueLabel": " final round TRAVEL "});
                set_field(&mut s.candidate, "Reimbi Reimbursement Policy", Some(f))
            },
            "travel",
            "rae@acme.example",
            ApproverSource::HiringTeam,
        ),
        (
            "no policy value and one enabled policy",
            |s| {
                set_field(&mut s.candidate, "Reimbi Reimbursement Policy", None);
                s.policies[1].enabled = false;
            },
            "onsite",
            "rae@acme.example",
            ApproverSource::HiringTeam,
        ),
    ];
    for (name, change, policy_id, approver, source) in cases {
        let mut setup = Setup::default();
        change(&mut setup);
        let w = World::build(setup).await;
        let (event_id, failed) = w.deliver(&w.body("action-1"), 1).await;
        assert!(failed.is_empty(), "{name}");
        assert_eq!(w.outcome(&event_id).await, (Outcome::Invited, None), "{name}");
        let record = w.candidate().await.unwrap();
        assert_eq!(record.policy_id.as_str(), policy_id, "{name}");
        assert_eq!((record.approver_email.as_str(), record.approver_source), (approver, source), "{name}");
        assert_eq!(w.mailer.sent().len(), 1, "{name}");
    }
}

#[tokio::test]
async fn an_empty_hiring_team_in_the_webhook_is_fetched_fresh_from_ashby() {
    let w = World::new().await;
    let body = ashby_sim::webhook::stage_change("action-1", CANDIDATE, APPLICATION, json!([]));
    let (event_id, _) = w.deliver(&body, 1).await;
    assert_eq!(w.sim.calls_to("application.info"), 1);
    assert_eq!(w.outcome(&event_id).await, (Outcome::Invited, None));
    assert_eq!(w.candidate().await.unwrap().approver_email.as_str(), "rae@acme.example");
}

#[tokio::test]
async fn a_webhook_hiring_team_is_used_without_asking_ashby() {
    let w = World::new().await;
    w.deliver(&w.body("action-1"), 1).await;
    assert_eq!(w.sim.calls_to("application.info"), 0);
}

#[tokio::test]
async fn an_ashby_rate_limit_is_retried_after_its_retry_after() {
    let w = World::new().await;
    w.sim.fail_next(1, Fault::RateLimited { retry_after_secs: Some(7) });
    let body = w.body("action-1");
    let (event_id, failed) = w.deliver(&body, 1).await;

    assert_eq!(failed, vec!["msg-1".to_owned()]);
    assert_eq!(w.outcome(&event_id).await, (Outcome::Retrying, Some("ashby_rate_limited")));
    assert_eq!(w.redelivery.requests(), vec![("rh-1".to_owned(), Duration::from_secs(7))]);
    assert!(w.mailer.sent().is_empty());

    let (_, failed) = w.deliver(&body, 2).await;
    assert!(failed.is_empty());
    assert_eq!(w.outcome(&event_id).await, (Outcome::Invited, None));
    assert_eq!(w.mailer.sent().len(), 1);
}

#[tokio::test]
async fn an_ashby_server_error_is_retried_with_a_back_off_growing_from_a_few_seconds() {
    let w = World::new().await;
    let body = w.body("action-1");
    for (receive, full_secs) in [(1u32, 5u64), (2, 10), (3, 20)] {
        w.sim.fail_next(1, Fault::ServerError(500));
        let (event_id, failed) = w.deliver(&body, receive).await;
        assert_eq!(failed.len(), 1, "receive {receive}");
        assert_eq!(w.outcome(&event_id).await, (Outcome::Retrying, Some("ashby_unavailable")));
        let (_, delay) = w.redelivery.requests().last().cloned().unwrap();
        let full = Duration::from_secs(full_secs);
        assert!(delay >= full / 2 && delay <= full, "receive {receive}: {delay:?}");
    }
}

#[tokio::test]
async fn an_ashby_call_hanging_past_the_timeout_is_retried() {
    let w = World::build(Setup { ashby_timeout: Duration::from_millis(300), ..Setup::default() }).await;
    w.sim.fail_next(1, Fault::Hang(Duration::from_secs(3)));
    let started = std::time::Instant::now();
    let (event_id, failed) = w.deliver(&w.body("action-1"), 1).await;

    assert!(started.elapsed() < Duration::from_secs(2), "the timeout cut the call short");
    assert_eq!(failed.len(), 1);
    assert_eq!(w.outcome(&event_id).await, (Outcome::Retrying, Some("ashby_unavailable")));
    assert_eq!(w.redelivery.requests().len(), 1);
}

#[tokio::test]
async fn a_key_without_the_candidates_permission_fails_without_retry() {
    let w = World::new().await;
    w.sim.fail_next(1, Fault::MissingPermission);
    let (event_id, failed) = w.deliver(&w.body("action-1"), 1).await;

    assert!(failed.is_empty());
    assert_eq!(w.outcome(&event_id).await, (Outcome::Failed, Some("ashby_api_key_rejected")));
    assert!(w.redelivery.requests().is_empty());
}

#[tokio::test]
async fn the_last_allowed_receive_records_failed_and_still_hands_the_message_back() {
    let w = World::new().await;
    w.sim.fail_next(1, Fault::ServerError(503));
    let (event_id, failed) = w.deliver(&w.body("action-1"), 5).await;

    // Returned as failed so that SQS moves it to the dead-letter queue.
    assert_eq!(failed.len(), 1);
    assert_eq!(w.outcome(&event_id).await, (Outcome::Failed, Some("ashby_unavailable")));
}

#[tokio::test]
async fn an_email_failing_once_after_the_candidate_was_stored_is_sent_exactly_once() {
    let w = World::new().await;
    w.mailer.fail_next(1);
    let body = w.body("action-1");
    let (event_id, failed) = w.deliver(&body, 1).await;

    assert_eq!(failed.len(), 1);
    assert_eq!(w.outcome(&event_id).await, (Outcome::Retrying, Some("email_delivery_failed")));
    let stored = w.candidate().await.expect("the candidate was stored before the send");
    assert_eq!(stored.invite_email.status, InviteEmailStatus::Pending, "the claim was given back");
    assert!(w.mailer.sent().is_empty());

    let (_, failed) = w.deliver(&body, 2).await;
    assert!(failed.is_empty());
    assert_eq!(w.outcome(&event_id).await, (Outcome::Invited, None));
    assert_eq!(w.mailer.sent().len(), 1);
    assert_eq!(w.candidate().await.unwrap().invite_email.status, InviteEmailStatus::Sent);

    // And a third delivery of the same event sends nothing more.
    w.deliver(&body, 1).await;
    assert_eq!(w.mailer.sent().len(), 1);
}

#[tokio::test]
async fn an_email_ses_refuses_fails_without_retry() {
    let w = World::build_with(Setup::default(), |deps, _| deps.mailer = Arc::new(RejectingMailer)).await;
    let (event_id, failed) = w.deliver(&w.body("action-1"), 1).await;
    assert!(failed.is_empty());
    assert_eq!(w.outcome(&event_id).await, (Outcome::Failed, Some("email_delivery_failed")));
    assert_eq!(w.candidate().await.unwrap().invite_email.status, InviteEmailStatus::Pending);
}

#[tokio::test]
async fn an_unavailable_store_is_retried_as_store_unavailable() {
    let w = World::build_with(Setup::default(), |deps, store| {
        deps.candidates = Arc::new(FlakyCandidates { inner: store.clone(), failures_left: Mutex::new(1) });
    })
    .await;
    let body = w.body("action-1");
    let (event_id, failed) = w.deliver(&body, 1).await;
    assert_eq!(failed.len(), 1);
    assert_eq!(w.outcome(&event_id).await, (Outcome::Retrying, Some("store_unavailable")));

    let (_, failed) = w.deliver(&body, 2).await;
    assert!(failed.is_empty());
    assert_eq!(w.outcome(&event_id).await, (Outcome::Invited, None));
}

#[tokio::test]
async fn an_invitation_another_attempt_is_sending_is_retried_when_its_lease_lapses() {
    let w = World::new().await;
    let body = w.body("action-1");
    let event_id = World::event_id(&body);
    // A first attempt stored the candidate, claimed the invitation, and died.
    let id = CandidateId::for_ashby_candidate(&company(), CANDIDATE);
    let record = CandidateRecord {
        candidate_id: id.clone(),
        company_id: company(),
        status: CandidateStatus::Invited,
        name: "Jane Doe".into(),
        email: email("jane.doe@example.com"),
        ashby_candidate_id: CANDIDATE.into(),
        ashby_application_id: APPLICATION.into(),
        policy_id: PolicyId::parse("onsite").unwrap(),
        policy_name: "Onsite Interview".into(),
        approver_email: email("rae@acme.example"),
        approver_source: ApproverSource::HiringTeam,
        invited_at: t0(),
        invite_email: InviteEmail {
            status: InviteEmailStatus::Pending,
            message_id: None,
            lease_until: None,
            sent_at: None,
        },
        source_event_id: event_id.clone(),
    };
    w.store.create_if_absent(&record).await.unwrap();
    let lease = t0() + chrono::Duration::seconds(60);
    assert!(w.store.claim_invitation(&company(), &id, t0(), lease).await.unwrap());

    let (_, failed) = w.deliver(&body, 1).await;
    assert_eq!(failed.len(), 1);
    assert_eq!(w.redelivery.requests(), vec![("rh-1".to_owned(), Duration::from_secs(60))]);
    assert_eq!(w.outcome(&event_id).await, (Outcome::Accepted, None), "the holder's outcome is the one that counts");
    assert!(w.mailer.sent().is_empty());

    w.clock.advance(Duration::from_secs(61));
    let (_, failed) = w.deliver(&body, 2).await;
    assert!(failed.is_empty());
    assert_eq!(w.outcome(&event_id).await, (Outcome::Invited, None));
    assert_eq!(w.mailer.sent().len(), 1);
}

#[tokio::test]
async fn a_batch_with_a_malformed_record_processes_the_others() {
    let w = World::new().await;
    let good = w.body("action-good");
    let good_id = w.accept(&good).await;
    let bad = w.body("action-bad");
    let bad_id = w.accept(&bad).await;
    let mut no_body = w.record(&bad, 1);
    no_body.body = None;
    let mut no_attributes = w.record(&good, 1);
    no_attributes.message_attributes.clear();
    let mut not_json = w.record(&bad, 1);
    not_json.body = Some("not json".into());

    let response = w.handle(vec![no_body, w.record(&good, 1), no_attributes, not_json]).await;

    assert!(failures(&response).is_empty(), "a malformed record is acknowledged, never retried");
    assert_eq!(w.outcome(&good_id).await, (Outcome::Invited, None));
    assert_eq!(w.outcome(&bad_id).await, (Outcome::Failed, Some("malformed_event")));
    assert_eq!(w.mailer.sent().len(), 1);
}

#[tokio::test]
async fn a_batch_of_many_candidates_is_processed_concurrently_and_completely() {
    let w = World::new().await;
    let mut records = Vec::new();
    let mut events = Vec::new();
    for i in 0..6 {
        let mut candidate = jane();
        let ashby_id = format!("cand-{i}");
        candidate["id"] = json!(ashby_id);
        candidate["primaryEmailAddress"] = json!({"value": format!("c{i}@example.com"), "type": "Personal"});
        w.sim.set_candidate(candidate);
        let body = ashby_sim::webhook::stage_change(
            format!("action-{i}"),
            &ashby_id,
            APPLICATION,
            ashby_sim::webhook::demo_hiring_team(),
        );
        events.push(w.accept(&body).await);
        records.push(w.record(&body, 1));
    }
    let response = w.handle(records).await;
    assert!(failures(&response).is_empty());
    for e in &events {
        assert_eq!(w.outcome(e).await, (Outcome::Invited, None));
    }
    assert_eq!(w.mailer.sent().len(), 6);
}

#[tokio::test]
async fn an_event_already_handled_is_acknowledged_without_any_work() {
    let w = World::new().await;
    let body = w.body("action-1");
    let event_id = w.accept(&body).await;
    let update =
        OutcomeUpdate { outcome: Outcome::Ignored, reason: Some(Reason::NotFlagged), candidate_id: None, at: t0() };
    w.store.set_outcome(&company(), &event_id, &update).await.unwrap();

    let response = w.handle(vec![w.record(&body, 1)]).await;
    assert!(failures(&response).is_empty());
    assert!(w.sim.calls().is_empty());
    assert_eq!(w.outcome(&event_id).await, (Outcome::Ignored, Some("not_flagged")));
}

#[tokio::test]
async fn an_event_missing_from_the_log_is_recorded_with_its_outcome() {
    let w = World::new().await;
    let body = w.body("action-1");
    let response = w.handle(vec![w.record(&body, 1)]).await;
    assert!(failures(&response).is_empty());
    let entry = w.entry(&World::event_id(&body)).await;
    assert_eq!(entry.outcome, Outcome::Invited);
    assert_eq!(entry.action, "candidateStageChange");
    assert_eq!(entry.ashby_candidate_id.as_deref(), Some(CANDIDATE));
}

#[tokio::test]
async fn a_name_with_html_is_escaped_in_the_html_part_and_literal_in_the_text_part() {
    let mut setup = Setup::default();
    setup.candidate["name"] = json!("<img src=x onerror=alert(1)> Jane");
    let w = World::build(setup).await;
    w.deliver(&w.body("action-1"), 1).await;

    let sent = w.mailer.sent();
    assert_eq!(sent.len(), 1);
    assert!(!sent[0].html.contains("<img"), "{}", sent[0].html);
    assert!(sent[0].html.contains("Hi &lt;img src=x onerror=alert(1)&gt; Jane,"));
    assert!(sent[0].text.contains("Hi <img src=x onerror=alert(1)> Jane,"));
    assert_eq!(sent[0].to_name, "<img src=x onerror=alert(1)> Jane");
}

#[tokio::test]
async fn a_replaced_api_key_is_read_again_after_the_company_changed() {
    let w = World::new().await;
    // Warm the cache with the current key, then have Ashby stop accepting it.
    w.deliver(&w.body("action-1"), 1).await;
    w.sim.remove_api_key(API_KEY);
    w.sim.add_api_key("ashby-key-for-acme-0002");
    w.deps
        .secrets
        .put_secret(&SecretRef::AshbyApiKey(company()), &SecretString::from("ashby-key-for-acme-0002".to_owned()))
        .await
        .unwrap();
    w.deps.company_changed(&company());
    w.sim.reset_calls();

    let mut other = jane();
    other["id"] = json!("cand-2");
    w.sim.set_candidate(other);
    let body =
        ashby_sim::webhook::stage_change("action-2", "cand-2", APPLICATION, ashby_sim::webhook::demo_hiring_team());
    let (event_id, _) = w.deliver(&body, 1).await;
    assert_eq!(w.outcome(&event_id).await, (Outcome::Invited, None));
    assert_eq!(w.sim.calls()[0].api_key.as_deref(), Some("ashby-key-for-acme-0002"));
}
