//! The AWS adapters against moto: the real SDK and wire protocol, the behaviours the
//! functions rely on (conditional writes, leases, pagination, message attributes, visibility,
//! secret versions, raw email).

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

fn event(company: &CompanyId, n: u32, received_at: Timestamp) -> EventLogEntry {
    EventLogEntry {
        company_id: company.clone(),
        event_id: EventId::derive(company, Some(&format!("action-{n}")), b"{}"),
        received_at,
        action: ACTION_STAGE_CHANGE.into(),
        ashby_candidate_id: Some(format!("ashby-{n}")),
        outcome: Outcome::Accepted,
        reason: None,
        candidate_id: None,
        updated_at: received_at,
    }
}

fn candidate(company: &CompanyId, ashby_id: &str, invited_at: Timestamp) -> CandidateRecord {
    CandidateRecord {
        candidate_id: CandidateId::for_ashby_candidate(company, ashby_id),
        company_id: company.clone(),
        status: CandidateStatus::Invited,
        name: "Jane Doe".into(),
        email: EmailAddress::parse("jane@example.com").unwrap(),
        ashby_candidate_id: ashby_id.into(),
        ashby_application_id: format!("app-{ashby_id}"),
        policy_id: PolicyId::parse("onsite").unwrap(),
        policy_name: "Onsite Interview".into(),
        approver_email: EmailAddress::parse("rae@acme.example").unwrap(),
        approver_source: ApproverSource::HiringTeam,
        invited_at,
        invite_email: InviteEmail {
            status: InviteEmailStatus::Pending,
            message_id: None,
            lease_until: None,
            sent_at: None,
        },
        source_event_id: EventId::derive(company, Some(ashby_id), b"{}"),
    }
}

#[tokio::test]
async fn a_settings_save_against_a_stale_revision_conflicts_and_writes_nothing() {
    let env = AwsEnv::new().await;
    let store = env.dynamo_store();
    let c = company();
    assert_eq!(store.get_settings(&c).await.unwrap(), None);

    let mut first = IntegrationSettings::unconfigured(c.clone());
    first.revision = 1;
    first.backup_approver_email = Some(EmailAddress::parse("ops@acme.example").unwrap());
    first.updated_at = Some(Utc::now());
    store.save_settings(&first).await.unwrap();
    assert!(matches!(store.save_settings(&first).await, Err(StoreError::Conflict)), "a second first save must lose");

    let mut second = first.clone();
    second.revision = 2;
    second.enabled = true;
    second.approver_role = Some(ApproverRole::HiringTeam);
    second.hiring_team_role = Some("Recruiter".into());
    second.api_key_hint = Some("…x7Qa".into());
    second.current_webhook_id = Some(WebhookId::generate());
    second.webhook_secret_created_at = Some(Utc::now());
    store.save_settings(&second).await.unwrap();

    let mut stale = first.clone();
    stale.revision = 2;
    stale.trigger_field_title = "Lost update".into();
    assert!(matches!(store.save_settings(&stale).await, Err(StoreError::Conflict)));
    assert_eq!(store.get_settings(&c).await.unwrap(), Some(second));
}

#[tokio::test]
async fn policies_and_staff_round_trip_and_list_in_key_order() {
    let env = AwsEnv::new().await;
    let store = env.dynamo_store();
    let c = company();
    let policy = |id: &str, approver: Option<&str>| Policy {
        company_id: c.clone(),
        policy_id: PolicyId::parse(id).unwrap(),
        name: format!("Policy {id}"),
        enabled: true,
        submission_guidelines: String::new(),
        default_approver_email: approver.map(|a| EmailAddress::parse(a).unwrap()),
        updated_at: Utc::now(),
    };
    let (b, a) = (policy("travel", None), policy("onsite", Some("pat@acme.example")));
    store.put_policy(&b).await.unwrap();
    store.put_policy(&a).await.unwrap();
    assert_eq!(store.list_policies(&c).await.unwrap(), vec![a.clone(), b.clone()]);
    assert_eq!(store.get_policy(&c, &a.policy_id).await.unwrap(), Some(a));
    assert_eq!(store.list_policies(&company()).await.unwrap(), vec![]);

    let member = |email: &str| StaffMember {
        company_id: c.clone(),
        email: EmailAddress::parse(email).unwrap(),
        name: email.into(),
        can_approve: true,
        updated_at: Utc::now(),
    };
    let (zed, amy) = (member("zed@acme.example"), member("amy@acme.example"));
    store.put_staff(&zed).await.unwrap();
    store.put_staff(&amy).await.unwrap();
    assert_eq!(store.list_staff(&c).await.unwrap(), vec![amy.clone(), zed]);
    assert_eq!(store.get_staff(&c, &amy.email).await.unwrap(), Some(amy));
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
    let raw = env
        .dynamo_client()
        .get_item()
        .table_name(&env.table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("WEBHOOK#{}", cred.webhook_id)))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("WEBHOOK".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let ttl: i64 = raw["ttl"].as_n().unwrap().parse().unwrap();
    assert_eq!(ttl, (at(86_400) + chrono::Duration::days(7)).timestamp());
    assert_eq!(store.get_webhook(&WebhookId::generate()).await.unwrap(), None);
}

#[tokio::test]
async fn an_event_is_recorded_once_and_its_outcome_updated_in_place() {
    let env = AwsEnv::new().await;
    let store = env.dynamo_store();
    let c = company();
    let entry = event(&c, 1, at(0));
    assert!(store.insert_if_absent(&entry).await.unwrap());
    let mut again = entry.clone();
    again.outcome = Outcome::Ignored;
    assert!(!store.insert_if_absent(&again).await.unwrap(), "the second insert must not record");
    assert_eq!(store.get_event(&c, &entry.event_id).await.unwrap(), Some(entry.clone()));

    let cand = CandidateId::for_ashby_candidate(&c, "ashby-1");
    let update = OutcomeUpdate { outcome: Outcome::Invited, reason: None, candidate_id: Some(cand.clone()), at: at(5) };
    store.set_outcome(&c, &entry.event_id, &update).await.unwrap();
    let stored = store.get_event(&c, &entry.event_id).await.unwrap().unwrap();
    assert_eq!(
        (stored.outcome, stored.reason, stored.candidate_id, stored.updated_at),
        (Outcome::Invited, None, Some(cand), at(5))
    );
    assert_eq!(stored.received_at, entry.received_at);

    let missing = event(&c, 2, at(1));
    store.set_outcome(&c, &missing.event_id, &update).await.unwrap();
    assert_eq!(store.get_event(&c, &missing.event_id).await.unwrap(), None, "set_outcome must not create an entry");
}

#[tokio::test]
async fn a_ping_upsert_replaces_the_entry() {
    let env = AwsEnv::new().await;
    let store = env.dynamo_store();
    let c = company();
    let mut ping = event(&c, 1, at(0));
    ping.action = ACTION_PING.into();
    ping.outcome = Outcome::Ignored;
    store.upsert(&ping).await.unwrap();
    ping.received_at = at(60);
    ping.updated_at = at(60);
    store.upsert(&ping).await.unwrap();
    assert_eq!(store.get_event(&c, &ping.event_id).await.unwrap(), Some(ping.clone()));
    assert_eq!(store.list_events(&c, 10, None).await.unwrap().items, vec![ping]);
}

#[tokio::test]
async fn events_list_newest_first_across_pages() {
    let env = AwsEnv::new().await;
    let store = env.dynamo_store();
    let c = company();
    let entries: Vec<EventLogEntry> = (0..5).map(|n| event(&c, n, at(n as i64 * 10))).collect();
    // Inserted out of order: the listing orders by time, not by write order.
    for i in [3, 0, 4, 1, 2] {
        assert!(store.insert_if_absent(&entries[i]).await.unwrap());
    }
    store.insert_if_absent(&event(&company(), 9, at(100))).await.unwrap();

    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = store.list_events(&c, 2, cursor.as_deref()).await.unwrap();
        pages += 1;
        seen.extend(page.items.into_iter().map(|e| e.event_id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let newest_first: Vec<EventId> = entries.iter().rev().map(|e| e.event_id.clone()).collect();
    assert_eq!(seen, newest_first);
    assert_eq!(pages, 3, "five entries in pages of two, and no empty last page");
}

#[tokio::test]
async fn a_cursor_that_this_listing_did_not_issue_is_refused() {
    let env = AwsEnv::new().await;
    let store = env.dynamo_store();
    let (c, other) = (company(), company());
    for n in 0..3 {
        store.insert_if_absent(&event(&c, n, at(n as i64))).await.unwrap();
        store.insert_if_absent(&event(&other, n, at(n as i64))).await.unwrap();
    }
    for garbage in ["garbage", "e30", "!!"] {
        assert!(matches!(store.list_events(&c, 2, Some(garbage)).await, Err(StoreError::InvalidCursor)), "{garbage}");
    }
    let foreign = store.list_events(&other, 1, None).await.unwrap().next_cursor.unwrap();
    assert!(matches!(store.list_events(&c, 2, Some(&foreign)).await, Err(StoreError::InvalidCursor)));
    assert!(matches!(store.list_candidates(&other, 2, Some(&foreign)).await, Err(StoreError::InvalidCursor)));
}

#[tokio::test]
async fn create_if_absent_returns_the_record_stored_first() {
    let env = AwsEnv::new().await;
    let store = env.dynamo_store();
    let c = company();
    let first = candidate(&c, "ashby-1", at(0));
    assert_eq!(store.create_if_absent(&first).await.unwrap(), (first.clone(), true));

    let mut second = first.clone();
    second.name = "Someone Else".into();
    second.invited_at = at(99);
    assert_eq!(store.create_if_absent(&second).await.unwrap(), (first.clone(), false));
    assert_eq!(store.get_candidate(&c, &first.candidate_id).await.unwrap(), Some(first));
}

#[tokio::test]
async fn candidates_list_newest_first_across_pages() {
    let env = AwsEnv::new().await;
    let store = env.dynamo_store();
    let c = company();
    let records: Vec<CandidateRecord> = (0..3).map(|n| candidate(&c, &format!("ashby-{n}"), at(n))).collect();
    for r in &records {
        store.create_if_absent(r).await.unwrap();
    }
    let p1 = store.list_candidates(&c, 2, None).await.unwrap();
    assert_eq!(p1.items, vec![records[2].clone(), records[1].clone()]);
    let p2 = store.list_candidates(&c, 2, p1.next_cursor.as_deref()).await.unwrap();
    assert_eq!((p2.items, p2.next_cursor), (vec![records[0].clone()], None));
}

#[tokio::test]
async fn only_one_of_two_racing_claims_wins() {
    let env = AwsEnv::new().await;
    let (a, b) = (env.dynamo_store(), env.dynamo_store());
    let c = company();
    let record = candidate(&c, "ashby-1", at(0));
    a.create_if_absent(&record).await.unwrap();
    let id = &record.candidate_id;
    let (x, y) = tokio::join!(a.claim_invitation(&c, id, at(1), at(61)), b.claim_invitation(&c, id, at(1), at(61)));
    assert!(x.unwrap() ^ y.unwrap(), "exactly one claim must win");
    let stored = a.get_candidate(&c, id).await.unwrap().unwrap();
    assert_eq!(
        (stored.invite_email.status, stored.invite_email.lease_until),
        (InviteEmailStatus::Sending, Some(at(61)))
    );
}

#[tokio::test]
async fn a_lapsed_lease_lets_another_claim_win_and_a_sent_invitation_cannot_be_claimed() {
    let env = AwsEnv::new().await;
    let store = env.dynamo_store();
    let c = company();
    let record = candidate(&c, "ashby-1", at(0));
    store.create_if_absent(&record).await.unwrap();
    let id = &record.candidate_id;
    assert!(store.claim_invitation(&c, id, at(0), at(60)).await.unwrap());
    assert!(!store.claim_invitation(&c, id, at(30), at(90)).await.unwrap(), "the lease is still live");
    assert!(store.claim_invitation(&c, id, at(61), at(121)).await.unwrap(), "the lease lapsed");

    store.mark_invitation_sent(&c, id, "ses-1", at(62)).await.unwrap();
    store.release_invitation(&c, id).await.unwrap();
    let sent = store.get_candidate(&c, id).await.unwrap().unwrap().invite_email;
    assert_eq!(
        sent,
        InviteEmail {
            status: InviteEmailStatus::Sent,
            message_id: Some("ses-1".into()),
            lease_until: None,
            sent_at: Some(at(62))
        }
    );
    assert!(!store.claim_invitation(&c, id, at(10_000), at(10_060)).await.unwrap());
    assert!(!store.claim_invitation(&c, &CandidateId::for_ashby_candidate(&c, "nobody"), at(0), at(60)).await.unwrap());
}

#[tokio::test]
async fn a_released_claim_can_be_claimed_again_at_once() {
    let env = AwsEnv::new().await;
    let store = env.dynamo_store();
    let c = company();
    let record = candidate(&c, "ashby-1", at(0));
    store.create_if_absent(&record).await.unwrap();
    let id = &record.candidate_id;
    assert!(store.claim_invitation(&c, id, at(0), at(60)).await.unwrap());
    store.release_invitation(&c, id).await.unwrap();
    let released = store.get_candidate(&c, id).await.unwrap().unwrap().invite_email;
    assert_eq!((released.status, released.lease_until), (InviteEmailStatus::Pending, None));
    assert!(store.claim_invitation(&c, id, at(1), at(61)).await.unwrap());
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
    let item = env
        .dynamo_client()
        .get_item()
        .table_name(&env.table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("INVITE#{}", token.token_hash)))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("INVITE".into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("the token is stored");
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
