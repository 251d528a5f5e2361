use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::{KafkaConfig, KafkaMetrics};
use crate::domain::AgentEvent;

/// Publishes [`AgentEvent`]s to the activity topic, keyed by agent id (so one
/// agent's events stay in order), idempotently and with `acks=all`.
#[derive(Clone)]
pub struct EventProducer {
    producer: FutureProducer,
    topic: String,
    metrics: KafkaMetrics,
}

impl std::fmt::Debug for EventProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventProducer").field("topic", &self.topic).finish_non_exhaustive()
    }
}

impl EventProducer {
    /// A producer for `config`'s topic.
    pub fn new(config: &KafkaConfig, metrics: KafkaMetrics) -> Result<Self, KafkaError> {
        let producer: FutureProducer = config
            .client_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000")
            .create()?;
        metrics.init_topic(&config.topic);
        Ok(EventProducer { producer, topic: config.topic.clone(), metrics })
    }

    /// Queues `event` and counts its delivery report when it arrives, without
    /// making the caller wait for the broker.
    pub fn send(&self, event: &AgentEvent) {
        let payload = serde_json::to_vec(event).expect("events serialize");
        let record = FutureRecord::to(&self.topic).key(&event.agent_id).payload(&payload);
        let delivery = self.producer.send_result(record);
        let (metrics, topic) = (self.metrics.clone(), self.topic.clone());
        match delivery {
            Ok(delivery) => {
                tokio::spawn(async move {
                    let status = match delivery.await {
                        Ok(Ok(_)) => "delivered",
                        Ok(Err((err, _))) => {
                            tracing::warn!(%err, "event not delivered");
                            "failed"
                        }
                        Err(_) => "failed",
                    };
                    metrics.sent.with_label_values(&[topic.as_str(), status]).inc();
                });
            }
            Err((err, _)) => {
                tracing::warn!(%err, "event not queued");
                metrics.sent.with_label_values(&[topic.as_str(), "failed"]).inc();
            }
        }
    }

    /// Waits up to `timeout` for queued events to be delivered (at shutdown).
    pub fn flush(&self, timeout: Duration) {
        use rdkafka::producer::Producer;
        if let Err(err) = self.producer.flush(timeout) {
            tracing::warn!(%err, "events still undelivered at shutdown");
        }
    }
}
