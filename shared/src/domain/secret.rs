//! Secrets: values that never print. `Debug` shows `[redacted]`; reading one is explicit.

use std::fmt;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};

use super::ids::{CompanyId, WebhookId};

/// The key Ashby signs webhooks with: the `secretKey` string exactly as the admin pastes it.
#[derive(Clone)]
pub struct SigningSecret(SecretString);

impl SigningSecret {
    /// Mints a new secret: 32 bytes from the OS random source, base64url without padding
    /// (43 characters).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the OS random source is available");
        Self(SecretString::from(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
    }
    pub fn new(value: SecretString) -> Self {
        Self(value)
    }
    /// The HMAC key: the UTF-8 bytes of the secret string.
    pub fn key_bytes(&self) -> &[u8] {
        self.0.expose_secret().as_bytes()
    }
    /// The secret as a string, for the one response that shows it and for storage.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
    pub fn as_secret(&self) -> &SecretString {
        &self.0
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret([redacted])")
    }
}

/// A company's Ashby API key.
#[derive(Clone)]
pub struct ApiKey(SecretString);

impl ApiKey {
    pub fn new(value: SecretString) -> Self {
        Self(value)
    }
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
    pub fn as_secret(&self) -> &SecretString {
        &self.0
    }
    /// What the admin may see of the key: an ellipsis and its last four characters.
    pub fn hint(&self) -> String {
        let chars: Vec<char> = self.0.expose_secret().chars().collect();
        let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
        format!("…{tail}")
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

/// Which secret: adapters map this to a name (for Secrets Manager: under `SECRETS_PREFIX`,
/// with signing secrets and API keys under separate sub-prefixes so IAM can tell them apart).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecretRef {
    /// `{prefix}webhook-signing/{webhookId}`: readable by the webhook function.
    WebhookSigning(WebhookId),
    /// `{prefix}ashby-api-key/{companyId}`: readable by the processor and settings functions only.
    AshbyApiKey(CompanyId),
}

impl SecretRef {
    /// The secret's name under a prefix, e.g. `reimbi/ashby/` + `webhook-signing/wh_…`.
    pub fn name(&self, prefix: &str) -> String {
        match self {
            SecretRef::WebhookSigning(id) => format!("{prefix}webhook-signing/{id}"),
            SecretRef::AshbyApiKey(c) => format!("{prefix}ashby-api-key/{c}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let s = SigningSecret::generate();
        assert!(!format!("{s:?}").contains(s.expose()));
        let k = ApiKey::new(SecretString::from("live_abcdefghijklmnop".to_owned()));
        assert_eq!(format!("{k:?}"), "ApiKey([redacted])");
    }

    #[test]
    fn generated_secrets_have_at_least_32_bytes_of_entropy() {
        let s = SigningSecret::generate();
        assert_eq!(s.expose().len(), 43);
        assert_ne!(s.expose(), SigningSecret::generate().expose());
    }

    #[test]
    fn api_key_hint_shows_only_the_last_four_characters() {
        let k = ApiKey::new(SecretString::from("secret-x7Qa".to_owned()));
        assert_eq!(k.hint(), "…x7Qa");
        assert_eq!(ApiKey::new(SecretString::from("ab".to_owned())).hint(), "…ab");
    }
}
