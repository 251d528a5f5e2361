//! Rate-limit tokens a replica takes from the tenant's shared bucket ahead of
//! need, so that a busy tenant costs one bucket script per lease instead of
//! one per request.
//!
//! A lease is sized to what this replica admitted for the tenant over the last
//! [`DEMAND_WINDOW`], about [`LEASE_SPAN`] of it, and never more than a tenth
//! of the bucket. A quiet tenant, or a small bucket, leases one token at a time:
//! exactly the per-request bucket. Tokens are only ever taken from the shared
//! bucket, so no tenant is admitted beyond its quota; what a lease holds and
//! does not use within [`LEASE_LIFE`] is dropped, so a replica whose demand
//! stops under-admits by at most one lease.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use q2o_common::domain::TenantId;
use q2o_common::store::{RateDecision, TokenBucket};

/// A lease covers about this much of the replica's recent demand.
pub(crate) const LEASE_SPAN: Duration = Duration::from_millis(10);
/// Unused tokens of a lease are dropped after this.
pub(crate) const LEASE_LIFE: Duration = Duration::from_millis(50);
/// Demand is measured over windows this long.
const DEMAND_WINDOW: Duration = Duration::from_millis(100);

#[derive(Debug)]
struct Lease {
    /// Tokens granted and not yet handed to a request.
    held: u32,
    /// When the held tokens are dropped.
    ends: Instant,
    /// What the bucket reported at the grant, for the `X-RateLimit-*` headers.
    grant: Option<(Instant, RateDecision)>,
    /// Requests of the current demand window, and when it began.
    demand: u32,
    window: Instant,
    /// Requests per second of the last closed window.
    rate: f64,
}

impl Lease {
    fn new(now: Instant) -> Self {
        Lease { held: 0, ends: now, grant: None, demand: 0, window: now, rate: 0.0 }
    }
}

/// This replica's leases, one per tenant, on one bucket configuration.
#[derive(Debug)]
pub(crate) struct Leases {
    bucket: TokenBucket,
    max_lease: u32,
    tenants: Mutex<HashMap<TenantId, Lease>>,
}

impl Leases {
    pub(crate) fn new(bucket: TokenBucket) -> Self {
        Leases { bucket, max_lease: (bucket.capacity / 10).max(1), tenants: Mutex::new(HashMap::new()) }
    }

    /// The bucket leases are taken from.
    pub(crate) fn bucket(&self) -> TokenBucket {
        self.bucket
    }

    /// A request's token from the tenant's lease (`Ok`), or how many tokens to
    /// ask the shared bucket for (`Err`), one of them for this request.
    pub(crate) fn take_held(&self, tenant: &TenantId) -> Result<RateDecision, u32> {
        let now = Instant::now();
        let mut tenants = self.tenants.lock().expect("never poisoned");
        let lease = match tenants.get_mut(tenant) {
            Some(lease) => lease,
            None => tenants.entry(tenant.clone()).or_insert_with(|| Lease::new(now)),
        };
        lease.demand += 1;
        let open = now.duration_since(lease.window);
        if open >= DEMAND_WINDOW {
            lease.rate = f64::from(lease.demand) / open.as_secs_f64();
            (lease.demand, lease.window) = (0, now);
        }
        if lease.held > 0 && now < lease.ends {
            lease.held -= 1;
            let (at, granted) = lease.grant.expect("held tokens come from a grant");
            return Ok(RateDecision {
                remaining: granted.remaining.saturating_add(lease.held),
                reset_after: granted.reset_after.saturating_sub(now.duration_since(at)),
                ..granted
            });
        }
        lease.held = 0;
        let want = (lease.rate * LEASE_SPAN.as_secs_f64()).ceil() as u32;
        Err(want.clamp(1, self.max_lease))
    }

    /// Records a grant of the shared bucket (`granted` tokens, one of them for
    /// the request that asked) and returns that request's decision.
    pub(crate) fn granted(&self, tenant: &TenantId, granted: u32, decision: RateDecision) -> RateDecision {
        if granted == 0 {
            return decision;
        }
        let now = Instant::now();
        let mut tenants = self.tenants.lock().expect("never poisoned");
        let lease = tenants.entry(tenant.clone()).or_insert_with(|| Lease::new(now));
        // Requests that found the lease empty at once each asked; their grants add up.
        lease.held = if now < lease.ends { lease.held + granted - 1 } else { granted - 1 };
        lease.ends = now + LEASE_LIFE;
        lease.grant = Some((now, decision));
        RateDecision { remaining: decision.remaining.saturating_add(lease.held), ..decision }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(remaining: u32) -> RateDecision {
        RateDecision {
            allowed: true,
            limit: 1000,
            remaining,
            retry_after: Duration::ZERO,
            reset_after: Duration::from_millis(40),
        }
    }

    #[test]
    fn a_quiet_tenant_leases_one_token_at_a_time() {
        let leases = Leases::new(TokenBucket { capacity: 1000, refill_per_second: 100.0 });
        let acme: TenantId = "acme".parse().unwrap();
        assert_eq!(leases.take_held(&acme).unwrap_err(), 1);
        let first = leases.granted(&acme, 1, decision(999));
        assert_eq!(first.remaining, 999);
        assert_eq!(leases.take_held(&acme).unwrap_err(), 1, "nothing held: ask again");
    }

    #[test]
    fn a_busy_tenant_leases_its_demand_and_reports_what_it_holds() {
        let leases = Leases::new(TokenBucket { capacity: 1000, refill_per_second: 100.0 });
        let acme: TenantId = "acme".parse().unwrap();
        // 500 requests in one demand window: 5,000 a second, 50 per 10 ms, capped at 100.
        for _ in 0..500 {
            if let Err(want) = leases.take_held(&acme) {
                leases.granted(&acme, want, decision(900));
            }
        }
        std::thread::sleep(DEMAND_WINDOW);
        let want = leases.take_held(&acme).unwrap_err();
        assert!((5..=100).contains(&want), "{want}");
        let answered = leases.granted(&acme, want, decision(900));
        assert_eq!(answered.remaining, 900 + want - 1, "the bucket's remainder and what the lease holds");
        let next = leases.take_held(&acme).unwrap();
        assert!(next.allowed);
        assert_eq!(next.remaining, 900 + want - 2);
        assert!(next.reset_after <= Duration::from_millis(40));
    }

    #[test]
    fn unused_tokens_are_dropped_when_the_lease_ends_and_a_refusal_passes_through() {
        let leases = Leases::new(TokenBucket { capacity: 1000, refill_per_second: 100.0 });
        let acme: TenantId = "acme".parse().unwrap();
        let _ = leases.take_held(&acme);
        leases.granted(&acme, 10, decision(0));
        std::thread::sleep(LEASE_LIFE + Duration::from_millis(5));
        assert!(leases.take_held(&acme).is_err(), "held tokens lapsed");
        let refused = RateDecision { allowed: false, retry_after: Duration::from_millis(10), ..decision(0) };
        assert_eq!(leases.granted(&acme, 0, refused), refused);
        assert!(leases.take_held(&acme).is_err());
    }

    #[test]
    fn a_small_bucket_is_never_leased_ahead() {
        let leases = Leases::new(TokenBucket { capacity: 5, refill_per_second: 1.0 });
        let acme: TenantId = "acme".parse().unwrap();
        for _ in 0..200 {
            assert_eq!(leases.take_held(&acme).unwrap_err(), 1);
        }
    }
}
