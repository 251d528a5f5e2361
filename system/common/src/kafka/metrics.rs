use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::metrics::{LATENCY_BUCKETS, names, register};

/// The Kafka series of a process (producer and consumers share one set).
#[derive(Clone, Debug)]
pub struct KafkaMetrics {
    pub(super) sent: IntCounterVec,
    pub(super) consumed: IntCounterVec,
    pub(super) lag: IntGaugeVec,
    pub(super) age: HistogramVec,
}

impl KafkaMetrics {
    /// Creates and registers the Kafka series.
    pub fn new(registry: &Registry) -> Self {
        KafkaMetrics {
            sent: register(
                registry,
                IntCounterVec::new(
                    Opts::new(names::KAFKA_MESSAGES_SENT_TOTAL, "Messages produced, by delivery outcome."),
                    &["topic", "status"],
                )
                .expect("valid metric"),
            ),
            consumed: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        names::KAFKA_MESSAGES_CONSUMED_TOTAL,
                        "Messages processed by a consumer group, by outcome.",
                    ),
                    &["group", "topic", "outcome"],
                )
                .expect("valid metric"),
            ),
            lag: register(
                registry,
                IntGaugeVec::new(
                    Opts::new(names::KAFKA_CONSUMER_LAG_MESSAGES, "Messages behind the partition's high watermark."),
                    &["group", "topic", "partition"],
                )
                .expect("valid metric"),
            ),
            age: register(
                registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        names::KAFKA_EVENT_AGE_SECONDS,
                        "Time from an event's creation to its processing by a consumer group.",
                    )
                    .buckets(LATENCY_BUCKETS.to_vec()),
                    &["group"],
                )
                .expect("valid metric"),
            ),
        }
    }

    /// Delivery reports counted so far for `topic` with `status` (`delivered`, `failed`).
    pub fn sent_count(&self, topic: &str, status: &str) -> u64 {
        self.sent.with_label_values(&[topic, status]).get()
    }

    /// Starts the delivery series of `topic` at zero, so rules see them before traffic.
    pub fn init_topic(&self, topic: &str) {
        for status in ["delivered", "failed"] {
            self.sent.with_label_values(&[topic, status]);
        }
    }
}
