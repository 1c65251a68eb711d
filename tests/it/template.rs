//! The code against the resources `template.yaml` declares: `infra/scripts/check-template.sh`
//! translates the template, creates the stack in moto and runs this module with the stack's table
//! and queue (`STACK_TABLE_NAME`, `STACK_QUEUE_URL`). A key, index, attribute or redrive setting on
//! which the template and the adapters disagree fails here.

use std::time::Duration;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use chrono::{TimeZone, Utc};
use reimbi_shared::adapters::dynamo::DynamoStore;
use reimbi_shared::adapters::sqs::SqsEventQueue;
use reimbi_shared::config::DEFAULT_MAX_RECEIVE_COUNT;
use reimbi_shared::domain::*;
use reimbi_shared::ports::{
    CandidateStore, EventLog, EventQueue, QueuedEvent, Redelivery, SettingsStore, WebhookStore, queue_attributes,
};

/// A variable the script sets; missing means the test was run without the stack, which must fail.
fn stack_var(name: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!("{name} is not set: run `bash infra/scripts/check-template.sh`, which creates the stack in moto and runs this test")
    })
}

async fn aws() -> aws_config::SdkConfig {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| panic!("AWS_ENDPOINT_URL must point at moto"));
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    assert_eq!(config.endpoint_url(), Some(endpoint.as_str()), "the SDK must talk to moto, not AWS");
    config
}

fn unique_company() -> CompanyId {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    CompanyId::parse(&format!("tpl-{nanos}")).unwrap()
}

fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

fn event_entry(company: &CompanyId, id: &str, received_at: Timestamp) -> EventLogEntry {
    EventLogEntry {
        company_id: company.clone(),
        event_id: EventId::parse(id).unwrap(),
        received_at,
        action: "candidateStageChange".into(),
        ashby_candidate_id: Some("ashby-cand-1".into()),
        outcome: Outcome::Accepted,
        reason: None,
        candidate_id: None,
        updated_at: received_at,
    }
}

#[tokio::test]
#[ignore = "needs the stack infra/scripts/check-template.sh creates in moto; the script runs it with --ignored"]
async fn the_dynamo_store_works_on_the_table_the_template_creates() {
    let table = stack_var("STACK_TABLE_NAME");
    let config = aws().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), table);
    let company = unique_company();
    let t0 = Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap();

    let mut settings = IntegrationSettings::unconfigured(company.clone());
    settings.backup_approver_email = Some(email("ops@acme.example"));
    settings.updated_at = Some(t0);
    settings.revision = 1;
    store.save_settings(&settings).await.unwrap();
    assert_eq!(store.get_settings(&company).await.unwrap(), Some(settings));

    // Event listings go through the gsi1 index, newest first.
    let older = event_entry(&company, "evt-older", t0);
    let newer = event_entry(&company, "evt-newer", t0 + chrono::Duration::minutes(5));
    assert!(store.insert_if_absent(&older).await.unwrap());
    assert!(store.insert_if_absent(&newer).await.unwrap());
    assert!(!store.insert_if_absent(&newer).await.unwrap(), "a redelivery keeps the existing entry");
    let update = OutcomeUpdate { outcome: Outcome::Invited, reason: None, candidate_id: None, at: t0 };
    store.set_outcome(&company, &older.event_id, &update).await.unwrap();
    let page = store.list_events(&company, 10, None).await.unwrap();
    let listed: Vec<(&str, Outcome)> = page.items.iter().map(|e| (e.event_id.as_str(), e.outcome)).collect();
    assert_eq!(listed, [("evt-newer", Outcome::Accepted), ("evt-older", Outcome::Invited)]);

    // Candidates use the same index under their own partition.
    let candidate = CandidateRecord {
        candidate_id: CandidateId::for_ashby_candidate(&company, "ashby-cand-1"),
        company_id: company.clone(),
        status: CandidateStatus::Invited,
        name: "Jane Doe".into(),
        email: email("jane@example.com"),
        ashby_candidate_id: "ashby-cand-1".into(),
        ashby_application_id: "ashby-app-1".into(),
        policy_id: PolicyId::parse("onsite").unwrap(),
        policy_name: "Onsite Interview".into(),
        approver_email: email("rae@acme.example"),
        approver_source: ApproverSource::Backup,
        invited_at: t0,
        invite_email: InviteEmail {
            status: InviteEmailStatus::Pending,
            message_id: None,
            lease_until: None,
            sent_at: None,
        },
        source_event_id: older.event_id.clone(),
    };
    let (_, created) = store.create_if_absent(&candidate).await.unwrap();
    assert!(created);
    let listed = store.list_candidates(&company, 10, None).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].candidate_id, candidate.candidate_id);

    // A replaced credential carries the TTL attribute; it must still be readable until then.
    let credential = WebhookCredential {
        webhook_id: WebhookId::generate(),
        company_id: company.clone(),
        created_at: t0,
        expires_at: Some(t0 + chrono::Duration::hours(24)),
    };
    store.put_webhook(&credential).await.unwrap();
    assert_eq!(store.get_webhook(&credential.webhook_id).await.unwrap(), Some(credential));
}

#[tokio::test]
#[ignore = "needs the stack infra/scripts/check-template.sh creates in moto; the script runs it with --ignored"]
async fn the_sqs_queue_the_template_creates_carries_events_and_dead_letters_after_max_receive_count() {
    let queue_url = stack_var("STACK_QUEUE_URL");
    let config = aws().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue = SqsEventQueue::new(sqs.clone(), queue_url.clone());
    let company = unique_company();
    let event = QueuedEvent {
        event_id: EventId::parse("evt-template-queue").unwrap(),
        company_id: company.clone(),
        webhook_id: WebhookId::generate(),
        received_at: Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap(),
        body: r#"{"webhookActionId":"wa-1","action":"candidateStageChange","data":{}}"#.into(),
    };
    queue.enqueue(&event).await.unwrap();

    // Receive it as the event source mapping would, giving it back at once each time (the
    // processor's back-off with zero delay), until SQS stops handing it out.
    let mut receives = 0u32;
    loop {
        let out = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .unwrap();
        let Some(message) =
            out.messages().iter().find(|m| attribute(m, queue_attributes::COMPANY_ID) == company.as_str())
        else {
            break;
        };
        receives += 1;
        assert!(receives <= DEFAULT_MAX_RECEIVE_COUNT, "the queue redelivered more often than MAX_RECEIVE_COUNT");
        assert_eq!(message.body(), Some(event.body.as_str()));
        assert_eq!(attribute(message, queue_attributes::EVENT_ID), event.event_id.as_str());
        assert_eq!(attribute(message, queue_attributes::WEBHOOK_ID), event.webhook_id.as_str());
        let count = message.attributes().and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount));
        assert_eq!(count.map(String::as_str), Some(receives.to_string().as_str()));
        queue.redeliver_after(message.receipt_handle().unwrap(), Duration::ZERO).await.unwrap();
    }
    assert_eq!(
        receives, DEFAULT_MAX_RECEIVE_COUNT,
        "the processor's MAX_RECEIVE_COUNT must equal the redrive policy's"
    );

    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .unwrap();
    let redrive: serde_json::Value =
        serde_json::from_str(attrs.attributes().unwrap().get(&QueueAttributeName::RedrivePolicy).unwrap()).unwrap();
    let dlq_name = redrive["deadLetterTargetArn"].as_str().unwrap().rsplit(':').next().unwrap().to_owned();
    let dlq_url = sqs.get_queue_url().queue_name(dlq_name).send().await.unwrap().queue_url().unwrap().to_owned();
    let dead = sqs
        .receive_message()
        .queue_url(&dlq_url)
        .max_number_of_messages(10)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap();
    assert!(
        dead.messages().iter().any(|m| attribute(m, queue_attributes::COMPANY_ID) == company.as_str()),
        "the event must be in the dead-letter queue"
    );
}

fn attribute<'a>(message: &'a aws_sdk_sqs::types::Message, name: &str) -> &'a str {
    message.message_attributes().and_then(|a| a.get(name)).and_then(|v| v.string_value()).unwrap_or_default()
}
