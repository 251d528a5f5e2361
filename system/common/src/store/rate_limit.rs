//! The per-tenant token bucket: its parameters, its decision, and the one
//! implementation of its arithmetic outside Redis (the Lua script in
//! `token_bucket.lua` does the same inside Redis).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A bucket of `capacity` tokens refilled at `refill_per_second`; a request takes one.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBucket {
    /// The burst a tenant may send at once.
    pub capacity: u32,
    /// The sustained rate.
    pub refill_per_second: f64,
}

/// The outcome of taking tokens, with what the `X-RateLimit-*` headers report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The bucket's capacity.
    pub limit: u32,
    /// Whole tokens left in the bucket after this take.
    pub remaining: u32,
    /// When a token will next be available (zero when allowed).
    pub retry_after: Duration,
    /// When the bucket will be full again.
    pub reset_after: Duration,
}

impl TokenBucket {
    /// Refills a bucket that held `tokens` `elapsed` ago and tries to take one.
    /// Returns the tokens left and the decision.
    pub fn take(self, tokens: f64, elapsed: Duration) -> (f64, RateDecision) {
        let (left, _, decision) = self.take_up_to(tokens, elapsed, 1);
        (left, decision)
    }

    /// Refills a bucket that held `tokens` `elapsed` ago and takes as many of
    /// `want` whole tokens as it holds (a lease: at least one, or none and a
    /// refusal). Returns the tokens left, the tokens granted and the decision.
    pub fn take_up_to(self, tokens: f64, elapsed: Duration, want: u32) -> (f64, u32, RateDecision) {
        let capacity = f64::from(self.capacity);
        let rate = self.refill_per_second;
        let mut tokens = (tokens + elapsed.as_secs_f64() * rate).min(capacity);
        let granted = tokens.floor().min(f64::from(want.max(1))) as u32;
        let retry_after = if granted > 0 {
            tokens -= f64::from(granted);
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - tokens) / rate)
        };
        let decision = RateDecision {
            allowed: granted > 0,
            limit: self.capacity,
            remaining: tokens.floor() as u32,
            retry_after,
            reset_after: Duration::from_secs_f64((capacity - tokens) / rate),
        };
        (tokens, granted, decision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_allows_a_burst_of_capacity_then_limits() {
        let bucket = TokenBucket { capacity: 3, refill_per_second: 1.0 };
        let mut tokens = 3.0;
        for remaining in [2, 1, 0] {
            let (left, decision) = bucket.take(tokens, Duration::ZERO);
            assert!(decision.allowed);
            assert_eq!(decision.remaining, remaining);
            tokens = left;
        }
        let (_, decision) = bucket.take(tokens, Duration::ZERO);
        assert!(!decision.allowed);
        assert_eq!(decision.retry_after, Duration::from_secs(1));
        assert_eq!(decision.reset_after, Duration::from_secs(3));
    }

    #[test]
    fn a_lease_takes_what_is_there_up_to_what_was_asked() {
        let bucket = TokenBucket { capacity: 10, refill_per_second: 1.0 };
        let (left, granted, decision) = bucket.take_up_to(10.0, Duration::ZERO, 4);
        assert_eq!((granted, decision.allowed, decision.remaining), (4, true, 6));
        assert!((left - 6.0).abs() < 1e-9);
        let (left, granted, decision) = bucket.take_up_to(2.5, Duration::ZERO, 4);
        assert_eq!((granted, decision.remaining), (2, 0), "a partial lease");
        let (_, granted, decision) = bucket.take_up_to(left, Duration::ZERO, 4);
        assert_eq!((granted, decision.allowed), (0, false));
        assert_eq!(decision.retry_after, Duration::from_millis(500));
        assert_eq!(bucket.take_up_to(3.0, Duration::ZERO, 0).1, 1, "asking for none asks for one");
    }

    #[test]
    fn refill_is_proportional_to_elapsed_time_and_capped() {
        let bucket = TokenBucket { capacity: 10, refill_per_second: 2.0 };
        let (left, _) = bucket.take(0.0, Duration::from_millis(1500));
        assert!((left - 2.0).abs() < 1e-9, "{left}");
        let (left, _) = bucket.take(0.0, Duration::from_secs(3600));
        assert!((left - 9.0).abs() < 1e-9, "{left}");
    }
}
