//! Behaviour of the embedded adapters that the shared store conformance checks do not cover:
//! persistence across a restart, file permissions, the queue's delivery semantics, races.

use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone as _;
use secrecy::{ExposeSecret as _, SecretString};

use super::*;
use crate::domain::*;
use crate::ports::*;

fn t0() -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap()
}

fn company(name: &str) -> CompanyId {
    CompanyId::parse(name).unwrap()
}

fn event(company_id: &CompanyId, n: u32, at: Timestamp) -> EventLogEntry {
    EventLogEntry {
        company_id: company_id.clone(),
        event_id: EventId::parse(&format!("evt_{n}")).unwrap(),
        received_at: at,
        action: ACTION_STAGE_CHANGE.to_owned(),
        ashby_candidate_id: Some(format!("ashby-{n}")),
        outcome: Outcome::Accepted,
        reason: None,
        candidate_id: None,
        updated_at: at,
    }
}

fn candidate(company_id: &CompanyId, ashby_id: &str) -> CandidateRecord {
    CandidateRecord {
        candidate_id: CandidateId::for_ashby_candidate(company_id, ashby_id),
        company_id: company_id.clone(),
        status: CandidateStatus::Invited,
        name: "Jane Doe".into(),
        email: EmailAddress::parse("jane@example.com").unwrap(),
        ashby_candidate_id: ashby_id.into(),
        ashby_application_id: "app-1".into(),
        policy_id: PolicyId::parse("onsite").unwrap(),
        policy_name: "Onsite Interview".into(),
        approver_email: EmailAddress::parse("rae@acme.example").unwrap(),
        approver_source: ApproverSource::HiringTeam,
        invited_at: t0(),
        invite_email: InviteEmail {
            status: InviteEmailStatus::Pending,
            message_id: None,
            lease_until: None,
            sent_at: None,
        },
        source_event_id: EventId::parse("evt_1").unwrap(),
    }
}

fn queued(n: u32) -> QueuedEvent {
    QueuedEvent {
        event_id: EventId::parse(&format!("evt_{n}")).unwrap(),
        company_id: company("acme"),
        webhook_id: WebhookId::parse("wh_test").unwrap(),
        received_at: t0(),
        body: format!("{{\"n\":{n}}}"),
    }
}

fn email() -> OutgoingEmail {
    OutgoingEmail {
        from: EmailAddress::parse("invites@reimbi.example").unwrap(),
        to: EmailAddress::parse("jane@example.com").unwrap(),
        to_name: "Jane Doe".into(),
        subject: "Welcome to Reimbi".into(),
        text: "Hello Jane".into(),
        html: "<p>Hello Jane</p>".into(),
    }
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn store_records_survive_closing_and_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("reimbi.redb");
    let acme = company("acme");
    {
        let store = EmbeddedStore::open(&path).unwrap();
        let mut settings = IntegrationSettings::unconfigured(acme.clone());
        settings.revision = 1;
        settings.enabled = true;
        store.save_settings(&settings).await.unwrap();
        assert!(store.insert_if_absent(&event(&acme, 1, t0())).await.unwrap());
        store.create_if_absent(&candidate(&acme, "c1")).await.unwrap();
    }
    let store = EmbeddedStore::open(&path).unwrap();
    let settings = store.get_settings(&acme).await.unwrap().unwrap();
    assert!(settings.enabled);
    assert_eq!(settings.revision, 1);
    assert_eq!(store.list_events(&acme, 10, None).await.unwrap().items, vec![event(&acme, 1, t0())]);
    assert_eq!(store.list_candidates(&acme, 10, None).await.unwrap().items.len(), 1);
}

#[tokio::test]
async fn a_garbage_cursor_is_refused() {
    let store = EmbeddedStore::in_memory();
    for bad in ["%%%", "bm90LWEta2V5", ""] {
        let err = store.list_events(&company("acme"), 10, Some(bad)).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidCursor), "{bad}: {err:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_of_many_concurrent_claims_wins() {
    let store = EmbeddedStore::in_memory();
    let acme = company("acme");
    let record = candidate(&acme, "c1");
    store.create_if_absent(&record).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        let (acme, id) = (acme.clone(), record.candidate_id.clone());
        tasks.push(tokio::spawn(async move {
            store.claim_invitation(&acme, &id, t0(), t0() + chrono::Duration::seconds(60)).await.unwrap()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_saves_of_the_same_revision_conflict_but_one() {
    let store = EmbeddedStore::in_memory();
    let mut tasks = Vec::new();
    for n in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = IntegrationSettings::unconfigured(company("acme"));
            s.revision = 1;
            s.hiring_team_role = Some(format!("role {n}"));
            store.save_settings(&s).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::Conflict) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn secret_files_are_readable_by_their_owner_only_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let secrets_dir = dir.path().join("secrets");
    let key = SecretRef::AshbyApiKey(company("acme"));
    let signing = SecretRef::WebhookSigning(WebhookId::parse("wh_abc").unwrap());
    {
        let store = EmbeddedSecretStore::open(&secrets_dir).unwrap();
        store.put_secret(&key, &SecretString::from("first".to_owned())).await.unwrap();
        store.put_secret(&key, &SecretString::from("second".to_owned())).await.unwrap();
        store.put_secret(&signing, &SecretString::from("whsec".to_owned())).await.unwrap();
    }
    assert_eq!(mode(&secrets_dir), 0o700);
    let files: Vec<_> = std::fs::read_dir(&secrets_dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 2, "no temporary files are left behind: {files:?}");
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    let store = EmbeddedSecretStore::open(&secrets_dir).unwrap();
    assert_eq!(store.get_secret(&key).await.unwrap().unwrap().expose_secret(), "second");
    assert_eq!(store.get_secret(&signing).await.unwrap().unwrap().expose_secret(), "whsec");
    assert!(store.get_secret(&SecretRef::AshbyApiKey(company("other"))).await.unwrap().is_none());
}

#[tokio::test]
async fn in_memory_secrets_are_kept_per_reference() {
    let store = EmbeddedSecretStore::in_memory();
    let a = SecretRef::AshbyApiKey(company("a"));
    let b = SecretRef::WebhookSigning(WebhookId::parse("a").unwrap());
    store.put_secret(&a, &SecretString::from("key".to_owned())).await.unwrap();
    assert_eq!(store.get_secret(&a).await.unwrap().unwrap().expose_secret(), "key");
    assert!(store.get_secret(&b).await.unwrap().is_none());
}

fn manual_queue() -> (Arc<ManualClock>, EmbeddedQueue) {
    let clock = Arc::new(ManualClock::new(t0()));
    let queue = EmbeddedQueue::in_memory(clock.clone()).with_limits(Duration::from_secs(30), 3);
    (clock, queue)
}

#[tokio::test]
async fn a_received_message_is_invisible_until_its_visibility_timeout_ends() {
    let (clock, queue) = manual_queue();
    queue.enqueue(&queued(1)).await.unwrap();
    assert_eq!(queue.next_visible_in(), Some(Duration::ZERO));
    let first = queue.receive(10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].receive_count, 1);
    assert_eq!(first[0].event, queued(1));
    assert!(queue.receive(10).await.unwrap().is_empty());
    assert_eq!(queue.len(), 1);
    assert_eq!(queue.next_visible_in(), Some(Duration::from_secs(30)));
    clock.advance(Duration::from_secs(29));
    assert!(queue.receive(10).await.unwrap().is_empty());
    clock.advance(Duration::from_secs(1));
    let second = queue.receive(10).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].receive_count, 2);
    assert_eq!(second[0].message_id, first[0].message_id);
    assert_ne!(second[0].receipt_handle, first[0].receipt_handle);
}

#[tokio::test]
async fn deleting_a_message_removes_it_but_a_stale_receipt_deletes_nothing() {
    let (clock, queue) = manual_queue();
    queue.enqueue(&queued(1)).await.unwrap();
    let stale = queue.receive(1).await.unwrap().remove(0);
    clock.advance(Duration::from_secs(30));
    let current = queue.receive(1).await.unwrap().remove(0);
    queue.delete(&stale.receipt_handle).await.unwrap();
    queue.delete("unknown#handle").await.unwrap();
    assert_eq!(queue.len(), 1);
    queue.delete(&current.receipt_handle).await.unwrap();
    assert_eq!(queue.len(), 0);
    assert!(queue.is_empty());
    assert_eq!(queue.next_visible_in(), None);
}

#[tokio::test]
async fn redeliver_after_sets_when_the_message_comes_back() {
    let (clock, queue) = manual_queue();
    queue.enqueue(&queued(1)).await.unwrap();
    let m = queue.receive(1).await.unwrap().remove(0);
    queue.redeliver_after(&m.receipt_handle, Duration::from_secs(5)).await.unwrap();
    assert_eq!(queue.next_visible_in(), Some(Duration::from_secs(5)));
    clock.advance(Duration::from_secs(4));
    assert!(queue.receive(1).await.unwrap().is_empty());
    clock.advance(Duration::from_secs(1));
    let again = queue.receive(1).await.unwrap().remove(0);
    assert_eq!(again.receive_count, 2);
    // The first receipt is stale now: changing its visibility does nothing.
    queue.redeliver_after(&m.receipt_handle, Duration::ZERO).await.unwrap();
    assert_eq!(queue.next_visible_in(), Some(Duration::from_secs(30)));
}

#[tokio::test]
async fn a_message_received_max_receives_times_goes_to_the_dead_letters() {
    let (clock, queue) = manual_queue();
    queue.enqueue(&queued(1)).await.unwrap();
    queue.enqueue(&queued(2)).await.unwrap();
    for attempt in 1..=3 {
        let got = queue.receive(10).await.unwrap();
        assert_eq!(got.len(), 2, "attempt {attempt}");
        assert!(got.iter().all(|m| m.receive_count == attempt));
        // The second message is handled on its last attempt.
        if attempt == 3 {
            queue.delete(&got.iter().find(|m| m.event == queued(2)).unwrap().receipt_handle).await.unwrap();
        }
        clock.advance(Duration::from_secs(30));
    }
    assert!(queue.receive(10).await.unwrap().is_empty());
    assert_eq!(queue.dead_letters(), vec![queued(1)]);
    assert_eq!(queue.len(), 0);
}

#[tokio::test]
async fn receive_hands_out_at_most_max_messages_oldest_first() {
    let (_clock, queue) = manual_queue();
    // Enqueued at the same instant: the order of enqueueing decides.
    for n in 1..=3 {
        queue.enqueue(&queued(n)).await.unwrap();
    }
    let got: Vec<_> = queue.receive(2).await.unwrap().into_iter().map(|m| m.event).collect();
    assert_eq!(got, vec![queued(1), queued(2)]);
    assert_eq!(queue.receive(2).await.unwrap().len(), 1);
}

#[tokio::test]
async fn queued_and_in_flight_messages_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reimbi.redb");
    let clock = Arc::new(ManualClock::new(t0()));
    let in_flight_id = {
        let store = EmbeddedStore::open(&path).unwrap();
        let queue = EmbeddedQueue::on(&store, clock.clone());
        queue.enqueue(&queued(1)).await.unwrap();
        queue.enqueue(&queued(2)).await.unwrap();
        let first = queue.receive(1).await.unwrap().remove(0);
        assert_eq!(first.event, queued(1));
        first.message_id
    };
    let store = EmbeddedStore::open(&path).unwrap();
    let queue = EmbeddedQueue::on(&store, clock.clone());
    assert_eq!(queue.len(), 2);
    assert_eq!(queue.receive(10).await.unwrap().into_iter().map(|m| m.event).collect::<Vec<_>>(), vec![queued(2)]);
    clock.advance(Duration::from_secs(30));
    let back = queue.receive(10).await.unwrap();
    let back: Vec<_> = back.iter().map(|m| (m.message_id.as_str(), m.receive_count)).collect();
    assert!(back.contains(&(in_flight_id.as_str(), 2)), "{back:?}");
    queue.enqueue(&queued(3)).await.unwrap();
    clock.advance(Duration::from_secs(30));
    let order: Vec<_> = queue.receive(10).await.unwrap().into_iter().map(|m| m.event).collect();
    assert_eq!(order, vec![queued(1), queued(2), queued(3)], "enqueue order continues after a restart");
}

#[tokio::test]
async fn outbox_mailer_writes_one_eml_file_named_after_the_message_id() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let mailer = OutboxMailer::new(&outbox).unwrap();
    let id = mailer.send(&email()).await.unwrap();
    assert!(id.ends_with("@reimbi.local"));
    let files: Vec<_> =
        std::fs::read_dir(&outbox).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(files, vec![format!("{id}.eml")]);
    let raw = std::fs::read_to_string(outbox.join(format!("{id}.eml"))).unwrap();
    assert!(raw.contains(&format!("Message-ID: <{id}>")));
    assert!(raw.contains("Content-Type: text/plain") && raw.contains("Content-Type: text/html"));
    assert!(raw.contains("Hello Jane"));
}

#[tokio::test]
async fn memory_mailer_keeps_sent_emails_and_fails_when_told_to() {
    let mailer = MemoryMailer::new();
    mailer.fail_next(2);
    for _ in 0..2 {
        assert!(matches!(mailer.send(&email()).await, Err(MailError::Unavailable(_))));
    }
    let first = mailer.send(&email()).await.unwrap();
    let second = mailer.send(&email()).await.unwrap();
    assert_ne!(first, second);
    assert_eq!(mailer.sent(), vec![email(), email()]);
    assert_eq!(mailer.sent_messages(), vec![(first, email()), (second, email())]);
}
