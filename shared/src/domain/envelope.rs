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

/// What the single pass over the body found. `data` is only checked to be an object, except
/// for a stage change, whose `data` is read straight into [`StageChange`]: no `serde_json::Value`
/// tree is built for the (possibly large) payload, which keeps parsing near the cost of the HMAC.
struct RawEnvelope {
    webhook_action_id: Option<serde_json::Value>,
    action: Option<serde_json::Value>,
    data: RawData,
}

enum RawData {
    Absent,
    NotObject,
    /// An object, skipped.
    Object,
    /// `data` of a stage change: read, or why it could not be.
    StageChange(Result<StageChange, String>),
    /// `data` came before `action` (Ashby sends it last): kept whole, decided later.
    Value(serde_json::Value),
}

impl<'de> Deserialize<'de> for RawEnvelope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

impl<'de> serde::de::Visitor<'de> for EnvelopeVisitor {
    type Value = RawEnvelope;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<RawEnvelope, A::Error> {
        use serde::de::Error as _;
        let mut raw = RawEnvelope { webhook_action_id: None, action: None, data: RawData::Absent };
        let mut seen_data = false;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "webhookActionId" if raw.webhook_action_id.is_none() => raw.webhook_action_id = Some(map.next_value()?),
                "action" if raw.action.is_none() => raw.action = Some(map.next_value()?),
                "data" if !seen_data => {
                    seen_data = true;
                    raw.data = match &raw.action {
                        Some(serde_json::Value::String(a)) if a == ACTION_STAGE_CHANGE => {
                            map.next_value::<StageData>()?.0
                        }
                        Some(_) => map.next_value::<ObjectCheck>()?.0,
                        None => RawData::Value(map.next_value()?),
                    }
                }
                "webhookActionId" | "action" | "data" => {
                    return Err(A::Error::custom(format!("duplicate field `{key}`")));
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(raw)
    }
}

/// `data` of any action but a stage change: must be an object, its content is skipped.
struct ObjectCheck(RawData);

impl<'de> Deserialize<'de> for ObjectCheck {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawData;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawData, A::Error> {
                serde::de::IgnoredAny.visit_map(map).map(|_| RawData::Object)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<RawData, A::Error> {
                serde::de::IgnoredAny.visit_seq(seq).map(|_| RawData::NotObject)
            }
            fn visit_bool<E>(self, _: bool) -> Result<RawData, E> {
                Ok(RawData::NotObject)
            }
            fn visit_i64<E>(self, _: i64) -> Result<RawData, E> {
                Ok(RawData::NotObject)
            }
            fn visit_u64<E>(self, _: u64) -> Result<RawData, E> {
                Ok(RawData::NotObject)
            }
            fn visit_f64<E>(self, _: f64) -> Result<RawData, E> {
                Ok(RawData::NotObject)
            }
            fn visit_str<E>(self, _: &str) -> Result<RawData, E> {
                Ok(RawData::NotObject)
            }
            fn visit_unit<E>(self) -> Result<RawData, E> {
                Ok(RawData::NotObject)
            }
        }
        deserializer.deserialize_any(V).map(ObjectCheck)
    }
}

/// `data` of a stage change: an object read into [`StageChange`] in the same pass.
struct StageData(RawData);

impl<'de> Deserialize<'de> for StageData {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = StageChange;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object with \"application\" and its \"id\" and \"candidate.id\"")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<StageChange, A::Error> {
                StageChange::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer.deserialize_any(V).map(|sc| StageData(RawData::StageChange(Ok(sc))))
    }
}

impl WebhookEnvelope {
    /// Parses the raw body. It must be a JSON object with a string `action` and an object
    /// `data`; a `candidateStageChange` must also name the application and its candidate.
    pub fn parse(body: &[u8]) -> Result<Self, EnvelopeError> {
        let raw: RawEnvelope = serde_json::from_slice(body)
            .map_err(|e| EnvelopeError(format!("the body is not the webhook envelope: {e}")))?;
        let action = match raw.action {
            Some(serde_json::Value::String(a)) if !a.is_empty() => a,
            _ => return Err(EnvelopeError("the body has no string \"action\"".into())),
        };
        let data = match raw.data {
            RawData::Value(v @ serde_json::Value::Object(_)) => {
                if action == ACTION_STAGE_CHANGE {
                    RawData::StageChange(serde_json::from_value(v).map_err(|e| e.to_string()))
                } else {
                    RawData::Object
                }
            }
            RawData::Absent | RawData::NotObject | RawData::Value(_) => {
                return Err(EnvelopeError("the body has no object \"data\"".into()));
            }
            d => d,
        };
        let webhook_action_id = match raw.webhook_action_id {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s),
            Some(_) => return Err(EnvelopeError("\"webhookActionId\" must be a non-empty string".into())),
        };
        let stage_change = match data {
            RawData::StageChange(sc) => {
                let sc = sc.map_err(|e| {
                    EnvelopeError(format!("\"data.application\" with its \"id\" and \"candidate.id\" is required: {e}"))
                })?;
                if sc.application.id.is_empty() || sc.application.candidate.id.is_empty() {
                    return Err(EnvelopeError("application and candidate ids must not be empty".into()));
                }
                Some(sc)
            }
            _ => None,
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
    fn parses_the_same_whatever_the_order_of_the_fields() {
        let reordered = br#"{"data":{"application":{"id":"a","candidate":{"id":"c"},"x":[1,{"y":null}]}},"action":"candidateStageChange","webhookActionId":"w"}"#;
        let e = WebhookEnvelope::parse(reordered).unwrap();
        assert_eq!(e.ashby_candidate_id(), Some("c"));
        assert_eq!(e.webhook_action_id.as_deref(), Some("w"));
        assert!(WebhookEnvelope::parse(br#"{"data":[],"action":"ping"}"#).is_err());
        assert!(WebhookEnvelope::parse(br#"{"data":{},"action":"candidateStageChange"}"#).is_err());
    }

    #[test]
    fn refuses_a_stage_change_whose_data_is_not_an_object_or_a_repeated_field() {
        assert!(
            WebhookEnvelope::parse(br#"{"action":"candidateStageChange","data":[{"id":"a","candidate":{"id":"c"}}]}"#)
                .is_err()
        );
        assert!(WebhookEnvelope::parse(br#"{"action":"ping","action":"ping","data":{}}"#).is_err());
        assert!(WebhookEnvelope::parse(br#"{"action":"ping","data":{"deep":[1,2,{"a":"b"}]},"extra":true}"#).is_ok());
    }

    #[test]
    fn other_actions_parse_without_stage_change_details() {
        let e =
            WebhookEnvelope::parse(b"{\"webhookActionId\":\"w\",\"action\":\"candidateHire\",\"data\":{}}").unwrap();
        assert_eq!(e.action, "candidateHire");
        assert!(e.stage_change.is_none());
    }
}
