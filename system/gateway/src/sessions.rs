//! Sessions this replica has seen, kept until they expire.
//!
//! A session token maps to one tenant for its whole life and is never revoked,
//! only expired, so a replica that has looked a token up once may answer for
//! it until the expiry the store reported, without asking the store again.
//! That takes a Redis round trip off every request after a user's first on
//! this replica.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use q2o_common::domain::TenantId;

/// Sessions held at most; past it the expired ones go, and if that is not
/// enough, all of them (the store still has every one).
pub(crate) const CAPACITY: usize = 200_000;

/// Token -> tenant and the instant the session ends.
#[derive(Debug)]
pub(crate) struct SessionCache {
    entries: Mutex<HashMap<Box<str>, (TenantId, Instant)>>,
    capacity: usize,
}

impl Default for SessionCache {
    fn default() -> Self {
        SessionCache::with_capacity(CAPACITY)
    }
}

impl SessionCache {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        SessionCache { entries: Mutex::new(HashMap::new()), capacity }
    }

    /// The tenant of a session still live here.
    pub(crate) fn get(&self, token: &str) -> Option<TenantId> {
        let mut entries = self.entries.lock().expect("never poisoned");
        match entries.get(token) {
            Some((tenant, ends)) if *ends > Instant::now() => Some(tenant.clone()),
            Some(_) => {
                entries.remove(token);
                None
            }
            None => None,
        }
    }

    /// Remembers a session that has `left` to live as of `asked` (taken
    /// before the store was asked, so the entry never outlives the session).
    pub(crate) fn insert(&self, token: &str, tenant: &TenantId, asked: Instant, left: Duration) {
        if left.is_zero() {
            return;
        }
        let ends = asked + left;
        let mut entries = self.entries.lock().expect("never poisoned");
        if entries.len() >= self.capacity {
            let now = Instant::now();
            entries.retain(|_, (_, ends)| *ends > now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(token.into(), (tenant.clone(), ends));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_answered_until_it_ends_and_not_after() {
        let cache = SessionCache::default();
        let acme: TenantId = "acme".parse().unwrap();
        cache.insert("live", &acme, Instant::now(), Duration::from_secs(60));
        cache.insert("ended", &acme, Instant::now() - Duration::from_secs(2), Duration::from_secs(1));
        cache.insert("unbounded", &acme, Instant::now(), Duration::ZERO);
        assert_eq!(cache.get("live"), Some(acme));
        assert_eq!(cache.get("ended"), None);
        assert_eq!(cache.get("unbounded"), None, "a session without a known end is not kept");
        assert_eq!(cache.get("unknown"), None);
        assert_eq!(cache.len(), 1, "the ended session was dropped when asked for");
    }

    #[test]
    fn a_full_cache_drops_ended_sessions_first_then_starts_over() {
        let cache = SessionCache::with_capacity(3);
        let acme: TenantId = "acme".parse().unwrap();
        let long = Duration::from_secs(60);
        cache.insert("a", &acme, Instant::now() - Duration::from_secs(2), Duration::from_secs(1));
        cache.insert("b", &acme, Instant::now(), long);
        cache.insert("c", &acme, Instant::now(), long);
        cache.insert("d", &acme, Instant::now(), long);
        assert_eq!(cache.len(), 3, "the ended one made room");
        assert!(cache.get("b").is_some() && cache.get("d").is_some());
        cache.insert("e", &acme, Instant::now(), long);
        assert_eq!(cache.len(), 1, "nothing had ended: started over");
        assert!(cache.get("e").is_some());
    }
}
