//! The agents' series. Names come from `q2o_common::metrics::names`.

use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use q2o_common::domain::AgentType;
use q2o_common::metrics::{GrpcMetrics, HttpMetrics, LATENCY_BUCKETS, TASK_BUCKETS, names, register};
use q2o_common::store::CacheType;

/// How a claimed task ended, as counted in `q2o_agent_tasks_total{status}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskEnd {
    /// Finished with a result.
    Completed,
    /// Finished without one.
    Failed,
    /// Another attempt had already finished it; this one changed nothing.
    Duplicate,
}

impl TaskEnd {
    fn as_str(self) -> &'static str {
        match self {
            TaskEnd::Completed => "completed",
            TaskEnd::Failed => "failed",
            TaskEnd::Duplicate => "duplicate",
        }
    }
}

/// Every series the agents process exports.
#[derive(Clone, Debug)]
pub struct AgentMetrics {
    /// Internal REST API.
    pub http: HttpMetrics,
    /// Agent gRPC services.
    pub grpc: GrpcMetrics,
    tasks: IntCounterVec,
    task_duration: HistogramVec,
    active: IntGaugeVec,
    reclaimed: IntCounterVec,
    cache_hits: IntCounterVec,
    cache_misses: IntCounterVec,
    inter_agent_duration: HistogramVec,
    inter_agent_requests: IntCounterVec,
}

impl AgentMetrics {
    /// Creates and registers the agents' series.
    pub fn new(registry: &Registry) -> Self {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            register(registry, IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"))
        };
        let histogram = |name: &str, help: &str, buckets: &[f64], labels: &[&str]| {
            register(
                registry,
                HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets.to_vec()), labels)
                    .expect("valid metric"),
            )
        };
        let metrics = AgentMetrics {
            http: HttpMetrics::new(registry),
            grpc: GrpcMetrics::new(registry),
            tasks: counter(
                names::AGENT_TASKS_TOTAL,
                "Tasks finished by agents, by outcome.",
                &["agent_type", "status"],
            ),
            task_duration: histogram(
                names::AGENT_TASK_DURATION_SECONDS,
                "Time from claiming a task to finishing it.",
                TASK_BUCKETS,
                &["agent_type"],
            ),
            active: register(
                registry,
                IntGaugeVec::new(Opts::new(names::AGENT_ACTIVE_TASKS, "Tasks being worked on now."), &["agent_type"])
                    .expect("valid metric"),
            ),
            reclaimed: counter(
                names::AGENT_TASKS_RECLAIMED_TOTAL,
                "Tasks taken over from a crashed or stalled worker.",
                &["agent_type"],
            ),
            cache_hits: counter(names::CACHE_HITS_TOTAL, "Cache lookups that hit.", &["cache_type"]),
            cache_misses: counter(names::CACHE_MISSES_TOTAL, "Cache lookups that missed.", &["cache_type"]),
            inter_agent_duration: histogram(
                names::INTER_AGENT_REQUEST_DURATION_SECONDS,
                "Agent-to-agent call latency, measured by the caller.",
                LATENCY_BUCKETS,
                &["protocol", "caller", "callee"],
            ),
            inter_agent_requests: counter(
                names::INTER_AGENT_REQUESTS_TOTAL,
                "Agent-to-agent calls, by outcome.",
                &["protocol", "caller", "callee", "outcome"],
            ),
        };
        // Export every agent type's series from the start, so that dashboards and
        // rules see zeros rather than nothing before the first task.
        for agent in AgentType::ALL {
            for end in [TaskEnd::Completed, TaskEnd::Failed, TaskEnd::Duplicate] {
                metrics.tasks.with_label_values(&[agent.as_str(), end.as_str()]);
            }
            metrics.active.with_label_values(&[agent.as_str()]);
            metrics.reclaimed.with_label_values(&[agent.as_str()]);
        }
        metrics.cache_hits.with_label_values(&[CacheType::Research.as_str()]);
        metrics.cache_misses.with_label_values(&[CacheType::Research.as_str()]);
        metrics
    }

    pub(crate) fn task_started(&self, agent: AgentType) {
        self.active.with_label_values(&[agent.as_str()]).inc();
    }

    pub(crate) fn task_ended(&self, agent: AgentType, end: TaskEnd, took: Duration) {
        self.active.with_label_values(&[agent.as_str()]).dec();
        self.tasks.with_label_values(&[agent.as_str(), end.as_str()]).inc();
        if end != TaskEnd::Duplicate {
            self.task_duration.with_label_values(&[agent.as_str()]).observe(took.as_secs_f64());
        }
    }

    pub(crate) fn task_reclaimed(&self, agent: AgentType) {
        self.reclaimed.with_label_values(&[agent.as_str()]).inc();
    }

    pub(crate) fn cache_lookup(&self, cache: CacheType, hit: bool) {
        let counter = if hit { &self.cache_hits } else { &self.cache_misses };
        counter.with_label_values(&[cache.as_str()]).inc();
    }

    pub(crate) fn inter_agent_call(
        &self,
        protocol: &str,
        caller: AgentType,
        callee: AgentType,
        took: Duration,
        ok: bool,
    ) {
        let labels = [protocol, caller.as_str(), callee.as_str()];
        self.inter_agent_duration.with_label_values(&labels).observe(took.as_secs_f64());
        let outcome = if ok { "ok" } else { "error" };
        self.inter_agent_requests.with_label_values(&[protocol, caller.as_str(), callee.as_str(), outcome]).inc();
    }
}
