//! Steps 1 to 6 of contract section 3: from an accepted stage change to an invited candidate.
//!
//! Business outcomes (`ignored`, `failed` with a reason, `invited`, `alreadyInvited`) are a
//! [`Verdict`]; failures of the services involved are a [`ProcessError`], whose disposition
//! decides between retrying and failing.

use std::time::Duration;

use base64::Engine as _;
use reimbi_shared::domain::ashby::AshbyCandidate;
use reimbi_shared::domain::invitation::{InvitationInput, SUPPORT_EMAIL, render_invitation};
use reimbi_shared::domain::{
    ApproverInputs, ApproverRole, CandidateId, CandidateRecord, CandidateStatus, EmailAddress, InviteEmail,
    InviteEmailStatus, InviteToken, Policy, PolicyMatchError, Reason, Timestamp, match_policy, resolve_approver,
};
use reimbi_shared::ports::OutgoingEmail;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};

use crate::message::Accepted;
use crate::retry::ProcessError;
use crate::{ProcessorDeps, Verdict};

/// How long one attempt may hold the right to send an invitation before another may take over.
pub const INVITATION_LEASE: Duration = Duration::from_secs(60);
/// How long an account set-up link works.
pub const INVITE_TOKEN_TTL: chrono::Duration = chrono::Duration::days(7);
/// The path of the account set-up link under `APP_BASE_URL` (the Reimbi app serves it):
/// `{APP_BASE_URL}/invitations/{token}`.
pub const INVITATION_PATH: &str = "/invitations/";

/// Runs the steps for one accepted event.
pub async fn run(deps: &ProcessorDeps, accepted: &Accepted) -> Result<Verdict, ProcessError> {
    let company = &accepted.event.company_id;
    let Some(stage_change) = &accepted.stage_change else {
        // The webhook function queues only stage changes; anything else is not ours to handle.
        return Ok(Verdict::ignored(Reason::UnsupportedAction));
    };
    let application = &stage_change.application;

    // 1. The company's settings.
    let settings = match deps.settings.get_settings(company).await? {
        Some(s) if s.enabled => s,
        _ => return Ok(Verdict::ignored(Reason::IntegrationDisabled)),
    };
    let Some(key) = deps.api_key(company).await? else {
        return Ok(Verdict::failed(Reason::AshbyApiKeyMissing));
    };

    // 2. The candidate and the trigger field.
    let candidate = deps.ashby.candidate_info(&key, &application.candidate.id).await?;
    if !candidate.is_flagged(&settings.trigger_field_title) {
        return Ok(Verdict::ignored(Reason::NotFlagged));
    }

    // 3. The policy the recruiter picked.
    let policies = deps.settings.list_policies(company).await?;
    let selected = candidate.selected_option(&settings.policy_field_title);
    let policy = match match_policy(&policies, selected.as_deref()) {
        Ok(p) => p,
        Err(PolicyMatchError::NotFound) => return Ok(Verdict::failed(Reason::PolicyNotFound)),
        Err(PolicyMatchError::Required) => return Ok(Verdict::failed(Reason::PolicyRequired)),
    };

    // 4. The approver. The hiring team only matters for `hiringTeam`; when the webhook's copy is
    // empty, Ashby is asked for a fresh one.
    let role = settings.effective_approver_role();
    let (hiring_team, staff) = if role == ApproverRole::HiringTeam {
        let team = if application.hiring_team.is_empty() {
            deps.ashby.application_info(&key, &application.id).await?.hiring_team
        } else {
            application.hiring_team.clone()
        };
        (team, deps.settings.list_staff(company).await?)
    } else {
        (Vec::new(), Vec::new())
    };
    let Some((approver_email, approver_source)) = resolve_approver(&ApproverInputs {
        role,
        hiring_team_role: settings.hiring_team_role.as_deref(),
        hiring_team: &hiring_team,
        policy,
        staff: &staff,
        backup: settings.backup_approver_email.as_ref(),
    }) else {
        return Ok(Verdict::failed(Reason::NoApprover));
    };

    // 5. The candidate's email.
    let Some(email) = candidate.email().and_then(|e| EmailAddress::parse(e).ok()) else {
        return Ok(Verdict::failed(Reason::NoCandidateEmail));
    };

    // 6. The candidate record, then the invitation.
    let now = deps.clock.now();
    let record = CandidateRecord {
        candidate_id: CandidateId::for_ashby_candidate(company, &candidate.id),
        company_id: company.clone(),
        status: CandidateStatus::Invited,
        name: candidate_name(&candidate, application.candidate.name.as_deref()),
        email,
        ashby_candidate_id: candidate.id.clone(),
        ashby_application_id: application.id.clone(),
        policy_id: policy.policy_id.clone(),
        policy_name: policy.name.clone(),
        approver_email,
        approver_source,
        invited_at: now,
        invite_email: InviteEmail {
            status: InviteEmailStatus::Pending,
            message_id: None,
            lease_until: None,
            sent_at: None,
        },
        source_event_id: accepted.event.event_id.clone(),
    };
    invite(deps, accepted, record, policy).await
}

/// The name Ashby has for the candidate: `candidate.info`'s, else the webhook's.
fn candidate_name(candidate: &AshbyCandidate, from_webhook: Option<&str>) -> String {
    candidate.name.as_deref().or(from_webhook).map(str::trim).filter(|n| !n.is_empty()).unwrap_or_default().to_owned()
}

/// Stores the candidate (once per company and Ashby candidate) and sends its one invitation.
async fn invite(
    deps: &ProcessorDeps,
    accepted: &Accepted,
    record: CandidateRecord,
    policy: &Policy,
) -> Result<Verdict, ProcessError> {
    let company = &record.company_id;
    let id = record.candidate_id.clone();
    let (stored, created) = deps.candidates.create_if_absent(&record).await?;
    if !created {
        if stored.source_event_id != accepted.event.event_id {
            // A later stage change of a candidate another event brought in.
            return Ok(Verdict::already_invited(id));
        }
        if stored.invite_email.status == InviteEmailStatus::Sent {
            // This event's own invitation went out; only recording the outcome was lost.
            return Ok(Verdict::invited(id));
        }
        // This event stored the candidate but the email did not go out: send it now.
    }

    let now = deps.clock.now();
    let lease_until = now + chrono::Duration::from_std(INVITATION_LEASE).expect("the lease fits");
    if !deps.candidates.claim_invitation(company, &id, now, lease_until).await? {
        return match deps.candidates.get_candidate(company, &id).await? {
            Some(c) if c.invite_email.status == InviteEmailStatus::Sent => Ok(Verdict::invited(id)),
            c => {
                let until = c.and_then(|c| c.invite_email.lease_until).unwrap_or(lease_until);
                let left = (until - now).to_std().unwrap_or(Duration::ZERO).max(Duration::from_secs(1));
                Err(ProcessError::InvitationBusy { lease_left: left })
            }
        };
    }

    match send_invitation(deps, &stored, policy, now).await {
        Ok(message_id) => {
            mark_sent(deps, &stored, &message_id).await;
            Ok(Verdict::invited(id))
        }
        Err(e) => {
            // Give the claim back so the retry can send at once, not only when the lease lapses.
            if let Err(release) = deps.candidates.release_invitation(company, &id).await {
                tracing::warn!(error = %crate::retry::describe(&release), "could not release the invitation claim");
            }
            Err(e)
        }
    }
}

/// Mints the set-up token, stores its hash and sends the email; returns SES's message id.
async fn send_invitation(
    deps: &ProcessorDeps,
    candidate: &CandidateRecord,
    matched_policy: &Policy,
    now: Timestamp,
) -> Result<String, ProcessError> {
    // The invitation describes the policy the record names (a retry may see another selection).
    let fetched;
    let policy = if matched_policy.policy_id == candidate.policy_id {
        matched_policy
    } else {
        match deps.settings.get_policy(&candidate.company_id, &candidate.policy_id).await? {
            Some(p) => {
                fetched = p;
                &fetched
            }
            None => matched_policy,
        }
    };

    let token = SetupToken::generate();
    deps.candidates
        .put_invite_token(&InviteToken {
            token_hash: token.hash(),
            company_id: candidate.company_id.clone(),
            candidate_id: candidate.candidate_id.clone(),
            expires_at: now + INVITE_TOKEN_TTL,
        })
        .await?;
    let setup_url = format!("{}{INVITATION_PATH}{}", deps.app_base_url, token.expose());
    let rendered = render_invitation(&InvitationInput {
        candidate_name: &candidate.name,
        // Reimbi's company records are not part of this service; the id stands in for the name.
        company_name: candidate.company_id.as_str(),
        policy_name: &candidate.policy_name,
        submission_guidelines: &policy.submission_guidelines,
        setup_url: &setup_url,
        support_email: SUPPORT_EMAIL,
    });
    let email = OutgoingEmail {
        from: deps.sender.clone(),
        to: candidate.email.clone(),
        to_name: candidate.name.clone(),
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
    };
    Ok(deps.mailer.send(&email).await?)
}

/// Records the sent invitation. The email is out, so a failure here must not lead to a second
/// one: a few quick attempts, then the record is left `Sending` and the event still counts as
/// invited (its outcome makes redeliveries stop).
async fn mark_sent(deps: &ProcessorDeps, candidate: &CandidateRecord, message_id: &str) {
    const ATTEMPTS: u32 = 3;
    for attempt in 1..=ATTEMPTS {
        match deps
            .candidates
            .mark_invitation_sent(&candidate.company_id, &candidate.candidate_id, message_id, deps.clock.now())
            .await
        {
            Ok(()) => return,
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(attempt, error = %crate::retry::describe(&e), "could not mark the invitation sent; trying again");
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
            Err(e) => {
                tracing::error!(error = %crate::retry::describe(&e), "the invitation was sent but could not be marked sent");
            }
        }
    }
}

/// A single-use account set-up token: 32 random bytes, base64url. Only its SHA-256 is stored.
struct SetupToken(SecretString);

impl SetupToken {
    fn generate() -> Self {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the OS random source is available");
        Self(SecretString::from(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
    }
    fn expose(&self) -> &str {
        self.0.expose_secret()
    }
    /// Lowercase hex SHA-256 of the token as it appears in the link.
    fn hash(&self) -> String {
        hex::encode(&Sha256::digest(self.0.expose_secret().as_bytes())[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_tokens_are_43_url_safe_characters_and_stored_only_as_their_hash() {
        let t = SetupToken::generate();
        assert_eq!(t.expose().len(), 43);
        assert!(t.expose().chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(t.hash().len(), 64);
        assert_ne!(t.hash(), t.expose());
        assert_eq!(t.hash(), hex::encode(&Sha256::digest(t.expose().as_bytes())[..]));
        assert_ne!(SetupToken::generate().expose(), t.expose());
    }
}
