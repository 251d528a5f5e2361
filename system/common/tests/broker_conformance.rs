//! What the event log needs from a Kafka-protocol broker, checked against tansu
//! (run for real, sqlite storage) and librdkafka's mock cluster: explicit topic
//! creation, a two-member group splitting partitions, exactly-once consumption
//! of 100k events (10k on the mock) with commits, take-over after a member leaves, rejoin,
//! durability across a broker restart, and replay into a new group.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use q2o_common::domain::{AgentEvent, AgentEventType, AgentType, ProjectId, TaskId, now};
use q2o_common::kafka::{
    EventConsumer, EventHandler, EventProducer, HandleError, KafkaConfig, KafkaMetrics, Position, Start, ensure_topic,
};
use q2o_testkit::{Broker, eventually};
use tokio::sync::oneshot;

/// Events produced on tansu (the figure).
const TANSU_EVENTS: usize = 100_000;
/// Events produced on the mock: it stops serving fetches after ~60k (measured),
/// so it gets a smaller log.
const MOCK_EVENTS: usize = 10_000;
const WITHIN: Duration = Duration::from_secs(120);

/// Counts every sequence number seen, across members.
struct Tally {
    events: usize,
    seen: Vec<AtomicU8>,
    by_member: AtomicU64,
}

impl Tally {
    fn new(events: usize) -> Arc<Tally> {
        Arc::new(Tally { events, seen: (0..events).map(|_| AtomicU8::new(0)).collect(), by_member: AtomicU64::new(0) })
    }

    fn complete(&self) -> bool {
        self.distinct() == self.events
    }

    fn distinct(&self) -> usize {
        self.seen.iter().filter(|c| c.load(Ordering::Relaxed) > 0).count()
    }

    fn duplicates(&self) -> usize {
        self.seen.iter().map(|c| c.load(Ordering::Relaxed).saturating_sub(1) as usize).sum()
    }
}

struct Member {
    tally: Arc<Tally>,
    own: AtomicU64,
}

#[async_trait]
impl EventHandler for Member {
    async fn handle(&self, event: &AgentEvent, _at: Position) -> Result<(), HandleError> {
        let seq = event.payload["seq"].as_u64().expect("test events carry seq") as usize;
        self.tally.seen[seq].fetch_add(1, Ordering::Relaxed);
        self.tally.by_member.fetch_add(1, Ordering::Relaxed);
        self.own.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The tally does not care about order, so the members take the batched
    /// path the agents' ledgers take: the contract checked here (every event
    /// seen, offsets committed only after handling) must hold there too.
    fn in_order(&self) -> bool {
        false
    }
}

fn event(seq: usize) -> AgentEvent {
    AgentEvent {
        event_id: uuid::Uuid::new_v4(),
        agent_id: format!("agent-{}", seq % 16),
        agent_type: AgentType::Coder,
        event_type: AgentEventType::TaskCompleted,
        task_id: TaskId::new(),
        project_id: ProjectId::new(),
        tenant: "acme".parse().unwrap(),
        at: now(),
        payload: serde_json::json!({ "seq": seq }),
    }
}

/// A running member of `group`: its consumer, its handler, and how to stop it.
struct Running {
    consumer: Arc<EventConsumer>,
    member: Arc<Member>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<u64>,
}

impl Running {
    fn start(config: &KafkaConfig, group: &str, tally: &Arc<Tally>) -> Running {
        let metrics = KafkaMetrics::new(&prometheus::Registry::new());
        let consumer = Arc::new(EventConsumer::new(config, group, Start::Group, metrics).unwrap());
        let member = Arc::new(Member { tally: Arc::clone(tally), own: AtomicU64::new(0) });
        let (stop, stopped) = oneshot::channel::<()>();
        let task = {
            let (consumer, member) = (Arc::clone(&consumer), Arc::clone(&member));
            tokio::spawn(async move {
                consumer
                    .run(&*member, async {
                        let _ = stopped.await;
                    })
                    .await
            })
        };
        Running { consumer, member, stop: Some(stop), task }
    }

    /// Stops after committing what it processed; the member then leaves the group.
    async fn leave(mut self) -> u64 {
        let _ = self.stop.take().expect("running").send(());
        let processed = self.task.await.unwrap();
        drop(self.consumer);
        processed
    }
}

/// `takeover`: check that a survivor resumes a departed member's partitions from
/// its committed offsets (and that the member can rejoin).
async fn conformance(config: KafkaConfig, events: usize, takeover: bool, broker: Option<&mut Broker>) {
    let metrics = KafkaMetrics::new(&prometheus::Registry::new());
    let producer = EventProducer::new(&config, metrics.clone()).unwrap();
    let produce = |range: std::ops::Range<usize>| {
        let producer = producer.clone();
        let (metrics, topic) = (metrics.clone(), config.topic.clone());
        async move {
            let expected = range.end as u64;
            for seq in range {
                producer.send(&event(seq));
                if seq % 10_000 == 9_999 {
                    tokio::task::yield_now().await;
                }
            }
            producer.flush(Duration::from_secs(60));
            let sent = |status| metrics.sent_count(&topic, status);
            eventually(Duration::from_secs(30), "every delivery report", || async {
                (sent("delivered") + sent("failed") == expected).then_some(())
            })
            .await
            .unwrap();
            assert_eq!(sent("delivered"), expected, "every event delivered");
        }
    };

    // Two members split the four partitions before any event exists, so that
    // neither can take all the work alone.
    let tally = Tally::new(events);
    let a = Running::start(&config, "conformance", &tally);
    let b = Running::start(&config, "conformance", &tally);
    eventually(WITHIN, "both members to hold two partitions", || async {
        (a.consumer.assigned_partitions().len() == 2 && b.consumer.assigned_partitions().len() == 2).then_some(())
    })
    .await
    .unwrap();
    let first = if takeover { events / 2 } else { events };
    produce(0..first).await;
    eventually(WITHIN, "the first events to be consumed", || async { (tally.distinct() == first).then_some(()) })
        .await
        .unwrap();
    assert_eq!(tally.duplicates(), 0, "nothing consumed twice");
    let (a_own, b_own) = (a.member.own.load(Ordering::Relaxed), b.member.own.load(Ordering::Relaxed));
    assert!(a_own > 0 && b_own > 0, "both members worked: {a_own} and {b_own}");

    if !takeover {
        a.leave().await;
        b.leave().await;
    } else {
        // A commits and leaves; B takes over A's partitions and must resume them
        // from A's committed offsets: nothing missed, nothing read twice.
        a.leave().await;
        eventually(WITHIN, "the survivor to take every partition", || async {
            (b.consumer.assigned_partitions().len() == 4).then_some(())
        })
        .await
        .unwrap();
        produce(first..events).await;
        let consumed =
            eventually(WITHIN, "every event to be consumed", || async { tally.complete().then_some(()) }).await;
        let (distinct, duplicates) = (tally.distinct(), tally.duplicates());
        assert!(consumed.is_ok(), "{distinct} of {events} consumed, {duplicates} duplicates");
        assert_eq!(duplicates, 0, "nothing consumed twice");

        // A restarted member rejoins and gets its share back.
        let a2 = Running::start(&config, "conformance", &tally);
        eventually(WITHIN, "the rejoined member to get two partitions", || async {
            (a2.consumer.assigned_partitions().len() == 2 && b.consumer.assigned_partitions().len() == 2).then_some(())
        })
        .await
        .unwrap();
        let probe = Arc::clone(&b.consumer);
        a2.leave().await;
        b.leave().await;
        let committed: i64 = probe.committed_offsets(Duration::from_secs(10)).unwrap().values().sum();
        assert_eq!(committed, events as i64, "every processed event committed");
    }

    if let Some(broker) = broker {
        // Data and committed offsets survive a broker restart.
        broker.restart().unwrap();
        let check = EventConsumer::new(&config, "conformance", Start::Group, metrics.clone()).unwrap();
        let committed: i64 = check.committed_offsets(Duration::from_secs(10)).unwrap().values().sum();
        assert_eq!(committed, events as i64, "committed offsets survive a restart");
        let highs: HashMap<i32, i64> = check.high_watermarks(4, Duration::from_secs(10)).unwrap();
        assert_eq!(highs.values().sum::<i64>(), events as i64, "data survives a restart");
    }

    // Replay from the beginning into a new group sees every event. One member:
    // a second one joining mid-replay would rebalance a log that is already full,
    // which says nothing more about replay (the split was checked above).
    let replayed = Tally::new(events);
    let replay = Running::start(&config, "replay", &replayed);
    eventually(WITHIN, "the replay to see every event", || async { replayed.complete().then_some(()) }).await.unwrap();
    replay.leave().await;
    assert_eq!(replayed.duplicates(), 0, "a single replaying member reads each event once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tansu_with_sqlite_storage_conforms() {
    let mut broker = Broker::start().expect("tansu starts");
    let config = KafkaConfig {
        bootstrap_servers: broker.bootstrap(),
        topic: "conformance".into(),
        partitions: 4,
        ..KafkaConfig::default()
    };
    ensure_topic(&config).await.expect("tansu creates the topic");
    ensure_topic(&config).await.expect("creating an existing topic is not an error");
    conformance(config, TANSU_EVENTS, true, Some(&mut broker)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_librdkafka_mock_cluster_conforms() {
    // The mock cannot serve CreateTopics: the topic is made through its own API.
    // Nor does it resume a departed member's partitions from their committed
    // offsets (measured: the survivor re-read all 2,500 of the leaver's events),
    // so take-over is checked on tansu only.
    let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
    cluster.create_topic("conformance", 4, 1).unwrap();
    let config = KafkaConfig {
        bootstrap_servers: cluster.bootstrap_servers(),
        topic: "conformance".into(),
        partitions: 4,
        ..KafkaConfig::default()
    };
    conformance(config, MOCK_EVENTS, false, None).await;
}

/// Records every event in a ledger except the ones `skip` names (a consumer
/// that lost them), up to `stop_after` events.
struct Recording {
    store: Arc<dyn q2o_common::store::Store>,
    ledger: &'static str,
    skip: std::collections::HashSet<uuid::Uuid>,
    stop_after: usize,
    handled: AtomicU64,
    done: tokio::sync::Notify,
}

#[async_trait]
impl EventHandler for Recording {
    async fn handle(&self, event: &AgentEvent, _at: Position) -> Result<(), HandleError> {
        if !self.skip.contains(&event.event_id) {
            self.store.record_event(self.ledger, event.event_id).await.map_err(|e| HandleError(e.to_string()))?;
        }
        if self.handled.fetch_add(1, Ordering::SeqCst) as usize + 1 >= self.stop_after {
            self.done.notify_one();
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_census_tells_events_missing_from_the_ledger_apart_from_events_not_yet_consumed() {
    use q2o_common::kafka::census::{event_ids, group_offsets};
    let broker = Broker::start().expect("tansu starts");
    let redis = q2o_testkit::RedisServer::start().unwrap();
    let store: Arc<dyn q2o_common::store::Store> = Arc::new(
        q2o_common::store::RedisStore::connect(q2o_common::store::RedisStoreOptions::new(redis.url())).await.unwrap(),
    );
    let config = KafkaConfig {
        bootstrap_servers: broker.bootstrap(),
        topic: "census".into(),
        partitions: 2,
        ..KafkaConfig::default()
    };
    ensure_topic(&config).await.unwrap();
    let producer = EventProducer::new(&config, KafkaMetrics::new(&prometheus::Registry::new())).unwrap();
    let events: Vec<AgentEvent> = (0..300).map(event).collect();
    for e in &events {
        producer.send(e);
    }
    producer.flush(Duration::from_secs(30));
    let offsets = |group: &'static str| {
        let config = config.clone();
        async move {
            tokio::task::spawn_blocking(move || group_offsets(&config, group, Duration::from_secs(10)))
                .await
                .unwrap()
                .unwrap()
        }
    };
    eventually(Duration::from_secs(30), "all 300 events are in the log", || async {
        (offsets("audit").await.high.values().sum::<i64>() == 300).then_some(())
    })
    .await
    .unwrap();

    // The group consumes everything but fails to record 7 events: once its
    // lag is zero, exactly those 7 are missing from the ledger.
    let lost: std::collections::HashSet<uuid::Uuid> = events.iter().step_by(40).map(|e| e.event_id).collect();
    assert_eq!(lost.len(), 8);
    let handler = Recording {
        store: Arc::clone(&store),
        ledger: "audit",
        skip: lost.clone(),
        stop_after: 300,
        handled: AtomicU64::new(0),
        done: tokio::sync::Notify::new(),
    };
    let consumer =
        EventConsumer::new(&config, "audit", Start::Group, KafkaMetrics::new(&prometheus::Registry::new())).unwrap();
    tokio::time::timeout(WITHIN, consumer.run(&handler, handler.done.notified())).await.expect("consumed in time");
    let audit = offsets("audit").await;
    assert_eq!(audit.unconsumed(), 0, "{audit:?}");
    let ids = event_ids(&config, "census-reader", &audit.committed, WITHIN).await.unwrap().expect("read in time");
    assert_eq!(ids.len(), 300, "every event's id, once");
    let ids: Vec<uuid::Uuid> = ids.into_iter().collect();
    assert_eq!(store.ledger_absent("audit", &ids).await.unwrap(), lost.len() as u64);

    // Offsets the log never reaches: the reader reads all there is, then
    // nothing more comes, and it gives up by itself once that lasts `stall`.
    let beyond: std::collections::HashMap<i32, i64> = [(0, 1_000_000), (1, 1_000_000)].into();
    let stalled = tokio::time::timeout(WITHIN, event_ids(&config, "census-reader-3", &beyond, Duration::from_secs(3)))
        .await
        .expect("a stalled census ends by itself")
        .unwrap();
    assert!(stalled.is_none(), "a census that never reached its offsets is not a complete one");

    // A group that stopped half-way has lag, not loss: what it committed is all in its ledger.
    let handler = Recording {
        store: Arc::clone(&store),
        ledger: "analytics",
        skip: Default::default(),
        stop_after: 120,
        handled: AtomicU64::new(0),
        done: tokio::sync::Notify::new(),
    };
    let halfway =
        EventConsumer::new(&config, "analytics", Start::Group, KafkaMetrics::new(&prometheus::Registry::new()))
            .unwrap();
    tokio::time::timeout(WITHIN, halfway.run(&handler, handler.done.notified())).await.expect("consumed in time");
    let analytics = offsets("analytics").await;
    assert!(analytics.unconsumed() > 0 && analytics.unconsumed() <= 180, "{analytics:?}");
    let ids = event_ids(&config, "census-reader-2", &analytics.committed, WITHIN).await.unwrap().expect("read in time");
    assert_eq!(ids.len() as u64 + analytics.unconsumed(), 300, "read up to the commits, the rest unconsumed");
    let ids: Vec<uuid::Uuid> = ids.into_iter().collect();
    assert_eq!(store.ledger_absent("analytics", &ids).await.unwrap(), 0, "nothing consumed is missing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_census_that_keeps_reading_is_not_cut_short_however_long_the_log_takes() {
    use q2o_common::kafka::census::event_ids;
    let broker = Broker::start().expect("tansu starts");
    let config = KafkaConfig {
        bootstrap_servers: broker.bootstrap(),
        topic: "census-trickle".into(),
        partitions: 1,
        ..KafkaConfig::default()
    };
    ensure_topic(&config).await.unwrap();
    // Ten events, one every 800 ms: the whole read takes about 8 s, twice
    // the reader's 4 s stall bound, and it never goes 4 s without an event.
    let producer = EventProducer::new(&config, KafkaMetrics::new(&prometheus::Registry::new())).unwrap();
    let trickle = tokio::task::spawn_blocking(move || {
        for seq in 0..10 {
            producer.send(&event(seq));
            producer.flush(Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(800));
        }
    });
    let until: HashMap<i32, i64> = [(0, 10)].into();
    let ids = tokio::time::timeout(WITHIN, event_ids(&config, "census-reader", &until, Duration::from_secs(4)))
        .await
        .expect("the census ends")
        .unwrap()
        .expect("a reader that keeps getting events is not given up on");
    assert_eq!(ids.len(), 10);
    trickle.await.unwrap();
}
