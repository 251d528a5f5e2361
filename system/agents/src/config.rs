//! The agents process's configuration: file, then environment and flags on top.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use q2o_common::config::{ConfigError, duration, load_file};
use q2o_common::domain::AgentType;
use q2o_common::kafka::KafkaConfig;
use serde::{Deserialize, Serialize};

/// How the coder agent reaches the QA agent: the REST-versus-gRPC experiment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum InterAgentProtocol {
    /// JSON over HTTP/1.1 with keep-alive.
    #[default]
    Rest,
    /// Protobuf over HTTP/2.
    Grpc,
}

impl InterAgentProtocol {
    /// The `protocol` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            InterAgentProtocol::Rest => "rest",
            InterAgentProtocol::Grpc => "grpc",
        }
    }
}

/// Everything `q2o-agents` can be told. Every default works on a laptop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where `/health`, `/ready`, `/metrics` and the internal REST agent API listen.
    pub http_addr: SocketAddr,
    /// Where the agents' gRPC services listen.
    pub grpc_addr: SocketAddr,
    /// The Redis holding the queues and task state.
    pub redis_url: String,
    /// This process's name in the consumer group; must differ between live processes.
    /// Empty means `agents-<pid>-<random>`.
    pub consumer: String,
    /// Transport of coder -> QA review calls.
    pub inter_agent: InterAgentProtocol,
    /// Base URL of the QA agent's REST API; empty means this process.
    pub qa_rest_url: String,
    /// URL of the QA agent's gRPC endpoint; empty means this process.
    pub qa_grpc_url: String,
    /// The nice value of the inter-agent lane: the thread that serves the
    /// QA agent and makes the coder's calls to it (`lane`). Absent, or the
    /// process's own, the calls run with the rest of the process.
    pub inter_agent_nice: Option<i32>,
    /// How long one queue read waits for work.
    #[serde(with = "duration")]
    pub claim_wait: Duration,
    /// A claimed task not acknowledged for this long is taken over by another
    /// worker (its first worker is presumed dead). Longer than any task runs.
    #[serde(with = "duration")]
    pub reclaim_after: Duration,
    /// How often to look for such tasks.
    #[serde(with = "duration")]
    pub reclaim_every: Duration,
    /// How long research results stay cached.
    #[serde(with = "duration")]
    pub research_cache_ttl: Duration,
    /// Simulated LLM models.
    pub models: Vec<ModelProfile>,
    /// Which agent types run here, with how many concurrent tasks each.
    pub pools: Vec<Pool>,
    /// The event log; absent means no Kafka (phase0 and phase1 run without one).
    pub kafka: Option<KafkaConfig>,
    /// Consumer groups this process runs one member of (needs `kafka`).
    pub consumer_groups: Vec<ConsumerGroup>,
    /// The keys callers of the agents' own REST and gRPC APIs must present
    /// (`X-Service-Key`): the agents' and the harness's.
    pub service_keys: Vec<String>,
    /// The key this process presents to the QA agent.
    pub service_key: String,
}

/// A consumer group the agents process can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsumerGroup {
    /// Per-agent-type counts, durations and cost, exported as metrics.
    Analytics,
    /// Records every event id once, so that a run can prove nothing was lost.
    Audit,
}

impl ConsumerGroup {
    /// The Kafka group id.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsumerGroup::Analytics => "analytics",
            ConsumerGroup::Audit => "audit",
        }
    }
}

/// The worker pool of one agent type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    /// The agent type.
    pub agent_type: AgentType,
    /// How many of its tasks run at once in this process.
    pub workers: usize,
    /// Name of the model (from `models`) its LLM calls use.
    pub model: String,
}

/// A simulated LLM: latency, token counts and prices. This is a simulator, not a
/// model: it sleeps for a latency drawn from a log-normal distribution and counts
/// tokens and cost as a real call would, so that load and cost metrics behave
/// realistically without an LLM provider.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelProfile {
    /// The `model` label.
    pub name: String,
    /// Median call latency.
    #[serde(with = "duration")]
    pub latency_median: Duration,
    /// 99th-percentile call latency (sets the log-normal's spread).
    #[serde(with = "duration")]
    pub latency_p99: Duration,
    /// Prompt tokens added to every call (system prompt, context).
    pub prompt_overhead_tokens: u64,
    /// Mean completion tokens of a call.
    pub completion_tokens_mean: u64,
    /// Price per 1,000 prompt tokens.
    pub usd_per_1k_prompt: f64,
    /// Price per 1,000 completion tokens.
    pub usd_per_1k_completion: f64,
}

impl Default for Config {
    fn default() -> Self {
        let large = "sim-large";
        let small = "sim-small";
        Config {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8090)),
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 50061)),
            redis_url: "redis://127.0.0.1:6379".into(),
            consumer: String::new(),
            inter_agent: InterAgentProtocol::Rest,
            qa_rest_url: String::new(),
            qa_grpc_url: String::new(),
            inter_agent_nice: None,
            claim_wait: Duration::from_secs(1),
            reclaim_after: Duration::from_secs(30),
            reclaim_every: Duration::from_secs(5),
            research_cache_ttl: Duration::from_secs(600),
            models: vec![
                ModelProfile {
                    name: large.into(),
                    latency_median: Duration::from_millis(400),
                    latency_p99: Duration::from_millis(1500),
                    prompt_overhead_tokens: 600,
                    completion_tokens_mean: 700,
                    usd_per_1k_prompt: 0.005,
                    usd_per_1k_completion: 0.015,
                },
                ModelProfile {
                    name: small.into(),
                    latency_median: Duration::from_millis(120),
                    latency_p99: Duration::from_millis(500),
                    prompt_overhead_tokens: 300,
                    completion_tokens_mean: 350,
                    usd_per_1k_prompt: 0.00015,
                    usd_per_1k_completion: 0.0006,
                },
            ],
            pools: AgentType::ALL
                .into_iter()
                .map(|agent_type| Pool {
                    agent_type,
                    workers: 16,
                    model: match agent_type {
                        AgentType::Coder | AgentType::Researcher | AgentType::Qa | AgentType::Security => large,
                        _ => small,
                    }
                    .into(),
                })
                .collect(),
            kafka: None,
            consumer_groups: Vec::new(),
            service_keys: vec![q2o_common::service_key::DEMO.to_owned()],
            service_key: q2o_common::service_key::DEMO.to_owned(),
        }
    }
}

/// Command-line flags (each also readable from the environment).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Flags {
    /// TOML configuration file.
    #[arg(long, env = "Q2O_AGENTS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address for /health, /ready, /metrics and the internal REST API (port 0 picks a free one).
    #[arg(long, env = "Q2O_AGENTS_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// Address for the agents' gRPC services (port 0 picks a free one).
    #[arg(long, env = "Q2O_AGENTS_GRPC_ADDR")]
    pub grpc_addr: Option<SocketAddr>,
    /// Redis URL.
    #[arg(long, env = "Q2O_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Transport of coder -> QA calls.
    #[arg(long, env = "Q2O_INTER_AGENT", value_enum)]
    pub inter_agent: Option<InterAgentProtocol>,
    /// Name in the consumer group.
    #[arg(long, env = "Q2O_AGENTS_CONSUMER")]
    pub consumer: Option<String>,
    /// Kafka bootstrap servers (turns the event log on with default topic settings).
    #[arg(long, env = "Q2O_KAFKA_BOOTSTRAP")]
    pub kafka_bootstrap: Option<String>,
    /// The service key this process presents and the one it accepts.
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
        if let Some(protocol) = flags.inter_agent {
            config.inter_agent = protocol;
        }
        if let Some(consumer) = &flags.consumer {
            config.consumer.clone_from(consumer);
        }
        if let Some(servers) = &flags.kafka_bootstrap {
            config.kafka.get_or_insert_with(KafkaConfig::default).bootstrap_servers.clone_from(servers);
        }
        if let Some(key) = &flags.service_key {
            config.service_key.clone_from(key);
            config.service_keys = vec![key.clone()];
        }
        config.validate()?;
        Ok(config)
    }

    /// Rejects values that would make the agents misbehave rather than fail.
    pub fn validate(&self) -> Result<(), ConfigError> {
        q2o_common::service_key::validate("service_keys", &self.service_keys)?;
        q2o_common::service_key::validate("service_key", std::slice::from_ref(&self.service_key))?;
        for (i, model) in self.models.iter().enumerate() {
            if model.latency_p99 < model.latency_median {
                return Err(ConfigError::value(format!("models[{i}].latency_p99"), "must not be below latency_median"));
            }
            if model.usd_per_1k_prompt < 0.0 || model.usd_per_1k_completion < 0.0 {
                return Err(ConfigError::value(format!("models[{i}]"), "prices must not be negative"));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, pool) in self.pools.iter().enumerate() {
            if pool.workers == 0 {
                return Err(ConfigError::value(format!("pools[{i}].workers"), "must be at least 1"));
            }
            if !self.models.iter().any(|m| m.name == pool.model) {
                return Err(ConfigError::value(
                    format!("pools[{i}].model"),
                    format!("`{}` is not one of the configured models", pool.model),
                ));
            }
            if !seen.insert(pool.agent_type) {
                return Err(ConfigError::value(format!("pools[{i}].agent_type"), "appears twice"));
            }
        }
        if self.reclaim_after < self.claim_wait {
            return Err(ConfigError::value("reclaim_after", "must be at least claim_wait"));
        }
        if !self.consumer_groups.is_empty() && self.kafka.is_none() {
            return Err(ConfigError::value("consumer_groups", "needs a [kafka] section"));
        }
        if let Some(kafka) = &self.kafka
            && kafka.partitions < 1
        {
            return Err(ConfigError::value("kafka.partitions", "must be at least 1"));
        }
        if self.reclaim_every.is_zero() {
            return Err(ConfigError::value("reclaim_every", "must be positive"));
        }
        if let Some(nice) = self.inter_agent_nice
            && !(-20..=19).contains(&nice)
        {
            return Err(ConfigError::value("inter_agent_nice", format!("{nice} is not a nice value (-20 to 19)")));
        }
        Ok(())
    }

    /// The model profile a pool uses (validated to exist).
    pub fn model(&self, name: &str) -> &ModelProfile {
        self.models.iter().find(|m| m.name == name).expect("validated: every pool names a configured model")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use q2o_common::config::parse_toml;

    #[test]
    fn defaults_are_valid_and_run_all_twelve_agent_types() {
        let config = Config::default();
        config.validate().unwrap();
        assert_eq!(config.pools.len(), 12);
    }

    #[test]
    fn the_kubernetes_configs_run_all_twelve_agent_types() {
        let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes");
        for (file, kafka) in [("base/config/agents.toml", false), ("components/event-log/config/agents.toml", true)] {
            let config = Config::load(&Flags { config: Some(deploy.join(file)), ..Flags::default() }).unwrap();
            let types: std::collections::BTreeSet<_> = config.pools.iter().map(|p| p.agent_type).collect();
            assert_eq!(types.len(), AgentType::ALL.len(), "{file}");
            assert_eq!(config.inter_agent, InterAgentProtocol::Grpc, "{file}");
            assert_eq!(config.kafka.is_some(), kafka, "{file}");
            assert_eq!(config.consumer_groups.len(), if kafka { 2 } else { 0 }, "{file}");
        }
    }

    #[test]
    fn a_pool_naming_an_unknown_model_is_rejected() {
        let config: Config = parse_toml("[[pools]]\nagent_type = \"coder\"\nworkers = 1\nmodel = \"gpt-9\"\n").unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("pools[0].model") && err.contains("gpt-9"), "{err}");
    }

    #[test]
    fn a_lane_nice_value_outside_the_kernels_range_is_rejected_by_name() {
        for nice in [-21, 20] {
            let config: Config = parse_toml(&format!("inter_agent_nice = {nice}\n")).unwrap();
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains("inter_agent_nice") && err.contains(&nice.to_string()), "{err}");
        }
        let config: Config = parse_toml("inter_agent_nice = 0\n").unwrap();
        assert_eq!(config.inter_agent_nice, Some(0));
        config.validate().unwrap();
    }

    #[test]
    fn unknown_agent_types_are_rejected_by_name() {
        let err =
            parse_toml::<Config>("[[pools]]\nagent_type = \"poet\"\nworkers = 1\nmodel = \"sim-small\"\n").unwrap_err();
        assert!(err.contains("poet"), "{err}");
    }
}
