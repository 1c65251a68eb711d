//! Identifiers and addresses: each can only hold a valid value.

use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Why a value could not be parsed into a domain type; `message` is safe to show a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub message: String,
}

impl ParseError {
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

macro_rules! slug_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, ParseError> {
                if s.is_empty() || s.len() > $max || !s.chars().all(is_id_char) {
                    return Err(ParseError::new(concat!(
                        $what,
                        " must be 1 to ",
                        stringify!($max),
                        " characters of letters, digits, '-', '_' or '.'"
                    )));
                }
                Ok(Self(s.to_owned()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(s: String) -> Result<Self, ParseError> {
                Self::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

slug_id!(
    /// A Reimbi company (tenant). Also part of secret names, hence the narrow alphabet.
    CompanyId, "companyId", 64
);
slug_id!(
    /// A Reimbi reimbursement policy within a company.
    PolicyId, "policyId", 64
);
slug_id!(
    /// The opaque id in a Webhook API URL: `wh_` and 22+ base64url characters when minted here.
    WebhookId, "webhookId", 80
);
slug_id!(
    /// The id of one Ashby event as this service knows it (see [`EventId::derive`]).
    EventId, "eventId", 80
);
slug_id!(
    /// A candidate record created by the integration (see [`CandidateId::for_ashby_candidate`]).
    CandidateId, "candidateId", 80
);

impl WebhookId {
    /// Mints a new random webhook id (16 bytes from the OS random source).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the OS random source is available");
        Self(format!("wh_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
    }
}

impl EventId {
    /// Derives the id of an Ashby event: from `webhookActionId` when Ashby sent one (so every
    /// retry of the event gets the same id), else from the exact body bytes.
    pub fn derive(company: &CompanyId, webhook_action_id: Option<&str>, raw_body: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(company.as_str().as_bytes());
        h.update([0u8]);
        match webhook_action_id {
            Some(id) => {
                h.update(b"action:");
                h.update(id.as_bytes());
            }
            None => {
                h.update(b"body:");
                h.update(raw_body);
            }
        }
        let digest = h.finalize();
        Self(format!("evt_{}", hex::encode(&digest[..16])))
    }
}

impl CandidateId {
    /// One record per company and Ashby candidate: the id is derived from both, so a
    /// conditional create on it is the de-duplication.
    pub fn for_ashby_candidate(company: &CompanyId, ashby_candidate_id: &str) -> Self {
        let mut h = Sha256::new();
        h.update(company.as_str().as_bytes());
        h.update([0u8]);
        h.update(ashby_candidate_id.as_bytes());
        let digest = h.finalize();
        Self(format!("cand_{}", hex::encode(&digest[..12])))
    }
}

/// An email address: trimmed, lower-cased, with one `@`, a non-empty local part and a dotted
/// domain, at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        let err = || ParseError::new(format!("'{}' is not a valid email address", truncate(s, 80)));
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err());
        }
        let (local, domain) = s.split_once('@').ok_or_else(err)?;
        let domain_ok = !domain.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.contains(['<', '>', '(', ')', ',', ';', ':', '"', '[', ']', '\\', '@']);
        if !domain_ok || !local_ok {
            return Err(err());
        }
        Ok(Self(s.to_lowercase()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        Self::parse(&s)
    }
}
impl From<EmailAddress> for String {
    fn from(v: EmailAddress) -> String {
        v.0
    }
}
impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Cuts a string to at most `max` characters (for messages that quote client input).
pub fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn company_ids_refuse_characters_unsafe_in_secret_names() {
        assert!(CompanyId::parse("acme-1").is_ok());
        assert!(CompanyId::parse("").is_err());
        assert!(CompanyId::parse("acme/other").is_err());
        assert!(CompanyId::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn event_id_is_stable_for_one_webhook_action_id_whatever_the_body() {
        let c = CompanyId::parse("acme").unwrap();
        let a = EventId::derive(&c, Some("x-1"), b"one");
        let b = EventId::derive(&c, Some("x-1"), b"two");
        assert_eq!(a, b);
        assert_ne!(a, EventId::derive(&c, Some("x-2"), b"one"));
        assert_ne!(a, EventId::derive(&CompanyId::parse("other").unwrap(), Some("x-1"), b"one"));
    }

    #[test]
    fn event_id_without_action_id_follows_the_body() {
        let c = CompanyId::parse("acme").unwrap();
        assert_eq!(EventId::derive(&c, None, b"a"), EventId::derive(&c, None, b"a"));
        assert_ne!(EventId::derive(&c, None, b"a"), EventId::derive(&c, None, b"b"));
    }

    #[test]
    fn generated_webhook_ids_are_unique_and_parse() {
        let a = WebhookId::generate();
        assert!(a.as_str().starts_with("wh_") && a.as_str().len() >= 25);
        assert_ne!(a, WebhookId::generate());
        assert_eq!(WebhookId::parse(a.as_str()).unwrap(), a);
    }

    #[test]
    fn emails_are_normalised_and_validated() {
        assert_eq!(EmailAddress::parse(" Rae@Acme.Example ").unwrap().as_str(), "rae@acme.example");
        for bad in [
            "",
            "rae",
            "rae@",
            "@acme.example",
            "rae@acme",
            "a b@acme.example",
            "rae@acme..example",
            "<rae@acme.example>",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad} should be refused");
        }
    }
}
