//! The processor with the real AWS adapters on moto (DynamoDB, Secrets Manager, SQS, SES) and
//! the Ashby simulator over HTTP: events travel through a real queue, the back-off is set on
//! the real message, and the sent email is read back from moto.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ashby_sim::AshbySim;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use processor::{ProcessorDeps, handle};
use reimbi_shared::adapters::ashby_http::HttpAshbyApi;
use reimbi_shared::adapters::mime;
use reimbi_shared::adapters::ses::SesMailer;
use reimbi_shared::domain::*;
use reimbi_shared::ports::*;
use secrecy::SecretString;

use crate::harness::{AwsEnv, unique};

const API_KEY: &str = "ashby-key-for-the-it-company";
const APP_BASE_URL: &str = "https://app.reimbi.example";
const GUIDELINES: &str = "Keep every receipt.\nSubmit within 30 days of the interview.";

struct Story {
    env: AwsEnv,
    sim: AshbySim,
    company: CompanyId,
    candidate_email: String,
    store: Arc<dyn EventLog>,
    candidates: Arc<dyn CandidateStore>,
    deps: ProcessorDeps,
}

impl Story {
    /// A company with the integration on, its Ashby key, a policy and an approver; Jane Doe
    /// flagged in the simulator with an address unique to this test (moto keeps every email).
    async fn new() -> Self {
        let env = AwsEnv::new().await;
        let sim = AshbySim::start().await;
        let demo = ashby_sim::demo_data(&sim, API_KEY);
        let candidate_email = format!("{}@example.com", unique("jane"));
        let mut jane: serde_json::Value = serde_json::from_str::<serde_json::Value>(include_str!(
            "../../infra/fixtures/ashby/candidate-info-flagged.json"
        ))
        .unwrap()["results"]
            .clone();
        jane["primaryEmailAddress"]["value"] = candidate_email.clone().into();
        assert_eq!(jane["id"], demo.candidate_id.as_str());
        sim.set_candidate(jane);

        let company = CompanyId::parse(&unique("acme")).unwrap();
        let store = Arc::new(env.dynamo_store());
        let now = chrono::Utc::now();
        store
            .save_settings(&IntegrationSettings {
                enabled: true,
                api_key_hint: Some("…pany".into()),
                approver_role: Some(ApproverRole::HiringTeam),
                hiring_team_role: Some("Recruiter".into()),
                backup_approver_email: Some(EmailAddress::parse("ops@acme.example").unwrap()),
                updated_at: Some(now),
                revision: 1,
                ..IntegrationSettings::unconfigured(company.clone())
            })
            .await
            .unwrap();
        store
            .put_policy(&Policy {
                company_id: company.clone(),
                policy_id: PolicyId::parse("onsite").unwrap(),
                name: "Onsite Interview".into(),
                enabled: true,
                submission_guidelines: GUIDELINES.into(),
                default_approver_email: None,
                updated_at: now,
            })
            .await
            .unwrap();
        store
            .put_staff(&StaffMember {
                company_id: company.clone(),
                email: EmailAddress::parse("rae@acme.example").unwrap(),
                name: "Rae Cruiter".into(),
                can_approve: true,
                updated_at: now,
            })
            .await
            .unwrap();
        let secrets = Arc::new(env.secret_store());
        secrets
            .put_secret(&SecretRef::AshbyApiKey(company.clone()), &SecretString::from(API_KEY.to_owned()))
            .await
            .unwrap();

        let deps = ProcessorDeps::new(
            store.clone(),
            store.clone(),
            store.clone(),
            secrets,
            Arc::new(HttpAshbyApi::new(sim.url())),
            Arc::new(env.ses_mailer()),
            Arc::new(env.sqs_queue()),
            Arc::new(SystemClock),
            EmailAddress::parse(&env.sender).unwrap(),
            APP_BASE_URL,
            crate::harness::MAX_RECEIVE_COUNT,
        );
        Self { env, sim, company, candidate_email, store: store.clone(), candidates: store, deps }
    }

    /// What the webhook function does with a verified stage change: log it, queue it.
    async fn accept_stage_change(&self) -> EventId {
        let body = ashby_sim::webhook::stage_change(
            None,
            ashby_sim::DEMO_CANDIDATE_ID,
            ashby_sim::DEMO_APPLICATION_ID,
            ashby_sim::webhook::demo_hiring_team(),
        );
        let envelope = WebhookEnvelope::parse(&body).unwrap();
        let event_id = EventId::derive(&self.company, envelope.webhook_action_id.as_deref(), &body);
        let now = chrono::Utc::now();
        self.store
            .insert_if_absent(&EventLogEntry {
                company_id: self.company.clone(),
                event_id: event_id.clone(),
                received_at: now,
                action: envelope.action.clone(),
                ashby_candidate_id: envelope.ashby_candidate_id().map(str::to_owned),
                outcome: Outcome::Accepted,
                reason: None,
                candidate_id: None,
                updated_at: now,
            })
            .await
            .unwrap();
        self.env
            .sqs_queue()
            .enqueue(&QueuedEvent {
                event_id: event_id.clone(),
                company_id: self.company.clone(),
                webhook_id: WebhookId::generate(),
                received_at: now,
                body: String::from_utf8(body).unwrap(),
            })
            .await
            .unwrap();
        event_id
    }

    /// What the SQS event source mapping does: receive a batch, invoke the handler, delete
    /// the records it did not report as failed. Returns the failed message ids.
    async fn run_processor_once(&self, messages: Vec<Message>) -> Vec<String> {
        let mut event = SqsEvent::default();
        event.records = messages.iter().map(to_lambda_record).collect();
        let response = handle(&self.deps, event).await;
        let failed: Vec<String> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        for m in &messages {
            if !failed.iter().any(|f| Some(f.as_str()) == m.message_id()) {
                self.env
                    .sqs_client()
                    .delete_message()
                    .queue_url(&self.env.queue_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        failed
    }

    /// Waits (up to `limit`) for messages to become visible on the queue.
    async fn wait_for_messages(&self, limit: Duration) -> Vec<Message> {
        let started = Instant::now();
        loop {
            let messages = self.env.receive_all().await;
            if !messages.is_empty() || started.elapsed() > limit {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// SES as the real adapter sees it when the service cannot be reached (no SDK retries, so
    /// the failure is immediate).
    fn unreachable_ses(&self) -> SesMailer {
        let config = aws_sdk_sesv2::config::Builder::from(&self.env.config)
            .endpoint_url("http://127.0.0.1:9")
            .retry_config(aws_sdk_sesv2::config::retry::RetryConfig::disabled())
            .build();
        SesMailer::new(aws_sdk_sesv2::Client::from_conf(config))
    }

    async fn outcome(&self, event_id: &EventId) -> EventLogEntry {
        self.store.get_event(&self.company, event_id).await.unwrap().expect("the event is logged")
    }

    async fn candidate(&self) -> Option<CandidateRecord> {
        let id = CandidateId::for_ashby_candidate(&self.company, ashby_sim::DEMO_CANDIDATE_ID);
        self.candidates.get_candidate(&self.company, &id).await.unwrap()
    }

    /// The one invitation moto sent to the candidate, checked part by part.
    async fn assert_one_invitation_email(&self) {
        let sent = self.env.sent_emails_to(&self.candidate_email).await;
        assert_eq!(sent.len(), 1, "exactly one invitation email");
        let raw = &sent[0];
        assert!(raw.contains(&format!("From: Reimbi <{}>", self.env.sender)));
        let text = mime::part(raw, "text/plain").expect("a plain-text part");
        let html = mime::part(raw, "text/html").expect("an HTML part");
        let link_start = text.find(&format!("{APP_BASE_URL}/invitations/")).expect("a set-up link under APP_BASE_URL");
        let link = text[link_start..].split_whitespace().next().unwrap();
        assert_eq!(link.len(), APP_BASE_URL.len() + "/invitations/".len() + 43, "a 32-byte token: {link}");
        for part in [&text, &html] {
            assert!(part.contains("Hi Jane Doe,"), "{part}");
            assert!(part.contains(link), "{part}");
            assert!(part.contains("Keep every receipt."), "{part}");
            assert!(part.contains("Submit within 30 days of the interview."), "{part}");
            assert!(part.contains("support@reimbi.com"), "{part}");
        }
    }
}

/// An SQS message as the Lambda event source mapping hands it to the function.
fn to_lambda_record(m: &Message) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = m.message_id().map(str::to_owned);
    record.receipt_handle = m.receipt_handle().map(str::to_owned);
    record.body = m.body().map(str::to_owned);
    for (name, value) in m.attributes().into_iter().flatten() {
        record.attributes.insert(name.as_str().to_owned(), value.clone());
    }
    for (name, value) in m.message_attributes().into_iter().flatten() {
        let mut a = SqsMessageAttribute::default();
        a.string_value = value.string_value().map(str::to_owned);
        a.data_type = Some(value.data_type().to_owned());
        record.message_attributes.insert(name.clone(), a);
    }
    record
}

fn receive_count(m: &Message) -> Option<&str> {
    m.attributes().and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount)).map(String::as_str)
}

#[tokio::test]
async fn a_queued_stage_change_becomes_an_invited_candidate_and_one_email() {
    let story = Story::new().await;
    let event_id = story.accept_stage_change().await;

    let messages = story.wait_for_messages(Duration::from_secs(5)).await;
    assert_eq!(messages.len(), 1);
    let failed = story.run_processor_once(messages).await;

    assert!(failed.is_empty());
    let entry = story.outcome(&event_id).await;
    assert_eq!(entry.outcome, Outcome::Invited);
    let record = story.candidate().await.expect("the candidate is stored in DynamoDB");
    assert_eq!(entry.candidate_id.as_ref(), Some(&record.candidate_id));
    assert_eq!(record.status, CandidateStatus::Invited);
    assert_eq!(record.email.as_str(), story.candidate_email);
    assert_eq!(record.approver_email.as_str(), "rae@acme.example");
    assert_eq!(record.invite_email.status, InviteEmailStatus::Sent);
    assert!(record.invite_email.message_id.is_some());
    story.assert_one_invitation_email().await;
    assert_eq!(story.sim.calls_to("candidate.info"), 1);
    assert!(story.env.receive_all().await.is_empty(), "the handled message was deleted");
}

#[tokio::test]
async fn ses_failing_once_after_the_candidate_was_stored_sends_exactly_one_email_on_the_redelivery() {
    let mut story = Story::new().await;
    story.deps.mailer = Arc::new(story.unreachable_ses());
    let event_id = story.accept_stage_change().await;

    let first = story.wait_for_messages(Duration::from_secs(5)).await;
    assert_eq!(first.len(), 1);
    let failed = story.run_processor_once(first.clone()).await;
    assert_eq!(failed, vec![first[0].message_id().unwrap().to_owned()]);
    let entry = story.outcome(&event_id).await;
    assert_eq!((entry.outcome, entry.reason), (Outcome::Retrying, Some(Reason::EmailDeliveryFailed)));
    let stored = story.candidate().await.expect("the candidate was stored before the send");
    assert_eq!(stored.invite_email.status, InviteEmailStatus::Pending);
    assert!(story.env.sent_emails_to(&story.candidate_email).await.is_empty());

    story.deps.mailer = Arc::new(story.env.ses_mailer());
    // The processor set a back-off of a few seconds on the message itself (not the queue's 30 s).
    let waited = Instant::now();
    let second = story.wait_for_messages(Duration::from_secs(15)).await;
    assert_eq!(second.len(), 1, "the message came back after its back-off");
    assert!(waited.elapsed() < Duration::from_secs(15));
    assert_eq!(receive_count(&second[0]), Some("2"));
    let failed = story.run_processor_once(second).await;

    assert!(failed.is_empty());
    assert_eq!(story.outcome(&event_id).await.outcome, Outcome::Invited);
    assert_eq!(story.candidate().await.unwrap().invite_email.status, InviteEmailStatus::Sent);
    story.assert_one_invitation_email().await;
}
