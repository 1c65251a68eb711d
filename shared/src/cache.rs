//! A small in-process cache with a time-to-live, measured on the injected [`Clock`] so tests
//! can move time.
//!
//! Warm Lambda invocations use it so that a webhook delivery does not call Secrets Manager
//! and DynamoDB every time. Entries are also dropped explicitly when the same process changes
//! what they hold (the local runner hosts settings and webhook handlers together).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::domain::Timestamp;
use crate::ports::Clock;

/// How long the webhook path trusts what it read: short, and kept below the rotation grace
/// period by [`ttl_within`], so a replaced credential is never kept late by more than this.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(30);

/// The cache TTL to use with a rotation grace period: [`DEFAULT_CACHE_TTL`], or half the grace
/// when that is shorter (a grace of seconds, as in tests, must not be outlived by a cache entry).
pub fn ttl_within(grace: Duration) -> Duration {
    DEFAULT_CACHE_TTL.min(grace / 2)
}

pub struct TtlCache<K, V> {
    ttl: chrono::Duration,
    clock: Arc<dyn Clock>,
    entries: Mutex<HashMap<K, (Timestamp, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            ttl: chrono::Duration::from_std(ttl).expect("a cache TTL fits"),
            clock,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The cached value, if it is younger than the TTL.
    pub fn get(&self, key: &K) -> Option<V> {
        let now = self.clock.now();
        let entries = self.entries.lock().unwrap();
        entries.get(key).filter(|(at, _)| now - *at < self.ttl && now >= *at).map(|(_, v)| v.clone())
    }

    pub fn insert(&self, key: K, value: V) {
        let now = self.clock.now();
        let mut entries = self.entries.lock().unwrap();
        // Bounded: drop expired entries when the map grows.
        if entries.len() >= 1024 {
            entries.retain(|_, (at, _)| now - *at < self.ttl);
        }
        entries.insert(key, (now, value));
    }

    pub fn remove(&self, key: &K) {
        self.entries.lock().unwrap().remove(key);
    }

    pub fn clear(&self) {
        self.entries.lock().unwrap().clear();
    }

    /// Keeps only the entries `keep` accepts (e.g. to drop what one company's entries hold).
    pub fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) {
        self.entries.lock().unwrap().retain(|k, (_, v)| keep(k, v));
    }
}

/// Told when a company's settings, webhook credentials or API key change, so that caches
/// in the same process drop what they hold at once instead of at the end of their TTL.
/// (Across Lambda functions there is no such signal: there the TTL bounds staleness.)
pub trait Invalidate: Send + Sync {
    fn company_changed(&self, company: &crate::domain::CompanyId);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::ManualClock;

    #[test]
    fn entries_expire_after_the_ttl_on_the_injected_clock() {
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let cache = TtlCache::new(Duration::from_secs(30), clock.clone());
        cache.insert("k", 1);
        assert_eq!(cache.get(&"k"), Some(1));
        clock.advance(Duration::from_secs(29));
        assert_eq!(cache.get(&"k"), Some(1));
        clock.advance(Duration::from_secs(1));
        assert_eq!(cache.get(&"k"), None);
    }

    #[test]
    fn removed_entries_are_gone() {
        let cache = TtlCache::new(Duration::from_secs(30), Arc::new(crate::ports::SystemClock));
        cache.insert(1, "a");
        cache.remove(&1);
        assert_eq!(cache.get(&1), None);
    }
}
