//! The agents' consumer groups on the activity log: `analytics` and `audit`,
//! and the replay of the log into a new group.
//!
//! Every group records each event id in its own ledger (a Redis set) before
//! acting on it, so a re-delivered event (at-least-once after a crash) is
//! detected, counted as a duplicate and not acted on twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use prometheus::{CounterVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use q2o_common::domain::{AgentEvent, AgentEventType};
use q2o_common::kafka::{EventHandler, HandleError, Payload, Position};
use q2o_common::metrics::{TASK_BUCKETS, names, register};
use q2o_common::store::Store;

use crate::config::ConsumerGroup;

/// Ledger bookkeeping shared by every group of a process.
#[derive(Clone, Debug)]
pub struct LedgerMetrics {
    events: IntCounterVec,
}

impl LedgerMetrics {
    /// Creates and registers `q2o_audit_events_total`.
    pub fn new(registry: &Registry) -> Self {
        LedgerMetrics {
            events: register(
                registry,
                IntCounterVec::new(
                    Opts::new(names::AUDIT_EVENTS_TOTAL, "Events recorded in a group's ledger, by outcome."),
                    &["group", "outcome"],
                )
                .expect("valid metric"),
            ),
        }
    }

    fn init(&self, group: &str) {
        for outcome in ["unique", "duplicate"] {
            self.events.with_label_values(&[group, outcome]);
        }
    }
}

/// What a group does with an event it has not seen before.
#[async_trait]
pub(crate) trait Action: Send + Sync {
    async fn act(&self, event: &AgentEvent) -> Result<(), HandleError>;
}

/// Deduplicates through the group's ledger, then runs the group's action.
pub(crate) struct Ledgered<A> {
    group: String,
    store: Arc<dyn Store>,
    metrics: LedgerMetrics,
    action: A,
}

impl<A> Ledgered<A> {
    pub(crate) fn new(group: &str, store: Arc<dyn Store>, metrics: LedgerMetrics, action: A) -> Self {
        metrics.init(group);
        Ledgered { group: group.to_owned(), store, metrics, action }
    }
}

#[async_trait]
impl<A: Action> EventHandler for Ledgered<A> {
    async fn handle(&self, event: &AgentEvent, _at: Position) -> Result<(), HandleError> {
        let first = self
            .store
            .record_event(&self.group, event.event_id)
            .await
            .map_err(|e| HandleError(format!("audit ledger: {e}")))?;
        let outcome = if first { "unique" } else { "duplicate" };
        self.metrics.events.with_label_values(&[self.group.as_str(), outcome]).inc();
        if first { self.action.act(event).await } else { Ok(()) }
    }

    /// A ledger is a set and both actions only add to counters: the events a
    /// member holds go to Redis together, in one round trip instead of one each.
    fn in_order(&self) -> bool {
        false
    }

    /// The ledger takes the id; analytics reads the payload's duration and cost.
    fn payload(&self) -> Payload {
        Payload::Scalars
    }
}

/// The audit group records and does nothing else: its ledger is the proof.
pub(crate) struct Audit;

#[async_trait]
impl Action for Audit {
    async fn act(&self, _event: &AgentEvent) -> Result<(), HandleError> {
        Ok(())
    }
}

/// Per agent type: events, task durations and cost, as metrics.
pub(crate) struct Analytics {
    events: IntCounterVec,
    durations: HistogramVec,
    cost: CounterVec,
}

impl Analytics {
    pub(crate) fn new(registry: &Registry) -> Self {
        Analytics {
            events: register(
                registry,
                IntCounterVec::new(
                    Opts::new(names::ANALYTICS_EVENTS_TOTAL, "Agent events seen by the analytics group."),
                    &["agent_type", "event_type"],
                )
                .expect("valid metric"),
            ),
            durations: register(
                registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        names::ANALYTICS_TASK_DURATION_SECONDS,
                        "Task durations reported by completion events.",
                    )
                    .buckets(TASK_BUCKETS.to_vec()),
                    &["agent_type"],
                )
                .expect("valid metric"),
            ),
            cost: register(
                registry,
                CounterVec::new(
                    Opts::new(names::ANALYTICS_COST_DOLLARS_TOTAL, "LLM spend reported by completion events."),
                    &["agent_type"],
                )
                .expect("valid metric"),
            ),
        }
    }
}

#[async_trait]
impl Action for Analytics {
    async fn act(&self, event: &AgentEvent) -> Result<(), HandleError> {
        let agent = event.agent_type.as_str();
        self.events.with_label_values(&[agent, event.event_type.as_str()]).inc();
        if event.event_type == AgentEventType::TaskCompleted {
            if let Some(ms) = event.payload["duration_ms"].as_u64() {
                self.durations.with_label_values(&[agent]).observe(ms as f64 / 1000.0);
            }
            if let Some(cost) = event.payload["cost_dollars"].as_f64() {
                self.cost.with_label_values(&[agent]).inc_by(cost);
            }
        }
        Ok(())
    }
}

/// The handler of one of the agents' groups (also used by the benchmarks).
pub fn handler(
    group: ConsumerGroup,
    store: Arc<dyn Store>,
    registry: &Registry,
    ledger: LedgerMetrics,
) -> Box<dyn EventHandler> {
    match group {
        ConsumerGroup::Audit => Box::new(Ledgered::new(group.as_str(), store, ledger, Audit)),
        ConsumerGroup::Analytics => Box::new(Ledgered::new(group.as_str(), store, ledger, Analytics::new(registry))),
    }
}

/// What a replay saw.
#[derive(Debug, Default, serde::Serialize)]
pub struct ReplaySummary {
    /// The group replayed into.
    pub group: String,
    /// Events read.
    pub events: u64,
    /// Distinct event ids among them (first time in this group's ledger).
    pub unique: u64,
    /// Events whose id the ledger already held.
    pub duplicates: u64,
    /// Events by agent type.
    pub by_agent_type: HashMap<String, u64>,
    /// How long the replay took.
    pub seconds: f64,
}

/// Counts what a replay reads, through the group's ledger.
pub(crate) struct ReplayCounter {
    pub(crate) group: String,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) summary: Mutex<ReplaySummary>,
    pub(crate) last: Mutex<HashMap<i32, i64>>,
}

#[async_trait]
impl EventHandler for ReplayCounter {
    async fn handle(&self, event: &AgentEvent, at: Position) -> Result<(), HandleError> {
        let first = self
            .store
            .record_event(&self.group, event.event_id)
            .await
            .map_err(|e| HandleError(format!("audit ledger: {e}")))?;
        let mut summary = self.summary.lock().expect("never poisoned");
        summary.events += 1;
        if first {
            summary.unique += 1;
        } else {
            summary.duplicates += 1;
        }
        *summary.by_agent_type.entry(event.agent_type.as_str().to_owned()).or_default() += 1;
        self.last.lock().expect("never poisoned").insert(at.partition, at.offset);
        Ok(())
    }

    fn payload(&self) -> Payload {
        Payload::Scalars
    }
}

/// How often a replay checks whether it has caught up.
pub(crate) const REPLAY_POLL: Duration = Duration::from_millis(200);
