//! The search service's configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use q2o_common::config::{ConfigError, duration, load_file};
use q2o_common::kafka::KafkaConfig;
use q2o_common::service_key;
use serde::{Deserialize, Serialize};

/// Everything `q2o-search` can be told. Every default works on a laptop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the query API, `/health`, `/ready` and `/metrics` listen.
    pub http_addr: SocketAddr,
    /// Where the index lives.
    pub data_dir: PathBuf,
    /// How often new documents are committed (and become searchable).
    #[serde(with = "duration")]
    pub commit_every: Duration,
    /// The activity log feeding the index; absent means nothing is indexed.
    pub kafka: Option<KafkaConfig>,
    /// The keys callers of the search API must present (`X-Service-Key`):
    /// the gateway's, so that only it sets a query's tenant.
    pub service_keys: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8070)),
            data_dir: PathBuf::from("data/search"),
            // Each commit writes a segment (its term dictionaries built as
            // FSTs) that merges rewrite later: at 500 ms, building and merging
            // them was the largest part of the service's CPU under phase2's
            // load. Two seconds of freshness is what users of a search box expect.
            commit_every: Duration::from_secs(2),
            kafka: Some(KafkaConfig::default()),
            service_keys: vec![service_key::DEMO.to_owned()],
        }
    }
}

/// Command-line flags (each also readable from the environment).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Flags {
    /// TOML configuration file.
    #[arg(long, env = "Q2O_SEARCH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address of the query API (port 0 picks a free one).
    #[arg(long, env = "Q2O_SEARCH_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// Directory of the index.
    #[arg(long, env = "Q2O_SEARCH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Kafka bootstrap servers.
    #[arg(long, env = "Q2O_KAFKA_BOOTSTRAP")]
    pub kafka_bootstrap: Option<String>,
    /// The one service key callers must present (replaces `service_keys`).
    #[arg(long, env = service_key::ENV, hide_env_values = true)]
    pub service_key: Option<String>,
}

impl Config {
    /// The file named by `flags` (or the defaults), with the flags applied on top.
    pub fn load(flags: &Flags) -> Result<Config, ConfigError> {
        let mut config: Config = load_file(flags.config.as_deref())?;
        if let Some(addr) = flags.http_addr {
            config.http_addr = addr;
        }
        if let Some(dir) = &flags.data_dir {
            config.data_dir.clone_from(dir);
        }
        if let Some(servers) = &flags.kafka_bootstrap {
            config.kafka.get_or_insert_with(KafkaConfig::default).bootstrap_servers.clone_from(servers);
        }
        if let Some(key) = &flags.service_key {
            config.service_keys = vec![key.clone()];
        }
        service_key::validate("service_keys", &config.service_keys)?;
        if config.commit_every.is_zero() {
            return Err(ConfigError::value("commit_every", "must be positive"));
        }
        Ok(config)
    }
}
