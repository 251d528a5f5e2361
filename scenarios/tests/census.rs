//! The event census a gate run takes, against a real broker (tansu) and a
//! real Redis: an audit group that stopped consuming leaves events
//! unconsumed, and none of them is counted as lost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use q2o_common::domain::{AgentEvent, AgentEventType, AgentType, ProjectId, TaskId, now};
use q2o_common::kafka::{
    EventConsumer, EventHandler, EventProducer, HandleError, KafkaConfig, KafkaMetrics, Position, Start, ensure_topic,
};
use q2o_common::store::{RedisStore, RedisStoreOptions, Store};
use q2o_scenarios::evidence::event_census;
use q2o_testkit::{Broker, RedisServer};

/// The audit consumer's part: each event into the ledger, until `stop_after`.
struct Audit {
    store: RedisStore,
    stop_after: u64,
    handled: AtomicU64,
    done: tokio::sync::Notify,
}

#[async_trait]
impl EventHandler for Audit {
    async fn handle(&self, event: &AgentEvent, _at: Position) -> Result<(), HandleError> {
        self.store.record_event("audit", event.event_id).await.map_err(|e| HandleError(e.to_string()))?;
        if self.handled.fetch_add(1, Ordering::SeqCst) + 1 >= self.stop_after {
            self.done.notify_one();
        }
        Ok(())
    }
}

fn event(seq: u64) -> AgentEvent {
    AgentEvent {
        event_id: uuid::Uuid::new_v4(),
        agent_id: format!("agent-{}", seq % 4),
        agent_type: AgentType::Coder,
        event_type: AgentEventType::TaskCompleted,
        task_id: TaskId::new(),
        project_id: ProjectId::new(),
        tenant: "acme".parse().unwrap(),
        at: now(),
        payload: serde_json::json!({ "seq": seq }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_audit_group_leaves_events_unconsumed_and_none_lost() {
    let broker = Broker::start().expect("tansu starts");
    let redis = RedisServer::start().unwrap();
    // The agents' own topic, as a run has it.
    let config = KafkaConfig { bootstrap_servers: broker.bootstrap(), ..KafkaConfig::default() };
    ensure_topic(&config).await.unwrap();
    let producer = EventProducer::new(&config, KafkaMetrics::new(&prometheus::Registry::new())).unwrap();
    for seq in 0..200 {
        producer.send(&event(seq));
    }
    producer.flush(Duration::from_secs(30));

    // The audit group consumes 80 events, then stops (paused, as far as the
    // log can tell): the other events stay past its commits.
    let audit = Audit {
        store: RedisStore::connect(RedisStoreOptions::new(redis.url())).await.unwrap(),
        stop_after: 80,
        handled: AtomicU64::new(0),
        done: tokio::sync::Notify::new(),
    };
    let consumer =
        EventConsumer::new(&config, "audit", Start::Group, KafkaMetrics::new(&prometheus::Registry::new())).unwrap();
    tokio::time::timeout(Duration::from_secs(120), consumer.run(&audit, audit.done.notified()))
        .await
        .expect("80 events consumed in time");

    let census = event_census(&broker.bootstrap(), &redis.url(), Duration::from_secs(3)).await.unwrap();
    assert_eq!(census.lost, 0, "{census:?}");
    assert_eq!(census.missing_from_ledger, 0, "everything committed is in the ledger: {census:?}");
    assert!(census.checked >= 1 && census.checked <= audit.handled.load(Ordering::SeqCst), "{census:?}");
    assert_eq!(census.checked + census.unconsumed, 200, "every event is checked or unconsumed: {census:?}");
    // The member stops soon after its 80th event (one more may be in hand): most stay unconsumed.
    let handled = audit.handled.load(Ordering::SeqCst);
    assert!(handled < 100 && census.unconsumed >= 200 - handled, "{handled} handled: {census:?}");
    assert!(census.waited_seconds >= 3.0, "it waited its bound for the lag: {census:?}");
}
