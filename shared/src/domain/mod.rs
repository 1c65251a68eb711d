//! The domain: what the integration knows and decides, free of I/O.

pub mod approver;
pub mod ashby;
pub mod candidate;
pub mod envelope;
pub mod event_log;
pub mod ids;
pub mod invitation;
pub mod policy;
pub mod secret;
pub mod settings;
pub mod signature;
pub mod staff;

pub use approver::*;
pub use candidate::*;
pub use envelope::*;
pub use event_log::*;
pub use ids::*;
pub use policy::*;
pub use secret::*;
pub use settings::*;
pub use signature::*;
pub use staff::*;

/// Time in the domain is always UTC.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// One page of a listing; `next_cursor` is opaque to clients.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Formats a timestamp as the API shows it: RFC 3339, UTC, whole seconds, `Z`.
pub fn format_time(t: &Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
