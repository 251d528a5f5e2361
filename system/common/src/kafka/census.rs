//! What the broker's log says of a consumer group, for telling loss from
//! lag: the group's committed offsets against the topic's high watermarks
//! ([`GroupOffsets`]), and the event ids the log holds before given offsets
//! ([`event_ids`]), read from the beginning by a reader of its own.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use super::{
    ConsumeError, EventConsumer, EventHandler, HandleError, KafkaConfig, KafkaMetrics, Payload, Position, Start,
};
use crate::domain::AgentEvent;

/// A group's place in the log, as the broker has it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupOffsets {
    /// Next offset the group will read, by partition (absent: it has committed nothing there).
    pub committed: HashMap<i32, i64>,
    /// Next offset to be written, by partition.
    pub high: HashMap<i32, i64>,
}

impl GroupOffsets {
    /// Messages written and not yet consumed (committed) by the group.
    pub fn unconsumed(&self) -> u64 {
        self.high.iter().map(|(p, high)| (high - self.committed.get(p).copied().unwrap_or(0)).max(0) as u64).sum()
    }
}

/// Asks the broker for `group`'s committed offsets and the high watermarks.
/// Blocking (librdkafka's metadata calls): run it off the async runtime.
pub fn group_offsets(config: &KafkaConfig, group: &str, timeout: Duration) -> Result<GroupOffsets, ConsumeError> {
    // A probe never joins the group nor commits for it.
    let probe = EventConsumer::new(config, group, Start::Probe, KafkaMetrics::new(&prometheus::Registry::new()))?;
    let partitions = probe.partition_count(timeout)?;
    Ok(GroupOffsets { committed: probe.committed_offsets(timeout)?, high: probe.high_watermarks(partitions, timeout)? })
}

/// The distinct event ids the log holds before `until` (next offset, by
/// partition), read from the beginning; `None` if the reader read nothing
/// for `stall` before it got there.
///
/// Bounded by progress, not by a total time: how long the read takes grows
/// with the log (a 5-minute phase2 hold at 50,000 users logs ~900,000 events,
/// and a fixed 180 s was not enough to read them from tansu), while a reader
/// that stopped getting events is stuck whatever the log's size.
pub async fn event_ids(
    config: &KafkaConfig,
    reader: &str,
    until: &HashMap<i32, i64>,
    stall: Duration,
) -> Result<Option<HashSet<Uuid>>, ConsumeError> {
    let wanted: HashMap<i32, i64> = until.iter().filter(|(_, o)| **o > 0).map(|(p, o)| (*p, *o)).collect();
    if wanted.is_empty() {
        return Ok(Some(HashSet::new()));
    }
    let partitions = until.keys().copied().max().unwrap_or(0) + 1;
    let start = Start::Assigned { partitions, offsets: HashMap::new() };
    let consumer = EventConsumer::new(config, reader, start, KafkaMetrics::new(&prometheus::Registry::new()))?;
    let census = Census { wanted, seen: Mutex::default(), read: AtomicU64::new(0), done: tokio::sync::Notify::new() };
    let census = Arc::new(census);
    let finished = async {
        let mut read_before = 0;
        loop {
            tokio::select! {
                // `notify_one` keeps its permit if no one waits yet: not missed.
                () = census.done.notified() => return true,
                () = tokio::time::sleep(stall) => {
                    let read = census.read.load(Ordering::Relaxed);
                    if read == read_before {
                        return false;
                    }
                    read_before = read;
                }
            }
        }
    };
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let run = consumer.run(census.as_ref(), async {
        let _ = done_tx.send(finished.await);
    });
    run.await;
    let complete = done_rx.await.unwrap_or(false);
    let seen = std::mem::take(&mut *census.seen.lock().expect("never poisoned"));
    Ok(complete.then_some(seen.ids))
}

#[derive(Default)]
struct Seen {
    ids: HashSet<Uuid>,
    /// Next offset still to be seen, by partition.
    next: HashMap<i32, i64>,
}

struct Census {
    wanted: HashMap<i32, i64>,
    seen: Mutex<Seen>,
    /// Events handled so far, wanted or not: the reader's progress.
    read: AtomicU64,
    done: tokio::sync::Notify,
}

#[async_trait]
impl EventHandler for Census {
    async fn handle(&self, event: &AgentEvent, at: Position) -> Result<(), HandleError> {
        self.read.fetch_add(1, Ordering::Relaxed);
        let Some(until) = self.wanted.get(&at.partition) else { return Ok(()) };
        let mut seen = self.seen.lock().expect("never poisoned");
        if at.offset < *until {
            seen.ids.insert(event.event_id);
        }
        seen.next.insert(at.partition, at.offset + 1);
        // Malformed events are skipped before the handler: an offset past
        // one counts it as read.
        if self.wanted.iter().all(|(p, until)| seen.next.get(p).is_some_and(|next| next >= until)) {
            self.done.notify_one();
        }
        Ok(())
    }

    /// The census counts ids.
    fn payload(&self) -> Payload {
        Payload::Scalars
    }
}
