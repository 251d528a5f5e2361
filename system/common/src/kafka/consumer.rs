use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use futures::future;
use prometheus::IntGaugeVec;
use rdkafka::ClientContext;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::{KafkaConfig, KafkaMetrics, PayloadScalars};
use crate::domain::AgentEvent;

/// How long to wait before retrying an event whose handler failed.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// A handler could not process an event now (e.g. its store is down). The event
/// is retried; its offset is not committed until it succeeds.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HandleError(pub String);

/// Where an event sits in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
}

/// What a consumer group does with each event.
#[async_trait]
pub trait EventHandler: Send + Sync {
    /// Processes one event. Called at least once per event: after a crash, events
    /// since the last commit are delivered again.
    async fn handle(&self, event: &AgentEvent, at: Position) -> Result<(), HandleError>;

    /// Whether events must be handled one after the other, in log order (the
    /// default). A handler whose effects commute may say no: the consumer then
    /// handles the events it already holds together, so that their store calls
    /// share round trips.
    fn in_order(&self) -> bool {
        true
    }

    /// What of an event's payload the handler reads: all of it (the
    /// default), or only its top-level numbers and booleans, which spares
    /// decoding a completed task's code for each event.
    fn payload(&self) -> Payload {
        Payload::Whole
    }
}

/// What of an event's payload a handler is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    /// The payload as it was sent.
    Whole,
    /// Its top-level fields that are numbers, booleans or null ([`PayloadScalars`]).
    Scalars,
}

/// Most events a consumer takes in hand at once.
const BATCH: usize = 64;

/// A consumer could not be created or failed for good.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// librdkafka refused.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
}

/// Where reading starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// Join the group: its committed offsets, or the beginning for a new group.
    Group,
    /// Neither join nor read: a probe of the topic's metadata, watermarks and
    /// the group's committed offsets. A probe that joined the group only to
    /// be dropped could hang in its drop: rdkafka's close serves a rebalance
    /// that arrives meanwhile, and its assign waited forever (a q2o-search
    /// stuck at start, its port bound and never served, in CI).
    Probe,
    /// Read these partitions directly from these offsets (missing partitions
    /// from the beginning), without joining the group; offsets are still
    /// committed under the group's name so that its lag is visible.
    Assigned {
        /// Partitions of the topic.
        partitions: i32,
        /// Next offset to read, by partition.
        offsets: HashMap<i32, i64>,
    },
}

/// Publishes librdkafka's per-partition consumer lag as a gauge.
struct LagContext {
    group: String,
    lag: IntGaugeVec,
}

impl ClientContext for LagContext {
    fn stats(&self, statistics: Statistics) {
        for (topic, stats) in &statistics.topics {
            for (partition, p) in &stats.partitions {
                // Partition -1 is librdkafka's internal "unassigned" bucket; -1 lag is "unknown".
                if *partition >= 0 && p.consumer_lag >= 0 {
                    self.lag
                        .with_label_values(&[self.group.as_str(), topic.as_str(), &partition.to_string()])
                        .set(p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for LagContext {}

/// One member of a consumer group reading the activity topic.
pub struct EventConsumer {
    consumer: StreamConsumer<LagContext>,
    group: String,
    topic: String,
    metrics: KafkaMetrics,
}

impl std::fmt::Debug for EventConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventConsumer").field("group", &self.group).field("topic", &self.topic).finish()
    }
}

impl EventConsumer {
    /// A member of `group`, reading `config`'s topic from `start`.
    pub fn new(config: &KafkaConfig, group: &str, start: Start, metrics: KafkaMetrics) -> Result<Self, ConsumeError> {
        let context = LagContext { group: group.to_owned(), lag: metrics.lag.clone() };
        let consumer: StreamConsumer<LagContext> = config
            .client_config()
            .set("group.id", group)
            // Offsets are stored only after an event is processed, and committed
            // from there every second: at-least-once, never at-most-once. Each
            // commit is a storage transaction in tansu; a shorter interval
            // only shortens what a restarted member reads again.
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // The lag gauge comes from librdkafka's statistics, and making
            // them is not cheap: each emit walks every broker's latency
            // histograms for their percentiles and writes JSON that rdkafka
            // parses again. At 1 s that was 41 % of an agents process's
            // instructions under 1,000 phase2 users (callgrind) and most of
            // its idle CPU. Lag is for dashboards and an alert that waits
            // 5 minutes: 10 s is fine grained enough.
            .set("statistics.interval.ms", "10000")
            // tansu holds a fetch for the full wait even when data arrives
            // (events reach a consumer ~400 ms after they were produced, at
            // p50, with 500 ms waits), and each fetch costs it storage
            // queries: with five consumers the idle broker used 0.07-0.10
            // cores at 100 ms waits, 0.047 at 250 ms, 0.034-0.042 at 500 ms
            // and 0.032 at 1 s (`just measure-cost`). No consumer here is
            // latency-bound: the index commits every 2 s (a document waits
            // 1 s for it on average), and the census waits for the audit
            // group to catch up.
            .set("fetch.wait.max.ms", "1000")
            .create_with_context(context)?;
        match &start {
            Start::Group => consumer.subscribe(&[&config.topic])?,
            Start::Probe => {}
            Start::Assigned { partitions, offsets } => {
                let mut list = TopicPartitionList::new();
                for partition in 0..*partitions {
                    let offset = offsets.get(&partition).map_or(Offset::Beginning, |o| Offset::Offset(*o));
                    list.add_partition_offset(&config.topic, partition, offset)?;
                }
                consumer.assign(&list)?;
            }
        }
        for outcome in ["processed", "malformed"] {
            metrics.consumed.with_label_values(&[group, &config.topic, outcome]);
        }
        Ok(EventConsumer { consumer, group: group.to_owned(), topic: config.topic.clone(), metrics })
    }

    /// Processes events until `shutdown` resolves, then commits what was processed.
    /// Returns how many events were processed.
    ///
    /// Each turn takes the next event and whatever else the consumer already
    /// holds (up to [`BATCH`]). An in-order handler gets them one by one, each
    /// offset stored once its event is handled; any other handler gets the
    /// batch at once and the offsets are stored when all of it is handled.
    /// Either way an offset is stored after its event was handled, never
    /// before; what shutdown interrupts is delivered again after a restart.
    pub async fn run(&self, handler: &dyn EventHandler, shutdown: impl Future<Output = ()>) -> u64 {
        let mut processed = 0;
        let mut batch = Vec::with_capacity(BATCH);
        tokio::pin!(shutdown);
        loop {
            let first = tokio::select! {
                () = &mut shutdown => break,
                message = self.consumer.recv() => message,
            };
            let first = match first {
                Ok(message) => message,
                Err(err) => {
                    tracing::warn!(group = %self.group, %err, "consume error");
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
            };
            batch.clear();
            batch.push(first);
            // What has arrived already; an error is left for the next turn.
            while batch.len() < BATCH {
                match self.consumer.recv().now_or_never() {
                    Some(Ok(message)) => batch.push(message),
                    _ => break,
                }
            }
            let payload = handler.payload();
            if handler.in_order() {
                for message in &batch {
                    if let Some((event, at)) = self.event(message, payload) {
                        tokio::select! {
                            () = &mut shutdown => return self.finish(processed),
                            () = self.handle(handler, &event, at) => processed += 1,
                        }
                    }
                    self.store_offset(message);
                }
            } else {
                let events: Vec<_> = batch.iter().filter_map(|message| self.event(message, payload)).collect();
                let handled = future::join_all(events.iter().map(|(event, at)| self.handle(handler, event, *at)));
                tokio::select! {
                    () = &mut shutdown => return self.finish(processed),
                    _ = handled => processed += events.len() as u64,
                }
                for message in &batch {
                    self.store_offset(message);
                }
            }
        }
        self.finish(processed)
    }

    /// The event a message carries; a malformed one is counted and skipped.
    fn event(&self, message: &BorrowedMessage<'_>, payload: Payload) -> Option<(AgentEvent, Position)> {
        let at = Position { partition: message.partition(), offset: message.offset() };
        let event = message.payload().map(|json| match payload {
            Payload::Whole => serde_json::from_slice::<AgentEvent>(json),
            Payload::Scalars => serde_json::from_slice::<AgentEvent<PayloadScalars>>(json)
                .map(|event| event.map_payload(serde_json::Value::from)),
        });
        match event {
            Some(Ok(event)) => Some((event, at)),
            _ => {
                tracing::warn!(group = %self.group, partition = at.partition, offset = at.offset, "skipping malformed event");
                self.count("malformed");
                None
            }
        }
    }

    fn store_offset(&self, message: &BorrowedMessage<'_>) {
        if let Err(err) = self.consumer.store_offset_from_message(message) {
            tracing::warn!(group = %self.group, %err, "cannot store offset");
        }
    }

    /// Handles one event, retrying until it succeeds (the caller gives up on shutdown).
    async fn handle(&self, handler: &dyn EventHandler, event: &AgentEvent, at: Position) {
        while let Err(err) = handler.handle(event, at).await {
            tracing::warn!(group = %self.group, %err, "cannot process event; retrying");
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        let age = (crate::domain::now() - event.at).as_seconds_f64().max(0.0);
        self.metrics.age.with_label_values(&[self.group.as_str()]).observe(age);
        self.count("processed");
    }

    fn count(&self, outcome: &str) {
        self.metrics.consumed.with_label_values(&[self.group.as_str(), self.topic.as_str(), outcome]).inc();
    }

    fn finish(&self, processed: u64) -> u64 {
        self.commit();
        processed
    }

    /// Commits the offsets of everything processed so far, synchronously.
    pub fn commit(&self) {
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => {}
            // Nothing processed since the last commit.
            Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
            Err(err) => tracing::warn!(group = %self.group, %err, "cannot commit offsets"),
        }
    }

    /// High watermarks (next offset to be written) of every partition, by partition.
    pub fn high_watermarks(&self, partitions: i32, timeout: Duration) -> Result<HashMap<i32, i64>, ConsumeError> {
        (0..partitions).map(|p| Ok((p, self.consumer.fetch_watermarks(&self.topic, p, timeout)?.1))).collect()
    }

    /// How many partitions the topic has.
    pub fn partition_count(&self, timeout: Duration) -> Result<i32, ConsumeError> {
        let metadata = self.consumer.fetch_metadata(Some(&self.topic), timeout)?;
        Ok(metadata.topics().first().map_or(0, |t| t.partitions().len() as i32))
    }

    /// The group's committed offsets (next offset to read), by partition.
    pub fn committed_offsets(&self, timeout: Duration) -> Result<HashMap<i32, i64>, ConsumeError> {
        let mut list = TopicPartitionList::new();
        for partition in 0..self.partition_count(timeout)? {
            list.add_partition(&self.topic, partition);
        }
        let committed = self.consumer.committed_offsets(list, timeout)?;
        Ok(committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect())
    }

    /// The partitions this member holds now.
    pub fn assigned_partitions(&self) -> Vec<i32> {
        let mut partitions: Vec<i32> = self
            .consumer
            .assignment()
            .map(|list| list.elements().iter().map(|e| e.partition()).collect())
            .unwrap_or_default();
        partitions.sort_unstable();
        partitions
    }
}
