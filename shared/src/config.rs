//! Configuration from the environment (contract section 4), parsed once at start.

use std::time::Duration;

use crate::domain::EmailAddress;
use crate::domain::settings::{DEFAULT_ROTATION_GRACE, parse_duration};

/// The default Ashby API base URL.
pub const DEFAULT_ASHBY_API_URL: &str = "https://api.ashbyhq.com";
/// How many times SQS delivers a message before the dead-letter queue (the template's
/// `maxReceiveCount`; the processor records `failed` on the last one).
pub const DEFAULT_MAX_RECEIVE_COUNT: u32 = 5;

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// Reads a required variable.
pub fn required(name: &str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(ConfigError(format!("{name} must be set"))),
    }
}

/// Reads an optional variable (unset or blank is `None`).
pub fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `WEBHOOK_ROTATION_GRACE`, default 24 h. Any length is accepted (tests use seconds); the
/// webhook path's cache keeps its TTL below the grace (see [`crate::cache::ttl_within`]).
pub fn rotation_grace() -> Result<Duration, ConfigError> {
    match optional("WEBHOOK_ROTATION_GRACE") {
        None => Ok(DEFAULT_ROTATION_GRACE),
        Some(v) => parse_grace(&v),
    }
}

/// A duration such as `24h`, `90m` or `1h30m`; a bare number is seconds.
pub fn parse_grace(v: &str) -> Result<Duration, ConfigError> {
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    parse_duration(v).map_err(|e| ConfigError(format!("WEBHOOK_ROTATION_GRACE: {e}")))
}

/// `ASHBY_API_URL`, default `https://api.ashbyhq.com`, without a trailing slash.
pub fn ashby_api_url() -> String {
    optional("ASHBY_API_URL").unwrap_or_else(|| DEFAULT_ASHBY_API_URL.to_owned()).trim_end_matches('/').to_owned()
}

/// `SECRETS_PREFIX`, default `reimbi/ashby/`.
pub fn secrets_prefix() -> String {
    optional("SECRETS_PREFIX").unwrap_or_else(|| "reimbi/ashby/".to_owned())
}

/// `SENDER_EMAIL`, a valid address.
pub fn sender_email() -> Result<EmailAddress, ConfigError> {
    let v = required("SENDER_EMAIL")?;
    EmailAddress::parse(&v).map_err(|e| ConfigError(format!("SENDER_EMAIL: {e}")))
}

/// `MAX_RECEIVE_COUNT`, the queue's redrive `maxReceiveCount` (default 5).
pub fn max_receive_count() -> Result<u32, ConfigError> {
    match optional("MAX_RECEIVE_COUNT") {
        None => Ok(DEFAULT_MAX_RECEIVE_COUNT),
        Some(v) => v
            .trim()
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| ConfigError("MAX_RECEIVE_COUNT must be a positive integer".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_periods_parse_with_units_or_as_seconds() {
        assert_eq!(parse_grace("24h").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_grace("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_grace("90").unwrap(), Duration::from_secs(90));
        assert!(parse_grace("tomorrow").is_err());
    }
}
