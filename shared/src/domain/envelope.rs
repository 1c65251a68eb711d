//! Ashby's webhook envelope: `{ "webhookActionId": "...", "action": "...", "data": { ... } }`.

use serde::Deserialize;

/// The action of a "Candidate Application Changed Stage" webhook.
pub const ACTION_STAGE_CHANGE: &str = "candidateStageChange";
/// Sent when a webhook is created or edited in Ashby.
pub const ACTION_PING: &str = "ping";

/// A parsed, signature-checked webhook payload.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEnvelope {
    /// Ashby's event id, the same across its retries; absent from some payloads (e.g. `ping`).
    pub webhook_action_id: Option<String>,
    pub action: String,
    /// For `candidateStageChange`: what the processor needs from `data.application`.
    pub stage_change: Option<StageChange>,
}

/// The parts of `data.application` the integration uses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageChange {
    pub application: ApplicationRef,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationRef {
    pub id: String,
    pub candidate: CandidateRef,
    #[serde(default)]
    pub hiring_team: Vec<super::ashby::HiringTeamMember>,
    #[serde(default)]
    pub current_interview_stage: Option<StageRef>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CandidateRef {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageRef {
    #[serde(default)]
    pub title: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EnvelopeError(pub String);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEnvelope {
    #[serde(default)]
    webhook_action_id: Option<serde_json::Value>,
    action: Option<serde_json::Value>,
    data: Option<serde_json::Value>,
}

impl WebhookEnvelope {
    /// Parses the raw body. It must be a JSON object with a string `action` and an object
    /// `data`; a `candidateStageChange` must also name the application and its candidate.
    pub fn parse(body: &[u8]) -> Result<Self, EnvelopeError> {
        let raw: RawEnvelope =
            serde_json::from_slice(body).map_err(|e| EnvelopeError(format!("the body is not a JSON object: {e}")))?;
        let action = match raw.action {
            Some(serde_json::Value::String(a)) if !a.is_empty() => a,
            _ => return Err(EnvelopeError("the body has no string \"action\"".into())),
        };
        let data = match raw.data {
            Some(d @ serde_json::Value::Object(_)) => d,
            _ => return Err(EnvelopeError("the body has no object \"data\"".into())),
        };
        let webhook_action_id = match raw.webhook_action_id {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s),
            Some(_) => return Err(EnvelopeError("\"webhookActionId\" must be a non-empty string".into())),
        };
        let stage_change = if action == ACTION_STAGE_CHANGE {
            let sc: StageChange = serde_json::from_value(data).map_err(|e| {
                EnvelopeError(format!("\"data.application\" with its \"id\" and \"candidate.id\" is required: {e}"))
            })?;
            if sc.application.id.is_empty() || sc.application.candidate.id.is_empty() {
                return Err(EnvelopeError("application and candidate ids must not be empty".into()));
            }
            Some(sc)
        } else {
            None
        };
        Ok(Self { webhook_action_id, action, stage_change })
    }

    /// The Ashby candidate the event is about, if any.
    pub fn ashby_candidate_id(&self) -> Option<&str> {
        self.stage_change.as_ref().map(|s| s.application.candidate.id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAGE_CHANGE: &[u8] = include_bytes!("../../../infra/fixtures/ashby/webhook-candidateStageChange.json");
    const PING: &[u8] = include_bytes!("../../../infra/fixtures/ashby/webhook-ping.json");

    #[test]
    fn parses_the_documented_stage_change() {
        let e = WebhookEnvelope::parse(STAGE_CHANGE).unwrap();
        assert_eq!(e.action, ACTION_STAGE_CHANGE);
        assert_eq!(e.webhook_action_id.as_deref(), Some("9c1f3a52-6d0e-4b7a-9f7e-2a41d0c8e5b1"));
        let app = &e.stage_change.as_ref().unwrap().application;
        assert_eq!(app.candidate.id, "b2e47d19-3c5a-4f8e-9d61-07a8c3f2e4d5");
        assert_eq!(app.hiring_team.len(), 2);
        assert_eq!(app.hiring_team[0].role.as_deref(), Some("Recruiter"));
    }

    #[test]
    fn parses_a_ping_without_webhook_action_id() {
        let e = WebhookEnvelope::parse(PING).unwrap();
        assert_eq!(e.action, ACTION_PING);
        assert_eq!(e.webhook_action_id, None);
        assert!(e.stage_change.is_none());
    }

    #[test]
    fn refuses_bodies_that_are_not_the_envelope() {
        for bad in [
            &b"not json"[..],
            b"[]",
            b"{}",
            b"{\"action\":\"ping\"}",
            b"{\"action\":1,\"data\":{}}",
            b"{\"action\":\"ping\",\"data\":[]}",
            b"{\"action\":\"candidateStageChange\",\"data\":{}}",
            b"{\"action\":\"candidateStageChange\",\"data\":{\"application\":{\"id\":\"a\"}}}",
            b"{\"webhookActionId\":5,\"action\":\"ping\",\"data\":{}}",
        ] {
            assert!(WebhookEnvelope::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn other_actions_parse_without_stage_change_details() {
        let e =
            WebhookEnvelope::parse(b"{\"webhookActionId\":\"w\",\"action\":\"candidateHire\",\"data\":{}}").unwrap();
        assert_eq!(e.action, "candidateHire");
        assert!(e.stage_change.is_none());
    }
}
