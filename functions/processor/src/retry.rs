//! Which failures are worth another delivery, with which reason code, and after what back-off.

use std::time::Duration;

use rand::Rng as _;
use reimbi_shared::domain::Reason;
use reimbi_shared::ports::{AshbyError, MailError, SecretError, StoreError};

/// The first back-off when Ashby gave no `Retry-After`; it doubles with every receive.
pub const BASE_DELAY: Duration = Duration::from_secs(5);
/// The longest back-off the processor asks for without a `Retry-After`.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// SQS refuses visibility timeouts over 12 hours.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

/// Why processing an event stopped before an outcome.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("calling Ashby failed")]
    Ashby(#[source] AshbyError),
    #[error("the store failed")]
    Store(#[source] StoreError),
    #[error("the secret store failed")]
    Secret(#[source] SecretError),
    #[error("sending the invitation failed")]
    Mail(#[source] MailError),
    /// Another attempt at the same event holds a live claim on the invitation.
    #[error("another attempt is sending this invitation")]
    InvitationBusy { lease_left: Duration },
}

impl From<AshbyError> for ProcessError {
    fn from(e: AshbyError) -> Self {
        ProcessError::Ashby(e)
    }
}
impl From<StoreError> for ProcessError {
    fn from(e: StoreError) -> Self {
        ProcessError::Store(e)
    }
}
impl From<SecretError> for ProcessError {
    fn from(e: SecretError) -> Self {
        ProcessError::Secret(e)
    }
}
impl From<MailError> for ProcessError {
    fn from(e: MailError) -> Self {
        ProcessError::Mail(e)
    }
}

/// What to do about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Record `failed` with the reason and acknowledge the message.
    Fail(Reason),
    /// Deliver the message again; record `retrying` with the reason (`None`: record nothing).
    Retry { reason: Option<Reason>, retry_after: Option<Duration> },
}

/// The disposition of an Ashby failure.
fn ashby_disposition(error: &AshbyError) -> Disposition {
    match error {
        // A key without a module permission is as unusable as a wrong one: the admin must
        // fix the key in Ashby, and retrying cannot help.
        AshbyError::KeyRejected | AshbyError::MissingPermission { .. } => {
            Disposition::Fail(Reason::AshbyApiKeyRejected)
        }
        AshbyError::NotFound { .. } => Disposition::Fail(Reason::AshbyCandidateNotFound),
        AshbyError::RateLimited { retry_after } => {
            Disposition::Retry { reason: Some(Reason::AshbyRateLimited), retry_after: *retry_after }
        }
        AshbyError::Server { .. } | AshbyError::Timeout | AshbyError::Unreachable(_) => {
            Disposition::Retry { reason: Some(Reason::AshbyUnavailable), retry_after: None }
        }
        AshbyError::Malformed(_) | AshbyError::Api { .. } => Disposition::Fail(Reason::AshbyError),
    }
}

impl ProcessError {
    pub fn disposition(&self) -> Disposition {
        let store = Disposition::Retry { reason: Some(Reason::StoreUnavailable), retry_after: None };
        match self {
            ProcessError::Ashby(e) => ashby_disposition(e),
            // Every store failure is retried, corrupt items included: the last receive records
            // `failed` and leaves the message in the dead-letter queue for a look.
            ProcessError::Store(_) | ProcessError::Secret(_) => store,
            ProcessError::Mail(MailError::Unavailable(_)) => {
                Disposition::Retry { reason: Some(Reason::EmailDeliveryFailed), retry_after: None }
            }
            ProcessError::Mail(MailError::Rejected(_)) => Disposition::Fail(Reason::EmailDeliveryFailed),
            ProcessError::InvitationBusy { lease_left } => {
                Disposition::Retry { reason: None, retry_after: Some(*lease_left) }
            }
        }
    }
}

/// The back-off before the next delivery: Ashby's `Retry-After` when it sent one, else
/// `BASE_DELAY × 2^(receive_count − 1)` up to `MAX_DELAY`, with "equal jitter" (between half
/// and all of it) so that records failing together do not come back together.
pub fn retry_delay(receive_count: u32, retry_after: Option<Duration>) -> Duration {
    retry_delay_with(receive_count, retry_after, rand::rng().random::<f64>())
}

/// [`retry_delay`] with the random draw (in `0.0..1.0`) given.
pub fn retry_delay_with(receive_count: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
    if let Some(after) = retry_after {
        return after.min(MAX_VISIBILITY);
    }
    let doublings = receive_count.saturating_sub(1).min(20);
    let full = BASE_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY);
    let half = full / 2;
    half + half.mul_f64(unit.clamp(0.0, 1.0))
}

/// An error with its causes, for a log line. (Errors here carry no secrets: keys are never
/// part of an error, and bodies are not quoted.)
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_wins_when_ashby_sent_one() {
        assert_eq!(retry_delay(1, Some(Duration::from_secs(7))), Duration::from_secs(7));
        assert_eq!(retry_delay(4, Some(Duration::from_secs(1))), Duration::from_secs(1));
        assert_eq!(retry_delay(1, Some(Duration::from_secs(100_000))), MAX_VISIBILITY);
    }

    #[test]
    fn the_back_off_doubles_per_receive_within_its_jitter_and_stops_at_fifteen_minutes() {
        let cases = [(1, 5), (2, 10), (3, 20), (4, 40), (8, 640), (9, 900), (40, 900)];
        for (receive, full_secs) in cases {
            let full = Duration::from_secs(full_secs);
            assert_eq!(retry_delay_with(receive, None, 0.0), full / 2, "receive {receive}");
            assert_eq!(retry_delay_with(receive, None, 1.0), full, "receive {receive}");
            let d = retry_delay(receive, None);
            assert!(d >= full / 2 && d <= full, "receive {receive}: {d:?}");
        }
    }

    #[test]
    fn ashby_failures_map_to_their_reasons() {
        use Disposition::*;
        let cases = [
            (AshbyError::KeyRejected, Fail(Reason::AshbyApiKeyRejected)),
            (AshbyError::MissingPermission { message: "m".into() }, Fail(Reason::AshbyApiKeyRejected)),
            (AshbyError::NotFound { code: "c".into() }, Fail(Reason::AshbyCandidateNotFound)),
            (
                AshbyError::RateLimited { retry_after: Some(Duration::from_secs(3)) },
                Retry { reason: Some(Reason::AshbyRateLimited), retry_after: Some(Duration::from_secs(3)) },
            ),
            (AshbyError::Server { status: 502 }, Retry { reason: Some(Reason::AshbyUnavailable), retry_after: None }),
            (AshbyError::Timeout, Retry { reason: Some(Reason::AshbyUnavailable), retry_after: None }),
            (AshbyError::Malformed("x".into()), Fail(Reason::AshbyError)),
        ];
        for (error, expected) in cases {
            assert_eq!(ProcessError::from(error.clone()).disposition(), expected, "{error:?}");
        }
    }

    #[test]
    fn mail_and_store_failures_map_to_their_reasons() {
        let unavailable = ProcessError::Mail(MailError::Unavailable("throttled".into()));
        assert_eq!(
            unavailable.disposition(),
            Disposition::Retry { reason: Some(Reason::EmailDeliveryFailed), retry_after: None }
        );
        let rejected = ProcessError::Mail(MailError::Rejected("unverified".into()));
        assert_eq!(rejected.disposition(), Disposition::Fail(Reason::EmailDeliveryFailed));
        let store = ProcessError::Store(StoreError::Unavailable("throttled".into()));
        assert_eq!(
            store.disposition(),
            Disposition::Retry { reason: Some(Reason::StoreUnavailable), retry_after: None }
        );
    }
}
