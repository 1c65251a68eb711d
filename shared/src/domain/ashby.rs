//! Ashby's data as the integration reads it (from `candidate.info`, `application.info`,
//! `customField.list`, `apiKey.info`); shapes in `infra/fixtures/ashby/`.

use serde::{Deserialize, Serialize};

/// A member of an application's hiring team. Role titles differ per company.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HiringTeamMember {
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AshbyEmail {
    pub value: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub is_primary: Option<bool>,
}

/// A custom field value on a candidate: `value` is `true|false` for Yes/No, the option's value
/// for a single select (with `valueLabel`), arrays for multi select.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomFieldValue {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub is_private: Option<bool>,
    pub title: String,
    #[serde(default)]
    pub value: serde_json::Value,
    #[serde(default)]
    pub value_label: Option<String>,
}

/// `candidate.info` results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AshbyCandidate {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub primary_email_address: Option<AshbyEmail>,
    #[serde(default)]
    pub email_addresses: Vec<AshbyEmail>,
    #[serde(default)]
    pub custom_fields: Vec<CustomFieldValue>,
    #[serde(default)]
    pub application_ids: Vec<String>,
}

impl AshbyCandidate {
    /// The field with this title (exact match, as Ashby shows titles).
    pub fn custom_field(&self, title: &str) -> Option<&CustomFieldValue> {
        self.custom_fields.iter().find(|f| f.title == title)
    }

    /// Whether the Yes/No field titled `title` is set to Yes. Absent or anything else is No.
    pub fn is_flagged(&self, title: &str) -> bool {
        matches!(self.custom_field(title).map(|f| &f.value), Some(serde_json::Value::Bool(true)))
    }

    /// The policy name the recruiter picked: the option's label, else its value.
    pub fn selected_option(&self, title: &str) -> Option<String> {
        let f = self.custom_field(title)?;
        let label = f.value_label.as_deref().map(str::trim).filter(|s| !s.is_empty());
        let value = match &f.value {
            serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.as_str()),
            _ => None,
        };
        label.or(value).map(str::to_owned)
    }

    /// `primaryEmailAddress`, else the first of `emailAddresses`.
    pub fn email(&self) -> Option<&str> {
        self.primary_email_address
            .as_ref()
            .map(|e| e.value.as_str())
            .filter(|v| !v.trim().is_empty())
            .or_else(|| self.email_addresses.iter().map(|e| e.value.as_str()).find(|v| !v.trim().is_empty()))
    }
}

/// `application.info` results (the parts used).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AshbyApplication {
    pub id: String,
    #[serde(default)]
    pub hiring_team: Vec<HiringTeamMember>,
}

/// A `customField.list` item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomFieldDefinition {
    #[serde(default)]
    pub id: Option<String>,
    pub title: String,
    #[serde(default)]
    pub object_type: Option<String>,
    #[serde(default)]
    pub field_type: Option<String>,
    #[serde(default)]
    pub is_archived: bool,
    #[serde(default)]
    pub selectable_values: Vec<SelectableValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelectableValue {
    pub label: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub is_archived: bool,
}

/// `apiKey.info` results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyInfo {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(json: &str) -> AshbyCandidate {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        serde_json::from_value(v["results"].clone()).unwrap()
    }

    #[test]
    fn reads_the_flag_policy_and_email_from_candidate_info() {
        let c = fixture(include_str!("../../../infra/fixtures/ashby/candidate-info-flagged.json"));
        assert!(c.is_flagged("Send to Reimbi"));
        assert_eq!(c.selected_option("Reimbi Reimbursement Policy").as_deref(), Some("Onsite Interview"));
        assert_eq!(c.email(), Some("jane.doe@example.com"));
    }

    #[test]
    fn a_no_or_absent_flag_is_not_flagged() {
        let c = fixture(include_str!("../../../infra/fixtures/ashby/candidate-info-not-flagged.json"));
        assert!(!c.is_flagged("Send to Reimbi"));
        assert!(!c.is_flagged("Some other field"));
        assert_eq!(c.selected_option("Reimbi Reimbursement Policy"), None);
    }

    #[test]
    fn falls_back_to_the_option_value_and_the_first_email() {
        let c: AshbyCandidate = serde_json::from_value(serde_json::json!({
            "id": "c", "emailAddresses": [{"value": "b@x.example"}, {"value": "c@x.example"}],
            "customFields": [{"title": "P", "value": "onsite"}]
        }))
        .unwrap();
        assert_eq!(c.selected_option("P").as_deref(), Some("onsite"));
        assert_eq!(c.email(), Some("b@x.example"));
    }
}
