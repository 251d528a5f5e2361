//! The gateway's configuration: file, then environment and flags on top.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use q2o_common::config::{ConfigError, duration, load_file};
use q2o_common::domain::TenantId;
use q2o_common::store::TokenBucket;
use serde::{Deserialize, Serialize};

use crate::admission::AdmissionConfig;

/// Everything `q2o-gateway` can be told. Every default works on a laptop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where REST, `/health`, `/ready` and `/metrics` listen.
    pub http_addr: SocketAddr,
    /// Where gRPC listens.
    pub grpc_addr: SocketAddr,
    /// The Redis holding sessions, rate limits, projects and queues.
    pub redis_url: String,
    /// How long a session token stays valid.
    #[serde(with = "duration")]
    pub session_ttl: Duration,
    /// Per-tenant token bucket; `None` (absent from the file) turns rate limiting off.
    pub rate_limit: Option<TokenBucket>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// A request's deadline when its caller sets none, and the longest one a
    /// caller may set (`X-Request-Timeout` over REST, `grpc-timeout` over
    /// gRPC). Longer than the Redis command timeout, so that a slow Redis
    /// answers the request with an error before its caller gives up.
    #[serde(with = "duration")]
    pub request_timeout: Duration,
    /// The API keys and the tenant each one belongs to.
    pub tenants: Vec<TenantKey>,
    /// Base URL of q2o-search (`http://host:port`); empty turns `/api/v1/search` off.
    pub search_url: String,
    /// How many requests are worked on at once; the rest are turned away.
    pub admission: AdmissionConfig,
    /// The key presented to q2o-search (`X-Service-Key`).
    pub service_key: String,
}

/// One API key and its tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantKey {
    /// The tenant the key acts for.
    pub tenant: TenantId,
    /// The secret a client presents (`X-API-Key`) or exchanges for a session.
    pub api_key: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            redis_url: "redis://127.0.0.1:6379".into(),
            session_ttl: Duration::from_secs(3600),
            rate_limit: Some(TokenBucket { capacity: 200, refill_per_second: 100.0 }),
            // The largest body the schema allows, every character escaped
            // as a JSON surrogate pair (12 bytes): a valid request is never
            // refused for its size.
            max_body_bytes: 256 * 1024,
            request_timeout: Duration::from_secs(10),
            tenants: vec![demo_tenant("acme"), demo_tenant("globex")],
            search_url: String::new(),
            admission: AdmissionConfig::default(),
            service_key: q2o_common::service_key::DEMO.to_owned(),
        }
    }
}

/// The demo tenants a laptop run starts with: `acme` with key `demo-key-acme`, ...
fn demo_tenant(name: &str) -> TenantKey {
    TenantKey { tenant: name.parse().expect("demo tenant ids are valid"), api_key: format!("demo-key-{name}") }
}

/// Command-line flags (each also readable from the environment).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Flags {
    /// TOML configuration file.
    #[arg(long, env = "Q2O_GATEWAY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address for REST, /health, /ready and /metrics (port 0 picks a free one).
    #[arg(long, env = "Q2O_GATEWAY_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// Address for gRPC (port 0 picks a free one).
    #[arg(long, env = "Q2O_GATEWAY_GRPC_ADDR")]
    pub grpc_addr: Option<SocketAddr>,
    /// Redis URL.
    #[arg(long, env = "Q2O_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Base URL of q2o-search.
    #[arg(long, env = "Q2O_SEARCH_URL")]
    pub search_url: Option<String>,
    /// The key presented to q2o-search.
    #[arg(long, env = q2o_common::service_key::ENV, hide_env_values = true)]
    pub service_key: Option<String>,
}

impl Config {
    /// The file named by `flags` (or the defaults), with the flags applied on top.
    pub fn load(flags: &Flags) -> Result<Config, ConfigError> {
        let mut config: Config = load_file(flags.config.as_deref())?;
        if let Some(addr) = flags.http_addr {
            config.http_addr = addr;
        }
        if let Some(addr) = flags.grpc_addr {
            config.grpc_addr = addr;
        }
        if let Some(url) = &flags.redis_url {
            config.redis_url.clone_from(url);
        }
        if let Some(url) = &flags.search_url {
            config.search_url.clone_from(url);
        }
        if let Some(key) = &flags.service_key {
            config.service_key.clone_from(key);
        }
        config.validate()?;
        Ok(config)
    }

    /// Rejects values that would make the gateway misbehave rather than fail.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(bucket) = self.rate_limit {
            if bucket.capacity == 0 {
                return Err(ConfigError::value("rate_limit.capacity", "must be at least 1"));
            }
            if !(bucket.refill_per_second.is_finite() && bucket.refill_per_second > 0.0) {
                return Err(ConfigError::value("rate_limit.refill_per_second", "must be a positive number"));
            }
        }
        if self.tenants.is_empty() {
            return Err(ConfigError::value("tenants", "at least one API key is needed"));
        }
        let mut keys = std::collections::HashSet::new();
        for (i, key) in self.tenants.iter().enumerate() {
            if key.api_key.len() < 8 {
                return Err(ConfigError::value(format!("tenants[{i}].api_key"), "must be at least 8 characters"));
            }
            if !keys.insert(&key.api_key) {
                return Err(ConfigError::value(format!("tenants[{i}].api_key"), "is used by another tenant entry"));
            }
        }
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::value("max_body_bytes", "must be at least 1024"));
        }
        if !self.search_url.is_empty() && self.search_url.parse::<axum::http::Uri>().is_err() {
            return Err(ConfigError::value("search_url", format!("`{}` is not a URL", self.search_url)));
        }
        if self.request_timeout < Duration::from_millis(10) {
            return Err(ConfigError::value("request_timeout", "must be at least 10ms"));
        }
        self.admission.validate()?;
        q2o_common::service_key::validate("service_key", std::slice::from_ref(&self.service_key))?;
        if self.session_ttl < Duration::from_secs(1) {
            return Err(ConfigError::value("session_ttl", "must be at least 1s"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use q2o_common::config::parse_toml;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn the_kubernetes_config_is_valid_and_adaptive() {
        let file =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes/base/config/gateway.toml");
        let config = Config::load(&Flags { config: Some(file), ..Flags::default() }).unwrap();
        assert_eq!(config.admission.mode, crate::admission::Mode::Adaptive);
        assert_eq!(config.tenants.len(), 2);
    }

    #[test]
    fn a_file_overrides_only_what_it_names() {
        let config: Config =
            parse_toml("session_ttl = \"5m\"\n[rate_limit]\ncapacity = 5\nrefill_per_second = 0.5\n").unwrap();
        assert_eq!(config.session_ttl, Duration::from_secs(300));
        assert_eq!(config.rate_limit, Some(TokenBucket { capacity: 5, refill_per_second: 0.5 }));
        assert_eq!(config.http_addr, Config::default().http_addr);
    }

    #[test]
    fn bad_values_name_their_key() {
        let config =
            Config { rate_limit: Some(TokenBucket { capacity: 1, refill_per_second: 0.0 }), ..Config::default() };
        assert!(config.validate().unwrap_err().to_string().contains("rate_limit.refill_per_second"));
        let mut config = Config::default();
        config.tenants[1].api_key = config.tenants[0].api_key.clone();
        assert!(config.validate().unwrap_err().to_string().contains("tenants[1].api_key"));
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_line() {
        let err = parse_toml::<Config>("http_addr = \"127.0.0.1:1\"\nredis = \"x\"\n").unwrap_err();
        assert!(err.contains("line 2") && err.contains("redis"), "{err}");
    }
}
