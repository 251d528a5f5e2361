//! Who is calling, and may they: credentials, sessions and the per-tenant rate limit.
//!
//! Both front-ends hand the raw header values to [`Gatekeeper::admit`], so REST
//! and gRPC authenticate and limit identically.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use q2o_common::domain::TenantId;
use q2o_common::store::{RateDecision, Store, TokenBucket};

use crate::config::TenantKey;
use crate::error::ApiError;
use crate::lease::Leases;
use crate::metrics::GatewayMetrics;
use crate::sessions::SessionCache;

/// An authenticated, admitted caller.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The tenant every read and write of this request is confined to.
    pub tenant: TenantId,
    /// The rate-limit decision, for the `X-RateLimit-*` headers (`None` when limiting is off).
    pub rate: Option<RateDecision>,
}

/// A fresh session.
#[derive(Clone, Debug)]
pub struct Session {
    /// The bearer token.
    pub token: String,
    /// Its tenant.
    pub tenant: TenantId,
    /// How long it stays valid.
    pub ttl: Duration,
}

/// Checks credentials and takes rate-limit tokens.
#[derive(Debug)]
pub struct Gatekeeper {
    api_keys: HashMap<String, TenantId>,
    store: Arc<dyn Store>,
    /// Sessions looked up before, until they expire.
    sessions: SessionCache,
    /// Tokens taken from the tenants' buckets ahead of need; `None` when rate limiting is off.
    leases: Option<Leases>,
    session_ttl: Duration,
    metrics: GatewayMetrics,
}

impl Gatekeeper {
    /// A gatekeeper for these keys.
    pub fn new(
        keys: &[TenantKey],
        store: Arc<dyn Store>,
        bucket: Option<TokenBucket>,
        session_ttl: Duration,
        metrics: GatewayMetrics,
    ) -> Self {
        let api_keys = keys.iter().map(|k| (k.api_key.clone(), k.tenant.clone())).collect();
        let (sessions, leases) = (SessionCache::default(), bucket.map(Leases::new));
        Gatekeeper { api_keys, store, sessions, leases, session_ttl, metrics }
    }

    /// Exchanges an API key for a session token stored in the shared store, so
    /// that it is valid on every replica.
    pub async fn login(&self, api_key: &str) -> Result<Session, ApiError> {
        let tenant = self.api_keys.get(api_key).ok_or(ApiError::Unauthenticated("unknown API key"))?;
        let token = new_token();
        let asked = Instant::now();
        self.store.create_session(&token, tenant, self.session_ttl).await?;
        self.sessions.insert(&token, tenant, asked, self.session_ttl);
        Ok(Session { token, tenant: tenant.clone(), ttl: self.session_ttl })
    }

    /// Authenticates from the `Authorization` and `X-API-Key` values, then takes a
    /// token from the tenant's bucket. A request that sends both must have both
    /// valid and for one tenant: an invalid credential is refused, whatever else
    /// came with it. A session seen before and a token held by the tenant's
    /// lease cost no store round trip.
    pub async fn admit(&self, authorization: Option<&str>, api_key: Option<&str>) -> Result<Caller, ApiError> {
        let key_tenant = api_key
            .map(|key| self.api_keys.get(key).cloned().ok_or(ApiError::Unauthenticated("unknown API key")))
            .transpose()?;
        let tenant = match (authorization, key_tenant) {
            (None, Some(tenant)) => tenant,
            (authorization, key_tenant) => {
                let tenant = self.session_tenant(session_token(authorization)?).await?;
                if key_tenant.is_some_and(|key_tenant| key_tenant != tenant) {
                    return Err(ApiError::Unauthenticated(
                        "the API key and the session token are of different tenants",
                    ));
                }
                tenant
            }
        };
        let Some(leases) = &self.leases else { return Ok(Caller { tenant, rate: None }) };
        let decision = match leases.take_held(&tenant) {
            Ok(decision) => decision,
            Err(want) => {
                let (granted, decision) = self.store.take_tokens(&tenant, leases.bucket(), want).await?;
                leases.granted(&tenant, granted, decision)
            }
        };
        self.metrics.rate_limit_decision(decision.allowed);
        if decision.allowed {
            Ok(Caller { tenant, rate: Some(decision) })
        } else {
            Err(ApiError::RateLimited(decision))
        }
    }

    /// The tenant of a live session: from this replica's cache, else from the store.
    async fn session_tenant(&self, token: &str) -> Result<TenantId, ApiError> {
        if let Some(tenant) = self.sessions.get(token) {
            return Ok(tenant);
        }
        let asked = Instant::now();
        let (tenant, left) =
            self.store.session(token).await?.ok_or(ApiError::Unauthenticated("unknown or expired session token"))?;
        self.sessions.insert(token, &tenant, asked, left);
        Ok(tenant)
    }
}

/// The session token of an `Authorization: Bearer <token>` value.
fn session_token(authorization: Option<&str>) -> Result<&str, ApiError> {
    let Some(authorization) = authorization else {
        return Err(ApiError::Unauthenticated(
            "missing credential: send `Authorization: Bearer <session token>` or `X-API-Key: <key>`",
        ));
    };
    Ok(authorization
        .strip_prefix("Bearer ")
        .or_else(|| authorization.strip_prefix("bearer "))
        .ok_or(ApiError::Unauthenticated("the Authorization header must be `Bearer <session token>`"))?
        .trim())
}

/// 32 random bytes as hex: unguessable and safe in a storage key.
fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use q2o_common::store::MemoryStore;

    fn gatekeeper(bucket: Option<TokenBucket>) -> Gatekeeper {
        replica(Arc::new(MemoryStore::new()), bucket)
    }

    fn replica(store: Arc<MemoryStore>, bucket: Option<TokenBucket>) -> Gatekeeper {
        let keys = [TenantKey { tenant: "acme".parse().unwrap(), api_key: "key-acme-123".into() }];
        let metrics = GatewayMetrics::new(&prometheus::Registry::new());
        Gatekeeper::new(&keys, store, bucket, Duration::from_secs(60), metrics)
    }

    #[tokio::test]
    async fn a_session_made_on_one_replica_admits_on_another_and_both_take_from_one_bucket() {
        let store = Arc::new(MemoryStore::new());
        let bucket = Some(TokenBucket { capacity: 3, refill_per_second: 0.001 });
        let (one, two) = (replica(Arc::clone(&store), bucket), replica(store, bucket));
        let session = one.login("key-acme-123").await.unwrap();
        let bearer = format!("Bearer {}", session.token);
        let mut remaining = Vec::new();
        for gate in [&two, &one, &two] {
            remaining.push(gate.admit(Some(&bearer), None).await.unwrap().rate.unwrap().remaining);
        }
        assert_eq!(remaining, [2, 1, 0]);
        assert!(matches!(one.admit(Some(&bearer), None).await, Err(ApiError::RateLimited(_))));
    }

    #[tokio::test]
    async fn api_keys_and_sessions_map_to_their_tenant() {
        let gate = gatekeeper(None);
        assert_eq!(gate.admit(None, Some("key-acme-123")).await.unwrap().tenant.as_str(), "acme");
        let session = gate.login("key-acme-123").await.unwrap();
        let bearer = format!("Bearer {}", session.token);
        assert_eq!(gate.admit(Some(&bearer), None).await.unwrap().tenant.as_str(), "acme");
        assert_eq!(gate.admit(Some(&bearer), Some("key-acme-123")).await.unwrap().tenant.as_str(), "acme");
        let err = gate.admit(Some(&bearer), Some("nope")).await.unwrap_err();
        assert!(err.to_string().contains("unknown API key"), "an invalid key beside a valid session: {err}");
    }

    #[tokio::test]
    async fn bad_credentials_are_rejected_with_a_reason() {
        let gate = gatekeeper(None);
        for (auth, key, expected) in [
            (None, None, "missing credential"),
            (None, Some("nope"), "unknown API key"),
            (Some("Basic abc"), None, "Bearer"),
            (Some("Bearer 00"), None, "unknown or expired"),
            // A valid key does not excuse an invalid session token, nor the other way round.
            (Some("Bearer 00"), Some("key-acme-123"), "unknown or expired"),
            (Some("Basic abc"), Some("key-acme-123"), "Bearer"),
        ] {
            let err = gate.admit(auth, key).await.unwrap_err();
            assert!(matches!(err, ApiError::Unauthenticated(_)));
            assert!(err.to_string().contains(expected), "{err}");
        }
        assert!(gate.login("nope").await.is_err());
    }

    #[tokio::test]
    async fn the_bucket_limits_per_tenant() {
        let gate = gatekeeper(Some(TokenBucket { capacity: 2, refill_per_second: 0.001 }));
        assert!(gate.admit(None, Some("key-acme-123")).await.is_ok());
        assert!(gate.admit(None, Some("key-acme-123")).await.is_ok());
        let err = gate.admit(None, Some("key-acme-123")).await.unwrap_err();
        assert!(matches!(err, ApiError::RateLimited(d) if !d.allowed && d.remaining == 0));
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
