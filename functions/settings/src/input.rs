//! Strict parsing of request bodies, paths and queries into typed values.
//!
//! Bodies are read as bytes and parsed here (not by an extractor) so that authentication
//! always runs first, and so that every error names the field at fault.

use reimbi_shared::domain::{EmailAddress, Page};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// The largest body this API reads: settings and policies are small.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Bound on short strings: titles, names, role names.
pub const MAX_SHORT: usize = 200;
pub const MAX_API_KEY: usize = 512;
pub const MAX_GUIDELINES: usize = 10_000;
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 100;
const MAX_CURSOR: usize = 2048;

/// A field of a partial update: left out, explicitly `null` (clear it), or a new value.
#[derive(Debug, Clone, PartialEq)]
pub enum Patch<T> {
    Absent,
    Null,
    Value(T),
}

/// A JSON object body whose keys are checked against a fixed set.
pub struct Body {
    map: Map<String, Value>,
}

impl Body {
    /// Parses `bytes` as a JSON object with no keys outside `allowed`.
    pub fn parse(bytes: &[u8], allowed: &[&str]) -> Result<Self, ApiError> {
        if bytes.len() > MAX_BODY_BYTES {
            return Err(ApiError::invalid_body(format!("the body must be at most {MAX_BODY_BYTES} bytes")));
        }
        let value: Value =
            serde_json::from_slice(bytes).map_err(|_| ApiError::invalid_body("the body must be a JSON object"))?;
        let Value::Object(map) = value else {
            return Err(ApiError::invalid_body("the body must be a JSON object"));
        };
        // Sorted so that the error for several unknown keys is deterministic.
        let mut unknown: Vec<&String> = map.keys().filter(|k| !allowed.contains(&k.as_str())).collect();
        unknown.sort();
        if let Some(k) = unknown.first() {
            let shown: String = k.chars().take(60).collect();
            return Err(ApiError::validation(shown.clone(), format!("unknown field '{shown}'")));
        }
        Ok(Self { map })
    }

    fn raw(&self, name: &str) -> Patch<&Value> {
        match self.map.get(name) {
            None => Patch::Absent,
            Some(Value::Null) => Patch::Null,
            Some(v) => Patch::Value(v),
        }
    }

    /// A boolean that may be left out but not set to null.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.raw(name) {
            Patch::Absent => Ok(None),
            Patch::Value(Value::Bool(b)) => Ok(Some(*b)),
            _ => Err(ApiError::validation(name, format!("{name} must be true or false"))),
        }
    }

    /// A string of 1 to `max` characters after trimming, `null`, or absent. The message
    /// never quotes the value (it may be a secret).
    pub fn string(&self, name: &str, max: usize) -> Result<Patch<String>, ApiError> {
        match self.raw(name) {
            Patch::Absent => Ok(Patch::Absent),
            Patch::Null => Ok(Patch::Null),
            Patch::Value(Value::String(s)) => {
                let s = s.trim();
                if s.is_empty() {
                    return Err(ApiError::validation(name, format!("{name} must not be empty")));
                }
                if s.chars().count() > max {
                    return Err(ApiError::validation(name, format!("{name} must be at most {max} characters")));
                }
                if s.chars().any(char::is_control) {
                    return Err(ApiError::validation(name, format!("{name} must not contain control characters")));
                }
                Ok(Patch::Value(s.to_owned()))
            }
            Patch::Value(_) => Err(ApiError::validation(name, format!("{name} must be a string"))),
        }
    }

    /// Free text (line breaks allowed) of at most `max` characters; may be empty.
    pub fn text(&self, name: &str, max: usize) -> Result<Patch<String>, ApiError> {
        match self.raw(name) {
            Patch::Absent => Ok(Patch::Absent),
            Patch::Null => Ok(Patch::Null),
            Patch::Value(Value::String(s)) => {
                if s.chars().count() > max {
                    return Err(ApiError::validation(name, format!("{name} must be at most {max} characters")));
                }
                if s.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
                    return Err(ApiError::validation(name, format!("{name} must not contain control characters")));
                }
                Ok(Patch::Value(s.clone()))
            }
            Patch::Value(_) => Err(ApiError::validation(name, format!("{name} must be a string"))),
        }
    }

    /// An email address, `null`, or absent.
    pub fn email(&self, name: &str) -> Result<Patch<EmailAddress>, ApiError> {
        match self.raw(name) {
            Patch::Absent => Ok(Patch::Absent),
            Patch::Null => Ok(Patch::Null),
            Patch::Value(Value::String(s)) => {
                EmailAddress::parse(s).map(Patch::Value).map_err(|e| ApiError::validation(name, e.message))
            }
            Patch::Value(_) => Err(ApiError::validation(name, format!("{name} must be an email address string"))),
        }
    }
}

/// Rejects `null` where a value or nothing is allowed.
pub fn not_null<T>(p: Patch<T>, name: &str, why: &str) -> Result<Option<T>, ApiError> {
    match p {
        Patch::Absent => Ok(None),
        Patch::Null => Err(ApiError::validation(name, format!("{name} {why}"))),
        Patch::Value(v) => Ok(Some(v)),
    }
}

/// Requires a value.
pub fn required<T>(p: Patch<T>, name: &str) -> Result<T, ApiError> {
    match p {
        Patch::Value(v) => Ok(v),
        _ => Err(ApiError::validation(name, format!("{name} is required"))),
    }
}

/// A listing's body: `{ "items": [...], "nextCursor": ... }`.
pub fn page_body<T>(page: &Page<T>, view: impl Fn(&T) -> Value) -> Value {
    serde_json::json!({ "items": page.items.iter().map(view).collect::<Vec<_>>(), "nextCursor": page.next_cursor })
}

/// `limit` and `cursor` of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct PageQuery {
    pub limit: usize,
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
            .map_err(|_| ApiError::invalid_body("the query string is malformed"))?;
        let mut out = PageQuery { limit: DEFAULT_LIMIT, cursor: None };
        for (k, v) in pairs {
            match k.as_str() {
                // An empty value (`?limit=&cursor=`) means the default, as if absent.
                "limit" if v.trim().is_empty() => {}
                "limit" => {
                    out.limit =
                        v.trim().parse::<usize>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
                            ApiError::validation("limit", format!("limit must be a whole number from 1 to {MAX_LIMIT}"))
                        })?;
                }
                "cursor" => {
                    if v.len() > MAX_CURSOR {
                        return Err(ApiError::validation("cursor", "cursor is not one this API issued"));
                    }
                    out.cursor = Some(v).filter(|c| !c.is_empty());
                }
                // Other parameters (e.g. cache busters) are ignored, as most APIs do.
                _ => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_named() {
        let Err(ApiError::Validation { field, .. }) = Body::parse(br#"{"enabled":true,"colour":"red"}"#, &["enabled"])
        else {
            panic!("expected a validation error")
        };
        assert_eq!(field.as_deref(), Some("colour"));
    }

    #[test]
    fn bodies_that_are_not_objects_are_refused() {
        for bad in [&b"[]"[..], b"null", b"not json", b"\"s\""] {
            assert!(Body::parse(bad, &[]).is_err());
        }
    }

    #[test]
    fn strings_are_trimmed_bounded_and_typed() {
        let b = Body::parse(br#"{"a":"  x ","b":"","c":5,"d":null}"#, &["a", "b", "c", "d", "e"]).unwrap();
        assert_eq!(b.string("a", 10).unwrap(), Patch::Value("x".into()));
        assert!(b.string("b", 10).is_err());
        assert!(b.string("c", 10).is_err());
        assert_eq!(b.string("d", 10).unwrap(), Patch::Null);
        assert_eq!(b.string("e", 10).unwrap(), Patch::Absent);
        let long = format!(r#"{{"a":"{}"}}"#, "x".repeat(201));
        assert!(Body::parse(long.as_bytes(), &["a"]).unwrap().string("a", 200).is_err());
    }

    #[test]
    fn limits_outside_one_to_a_hundred_are_refused() {
        assert_eq!(PageQuery::parse(None).unwrap(), PageQuery { limit: 50, cursor: None });
        assert_eq!(PageQuery::parse(Some("limit=100&cursor=abc")).unwrap().cursor.as_deref(), Some("abc"));
        assert_eq!(PageQuery::parse(Some("limit=&cursor=")).unwrap(), PageQuery { limit: 50, cursor: None });
        for bad in ["limit=0", "limit=101", "limit=ten", "limit=-1"] {
            let Err(ApiError::Validation { field, .. }) = PageQuery::parse(Some(bad)) else { panic!("{bad}") };
            assert_eq!(field.as_deref(), Some("limit"));
        }
    }
}
