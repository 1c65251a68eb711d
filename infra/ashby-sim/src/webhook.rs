//! Webhook deliveries as Ashby makes them: payloads shaped like
//! `infra/fixtures/ashby/webhook-*.json`, signed `Ashby-Signature: sha256=<hex HMAC-SHA256>`.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// The signature header Ashby sends.
pub const SIGNATURE_HEADER: &str = "Ashby-Signature";

/// `sha256=<lowercase hex HMAC-SHA256(secret, body)>`, keyed with the secret's UTF-8 bytes.
pub fn sign(secret: impl AsRef<[u8]>, body: impl AsRef<[u8]>) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_ref()).expect("HMAC accepts keys of any length");
    mac.update(body.as_ref());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A random id shaped like Ashby's `webhookActionId` (a UUID v4).
pub fn fresh_action_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the OS random source is available");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// What [`stage_change`] accepts as the `webhookActionId`: a string, or `None` for a fresh one.
pub trait IntoActionId {
    fn into_action_id(self) -> String;
}

impl IntoActionId for &str {
    fn into_action_id(self) -> String {
        self.to_owned()
    }
}

impl IntoActionId for String {
    fn into_action_id(self) -> String {
        self
    }
}

impl IntoActionId for &String {
    fn into_action_id(self) -> String {
        self.clone()
    }
}

impl IntoActionId for Option<&str> {
    fn into_action_id(self) -> String {
        self.map_or_else(fresh_action_id, str::to_owned)
    }
}

/// The hiring team of the fixture's application: Rae Cruiter (Recruiter, rae@acme.example) and
/// Hal Manager (Hiring Manager, hal@acme.example).
pub fn demo_hiring_team() -> Value {
    json!([
        { "userId": "11111111-2222-4333-8444-555555555555", "firstName": "Rae", "lastName": "Cruiter",
          "email": "rae@acme.example", "role": "Recruiter" },
        { "userId": "66666666-7777-4888-9999-000000000000", "firstName": "Hal", "lastName": "Manager",
          "email": "hal@acme.example", "role": "Hiring Manager" }
    ])
}

/// A `candidateStageChange` payload shaped like `webhook-candidateStageChange.json`, for this
/// candidate, application and hiring team. `webhook_action_id`: an id to reuse (a redelivery of
/// the same event), or `None` for a fresh one.
pub fn stage_change(
    webhook_action_id: impl IntoActionId,
    candidate_id: &str,
    application_id: &str,
    hiring_team: Value,
) -> Vec<u8> {
    let payload = json!({
        "webhookActionId": webhook_action_id.into_action_id(),
        "action": "candidateStageChange",
        "data": { "application": {
            "id": application_id,
            "createdAt": "2026-11-20T09:12:44.031Z",
            "updatedAt": "2026-12-04T15:21:07.112Z",
            "status": "Active",
            "customFields": [],
            "candidate": {
                "id": candidate_id,
                "name": "Jane Doe",
                "primaryEmailAddress": { "value": "jane.doe@example.com", "type": "Personal", "isPrimary": true },
                "primaryPhoneNumber": { "value": "+1 415 555 0100", "type": "Mobile", "isPrimary": true }
            },
            "currentInterviewStage": {
                "id": "e1d2c3b4-a5f6-4789-8a0b-1c2d3e4f5a6b", "title": "Onsite", "type": "Active",
                "orderInInterviewPlan": 4, "interviewStageGroupId": "0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d",
                "interviewPlanId": "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b"
            },
            "source": { "id": "7b8c9d0e-1f2a-4b3c-8d4e-5f6a7b8c9d0e", "title": "Referral", "isArchived": false },
            "job": { "id": "c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f", "title": "Backend Engineer",
                     "locationId": "d4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f7a",
                     "departmentId": "e5f6a7b8-c9d0-4e1f-8a2b-3c4d5e6f7a8b" },
            "hiringTeam": hiring_team,
            "creditedToUser": { "id": "11111111-2222-4333-8444-555555555555", "firstName": "Rae", "lastName": "Cruiter",
                                "email": "rae@acme.example", "globalRole": "Elevated Access", "isEnabled": true,
                                "updatedAt": "2026-01-01T00:00:00.000Z" }
        } }
    });
    serde_json::to_vec(&payload).expect("a JSON value serializes")
}

/// The `ping` payload Ashby sends when a webhook is created or edited (`webhook-ping.json`).
pub fn ping() -> Vec<u8> {
    br#"{"action":"ping","data":{"webhookActionType":"ping"}}"#.to_vec()
}

/// POSTs `body` to `url` signed with `secret`, as Ashby delivers a webhook. Panics when `url`
/// cannot be reached (use [`try_deliver`] to see the error).
pub async fn deliver(url: impl AsRef<str>, secret: impl AsRef<[u8]>, body: impl AsRef<[u8]>) -> reqwest::Response {
    let url = url.as_ref();
    try_deliver(url, secret, body).await.unwrap_or_else(|e| panic!("delivering a webhook to {url}: {e}"))
}

pub async fn try_deliver(
    url: impl AsRef<str>,
    secret: impl AsRef<[u8]>,
    body: impl AsRef<[u8]>,
) -> Result<reqwest::Response, reqwest::Error> {
    let signature = sign(secret, body.as_ref());
    post_with_signature(url, Some(&signature), body).await
}

/// POSTs `body` with this `Ashby-Signature` header value, or none: for testing rejections.
pub async fn post_with_signature(
    url: impl AsRef<str>,
    signature: Option<&str>,
    body: impl AsRef<[u8]>,
) -> Result<reqwest::Response, reqwest::Error> {
    // A client per delivery: a shared one would outlive the test runtime that opened its connections.
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build()?;
    let mut request = client
        .post(url.as_ref())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::USER_AGENT, "Ashby-Webhooks (simulated)")
        .body(body.as_ref().to_vec());
    if let Some(signature) = signature {
        request = request.header(SIGNATURE_HEADER, signature);
    }
    request.send().await
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &[u8] = include_bytes!("../../fixtures/ashby/webhook-candidateStageChange.json");
    const SECRET: &str = include_str!("../../fixtures/ashby/example-secret.txt");

    #[test]
    fn signs_the_documented_example_to_the_documented_signature() {
        assert_eq!(FIXTURE.len(), 1554);
        assert_eq!(sign(SECRET, FIXTURE), "sha256=6d10569c489f234c0d4be358dd68d48d76a7aa01c9a083869ab2fb443fc3a8b2");
    }

    #[test]
    fn a_stage_change_built_from_the_fixture_values_has_the_fixture_shape() {
        let fixture: Value = serde_json::from_slice(FIXTURE).unwrap();
        let built: Value = serde_json::from_slice(&stage_change(
            "9c1f3a52-6d0e-4b7a-9f7e-2a41d0c8e5b1",
            "b2e47d19-3c5a-4f8e-9d61-07a8c3f2e4d5",
            "4f6a2c1e-8b3d-4e7f-a1c2-5d9e0b7f3a64",
            demo_hiring_team(),
        ))
        .unwrap();
        assert_eq!(built, fixture);
    }

    #[test]
    fn asking_for_no_action_id_gives_a_fresh_one_each_time() {
        let id = |body: Vec<u8>| serde_json::from_slice::<Value>(&body).unwrap()["webhookActionId"].clone();
        let a = id(stage_change(None, "c", "a", json!([])));
        let b = id(stage_change(None, "c", "a", json!([])));
        assert_ne!(a, b);
        assert_eq!(a.as_str().unwrap().len(), 36);
        assert_eq!(id(stage_change("same", "c", "a", json!([]))), json!("same"));
    }

    #[test]
    fn ping_is_the_fixture() {
        assert_eq!(ping(), include_bytes!("../../fixtures/ashby/webhook-ping.json").trim_ascii_end());
    }
}
