//! Reimbursement policies and matching the policy a recruiter picked in Ashby.

use serde::{Deserialize, Serialize};

use super::Timestamp;
use super::ids::{CompanyId, EmailAddress, PolicyId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub company_id: CompanyId,
    pub policy_id: PolicyId,
    pub name: String,
    pub enabled: bool,
    pub submission_guidelines: String,
    pub default_approver_email: Option<EmailAddress>,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyMatchError {
    /// The field names no enabled policy (or several, after case-folding).
    #[error("policy_not_found")]
    NotFound,
    /// The field is empty and the company does not have exactly one enabled policy.
    #[error("policy_required")]
    Required,
}

fn fold(s: &str) -> String {
    s.trim().to_lowercase()
}

/// Picks the policy named by the candidate's policy field (contract section 3, step 3):
/// an exact name match first; else a unique match after trimming and case-folding; with no
/// value, the company's only enabled policy. Disabled policies never match.
pub fn match_policy<'a>(policies: &'a [Policy], selected: Option<&str>) -> Result<&'a Policy, PolicyMatchError> {
    let enabled: Vec<&Policy> = policies.iter().filter(|p| p.enabled).collect();
    match selected.filter(|s| !s.trim().is_empty()) {
        Some(name) => {
            if let Some(p) = enabled.iter().find(|p| p.name == name) {
                return Ok(p);
            }
            let folded = fold(name);
            let mut candidates = enabled.iter().filter(|p| fold(&p.name) == folded);
            match (candidates.next(), candidates.next()) {
                (Some(p), None) => Ok(p),
                _ => Err(PolicyMatchError::NotFound),
            }
        }
        None => match enabled.as_slice() {
            [only] => Ok(only),
            _ => Err(PolicyMatchError::Required),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(id: &str, name: &str, enabled: bool) -> Policy {
        Policy {
            company_id: CompanyId::parse("acme").unwrap(),
            policy_id: PolicyId::parse(id).unwrap(),
            name: name.to_owned(),
            enabled,
            submission_guidelines: String::new(),
            default_approver_email: None,
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    #[allow(clippy::type_complexity)] // a table of cases reads best as rows of tuples
    fn policy_matching_table() {
        let two = vec![policy("onsite", "Onsite Interview", true), policy("travel", "Final Round Travel", true)];
        let folded_twins = vec![policy("a", "Onsite", true), policy("b", "onsite ", true)];
        let one_enabled = vec![policy("onsite", "Onsite Interview", true), policy("old", "Old", false)];
        let cases: Vec<(&str, &[Policy], Option<&str>, Result<&str, PolicyMatchError>)> = vec![
            ("exact name", &two, Some("Onsite Interview"), Ok("onsite")),
            ("trimmed and case-folded", &two, Some("  final round TRAVEL "), Ok("travel")),
            ("unknown name", &two, Some("Relocation"), Err(PolicyMatchError::NotFound)),
            ("disabled policy never matches", &one_enabled, Some("Old"), Err(PolicyMatchError::NotFound)),
            ("exact wins over folded twins", &folded_twins, Some("Onsite"), Ok("a")),
            ("ambiguous after folding", &folded_twins, Some("ONSITE"), Err(PolicyMatchError::NotFound)),
            ("no value, one enabled policy", &one_enabled, None, Ok("onsite")),
            ("blank value, one enabled policy", &one_enabled, Some("  "), Ok("onsite")),
            ("no value, several policies", &two, None, Err(PolicyMatchError::Required)),
            ("no value, no policy", &[], None, Err(PolicyMatchError::Required)),
        ];
        for (name, policies, selected, expected) in cases {
            let got = match_policy(policies, selected).map(|p| p.policy_id.as_str());
            assert_eq!(got, expected, "{name}");
        }
    }
}
