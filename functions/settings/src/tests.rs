//! Handler tests: the router over embedded stores and the Ashby simulator.

use std::time::Duration;

use axum::http::StatusCode;
use reimbi_shared::domain::*;
use reimbi_shared::ports::*;
use serde_json::{Value, json};

use crate::ROUTES;
use crate::test_support::*;

const SETTINGS: &str = "/companies/acme/integrations/ashby";
const CREDENTIALS: &str = "/companies/acme/integrations/ashby/webhook-credentials";

// ---------- settings: read and update ----------

#[tokio::test]
async fn an_unconfigured_company_reads_defaults_and_nulls() {
    let w = World::new().await;
    let (status, v) = w.admin("GET", SETTINGS, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        v,
        json!({
            "enabled": false, "apiKeyConfigured": false, "apiKeyHint": null,
            "approverRole": null, "hiringTeamRole": null, "backupApproverEmail": null,
            "triggerFieldTitle": "Send to Reimbi", "policyFieldTitle": "Reimbi Reimbursement Policy",
            "webhookUrl": null, "webhookSecretCreatedAt": null, "updatedAt": null
        })
    );
}

#[tokio::test]
async fn a_key_ashby_accepts_is_stored_and_only_its_hint_is_shown() {
    let w = World::new().await;
    w.add_staff("ops@acme.example", true).await;
    let body = json!({
        "apiKey": GOOD_KEY, "approverRole": "hiringTeam", "hiringTeamRole": "Recruiter",
        "backupApproverEmail": "OPS@acme.example", "enabled": true
    });
    let (status, v) = w.admin("PUT", SETTINGS, Some(&body.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["apiKeyConfigured"], true);
    assert_eq!(v["apiKeyHint"], "…x7Qa");
    assert_eq!(v["approverRole"], "hiringTeam");
    assert_eq!(v["hiringTeamRole"], "Recruiter");
    assert_eq!(v["backupApproverEmail"], "ops@acme.example");
    assert_eq!(v["enabled"], true);
    assert_eq!(v["updatedAt"], "2026-12-04T10:00:00Z");
    assert_eq!(w.stored_key().await.as_deref(), Some(GOOD_KEY));
    assert_eq!(w.sim.calls_to("apiKey.info"), 1);
    assert_eq!(w.stored_settings().await.unwrap().revision, 1);
    // The response is the GET body.
    assert_eq!(w.admin("GET", SETTINGS, None).await.1, v);
    assert!(w.invalidations.0.lock().unwrap().contains(&ACME.to_owned()));
}

#[tokio::test]
async fn a_key_ashby_rejects_leaves_nothing_stored() {
    let w = World::new().await;
    w.configure().await;
    let before = w.stored_settings().await.unwrap();
    let invalidations = w.invalidations.0.lock().unwrap().len();
    let body = json!({ "apiKey": BAD_KEY, "hiringTeamRole": "Recruiter", "triggerFieldTitle": "Other" });
    let got = w.admin("PUT", SETTINGS, Some(&body.to_string())).await;
    assert_error(&got, 422, "ashby_api_key_rejected", Some("apiKey"));
    assert_eq!(w.stored_key().await.as_deref(), Some(GOOD_KEY));
    assert_eq!(w.stored_settings().await.unwrap(), before);
    assert_eq!(w.invalidations.0.lock().unwrap().len(), invalidations);
}

#[tokio::test]
async fn a_first_key_ashby_rejects_creates_no_secret_and_no_settings() {
    let w = World::new().await;
    let got = w.admin("PUT", SETTINGS, Some(&json!({ "apiKey": BAD_KEY }).to_string())).await;
    assert_error(&got, 422, "ashby_api_key_rejected", Some("apiKey"));
    assert_eq!(w.stored_key().await, None);
    assert_eq!(w.stored_settings().await, None);
}

#[tokio::test]
async fn a_key_ashby_answers_missing_permission_for_is_rejected() {
    // Only Ashby's own refusal rejects a key; scopes it reports are checked by the health route.
    let w = World::new().await;
    w.sim.fail_next(1, ashby_sim::Fault::MissingPermission);
    let got = w.admin("PUT", SETTINGS, Some(&json!({ "apiKey": GOOD_KEY }).to_string())).await;
    assert_error(&got, 422, "ashby_api_key_rejected", Some("apiKey"));
    assert!(got.1["error"]["message"].as_str().unwrap().contains("permission"), "{}", got.1);
    assert_eq!(w.stored_key().await, None);
    assert_eq!(w.stored_settings().await, None);
}

#[tokio::test]
async fn ashby_unreachable_is_a_502_and_stores_nothing() {
    // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    let w = World::with(Options { public_base_url: None, ashby_url: Some("http://127.0.0.1:9".into()) }).await;
    let got = w.admin("PUT", SETTINGS, Some(&json!({ "apiKey": GOOD_KEY }).to_string())).await;
    assert_error(&got, 502, "ashby_unavailable", None);
    assert!(!got.1.to_string().contains("127.0.0.1"), "no internal detail: {}", got.1);
    assert_eq!(w.stored_key().await, None);
    assert_eq!(w.stored_settings().await, None);
}

#[tokio::test]
async fn ashby_answering_5xx_is_a_502() {
    let w = World::new().await;
    w.sim.fail_next(5, ashby_sim::Fault::ServerError(503));
    let got = w.admin("PUT", SETTINGS, Some(&json!({ "apiKey": GOOD_KEY }).to_string())).await;
    assert_error(&got, 502, "ashby_unavailable", None);
    assert_eq!(w.stored_key().await, None);
}

#[tokio::test]
async fn invalid_bodies_are_refused_with_the_field_named_and_nothing_stored() {
    let w = World::new().await;
    let long = "x".repeat(201);
    let cases: Vec<(String, Option<&str>)> = vec![
        (r#"{"enabled":true,"colour":"red"}"#.into(), Some("colour")),
        (r#"{"enabled":"yes"}"#.into(), Some("enabled")),
        (r#"{"enabled":null}"#.into(), Some("enabled")),
        (r#"{"approverRole":"boss"}"#.into(), Some("approverRole")),
        (r#"{"approverRole":5}"#.into(), Some("approverRole")),
        (r#"{"backupApproverEmail":"not-an-email"}"#.into(), Some("backupApproverEmail")),
        (r#"{"backupApproverEmail":42}"#.into(), Some("backupApproverEmail")),
        (format!(r#"{{"triggerFieldTitle":"{long}"}}"#), Some("triggerFieldTitle")),
        (r#"{"triggerFieldTitle":"   "}"#.into(), Some("triggerFieldTitle")),
        (format!(r#"{{"policyFieldTitle":"{long}"}}"#), Some("policyFieldTitle")),
        (format!(r#"{{"hiringTeamRole":"{long}"}}"#), Some("hiringTeamRole")),
        (r#"{"hiringTeamRole":7}"#.into(), Some("hiringTeamRole")),
        (format!(r#"{{"apiKey":"{}"}}"#, "k".repeat(513)), Some("apiKey")),
        (r#"{"apiKey":null}"#.into(), Some("apiKey")),
        (r#"{"apiKey":12345}"#.into(), Some("apiKey")),
        (r#"{"apiKey":"two words"}"#.into(), Some("apiKey")),
        ("not json".into(), None),
        ("[]".into(), None),
        ("".into(), None),
    ];
    for (body, field) in cases {
        let got = w.admin("PUT", SETTINGS, Some(&body)).await;
        assert_error(&got, 422, "validation_failed", field);
    }
    assert_eq!(w.sim.calls_to("apiKey.info"), 0, "no key was sent to Ashby");
    assert_eq!(w.stored_settings().await, None);
    assert_eq!(w.stored_key().await, None);
}

#[tokio::test]
async fn a_valid_key_beside_an_invalid_field_is_neither_checked_nor_stored() {
    let w = World::new().await;
    let got = w.admin("PUT", SETTINGS, Some(&json!({ "apiKey": GOOD_KEY, "approverRole": "boss" }).to_string())).await;
    assert_error(&got, 422, "validation_failed", Some("approverRole"));
    assert_eq!(w.sim.calls_to("apiKey.info"), 0);
    assert_eq!(w.stored_key().await, None);
}

#[tokio::test]
async fn the_backup_approver_must_be_staff_who_can_approve() {
    let w = World::new().await;
    let put = |email: &str| json!({ "backupApproverEmail": email }).to_string();
    let got = w.admin("PUT", SETTINGS, Some(&put("nobody@acme.example"))).await;
    assert_error(&got, 422, "unknown_approver", Some("backupApproverEmail"));
    w.add_staff("viewer@acme.example", false).await;
    let got = w.admin("PUT", SETTINGS, Some(&put("viewer@acme.example"))).await;
    assert_error(&got, 422, "unknown_approver", Some("backupApproverEmail"));
    assert_eq!(w.stored_settings().await, None);
    w.add_staff("ops@acme.example", true).await;
    let (status, v) = w.admin("PUT", SETTINGS, Some(&put("ops@acme.example"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["backupApproverEmail"], "ops@acme.example");
}

#[tokio::test]
async fn enabling_needs_a_key_and_a_backup_approver() {
    let w = World::new().await;
    let got = w.admin("PUT", SETTINGS, Some(r#"{"enabled":true}"#)).await;
    assert_error(&got, 422, "incomplete_settings", None);
    let message = got.1["error"]["message"].as_str().unwrap();
    assert!(message.contains("apiKey") && message.contains("backupApproverEmail"), "{message}");

    let got = w.admin("PUT", SETTINGS, Some(&json!({ "enabled": true, "apiKey": GOOD_KEY }).to_string())).await;
    assert_error(&got, 422, "incomplete_settings", None);
    assert_eq!(w.stored_key().await, None, "the key of a refused PUT is not stored");

    w.configure().await;
    assert!(w.stored_settings().await.unwrap().enabled);
    // Clearing the backup approver of an enabled integration is refused too.
    let got = w.admin("PUT", SETTINGS, Some(r#"{"backupApproverEmail":null}"#)).await;
    assert_error(&got, 422, "incomplete_settings", None);
    assert!(w.stored_settings().await.unwrap().backup_approver_email.is_some());
}

#[tokio::test]
async fn explicit_null_clears_a_field_and_absent_leaves_it() {
    let w = World::new().await;
    let set = json!({ "approverRole": "hiringTeam", "hiringTeamRole": "Recruiter", "triggerFieldTitle": "Reimbi?", "policyFieldTitle": "Which policy" });
    let (_, v) = w.admin("PUT", SETTINGS, Some(&set.to_string())).await;
    assert_eq!(v["triggerFieldTitle"], "Reimbi?");
    let (_, v) = w.admin("PUT", SETTINGS, Some(r#"{"policyFieldTitle":"  Trimmed  "}"#)).await;
    assert_eq!(v["hiringTeamRole"], "Recruiter", "absent fields are left as they are");
    assert_eq!(v["policyFieldTitle"], "Trimmed");
    let clear =
        json!({ "approverRole": null, "hiringTeamRole": null, "triggerFieldTitle": null, "policyFieldTitle": null });
    let (status, v) = w.admin("PUT", SETTINGS, Some(&clear.to_string())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["approverRole"], Value::Null, "unset again: the processor uses reimbiDefault");
    assert_eq!(v["hiringTeamRole"], Value::Null);
    assert_eq!(v["triggerFieldTitle"], DEFAULT_TRIGGER_FIELD_TITLE);
    assert_eq!(v["policyFieldTitle"], DEFAULT_POLICY_FIELD_TITLE);
    assert_eq!(w.stored_settings().await.unwrap().approver_role, None);
}

#[tokio::test]
async fn a_lost_race_is_retried_once_and_a_second_loss_is_a_conflict_that_keeps_the_old_key() {
    let w = World::new().await;
    w.faults.settings_conflicts.store(1, std::sync::atomic::Ordering::SeqCst);
    let (status, v) = w.admin("PUT", SETTINGS, Some(&json!({ "apiKey": GOOD_KEY }).to_string())).await;
    assert_eq!(status, StatusCode::OK, "{v}");

    w.faults.settings_conflicts.store(2, std::sync::atomic::Ordering::SeqCst);
    let got = w.admin("PUT", SETTINGS, Some(&json!({ "apiKey": OTHER_KEY }).to_string())).await;
    assert_error(&got, 409, "conflict", None);
    assert_eq!(w.stored_key().await.as_deref(), Some(GOOD_KEY), "the previous key is put back");
    assert_eq!(w.stored_settings().await.unwrap().api_key_hint.as_deref(), Some("…x7Qa"));
}

#[tokio::test]
async fn an_unavailable_secret_store_is_a_503_without_internal_detail() {
    let w = World::new().await;
    w.faults.secrets_down.store(true, std::sync::atomic::Ordering::SeqCst);
    let got = w.admin("PUT", SETTINGS, Some(&json!({ "apiKey": GOOD_KEY }).to_string())).await;
    assert_error(&got, 503, "temporarily_unavailable", None);
    assert!(!got.1.to_string().contains("arn:"), "{}", got.1);
    assert_eq!(w.stored_settings().await, None);
}

// ---------- webhook credentials ----------

#[tokio::test]
async fn generating_credentials_mints_an_id_and_a_secret_shown_once() {
    let w = World::new().await;
    let v = w.rotate().await;
    let url = v["webhookUrl"].as_str().unwrap();
    let id = url.strip_prefix(&format!("http://{HOST}/webhooks/ashby/")).expect(url);
    assert!(id.starts_with("wh_") && id.len() >= 25, "{id}");
    let secret = v["secretKey"].as_str().unwrap();
    assert!(secret.len() >= 43, "{secret}");
    assert_eq!(v["previousValidUntil"], Value::Null);

    let id = WebhookId::parse(id).unwrap();
    let stored = w.secrets.get_secret(&SecretRef::WebhookSigning(id.clone())).await.unwrap().unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&stored), secret);
    let credential = w.store.get_webhook(&id).await.unwrap().unwrap();
    assert_eq!(credential.company_id.as_str(), ACME);
    assert_eq!(credential.expires_at, None);
    let (_, settings) = w.admin("GET", SETTINGS, None).await;
    assert_eq!(settings["webhookUrl"], url);
    assert_eq!(settings["webhookSecretCreatedAt"], "2026-12-04T10:00:00Z");
    assert!(w.invalidations.0.lock().unwrap().contains(&ACME.to_owned()));
}

fn id_of(v: &Value) -> WebhookId {
    WebhookId::parse(v["webhookUrl"].as_str().unwrap().rsplit('/').next().unwrap()).unwrap()
}

#[tokio::test]
async fn a_replaced_credential_stays_valid_for_the_grace_period_then_expires() {
    let w = World::new().await;
    let first = w.rotate().await;
    w.clock.advance(Duration::from_secs(3600));
    let second = w.rotate().await;
    let grace_end = t0() + chrono::Duration::hours(1) + chrono::Duration::hours(24);
    assert_eq!(second["previousValidUntil"], format_time(&grace_end));
    assert_ne!(id_of(&first), id_of(&second));
    assert_ne!(first["secretKey"], second["secretKey"]);

    let old = w.store.get_webhook(&id_of(&first)).await.unwrap().unwrap();
    let new = w.store.get_webhook(&id_of(&second)).await.unwrap().unwrap();
    assert_eq!(old.expires_at, Some(grace_end));
    w.clock.advance(Duration::from_secs(24 * 3600 - 1));
    assert!(old.is_valid_at(w.clock.now()), "the old credential works within the grace period");
    w.clock.advance(Duration::from_secs(1));
    assert!(!old.is_valid_at(w.clock.now()), "and not after it");
    assert!(new.is_valid_at(w.clock.now()));
    // The old secret is still stored for the webhook function to verify with during the grace.
    assert!(w.secrets.get_secret(&SecretRef::WebhookSigning(id_of(&first))).await.unwrap().is_some());
}

#[tokio::test]
async fn a_credential_already_expiring_keeps_its_earlier_expiry() {
    let w = World::new().await;
    let first = w.rotate().await;
    let mut current = w.store.get_webhook(&id_of(&first)).await.unwrap().unwrap();
    let soon = t0() + chrono::Duration::hours(2);
    current.expires_at = Some(soon);
    w.store.put_webhook(&current).await.unwrap();
    let second = w.rotate().await;
    assert_eq!(second["previousValidUntil"], format_time(&soon));
    assert_eq!(w.store.get_webhook(&id_of(&first)).await.unwrap().unwrap().expires_at, Some(soon));
}

#[tokio::test]
async fn the_webhook_url_uses_the_public_base_url_else_the_api_domain_and_stage() {
    let w =
        World::with(Options { public_base_url: Some("https://hooks.reimbi.example/".into()), ashby_url: None }).await;
    let v = w.rotate().await;
    assert!(v["webhookUrl"].as_str().unwrap().starts_with("https://hooks.reimbi.example/webhooks/ashby/wh_"), "{v}");

    let w = World::new().await;
    for (stage, prefix) in [
        ("prod", "https://abc.execute-api.example/prod/webhooks/ashby/wh_"),
        ("$default", "https://abc.execute-api.example/webhooks/ashby/wh_"),
    ] {
        let mut req = World::request("POST", CREDENTIALS, Caller::Admin(ACME), None);
        let mut ctx = crate::auth::request_context(&[("company_id", ACME), ("role", "admin")]);
        #[allow(irrefutable_let_patterns)]
        if let lambda_http::request::RequestContext::ApiGatewayV2(c) = &mut ctx {
            c.domain_name = Some("abc.execute-api.example".into());
            c.stage = Some(stage.into());
        }
        req.extensions_mut().insert(ctx);
        let (status, v) = w.send(req).await;
        assert_eq!(status, StatusCode::CREATED);
        assert!(v["webhookUrl"].as_str().unwrap().starts_with(prefix), "{v}");
    }
}

// ---------- events and candidates ----------

fn event(company: &str, n: u32) -> EventLogEntry {
    let at = t0() + chrono::Duration::minutes(n.into());
    EventLogEntry {
        company_id: CompanyId::parse(company).unwrap(),
        event_id: EventId::derive(&CompanyId::parse(company).unwrap(), Some(&format!("action-{n}")), b""),
        received_at: at,
        action: "candidateStageChange".into(),
        ashby_candidate_id: Some(format!("ashby-{n}")),
        outcome: if n.is_multiple_of(2) { Outcome::Invited } else { Outcome::Ignored },
        reason: if n.is_multiple_of(2) { None } else { Some(Reason::NotFlagged) },
        candidate_id: None,
        updated_at: at,
    }
}

#[tokio::test]
async fn events_are_listed_newest_first_in_pages() {
    let w = World::new().await;
    for n in 0..3 {
        w.store.insert_if_absent(&event(ACME, n)).await.unwrap();
    }
    w.store.insert_if_absent(&event(GLOBEX, 9)).await.unwrap();
    let (status, page) = w.admin("GET", "/companies/acme/integrations/ashby/events?limit=2", None).await;
    assert_eq!(status, StatusCode::OK);
    let e2 = event(ACME, 2);
    assert_eq!(
        page["items"][0],
        json!({ "eventId": e2.event_id.as_str(), "receivedAt": "2026-12-04T10:02:00Z", "action": "candidateStageChange",
                "ashbyCandidateId": "ashby-2", "outcome": "invited", "reason": null, "candidateId": null })
    );
    assert_eq!(page["items"][1]["reason"], "not_flagged");
    let cursor = page["nextCursor"].as_str().expect("a second page");
    let uri = format!("/companies/acme/integrations/ashby/events?limit=2&cursor={}", urlencode(cursor));
    let (_, rest) = w.admin("GET", &uri, None).await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["items"][0]["ashbyCandidateId"], "ashby-0");
    assert_eq!(rest["nextCursor"], Value::Null);
    let (_, all) = w.admin("GET", "/companies/acme/integrations/ashby/events", None).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 3, "another company's events are not listed");
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("c", s)]).unwrap().trim_start_matches("c=").to_owned()
}

#[tokio::test]
async fn listing_limits_and_cursors_are_validated() {
    let w = World::new().await;
    for base in ["/companies/acme/integrations/ashby/events", "/companies/acme/candidates"] {
        for bad in ["0", "101", "abc"] {
            let got = w.admin("GET", &format!("{base}?limit={bad}"), None).await;
            assert_error(&got, 422, "validation_failed", Some("limit"));
        }
        let got = w.admin("GET", &format!("{base}?cursor=not-a-cursor-we-issued"), None).await;
        assert_error(&got, 422, "validation_failed", Some("cursor"));
        assert_eq!(w.admin("GET", &format!("{base}?limit=100"), None).await.0, StatusCode::OK);
    }
}

fn candidate(company: &str, ashby_id: &str, minutes: i64) -> CandidateRecord {
    let c = CompanyId::parse(company).unwrap();
    CandidateRecord {
        candidate_id: CandidateId::for_ashby_candidate(&c, ashby_id),
        company_id: c.clone(),
        status: CandidateStatus::Invited,
        name: "Jane Doe".into(),
        email: EmailAddress::parse("jane@example.com").unwrap(),
        ashby_candidate_id: ashby_id.into(),
        ashby_application_id: "app-1".into(),
        policy_id: PolicyId::parse("onsite").unwrap(),
        policy_name: "Onsite Interview".into(),
        approver_email: EmailAddress::parse("rae@acme.example").unwrap(),
        approver_source: ApproverSource::HiringTeam,
        invited_at: t0() + chrono::Duration::minutes(minutes),
        invite_email: InviteEmail {
            status: InviteEmailStatus::Sent,
            message_id: Some("msg-1".into()),
            lease_until: None,
            sent_at: None,
        },
        source_event_id: EventId::derive(&c, Some(ashby_id), b""),
    }
}

#[tokio::test]
async fn candidates_are_listed_and_read_by_id_within_the_company_only() {
    let w = World::new().await;
    let jane = candidate(ACME, "ashby-jane", 1);
    w.store.create_if_absent(&jane).await.unwrap();
    w.store.create_if_absent(&candidate(ACME, "ashby-joe", 2)).await.unwrap();
    let theirs = candidate(GLOBEX, "ashby-zed", 3);
    w.store.create_if_absent(&theirs).await.unwrap();

    let (status, page) = w.admin("GET", "/companies/acme/candidates?limit=1", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"][0]["ashbyCandidateId"], "ashby-joe");
    assert!(page["nextCursor"].is_string());
    let (status, one) = w.admin("GET", &format!("/companies/acme/candidates/{}", jane.candidate_id), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        one,
        json!({ "candidateId": jane.candidate_id.as_str(), "status": "Invited", "name": "Jane Doe", "email": "jane@example.com",
                "ashbyCandidateId": "ashby-jane", "ashbyApplicationId": "app-1", "policyId": "onsite", "policyName": "Onsite Interview",
                "approverEmail": "rae@acme.example", "approverSource": "hiringTeam", "invitedAt": "2026-12-04T10:01:00Z",
                "inviteEmail": { "status": "sent", "messageId": "msg-1" } })
    );
    let got = w.admin("GET", "/companies/acme/candidates/cand_unknown", None).await;
    assert_error(&got, 404, "not_found", None);
    let got = w.admin("GET", &format!("/companies/acme/candidates/{}", theirs.candidate_id), None).await;
    assert_error(&got, 404, "not_found", None);
    let got = w.admin("GET", "/companies/acme/candidates/bad%20id", None).await;
    assert_error(&got, 404, "not_found", None);
}

// ---------- policies and staff ----------

#[tokio::test]
async fn policies_are_put_and_listed() {
    let w = World::new().await;
    let body = json!({ "name": "Onsite Interview", "enabled": true, "submissionGuidelines": "Line one\nLine two", "defaultApproverEmail": "Pat@Acme.example" });
    let (status, v) = w.admin("PUT", "/companies/acme/policies/onsite", Some(&body.to_string())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        v,
        json!({ "policyId": "onsite", "name": "Onsite Interview", "enabled": true, "submissionGuidelines": "Line one\nLine two",
                "defaultApproverEmail": "pat@acme.example", "updatedAt": "2026-12-04T10:00:00Z" })
    );
    w.add_policy("travel", "Final Round Travel", false).await;
    let (_, list) = w.admin("GET", "/companies/acme/policies", None).await;
    let names: Vec<&str> = list["items"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Onsite Interview", "Final Round Travel"]);
    let (_, theirs) = w.call("GET", "/companies/globex/policies", Caller::Admin(GLOBEX), None).await;
    assert_eq!(theirs["items"], json!([]));
}

#[tokio::test]
async fn invalid_policies_are_refused_with_the_field_named() {
    let w = World::new().await;
    let long_guidelines = "g".repeat(10_001);
    let cases: Vec<(&str, String, &str)> = vec![
        ("onsite", r#"{"enabled":true}"#.into(), "name"),
        ("onsite", r#"{"name":""}"#.into(), "name"),
        ("onsite", format!(r#"{{"name":"{}"}}"#, "n".repeat(201)), "name"),
        ("onsite", r#"{"name":"A","enabled":"yes"}"#.into(), "enabled"),
        ("onsite", format!(r#"{{"name":"A","submissionGuidelines":"{long_guidelines}"}}"#), "submissionGuidelines"),
        ("onsite", r#"{"name":"A","defaultApproverEmail":"nope"}"#.into(), "defaultApproverEmail"),
        ("onsite", r#"{"name":"A","owner":"me"}"#.into(), "owner"),
        ("bad%20id", r#"{"name":"A"}"#.into(), "policyId"),
    ];
    for (id, body, field) in cases {
        let got = w.admin("PUT", &format!("/companies/acme/policies/{id}"), Some(&body)).await;
        assert_error(&got, 422, "validation_failed", Some(field));
    }
    assert!(w.store.list_policies(&World::acme()).await.unwrap().is_empty());
    // Exactly 10 000 characters is fine.
    let ok = json!({ "name": "A", "submissionGuidelines": "g".repeat(10_000) });
    assert_eq!(w.admin("PUT", "/companies/acme/policies/a", Some(&ok.to_string())).await.0, StatusCode::OK);
}

#[tokio::test]
async fn staff_are_put_by_email_encoded_or_not_and_listed() {
    let w = World::new().await;
    let (status, v) = w
        .admin("PUT", "/companies/acme/staff/Rae%40Acme.example", Some(r#"{"name":"Rae Cruiter","canApprove":true}"#))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        v,
        json!({ "email": "rae@acme.example", "name": "Rae Cruiter", "canApprove": true, "updatedAt": "2026-12-04T10:00:00Z" })
    );
    let (status, _) =
        w.admin("PUT", "/companies/acme/staff/rae@acme.example", Some(r#"{"name":"Rae C.","canApprove":false}"#)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = w.admin("GET", "/companies/acme/staff", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "the same person, whatever the encoding");
    assert_eq!(list["items"][0]["canApprove"], false);

    for (email, body, field) in [
        ("not-an-email", r#"{"name":"X","canApprove":true}"#, "email"),
        ("x@acme.example", r#"{"canApprove":true}"#, "name"),
        ("x@acme.example", r#"{"name":"X"}"#, "canApprove"),
        ("x@acme.example", r#"{"name":"X","canApprove":"yes"}"#, "canApprove"),
        ("x@acme.example", r#"{"name":"X","canApprove":true,"admin":true}"#, "admin"),
    ] {
        let got = w.admin("PUT", &format!("/companies/acme/staff/{email}"), Some(body)).await;
        assert_error(&got, 422, "validation_failed", Some(field));
    }
}

// ---------- health ----------

fn check<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {v}"))
}

#[tokio::test]
async fn health_is_ok_when_ashby_and_reimbi_are_set_up_correctly() {
    let w = World::new().await;
    w.configure().await;
    w.add_policy("onsite", "Onsite Interview", true).await;
    w.add_policy("travel", "Final Round Travel", true).await;
    w.admin("PUT", SETTINGS, Some(r#"{"approverRole":"hiringTeam","hiringTeamRole":"recruiter"}"#)).await;
    w.rotate().await;
    let (status, v) = w.admin("GET", "/companies/acme/integrations/ashby/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["ok"], true, "{v:#}");
    for name in ["apiKey", "triggerField", "policyField", "hiringTeamRole", "backupApprover", "webhookCredentials"] {
        let c = check(&v, name);
        assert_eq!(c["ok"], true, "{c}");
        assert!(c["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
}

#[tokio::test]
async fn health_names_what_is_wrong_when_ashby_is_set_up_incorrectly() {
    let w = World::new().await;
    w.configure().await;
    w.add_policy("onsite", "Onsite Interview", true).await;
    w.add_policy("travel", "Final Round Travel", true).await;
    w.add_policy("old", "Relocation", false).await;
    w.sim.set_custom_fields(vec![
        json!({ "id": "f1", "title": "Send to Reimbi", "objectType": "Candidate", "fieldType": "String", "isArchived": false }),
        json!({ "id": "f2", "title": "Reimbi Reimbursement Policy", "objectType": "Candidate", "fieldType": "ValueSelect", "isArchived": false,
                "selectableValues": [ { "label": "Onsite Interview", "value": "onsite", "isArchived": false },
                                      { "label": "Relocation", "value": "relocation", "isArchived": false } ] }),
    ]);
    w.admin("PUT", SETTINGS, Some(r#"{"approverRole":"hiringTeam","hiringTeamRole":"Talent Partner"}"#)).await;
    // The backup approver lost the right to approve after being chosen.
    w.add_staff("ops@acme.example", false).await;

    let (status, v) = w.admin("GET", "/companies/acme/integrations/ashby/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["ok"], false);
    assert_eq!(check(&v, "apiKey")["ok"], true);
    let trigger = check(&v, "triggerField");
    assert_eq!(trigger["ok"], false);
    assert!(trigger["detail"].as_str().unwrap().contains("Yes/No"), "{trigger}");
    let policy = check(&v, "policyField");
    assert_eq!(policy["ok"], false);
    let detail = policy["detail"].as_str().unwrap();
    assert!(detail.contains("'Relocation'") && !detail.contains("'Onsite Interview'"), "{detail}");
    assert!(detail.contains("Final Round Travel"), "enabled policies with no option are named: {detail}");
    assert!(check(&v, "hiringTeamRole")["detail"].as_str().unwrap().contains("Talent Partner"));
    assert_eq!(check(&v, "hiringTeamRole")["ok"], false);
    assert!(check(&v, "backupApprover")["detail"].as_str().unwrap().contains("cannot approve"));
    assert_eq!(check(&v, "webhookCredentials")["ok"], false);
}

#[tokio::test]
async fn health_reports_a_key_ashby_no_longer_accepts() {
    let w = World::new().await;
    w.configure().await;
    w.sim.remove_api_key(GOOD_KEY);
    let (_, v) = w.admin("GET", "/companies/acme/integrations/ashby/health", None).await;
    assert_eq!(v["ok"], false);
    let key = check(&v, "apiKey");
    assert_eq!(key["ok"], false);
    assert!(key["detail"].as_str().unwrap().contains("rejects"), "{key}");
    assert!(check(&v, "triggerField")["detail"].as_str().unwrap().contains("apiKey check"));
}

#[tokio::test]
async fn health_of_an_empty_company_fails_each_check_with_what_to_do() {
    let w = World::new().await;
    let (status, v) = w.admin("GET", "/companies/acme/integrations/ashby/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["ok"], false);
    assert_eq!(check(&v, "apiKey")["ok"], false);
    assert_eq!(check(&v, "backupApprover")["ok"], false);
    assert_eq!(check(&v, "webhookCredentials")["ok"], false);
    // With at most one enabled policy the policy field is not needed.
    assert_eq!(check(&v, "policyField")["ok"], true);
    assert_eq!(w.sim.calls().len(), 0, "no key, no call to Ashby");
}

#[tokio::test]
async fn the_policy_field_check_passes_without_the_field_when_one_policy_is_enabled() {
    let w = World::new().await;
    w.configure().await;
    w.add_policy("onsite", "Onsite Interview", true).await;
    w.add_policy("old", "Old", false).await;
    w.sim.set_custom_fields(vec![json!({ "id": "f1", "title": "Send to Reimbi", "objectType": "Candidate", "fieldType": "Boolean", "isArchived": false })]);
    let (_, v) = w.admin("GET", "/companies/acme/integrations/ashby/health", None).await;
    let policy = check(&v, "policyField");
    assert_eq!(policy["ok"], true);
    assert!(policy["detail"].as_str().unwrap().contains("Not needed"), "{policy}");
}

// ---------- authentication, isolation, routing ----------

fn concrete(path: &str) -> String {
    path.replace("{companyId}", ACME)
        .replace("{policyId}", "onsite")
        .replace("{email}", "ops@acme.example")
        .replace("{candidateId}", "cand_1")
}

#[tokio::test]
async fn every_route_refuses_no_token_another_company_and_a_non_admin_before_reading_the_body() {
    let w = World::new().await;
    w.configure().await;
    let before = w.stored_settings().await;
    // An invalid body: were it validated first, the answer would be 422.
    let junk = Some("{not json");
    for (method, path) in ROUTES {
        let uri = concrete(path);
        let body = if *method == "GET" { None } else { junk };
        for (caller, status, code) in [
            (Caller::NoToken, 401, "unauthorized"),
            (Caller::NoCompanyClaim, 401, "unauthorized"),
            (Caller::Admin(GLOBEX), 403, "forbidden"),
            (Caller::Member(ACME), 403, "forbidden"),
        ] {
            let got = w.call(method, &uri, caller, body).await;
            assert_eq!(got.0.as_u16(), status, "{method} {uri} as {caller:?}: {}", got.1);
            assert_eq!(got.1["error"]["code"], code, "{method} {uri} as {caller:?}");
        }
    }
    assert_eq!(w.stored_settings().await, before, "nothing changed");
    assert_eq!(w.rotate_count().await, 0);
}

impl World {
    async fn rotate_count(&self) -> usize {
        self.stored_settings().await.and_then(|s| s.current_webhook_id).map_or(0, |_| 1)
    }
}

#[tokio::test]
async fn the_router_serves_exactly_the_listed_routes() {
    let w = World::new().await;
    for path in ROUTES.iter().map(|(_, p)| *p).collect::<std::collections::BTreeSet<_>>() {
        for method in ["GET", "PUT", "POST", "DELETE", "PATCH"] {
            let got = w.call(method, &concrete(path), Caller::NoToken, None).await;
            let listed = ROUTES.contains(&(method, path));
            let expected = if listed { 401 } else { 405 };
            assert_eq!(got.0.as_u16(), expected, "{method} {path}: {}", got.1);
        }
    }
    let got = w.admin("GET", "/companies/acme/nothing-here", None).await;
    assert_error(&got, 404, "not_found", None);
}

/// The (method, path) pairs of `paths:` in an OpenAPI YAML file: keys two spaces in that start
/// with `/`, and HTTP methods four spaces in beneath them.
fn openapi_routes(yaml: &str) -> std::collections::BTreeSet<(String, String)> {
    let mut out = std::collections::BTreeSet::new();
    let mut in_paths = false;
    let mut current: Option<String> = None;
    for line in yaml.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() {
            in_paths = line.trim_end() == "paths:";
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(key) = line.strip_prefix("  ").filter(|l| l.starts_with('/')) {
            current = Some(key.trim_end().trim_end_matches(':').to_owned());
        } else if let Some(key) = line.strip_prefix("    ").filter(|l| !l.starts_with(' ')) {
            let key = key.trim_end().trim_end_matches(':');
            if ["get", "put", "post", "delete", "patch", "head", "options"].contains(&key) {
                out.insert((key.to_uppercase(), current.clone().expect("a method under a path")));
            }
        }
    }
    out
}

/// Routes served by the other function (the webhook Lambda); tests/it checks that it serves it.
pub const WEBHOOK_ROUTES: &[(&str, &str)] = &[("POST", "/webhooks/ashby/{webhookId}")];

#[test]
fn the_openapi_document_describes_exactly_the_served_routes() {
    let yaml = include_str!("../../../docs/openapi.yaml");
    assert!(yaml.starts_with("openapi: 3.1."), "an OpenAPI 3.1 document");
    let documented = openapi_routes(yaml);
    let served: std::collections::BTreeSet<(String, String)> =
        ROUTES.iter().chain(WEBHOOK_ROUTES).map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(undocumented.is_empty(), "served but not in docs/openapi.yaml: {undocumented:?}");
    assert!(unserved.is_empty(), "in docs/openapi.yaml but not served: {unserved:?}");
}

#[test]
fn the_openapi_extraction_sees_methods_under_their_paths() {
    let yaml = "openapi: 3.1.0\npaths:\n  /a/{id}:\n    get:\n      summary: x\n    put:\n      description: y\n  /b:\n    post:\n      x: 1\ncomponents:\n  /c:\n    get: {}\n";
    let got: Vec<(String, String)> = openapi_routes(yaml).into_iter().collect();
    assert_eq!(got, [("GET".into(), "/a/{id}".into()), ("POST".into(), "/b".into()), ("PUT".into(), "/a/{id}".into())]);
}

// ---------- secrets never leak ----------

#[tokio::test]
async fn neither_the_api_key_nor_a_signing_secret_appears_in_any_response_or_log_line() {
    let (logs, _guard) = capture_logs();
    let w = World::new().await;
    w.configure().await;
    w.add_policy("onsite", "Onsite Interview", true).await;
    let first = w.rotate().await;
    let second = w.rotate().await;
    let secrets = [first["secretKey"].as_str().unwrap().to_owned(), second["secretKey"].as_str().unwrap().to_owned()];
    w.admin("GET", SETTINGS, None).await;
    w.admin("GET", "/companies/acme/integrations/ashby/health", None).await;
    w.admin("GET", "/companies/acme/integrations/ashby/events", None).await;
    w.admin("PUT", SETTINGS, Some(&json!({ "apiKey": BAD_KEY }).to_string())).await;
    w.admin("PUT", SETTINGS, Some(&json!({ "apiKey": OTHER_KEY, "enabled": "x" }).to_string())).await;
    w.admin("PUT", SETTINGS, Some(&json!({ "apiKey": OTHER_KEY }).to_string())).await;
    w.faults.secrets_down.store(true, std::sync::atomic::Ordering::SeqCst);
    w.admin("PUT", SETTINGS, Some(&json!({ "apiKey": GOOD_KEY }).to_string())).await;
    w.admin("GET", "/companies/acme/integrations/ashby/health", None).await;

    let bodies = w.bodies.lock().unwrap().clone();
    assert!(bodies.len() > 10);
    for key in [GOOD_KEY, OTHER_KEY, BAD_KEY] {
        assert!(bodies.iter().all(|b| !b.contains(key)), "an API key in a response");
    }
    for secret in &secrets {
        let showing: Vec<&String> = bodies.iter().filter(|b| b.contains(secret.as_str())).collect();
        assert_eq!(showing.len(), 1, "a secret key appears only in its one 201 response");
    }
    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("settings saved") && logs.contains("webhook credentials rotated"), "logs were captured");
    for needle in [GOOD_KEY, OTHER_KEY, BAD_KEY, &secrets[0], &secrets[1]] {
        assert!(!logs.contains(needle), "a secret in the logs");
    }
}
