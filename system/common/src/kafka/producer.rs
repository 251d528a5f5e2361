use std::time::Duration;

use tokio::time::Instant;

use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::{KafkaConfig, KafkaMetrics};
use crate::domain::AgentEvent;

/// How long an event is retried before it counts as failed: a broker restart
/// fits in it several times over.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

/// Publishes [`AgentEvent`]s to the activity topic, keyed by agent id (so one
/// agent's events stay in order) with `acks=all`, retried until delivered.
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
            // Not idempotent: after a broker restart, tansu answers the old
            // producer id's sequence with errors until the producer is made
            // anew. Duplicates from retries are harmless instead: consumers
            // count each event id once.
            .set("enable.idempotence", "false")
            .set("acks", "all")
            // Each produce request is a storage transaction in tansu: 5 ms
            // batches of a few events cost it ~80 CPU-µs per API request of
            // phase2; 50 ms batches carry ten times as many per request.
            .set("linger.ms", "50")
            .set("message.timeout.ms", "30000")
            .create()?;
        metrics.init_topic(&config.topic);
        Ok(EventProducer { producer, topic: config.topic.clone(), metrics })
    }

    /// Queues `event` and counts its delivery report when it arrives, without
    /// making the caller wait for the broker.
    pub fn send(&self, event: &AgentEvent) {
        let payload = serde_json::to_vec(event).expect("events serialize");
        let key = event.agent_id.clone();
        let this = self.clone();
        tokio::spawn(async move {
            let status = this.deliver(&key, &payload).await;
            this.metrics.sent.with_label_values(&[this.topic.as_str(), status]).inc();
        });
    }

    /// Delivers one event, sending it again when the broker answered with an
    /// error: a broker shutting down answers produce requests with errors
    /// rather than closing the connection, which librdkafka does not retry.
    /// The audit consumer counts each event id once, so a second copy costs
    /// nothing and a lost one is lost. A retried event may land after a later
    /// one of the same agent; consumers order by the event's own timestamp.
    async fn deliver(&self, key: &str, payload: &[u8]) -> &'static str {
        let deadline = Instant::now() + GIVE_UP_AFTER;
        let mut backoff = Duration::from_millis(100);
        loop {
            let record = FutureRecord::to(&self.topic).key(key).payload(payload);
            let err = match self.producer.send_result(record) {
                Ok(delivery) => match delivery.await {
                    Ok(Ok(_)) => return "delivered",
                    Ok(Err((err, _))) => err,
                    // The producer is gone: the process is shutting down.
                    Err(_) => return "failed",
                },
                // The local queue is full.
                Err((err, _)) => err,
            };
            if Instant::now() + backoff > deadline {
                tracing::warn!(%err, "event not delivered; giving up");
                return "failed";
            }
            tracing::debug!(%err, "event not delivered; sending it again");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
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
