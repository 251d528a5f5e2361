//! Event throughput produced -> audited on a real tansu broker (sqlite storage):
//! one idempotent producer sends N agent events as fast as it can while the
//! audit group (two members, Redis ledger) consumes them.
//!
//! `cargo bench -p q2o-benches --bench event_log [-- EVENTS [RATE]]`
//!
//! With RATE 0 (the default) events are sent as fast as possible: the figure is
//! throughput, and the latencies include the queue that burst builds. With a
//! RATE below capacity, sends are paced and the latencies are steady-state.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hdrhistogram::Histogram;
use q2o_agents::config::ConsumerGroup;
use q2o_agents::consumers::{LedgerMetrics, handler};
use q2o_common::domain::{AgentEvent, AgentEventType, AgentType, ProjectId, TaskId, now};
use q2o_common::kafka::{
    EventConsumer, EventHandler, EventProducer, HandleError, KafkaConfig, KafkaMetrics, Position, Start, ensure_topic,
};
use q2o_common::store::{RedisStore, RedisStoreOptions, Store};
use q2o_testkit::{Broker, RedisServer};

/// Times each event from creation to its audit.
struct Timed {
    inner: Box<dyn EventHandler>,
    ages: Arc<Mutex<Histogram<u64>>>,
}

#[async_trait]
impl EventHandler for Timed {
    async fn handle(&self, event: &AgentEvent, at: Position) -> Result<(), HandleError> {
        self.inner.handle(event, at).await?;
        let age = (now() - event.at).whole_microseconds().max(1) as u64;
        self.ages.lock().unwrap().saturating_record(age);
        Ok(())
    }
}

#[tokio::main]
async fn main() {
    let numbers: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let events = numbers.first().map_or(50_000, |&n| n as usize);
    let rate = numbers.get(1).copied().unwrap_or(0);
    let broker = Broker::start().expect("tansu starts (run ./scripts/setup.sh)");
    let redis = RedisServer::start().expect("redis-server starts");
    let store: Arc<dyn Store> = Arc::new(RedisStore::connect(RedisStoreOptions::new(redis.url())).await.unwrap());
    let config = KafkaConfig { bootstrap_servers: broker.bootstrap(), ..KafkaConfig::default() };
    ensure_topic(&config).await.unwrap();
    let registry = prometheus::Registry::new();
    let metrics = KafkaMetrics::new(&registry);
    let ledger = LedgerMetrics::new(&registry);
    let ages = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).unwrap()));

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut members = Vec::new();
    for _ in 0..2 {
        let consumer = EventConsumer::new(&config, "audit", Start::Group, metrics.clone()).unwrap();
        let timed = Timed {
            inner: handler(ConsumerGroup::Audit, Arc::clone(&store), &registry, ledger.clone()),
            ages: Arc::clone(&ages),
        };
        let mut stopped = stopped.clone();
        members.push(tokio::spawn(async move {
            consumer
                .run(&timed, async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
        }));
    }
    // Let both members join before the clock starts.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let producer = EventProducer::new(&config, metrics.clone()).unwrap();
    let started = Instant::now();
    for seq in 0..events {
        producer.send(&AgentEvent {
            event_id: uuid::Uuid::new_v4(),
            agent_id: format!("coder-bench-{}", seq % 32),
            agent_type: AgentType::Coder,
            event_type: AgentEventType::TaskCompleted,
            task_id: TaskId::new(),
            project_id: ProjectId::new(),
            tenant: "acme".parse().unwrap(),
            at: now(),
            payload: serde_json::json!({ "duration_ms": 120, "cost_dollars": 0.002, "seq": seq }),
        });
        if rate > 0 {
            let due = started + Duration::from_secs_f64((seq + 1) as f64 / rate as f64);
            tokio::time::sleep_until(due.into()).await;
        } else if seq % 1000 == 999 {
            tokio::task::yield_now().await;
        }
    }
    let produce = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(300);
    while store.ledger_size("audit").await.unwrap() < events as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let audited_in = started.elapsed();
    let audited = store.ledger_size("audit").await.unwrap();
    let _ = stop.send(true);
    for member in members {
        member.await.unwrap();
    }
    let delivered = metrics.sent_count(&config.topic, "delivered");
    let pace = if rate > 0 { format!("paced at {rate} events/s") } else { "unpaced burst".to_string() };
    println!("event log on tansu 0.6.0 (sqlite), 4 partitions, 2 audit members, Redis ledger; {pace}");
    println!(
        "  produced  {events} events queued in {:.2} s ({:.0} events/s), {delivered} delivered",
        produce.as_secs_f64(),
        events as f64 / produce.as_secs_f64()
    );
    println!(
        "  audited   {audited} unique in {:.2} s from first send ({:.0} events/s end to end)",
        audited_in.as_secs_f64(),
        audited as f64 / audited_in.as_secs_f64()
    );
    println!("  produce -> audit latency: {}", q2o_benches::percentiles(&ages.lock().unwrap()));
}
