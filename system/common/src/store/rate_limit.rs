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

/// The outcome of taking a token, with what the `X-RateLimit-*` headers report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The bucket's capacity.
    pub limit: u32,
    /// Whole tokens left after this request.
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
        let capacity = f64::from(self.capacity);
        let rate = self.refill_per_second;
        let mut tokens = (tokens + elapsed.as_secs_f64() * rate).min(capacity);
        let allowed = tokens >= 1.0;
        let retry_after = if allowed {
            tokens -= 1.0;
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - tokens) / rate)
        };
        let decision = RateDecision {
            allowed,
            limit: self.capacity,
            remaining: tokens.floor() as u32,
            retry_after,
            reset_after: Duration::from_secs_f64((capacity - tokens) / rate),
        };
        (tokens, decision)
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
    fn refill_is_proportional_to_elapsed_time_and_capped() {
        let bucket = TokenBucket { capacity: 10, refill_per_second: 2.0 };
        let (left, _) = bucket.take(0.0, Duration::from_millis(1500));
        assert!((left - 2.0).abs() < 1e-9, "{left}");
        let (left, _) = bucket.take(0.0, Duration::from_secs(3600));
        assert!((left - 9.0).abs() < 1e-9, "{left}");
    }
}
