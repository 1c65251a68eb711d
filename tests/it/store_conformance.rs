//! Store conformance: the behaviour every storage adapter must share, checked through the
//! ports only, so the embedded store (here) and DynamoDB (`aws_adapters`, against moto) are
//! held to the same rules. Each check uses fresh company ids, so one table serves them all.
//!
//! Entry point: [`run_all`].

use chrono::TimeZone as _;
use reimbi_shared::adapters::embedded::EmbeddedStore;
use reimbi_shared::ports::{CandidateStore, EventLog, SettingsStore, StoreError, WebhookStore};
use reimbi_shared::*;

use crate::harness::unique;

/// Runs every conformance check against one set of adapters.
pub(crate) async fn run_all(
    settings: &dyn SettingsStore,
    webhooks: &dyn WebhookStore,
    events: &dyn EventLog,
    candidates: &dyn CandidateStore,
) {
    settings_saves_are_conditional_on_the_revision(settings).await;
    policies_and_staff_are_kept_per_company_in_order(settings).await;
    webhook_credentials_are_created_and_replaced(webhooks).await;
    the_first_event_entry_wins_and_upsert_replaces(events).await;
    set_outcome_changes_an_existing_entry_only(events).await;
    events_are_listed_newest_first_page_by_page(events).await;
    a_garbage_cursor_is_refused(events, candidates).await;
    a_cursor_fits_only_the_listing_that_issued_it(events, candidates).await;
    a_candidate_is_created_once(candidates).await;
    candidates_are_listed_newest_first_page_by_page(candidates).await;
    the_invitation_claim_follows_its_lease(candidates).await;
    concurrent_claims_let_exactly_one_through(candidates).await;
}

fn t0() -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap()
}

fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

fn fresh_company(what: &str) -> CompanyId {
    CompanyId::parse(&unique(what)).unwrap()
}

fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

fn entry(company: &CompanyId, id: &str, received_at: Timestamp) -> EventLogEntry {
    EventLogEntry {
        company_id: company.clone(),
        event_id: EventId::parse(id).unwrap(),
        received_at,
        action: ACTION_STAGE_CHANGE.to_owned(),
        ashby_candidate_id: Some(format!("ashby-{id}")),
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
        email: email("jane@example.com"),
        ashby_candidate_id: ashby_id.into(),
        ashby_application_id: format!("app-{ashby_id}"),
        policy_id: PolicyId::parse("onsite").unwrap(),
        policy_name: "Onsite Interview".into(),
        approver_email: email("rae@acme.example"),
        approver_source: ApproverSource::HiringTeam,
        invited_at,
        invite_email: InviteEmail {
            status: InviteEmailStatus::Pending,
            message_id: None,
            lease_until: None,
            sent_at: None,
        },
        source_event_id: EventId::parse("evt_source").unwrap(),
    }
}

/// Pages through a listing with `limit`, checking each page's size, and returns every item.
async fn collect_pages<T, F, Fut>(limit: usize, mut list: F) -> Vec<Vec<T>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, StoreError>>,
{
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let page = list(cursor.take()).await.unwrap();
        assert!(page.items.len() <= limit, "a page holds at most `limit` items");
        pages.push(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return pages,
        }
        assert!(pages.len() <= 20, "the listing does not end");
    }
}

pub(crate) async fn settings_saves_are_conditional_on_the_revision(store: &dyn SettingsStore) {
    let company = fresh_company("conf-set");
    assert_eq!(store.get_settings(&company).await.unwrap(), None);

    let mut first = IntegrationSettings::unconfigured(company.clone());
    first.revision = 1;
    first.backup_approver_email = Some(email("ops@acme.example"));
    first.approver_role = Some(ApproverRole::HiringTeam);
    first.hiring_team_role = Some("Recruiter".into());
    first.api_key_hint = Some("…x7Qa".into());
    first.current_webhook_id = Some(WebhookId::parse("wh_conformance").unwrap());
    first.webhook_secret_created_at = Some(t0());
    first.updated_at = Some(t0());
    store.save_settings(&first).await.unwrap();
    assert_eq!(store.get_settings(&company).await.unwrap().as_ref(), Some(&first));

    let mut stale = first.clone();
    stale.enabled = true;
    assert!(matches!(store.save_settings(&stale).await, Err(StoreError::Conflict)), "revision 1 again");
    let mut skipping = first.clone();
    skipping.revision = 3;
    assert!(matches!(store.save_settings(&skipping).await, Err(StoreError::Conflict)), "revision 3 after 1");
    assert_eq!(store.get_settings(&company).await.unwrap().as_ref(), Some(&first), "a conflict writes nothing");

    let mut second = first.clone();
    second.revision = 2;
    second.enabled = true;
    second.hiring_team_role = None;
    store.save_settings(&second).await.unwrap();
    assert_eq!(store.get_settings(&company).await.unwrap(), Some(second));

    let other = fresh_company("conf-set");
    let mut late = IntegrationSettings::unconfigured(other.clone());
    late.revision = 2;
    assert!(
        matches!(store.save_settings(&late).await, Err(StoreError::Conflict)),
        "nothing stored yet: only revision 1"
    );
    assert_eq!(store.get_settings(&other).await.unwrap(), None);
}

pub(crate) async fn policies_and_staff_are_kept_per_company_in_order(store: &dyn SettingsStore) {
    let company = fresh_company("conf-pol");
    // A company whose id starts with the first one's must not see its records.
    let neighbour = CompanyId::parse(&format!("{company}-2")).unwrap();
    let policy = |c: &CompanyId, id: &str, name: &str| Policy {
        company_id: c.clone(),
        policy_id: PolicyId::parse(id).unwrap(),
        name: name.into(),
        enabled: true,
        submission_guidelines: "Keep your receipts.".into(),
        default_approver_email: Some(email("pat@acme.example")),
        updated_at: t0(),
    };
    for (id, name) in [("travel", "Travel"), ("onsite", "Onsite Interview"), ("relocation", "Relocation")] {
        store.put_policy(&policy(&company, id, name)).await.unwrap();
    }
    store.put_policy(&policy(&neighbour, "other", "Other")).await.unwrap();
    let mut renamed = policy(&company, "travel", "Travel and Lodging");
    renamed.enabled = false;
    renamed.default_approver_email = None;
    store.put_policy(&renamed).await.unwrap();

    let listed = store.list_policies(&company).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|p| p.policy_id.as_str()).collect();
    assert_eq!(ids, ["onsite", "relocation", "travel"], "ordered by id, replaced not duplicated");
    assert_eq!(listed[2], renamed);
    assert_eq!(store.get_policy(&company, &renamed.policy_id).await.unwrap(), Some(renamed));
    assert_eq!(store.get_policy(&company, &PolicyId::parse("other").unwrap()).await.unwrap(), None);
    assert_eq!(store.list_policies(&neighbour).await.unwrap().len(), 1);

    let member = |c: &CompanyId, e: &str, can_approve: bool| StaffMember {
        company_id: c.clone(),
        email: email(e),
        name: e.split('@').next().unwrap().into(),
        can_approve,
        updated_at: t0(),
    };
    for e in ["zoe@acme.example", "ops+finance@acme.example", "al@acme.example"] {
        store.put_staff(&member(&company, e, true)).await.unwrap();
    }
    store.put_staff(&member(&neighbour, "nina@acme.example", true)).await.unwrap();
    store.put_staff(&member(&company, "zoe@acme.example", false)).await.unwrap();
    let staff = store.list_staff(&company).await.unwrap();
    let emails: Vec<&str> = staff.iter().map(|s| s.email.as_str()).collect();
    assert_eq!(emails, ["al@acme.example", "ops+finance@acme.example", "zoe@acme.example"]);
    assert!(!staff[2].can_approve);
    assert_eq!(store.get_staff(&company, &email("ops+finance@acme.example")).await.unwrap(), Some(staff[1].clone()));
    assert_eq!(store.get_staff(&company, &email("nina@acme.example")).await.unwrap(), None);
    assert_eq!(store.list_staff(&fresh_company("conf-pol")).await.unwrap(), vec![]);
}

pub(crate) async fn webhook_credentials_are_created_and_replaced(store: &dyn WebhookStore) {
    let id = WebhookId::generate();
    assert_eq!(store.get_webhook(&id).await.unwrap(), None);
    let mut credential = WebhookCredential {
        webhook_id: id.clone(),
        company_id: fresh_company("conf-wh"),
        created_at: t0(),
        expires_at: None,
    };
    store.put_webhook(&credential).await.unwrap();
    assert_eq!(store.get_webhook(&id).await.unwrap().as_ref(), Some(&credential));
    credential.expires_at = Some(t0() + chrono::Duration::hours(24));
    store.put_webhook(&credential).await.unwrap();
    assert_eq!(store.get_webhook(&id).await.unwrap(), Some(credential));
    assert_eq!(store.get_webhook(&WebhookId::generate()).await.unwrap(), None);
}

pub(crate) async fn the_first_event_entry_wins_and_upsert_replaces(log: &dyn EventLog) {
    let company = fresh_company("conf-ev");
    let first = entry(&company, "evt_a", t0());
    assert!(log.insert_if_absent(&first).await.unwrap());
    let mut again = first.clone();
    again.outcome = Outcome::Ignored;
    again.reason = Some(Reason::IntegrationDisabled);
    assert!(!log.insert_if_absent(&again).await.unwrap());
    assert_eq!(log.get_event(&company, &first.event_id).await.unwrap().as_ref(), Some(&first));
    assert_eq!(
        log.get_event(&fresh_company("conf-ev"), &first.event_id).await.unwrap(),
        None,
        "entries are per company"
    );

    let mut ping = entry(&company, "evt_ping", t0() + secs(1));
    ping.action = ACTION_PING.into();
    ping.ashby_candidate_id = None;
    ping.outcome = Outcome::Ignored;
    log.upsert(&ping).await.unwrap();
    let mut ping_again = ping.clone();
    ping_again.received_at = t0() + secs(5);
    ping_again.updated_at = t0() + secs(5);
    log.upsert(&ping_again).await.unwrap();
    assert_eq!(log.get_event(&company, &ping.event_id).await.unwrap().as_ref(), Some(&ping_again));
    let listed = log.list_events(&company, 10, None).await.unwrap();
    assert_eq!(listed.items, vec![ping_again, first], "an upsert at a new time moves the entry, once");
    assert_eq!(listed.next_cursor, None);
}

pub(crate) async fn set_outcome_changes_an_existing_entry_only(log: &dyn EventLog) {
    let company = fresh_company("conf-out");
    let e = entry(&company, "evt_b", t0());
    log.insert_if_absent(&e).await.unwrap();
    let cid = CandidateId::for_ashby_candidate(&company, "ashby-evt_b");
    let retrying = OutcomeUpdate {
        outcome: Outcome::Retrying,
        reason: Some(Reason::AshbyRateLimited),
        candidate_id: None,
        at: t0() + secs(1),
    };
    log.set_outcome(&company, &e.event_id, &retrying).await.unwrap();
    let invited =
        OutcomeUpdate { outcome: Outcome::Invited, reason: None, candidate_id: Some(cid.clone()), at: t0() + secs(2) };
    log.set_outcome(&company, &e.event_id, &invited).await.unwrap();
    let stored = log.get_event(&company, &e.event_id).await.unwrap().unwrap();
    assert_eq!(stored.outcome, Outcome::Invited);
    assert_eq!(stored.reason, None);
    assert_eq!(stored.candidate_id, Some(cid));
    assert_eq!(stored.updated_at, t0() + secs(2));
    assert_eq!(stored.received_at, e.received_at, "the receive time stays");
    assert_eq!(stored.action, e.action);
    assert_eq!(log.list_events(&company, 10, None).await.unwrap().items, vec![stored]);

    let missing = EventId::parse("evt_missing").unwrap();
    log.set_outcome(&company, &missing, &invited).await.unwrap();
    assert_eq!(log.get_event(&company, &missing).await.unwrap(), None, "set_outcome creates nothing");
}

pub(crate) async fn events_are_listed_newest_first_page_by_page(log: &dyn EventLog) {
    let company = fresh_company("conf-list");
    // Two entries share a receive time: the event id breaks the tie (descending).
    let entries = [
        entry(&company, "evt_1", t0()),
        entry(&company, "evt_2", t0() + secs(1)),
        entry(&company, "evt_3a", t0() + secs(2)),
        entry(&company, "evt_3b", t0() + secs(2)),
        entry(&company, "evt_4", t0() + chrono::Duration::milliseconds(3_250)),
    ];
    for e in entries.iter().rev() {
        log.insert_if_absent(e).await.unwrap();
    }
    log.insert_if_absent(&entry(&fresh_company("conf-list"), "evt_9", t0() + secs(9))).await.unwrap();
    let newest_first: Vec<EventLogEntry> = entries.iter().rev().cloned().collect();
    let company = &company;

    let pages = collect_pages(2, |c| async move { log.list_events(company, 2, c.as_deref()).await }).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    assert_eq!(pages.concat(), newest_first);

    // A listing that ends exactly at a page boundary does not hand out a cursor to an empty page.
    let pages = collect_pages(5, |c| async move { log.list_events(company, 5, c.as_deref()).await }).await;
    assert_eq!(pages, vec![newest_first.clone()]);
    assert_eq!(log.list_events(company, 50, None).await.unwrap().items, newest_first);
    let empty = log.list_events(&fresh_company("conf-list"), 10, None).await.unwrap();
    assert_eq!(empty, Page { items: vec![], next_cursor: None });
}

pub(crate) async fn a_garbage_cursor_is_refused(log: &dyn EventLog, candidates: &dyn CandidateStore) {
    let company = fresh_company("conf-cur");
    for garbage in ["%%%not-a-cursor%%%", "eyJub3QiOiJvdXJzIn0"] {
        let err = log.list_events(&company, 10, Some(garbage)).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidCursor), "events, {garbage}: {err:?}");
        let err = candidates.list_candidates(&company, 10, Some(garbage)).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidCursor), "candidates, {garbage}: {err:?}");
    }
}

pub(crate) async fn a_cursor_fits_only_the_listing_that_issued_it(log: &dyn EventLog, candidates: &dyn CandidateStore) {
    let company = fresh_company("conf-cur");
    for n in 0..2 {
        log.insert_if_absent(&entry(&company, &format!("evt_{n}"), t0() + secs(n))).await.unwrap();
        candidates.create_if_absent(&candidate(&company, &format!("ashby-{n}"), t0() + secs(n))).await.unwrap();
    }
    let events_cursor = log.list_events(&company, 1, None).await.unwrap().next_cursor.expect("a second page");
    let candidates_cursor =
        candidates.list_candidates(&company, 1, None).await.unwrap().next_cursor.expect("a second page");
    assert_eq!(log.list_events(&company, 1, Some(&events_cursor)).await.unwrap().items.len(), 1);

    let other = fresh_company("conf-cur");
    let err = log.list_events(&other, 1, Some(&events_cursor)).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidCursor), "another company's events cursor: {err:?}");
    let err = candidates.list_candidates(&other, 1, Some(&candidates_cursor)).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidCursor), "another company's candidates cursor: {err:?}");
    let err = candidates.list_candidates(&company, 1, Some(&events_cursor)).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidCursor), "an events cursor on candidates: {err:?}");
    let err = log.list_events(&company, 1, Some(&candidates_cursor)).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidCursor), "a candidates cursor on events: {err:?}");
}

pub(crate) async fn a_candidate_is_created_once(store: &dyn CandidateStore) {
    let company = fresh_company("conf-cand");
    let record = candidate(&company, "ashby-1", t0());
    let (stored, created) = store.create_if_absent(&record).await.unwrap();
    assert!(created);
    assert_eq!(stored, record);
    let mut second = record.clone();
    second.name = "Someone Else".into();
    second.invited_at = t0() + secs(60);
    let (stored, created) = store.create_if_absent(&second).await.unwrap();
    assert!(!created);
    assert_eq!(stored, record, "the existing record is returned unchanged");
    assert_eq!(store.get_candidate(&company, &record.candidate_id).await.unwrap().as_ref(), Some(&record));
    assert_eq!(store.list_candidates(&company, 10, None).await.unwrap().items, vec![record.clone()]);
    assert_eq!(store.get_candidate(&fresh_company("conf-cand"), &record.candidate_id).await.unwrap(), None);
    let token = InviteToken {
        token_hash: hex::encode([7u8; 32]),
        company_id: company.clone(),
        candidate_id: record.candidate_id.clone(),
        expires_at: t0() + chrono::Duration::days(7),
    };
    store.put_invite_token(&token).await.unwrap();
}

pub(crate) async fn candidates_are_listed_newest_first_page_by_page(store: &dyn CandidateStore) {
    let company = fresh_company("conf-clist");
    let records: Vec<CandidateRecord> =
        (0..5).map(|n| candidate(&company, &format!("ashby-{n}"), t0() + secs(n.min(3)))).collect();
    for r in &records {
        store.create_if_absent(r).await.unwrap();
    }
    let mut expected = records.clone();
    expected.sort_by(|a, b| (b.invited_at, &b.candidate_id).cmp(&(a.invited_at, &a.candidate_id)));
    let company = &company;

    let pages = collect_pages(2, |c| async move { store.list_candidates(company, 2, c.as_deref()).await }).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    assert_eq!(pages.concat(), expected);
    let pages = collect_pages(5, |c| async move { store.list_candidates(company, 5, c.as_deref()).await }).await;
    assert_eq!(pages, vec![expected]);
}

pub(crate) async fn the_invitation_claim_follows_its_lease(store: &dyn CandidateStore) {
    let company = fresh_company("conf-claim");
    let record = candidate(&company, "ashby-claim", t0());
    let id = record.candidate_id.clone();
    store.create_if_absent(&record).await.unwrap();
    let status = |r: Option<CandidateRecord>| r.unwrap().invite_email;

    assert!(store.claim_invitation(&company, &id, t0(), t0() + secs(60)).await.unwrap(), "a pending invitation");
    let claimed = status(store.get_candidate(&company, &id).await.unwrap());
    assert_eq!((claimed.status, claimed.lease_until), (InviteEmailStatus::Sending, Some(t0() + secs(60))));
    assert!(!store.claim_invitation(&company, &id, t0() + secs(59), t0() + secs(120)).await.unwrap(), "a live lease");
    assert!(store.claim_invitation(&company, &id, t0() + secs(61), t0() + secs(121)).await.unwrap(), "a lapsed lease");

    store.release_invitation(&company, &id).await.unwrap();
    assert_eq!(status(store.get_candidate(&company, &id).await.unwrap()).status, InviteEmailStatus::Pending);
    assert!(
        store.claim_invitation(&company, &id, t0() + secs(62), t0() + secs(122)).await.unwrap(),
        "a released claim"
    );

    store.mark_invitation_sent(&company, &id, "msg-1", t0() + secs(63)).await.unwrap();
    let sent = status(store.get_candidate(&company, &id).await.unwrap());
    assert_eq!(sent.status, InviteEmailStatus::Sent);
    assert_eq!(sent.message_id.as_deref(), Some("msg-1"));
    assert_eq!(sent.sent_at, Some(t0() + secs(63)));
    assert!(
        !store.claim_invitation(&company, &id, t0() + secs(500), t0() + secs(560)).await.unwrap(),
        "a sent invitation"
    );
    store.release_invitation(&company, &id).await.unwrap();
    assert_eq!(
        status(store.get_candidate(&company, &id).await.unwrap()).status,
        InviteEmailStatus::Sent,
        "release keeps a sent invitation sent"
    );

    let unknown = CandidateId::for_ashby_candidate(&company, "nobody");
    assert!(!store.claim_invitation(&company, &unknown, t0(), t0() + secs(60)).await.unwrap(), "no record, no claim");
    assert_eq!(store.get_candidate(&company, &unknown).await.unwrap(), None);
}

pub(crate) async fn concurrent_claims_let_exactly_one_through(store: &dyn CandidateStore) {
    let company = fresh_company("conf-race");
    let record = candidate(&company, "ashby-race", t0());
    store.create_if_absent(&record).await.unwrap();
    let claims = (0..8).map(|_| store.claim_invitation(&company, &record.candidate_id, t0(), t0() + secs(60)));
    let results = futures::future::join_all(claims).await;
    let wins = results.into_iter().map(Result::unwrap).filter(|won| *won).count();
    assert_eq!(wins, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_memory_embedded_store_conforms() {
    let store = EmbeddedStore::in_memory();
    run_all(&store, &store, &store, &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_on_disk_embedded_store_conforms_and_keeps_its_data_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reimbi.redb");
    let company = fresh_company("conf-disk");
    {
        let store = EmbeddedStore::open(&path).unwrap();
        run_all(&store, &store, &store, &store).await;
        store.insert_if_absent(&entry(&company, "evt_kept", t0())).await.unwrap();
    }
    let store = EmbeddedStore::open(&path).unwrap();
    assert_eq!(store.list_events(&company, 10, None).await.unwrap().items, vec![entry(&company, "evt_kept", t0())]);
    run_all(&store, &store, &store, &store).await;
}
