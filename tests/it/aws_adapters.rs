//! The AWS adapters against moto: the real SDK and wire protocol. The store behaviours every
//! implementation shares (conditional writes, leases, pagination, cursors) are the conformance
//! suite, run here on DynamoDB; this file adds what only the AWS side has (item TTLs, message
//! attributes, visibility, secret versions, raw email).

use std::time::Duration;

use chrono::{TimeZone, Utc};
use reimbi_shared::adapters::mime;
use reimbi_shared::domain::*;
use reimbi_shared::ports::*;
use secrecy::{ExposeSecret, SecretString};

use crate::harness::{AwsEnv, unique};

fn company() -> CompanyId {
    CompanyId::parse(&unique("acme")).unwrap()
}

fn at(secs: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap() + chrono::Duration::seconds(secs)
}

#[tokio::test]
async fn a_replaced_webhook_credential_keeps_its_expiry_and_gets_a_ttl() {
    let env = AwsEnv::new().await;
    let store = env.dynamo_store();
    let mut cred = WebhookCredential {
        webhook_id: WebhookId::generate(),
        company_id: company(),
        created_at: at(0),
        expires_at: None,
    };
    store.put_webhook(&cred).await.unwrap();
    assert_eq!(store.get_webhook(&cred.webhook_id).await.unwrap(), Some(cred.clone()));

    cred.expires_at = Some(at(86_400));
    store.put_webhook(&cred).await.unwrap();
    assert_eq!(store.get_webhook(&cred.webhook_id).await.unwrap(), Some(cred.clone()));
    let raw = env.raw_item(&format!("WEBHOOK#{}", cred.webhook_id), "WEBHOOK").await;
    let ttl: i64 = raw["ttl"].as_n().unwrap().parse().unwrap();
    assert_eq!(ttl, (at(86_400) + chrono::Duration::days(7)).timestamp());
    assert_eq!(store.get_webhook(&WebhookId::generate()).await.unwrap(), None);
}

#[tokio::test]
async fn an_invite_token_is_stored_under_its_hash_with_a_ttl() {
    let env = AwsEnv::new().await;
    let c = company();
    let token = InviteToken {
        token_hash: "ab".repeat(32),
        company_id: c.clone(),
        candidate_id: CandidateId::for_ashby_candidate(&c, "ashby-1"),
        expires_at: at(3600),
    };
    env.dynamo_store().put_invite_token(&token).await.unwrap();
    let item = env.raw_item(&format!("INVITE#{}", token.token_hash), "INVITE").await;
    assert_eq!(item["ttl"].as_n().unwrap(), &at(3600).timestamp().to_string());
    assert_eq!(item["candidateId"].as_s().unwrap(), token.candidate_id.as_str());
}

fn queued(body: &str) -> QueuedEvent {
    let c = company();
    QueuedEvent {
        event_id: EventId::derive(&c, Some("a-1"), body.as_bytes()),
        company_id: c,
        webhook_id: WebhookId::generate(),
        received_at: at(0),
        body: body.into(),
    }
}

#[tokio::test]
async fn an_enqueued_event_is_on_the_queue_with_its_four_attributes() {
    let env = AwsEnv::new().await;
    let event = queued(r#"{"webhookActionId":"a-1","action":"candidateStageChange","data":{}}"#);
    env.sqs_queue().enqueue(&event).await.unwrap();

    let messages = env.receive_all().await;
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m.body(), Some(event.body.as_str()));
    let attrs = m.message_attributes().unwrap();
    let attr = |name: &str| {
        let v = &attrs[name];
        assert_eq!(v.data_type(), "String", "{name}");
        v.string_value().unwrap().to_owned()
    };
    assert_eq!(attr(queue_attributes::EVENT_ID), event.event_id.as_str());
    assert_eq!(attr(queue_attributes::COMPANY_ID), event.company_id.as_str());
    assert_eq!(attr(queue_attributes::WEBHOOK_ID), event.webhook_id.as_str());
    let received_at = chrono::DateTime::parse_from_rfc3339(&attr(queue_attributes::RECEIVED_AT)).unwrap();
    assert_eq!(received_at, event.received_at);
}

#[tokio::test]
async fn redeliver_after_brings_a_received_message_back_after_the_delay() {
    let env = AwsEnv::new().await;
    let queue = env.sqs_queue();
    queue.enqueue(&queued("{}")).await.unwrap();
    let first = env.receive_all().await;
    assert_eq!(first.len(), 1);
    // Without the change the message would stay hidden for the queue's 30 s timeout.
    queue.redeliver_after(first[0].receipt_handle().unwrap(), Duration::from_secs(2)).await.unwrap();
    assert!(env.receive_all().await.is_empty(), "the message must stay invisible during the delay");

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let again = env.receive_all().await;
    assert_eq!(again.len(), 1, "the message must come back after the delay");
    assert_eq!(again[0].message_id(), first[0].message_id());
    let count = again[0].attributes().unwrap()
        [&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount]
        .clone();
    assert_eq!(count, "2");
    // SQS refuses more than 12 h; the adapter clamps instead of failing the processor.
    queue.redeliver_after(again[0].receipt_handle().unwrap(), Duration::from_secs(48 * 3600)).await.unwrap();
}

#[tokio::test]
async fn secrets_are_created_overwritten_and_missing_ones_read_as_none() {
    let env = AwsEnv::new().await;
    let store = env.secret_store();
    let key = SecretRef::AshbyApiKey(company());
    let signing = SecretRef::WebhookSigning(WebhookId::generate());
    assert!(store.get_secret(&key).await.unwrap().is_none());

    store.put_secret(&key, &SecretString::from("first-key")).await.unwrap();
    store.put_secret(&signing, &SecretString::from("signing")).await.unwrap();
    assert_eq!(store.get_secret(&key).await.unwrap().unwrap().expose_secret(), "first-key");

    store.put_secret(&key, &SecretString::from("second-key")).await.unwrap();
    assert_eq!(store.get_secret(&key).await.unwrap().unwrap().expose_secret(), "second-key");
    assert_eq!(store.get_secret(&signing).await.unwrap().unwrap().expose_secret(), "signing");

    // Stored under the documented name, so IAM can tell signing secrets from API keys.
    let name = format!(
        "{}webhook-signing/{}",
        env.secrets_prefix,
        match &signing {
            SecretRef::WebhookSigning(id) => id.as_str(),
            SecretRef::AshbyApiKey(_) => unreachable!(),
        }
    );
    let direct = env.secrets_client().get_secret_value().secret_id(name).send().await.unwrap();
    assert_eq!(direct.secret_string(), Some("signing"));
}

#[tokio::test]
async fn ses_sends_a_raw_message_with_both_parts() {
    let env = AwsEnv::new().await;
    let to = format!("{}@example.com", unique("jane"));
    let email = OutgoingEmail {
        from: EmailAddress::parse(&env.sender).unwrap(),
        to: EmailAddress::parse(&to).unwrap(),
        to_name: "Jane Doe".into(),
        subject: "Your interview expenses with Acme".into(),
        text: "Hi Jane,\nset up your account.".into(),
        html: "<p>Hi Jane,</p><p>set up your account.</p>".into(),
    };
    let message_id = env.ses_mailer().send(&email).await.unwrap();
    assert!(!message_id.is_empty());

    let sent = env.sent_emails_to(&to).await;
    assert_eq!(sent.len(), 1, "exactly one email to {to}");
    let raw = &sent[0];
    assert_eq!(mime::part(raw, "text/plain").as_deref(), Some(email.text.as_str()));
    assert_eq!(mime::part(raw, "text/html").as_deref(), Some(email.html.as_str()));
    assert!(raw.contains(&format!("Subject: {}", email.subject)));
    assert!(raw.contains("Message-ID: <"));
}

#[tokio::test]
async fn ses_refuses_an_unverified_sender_as_rejected() {
    let env = AwsEnv::new().await;
    let email = OutgoingEmail {
        from: EmailAddress::parse(&format!("{}@unverified.example", unique("nobody"))).unwrap(),
        to: EmailAddress::parse("jane@example.com").unwrap(),
        to_name: "Jane".into(),
        subject: "s".into(),
        text: "t".into(),
        html: "h".into(),
    };
    assert!(matches!(env.ses_mailer().send(&email).await, Err(MailError::Rejected(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dynamo_store_meets_the_store_conformance_checks() {
    let env = AwsEnv::new().await;
    let store = env.dynamo_store();
    crate::store_conformance::run_all(&store, &store, &store, &store).await;
}
