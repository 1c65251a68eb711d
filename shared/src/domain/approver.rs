//! Choosing who approves a candidate's expenses (contract section 3, step 4).

use serde::{Deserialize, Serialize};

use super::ashby::HiringTeamMember;
use super::ids::EmailAddress;
use super::policy::Policy;
use super::settings::ApproverRole;
use super::staff::StaffMember;

/// Where the chosen approver came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ApproverSource {
    HiringTeam,
    PolicyDefault,
    Backup,
}

/// The inputs of the choice.
pub struct ApproverInputs<'a> {
    pub role: ApproverRole,
    pub hiring_team_role: Option<&'a str>,
    pub hiring_team: &'a [HiringTeamMember],
    pub policy: &'a Policy,
    pub staff: &'a [StaffMember],
    pub backup: Option<&'a EmailAddress>,
}

/// `hiringTeam`: the first hiring-team member whose role equals `hiringTeamRole`
/// (case-insensitive) and who is a staff member that can approve. `reimbiDefault`: the
/// policy's default approver. Either way, failing that, the backup approver.
pub fn resolve_approver(i: &ApproverInputs<'_>) -> Option<(EmailAddress, ApproverSource)> {
    let chosen = match i.role {
        ApproverRole::HiringTeam => i.hiring_team_role.map(str::trim).filter(|r| !r.is_empty()).and_then(|role| {
            i.hiring_team
                .iter()
                .filter(|m| m.role.as_deref().is_some_and(|r| r.trim().to_lowercase() == role.to_lowercase()))
                .filter_map(|m| m.email.as_deref().and_then(|e| EmailAddress::parse(e).ok()))
                .find(|email| i.staff.iter().any(|s| &s.email == email && s.can_approve))
                .map(|e| (e, ApproverSource::HiringTeam))
        }),
        ApproverRole::ReimbiDefault => {
            i.policy.default_approver_email.clone().map(|e| (e, ApproverSource::PolicyDefault))
        }
    };
    chosen.or_else(|| i.backup.cloned().map(|e| (e, ApproverSource::Backup)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::{CompanyId, PolicyId};

    fn member(email: &str, role: &str) -> HiringTeamMember {
        HiringTeamMember {
            user_id: None,
            first_name: None,
            last_name: None,
            email: Some(email.into()),
            role: Some(role.into()),
        }
    }
    fn staff(email: &str, can_approve: bool) -> StaffMember {
        StaffMember {
            company_id: CompanyId::parse("acme").unwrap(),
            email: EmailAddress::parse(email).unwrap(),
            name: email.into(),
            can_approve,
            updated_at: chrono::Utc::now(),
        }
    }
    fn policy(default: Option<&str>) -> Policy {
        Policy {
            company_id: CompanyId::parse("acme").unwrap(),
            policy_id: PolicyId::parse("p").unwrap(),
            name: "P".into(),
            enabled: true,
            submission_guidelines: String::new(),
            default_approver_email: default.map(|d| EmailAddress::parse(d).unwrap()),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    #[allow(clippy::type_complexity)] // a table of cases reads best as rows of tuples
    fn approver_resolution_table() {
        let team = vec![member("hal@acme.example", "Hiring Manager"), member("Rae@Acme.example", "Recruiter")];
        let staff_all =
            vec![staff("rae@acme.example", true), staff("hal@acme.example", true), staff("ops@acme.example", true)];
        let staff_rae_cannot = vec![staff("rae@acme.example", false), staff("ops@acme.example", true)];
        let backup = EmailAddress::parse("ops@acme.example").unwrap();
        let with_default = policy(Some("pat@acme.example"));
        let without_default = policy(None);
        use ApproverRole::*;
        use ApproverSource as S;
        let cases: Vec<(
            &str,
            ApproverRole,
            Option<&str>,
            &[StaffMember],
            &Policy,
            Option<&EmailAddress>,
            Option<(&str, S)>,
        )> = vec![
            (
                "hiring team role matches",
                HiringTeam,
                Some("Recruiter"),
                &staff_all,
                &with_default,
                Some(&backup),
                Some(("rae@acme.example", S::HiringTeam)),
            ),
            (
                "role is case-insensitive",
                HiringTeam,
                Some("hiring manager"),
                &staff_all,
                &with_default,
                Some(&backup),
                Some(("hal@acme.example", S::HiringTeam)),
            ),
            (
                "member who cannot approve falls to backup",
                HiringTeam,
                Some("Recruiter"),
                &staff_rae_cannot,
                &with_default,
                Some(&backup),
                Some(("ops@acme.example", S::Backup)),
            ),
            (
                "no member with the role falls to backup",
                HiringTeam,
                Some("Coordinator"),
                &staff_all,
                &with_default,
                Some(&backup),
                Some(("ops@acme.example", S::Backup)),
            ),
            (
                "no role configured falls to backup",
                HiringTeam,
                None,
                &staff_all,
                &with_default,
                Some(&backup),
                Some(("ops@acme.example", S::Backup)),
            ),
            (
                "policy default",
                ReimbiDefault,
                Some("Recruiter"),
                &staff_all,
                &with_default,
                Some(&backup),
                Some(("pat@acme.example", S::PolicyDefault)),
            ),
            (
                "policy without default falls to backup",
                ReimbiDefault,
                None,
                &staff_all,
                &without_default,
                Some(&backup),
                Some(("ops@acme.example", S::Backup)),
            ),
            ("nobody at all", ReimbiDefault, None, &staff_all, &without_default, None, None),
        ];
        for (name, role, htr, staff, policy, backup, expected) in cases {
            let got = resolve_approver(&ApproverInputs {
                role,
                hiring_team_role: htr,
                hiring_team: &team,
                policy,
                staff,
                backup,
            });
            let got = got.as_ref().map(|(e, s)| (e.as_str(), *s));
            assert_eq!(got, expected, "{name}");
        }
    }
}
