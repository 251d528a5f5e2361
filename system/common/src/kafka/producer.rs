use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{KafkaConfig, KafkaMetrics};
use crate::domain::AgentEvent;

/// How long an event is retried before it counts as failed: a broker restart
/// fits in it several times over.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

/// How often delivery reports are served while events are in flight: they
/// only count deliveries and start retries, and a batch lingers 100 ms anyway.
const BUSY_PAUSE: Duration = Duration::from_millis(10);
/// How often when nothing is in flight (errors and statistics still arrive);
/// the next send cuts the pause short.
const IDLE_PAUSE: Duration = Duration::from_millis(500);

/// Publishes [`AgentEvent`]s to the activity topic, keyed by agent id (so one
/// agent's events stay in order) with `acks=all`, retried until delivered.
#[derive(Clone)]
pub struct EventProducer {
    inner: Arc<Inner>,
    topic: String,
    metrics: KafkaMetrics,
}

impl std::fmt::Debug for EventProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventProducer").field("topic", &self.topic).finish_non_exhaustive()
    }
}

/// Hands each delivery report to the send waiting for it.
struct Reports;

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<oneshot::Sender<Result<(), KafkaError>>>;

    fn delivery(&self, result: &DeliveryResult<'_>, waiting: Self::DeliveryOpaque) {
        let _ = waiting.send(result.as_ref().map(|_| ()).map_err(|(err, _)| err.clone()));
    }
}

/// The producer and the thread that serves its delivery reports.
///
/// Not rdkafka's `FutureProducer`: its thread polls with a 100 ms timeout
/// that it hands to librdkafka in whole milliseconds, rounded down, so it
/// spins through the last millisecond of every poll. That was 85 % of an
/// idle agents process's CPU, ~0.01 cores per producer (`perf record`). This
/// thread never blocks inside librdkafka: it polls without waiting, then
/// parks.
struct Inner {
    producer: Arc<BaseProducer<Reports>>,
    poller: Arc<PollerState>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct PollerState {
    stop: AtomicBool,
    /// Parked for [`IDLE_PAUSE`]: a send unparks it.
    idle: AtomicBool,
}

impl Inner {
    fn start(producer: BaseProducer<Reports>) -> std::io::Result<Inner> {
        let producer = Arc::new(producer);
        let poller = Arc::new(PollerState::default());
        let thread = thread::Builder::new().name("event-deliveries".into()).spawn({
            let (producer, poller) = (Arc::clone(&producer), Arc::clone(&poller));
            move || serve_reports(&producer, &poller)
        })?;
        Ok(Inner { producer, poller, thread: Some(thread) })
    }

    /// Called after each send, so that its report is served on time.
    fn sent(&self) {
        if self.poller.idle.swap(false, Ordering::SeqCst)
            && let Some(thread) = &self.thread
        {
            thread.thread().unpark();
        }
    }
}

fn serve_reports(producer: &BaseProducer<Reports>, state: &PollerState) {
    while !state.stop.load(Ordering::SeqCst) {
        producer.poll(Duration::ZERO);
        if producer.in_flight_count() > 0 {
            thread::park_timeout(BUSY_PAUSE);
            continue;
        }
        state.idle.store(true, Ordering::SeqCst);
        // Looked at again after saying so: a send in between saw no idle
        // poller to wake, and its report would wait the whole pause.
        if producer.in_flight_count() == 0 {
            thread::park_timeout(IDLE_PAUSE);
        }
        state.idle.store(false, Ordering::SeqCst);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.poller.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl EventProducer {
    /// A producer for `config`'s topic.
    pub fn new(config: &KafkaConfig, metrics: KafkaMetrics) -> Result<Self, KafkaError> {
        let producer: BaseProducer<Reports> = config
            .client_config()
            // Not idempotent: after a broker restart, tansu answers the old
            // producer id's sequence with errors until the producer is made
            // anew. Duplicates from retries are harmless instead: consumers
            // count each event id once.
            .set("enable.idempotence", "false")
            .set("acks", "all")
            // Each produce request is a storage transaction in tansu: 5 ms
            // batches of a few events cost it ~80 CPU-µs per API request of
            // phase2; 50 ms batches carry ten times as many per request, and
            // 100 ms ones took the broker from 18.3 and 18.2 to 15.8 and 17.2
            // CPU-µs per request at 45,000 users (two pairs of `q2o-bench
            // cost`, 2026-12-06). No consumer is latency-bound (see
            // `fetch.wait.max.ms`): an event waits 50 ms longer at most.
            .set("linger.ms", "100")
            .set("message.timeout.ms", "30000")
            .create_with_context(Reports)?;
        let inner = Inner::start(producer).map_err(|err| KafkaError::ClientCreation(err.to_string()))?;
        metrics.init_topic(&config.topic);
        Ok(EventProducer { inner: Arc::new(inner), topic: config.topic.clone(), metrics })
    }

    /// Queues `event` and counts its delivery report when it arrives, without
    /// making the caller wait for the broker.
    pub fn send(&self, event: &AgentEvent) {
        self.send_json(event.agent_id.clone(), serde_json::to_vec(event).expect("events serialize"));
    }

    /// [`EventProducer::send`] for an event its caller has encoded already,
    /// to use the bytes elsewhere too: `payload` is the event as JSON, `key`
    /// its `agent_id`.
    pub fn send_json(&self, key: String, payload: Vec<u8>) {
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
            let (reported, report) = oneshot::channel();
            let record = BaseRecord::with_opaque_to(&self.topic, Box::new(reported)).key(key).payload(payload);
            let err = match self.inner.producer.send(record) {
                Ok(()) => {
                    self.inner.sent();
                    match report.await {
                        Ok(Ok(())) => return "delivered",
                        Ok(Err(err)) => err,
                        // The producer is gone: the process is shutting down.
                        Err(_) => return "failed",
                    }
                }
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
        if let Err(err) = self.inner.producer.flush(timeout) {
            tracing::warn!(%err, "events still undelivered at shutdown");
        }
    }
}
