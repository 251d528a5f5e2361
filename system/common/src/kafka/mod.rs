//! The agent activity log on Kafka: topic set-up, the event producer, and
//! consumer groups that process events at least once.
//!
//! Any Kafka-protocol broker works; the local environment runs tansu (see the
//! README's known limitations), and tests also use librdkafka's mock cluster.

pub mod census;
mod consumer;
mod metrics;
mod producer;
mod scalars;

use std::collections::BTreeMap;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
pub use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use serde::{Deserialize, Serialize};

pub use consumer::{ConsumeError, EventConsumer, EventHandler, HandleError, Payload, Position, Start};
pub use metrics::KafkaMetrics;
pub use producer::EventProducer;
pub use scalars::PayloadScalars;

/// The topic every agent event goes to.
pub const AGENT_ACTIVITY_TOPIC: &str = "agent_activity";

/// Where the broker is and how the activity topic is laid out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// `host:port[,host:port...]`.
    pub bootstrap_servers: String,
    /// The activity topic.
    pub topic: String,
    /// Partitions of the topic when the services create it.
    pub partitions: i32,
    /// Replication factor when the services create it.
    pub replication: i32,
    /// Extra librdkafka properties for every client (e.g. `session.timeout.ms`).
    pub client: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            bootstrap_servers: "127.0.0.1:9092".into(),
            topic: AGENT_ACTIVITY_TOPIC.into(),
            partitions: 4,
            replication: 1,
            client: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// A librdkafka configuration with the bootstrap servers and the extra properties.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        // Short enough that a crashed member's partitions move within seconds.
        config.set("session.timeout.ms", "6000");
        config.set("socket.keepalive.enable", "true");
        for (key, value) in &self.client {
            config.set(key, value);
        }
        config
    }
}

/// Creates the activity topic unless it exists. Brokers without auto-creation
/// (tansu) need this before the first produce.
pub async fn ensure_topic(config: &KafkaConfig) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = config.client_config().create()?;
    let topic = NewTopic::new(&config.topic, config.partitions, TopicReplication::Fixed(config.replication));
    let options = AdminOptions::new().operation_timeout(Some(std::time::Duration::from_secs(10)));
    for result in admin.create_topics([&topic], &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                tracing::error!(topic = %name, ?code, "cannot create topic");
                return Err(KafkaError::AdminOp(code));
            }
        }
    }
    Ok(())
}
