//! Queue consumption: one claim loop per agent type, a bounded number of tasks in
//! flight per pool, and take-over of tasks whose worker died.

use std::sync::Arc;
use std::time::{Duration, Instant};

use q2o_common::domain::{
    AgentEvent, AgentEventType, AgentType, Notification, Published, Task, TaskOutcome, TaskUpdate, now,
};
use q2o_common::kafka::EventProducer;
use q2o_common::store::Claim;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

use crate::config::Pool;
use crate::execution::Work;
use crate::metrics::TaskEnd;

/// Tasks that failed or could not be handled, logged without a line per task
/// when a dependency is down.
static FAILURES: std::sync::LazyLock<q2o_common::log_storm::LogStorm> =
    std::sync::LazyLock::new(|| q2o_common::log_storm::LogStorm::new("tasks"));

/// How long a pool waits after a failed queue read before trying again.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Settings shared by every pool of the process.
#[derive(Debug)]
pub(crate) struct Workers {
    pub(crate) work: Arc<Work>,
    pub(crate) consumer: String,
    pub(crate) claim_wait: Duration,
    pub(crate) reclaim_after: Duration,
    pub(crate) reclaim_every: Duration,
    /// The activity log, when this stack has one.
    pub(crate) events: Option<EventProducer>,
}

impl Workers {
    /// Runs every pool until `shutdown` turns true, then waits for the tasks in flight.
    pub(crate) async fn run(self: Arc<Self>, pools: Vec<Pool>, shutdown: watch::Receiver<bool>) {
        let mut loops = JoinSet::new();
        for pool in pools {
            loops.spawn(Arc::clone(&self).pool_loop(pool, shutdown.clone()));
        }
        while loops.join_next().await.is_some() {}
    }

    async fn pool_loop(self: Arc<Self>, pool: Pool, mut shutdown: watch::Receiver<bool>) {
        let agent = pool.agent_type;
        let permits = Arc::new(Semaphore::new(pool.workers));
        let mut in_flight = JoinSet::new();
        let mut reclaim = tokio::time::interval(self.reclaim_every);
        reclaim.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            while in_flight.try_join_next().is_some() {}
            tokio::select! {
                () = stopping(&mut shutdown) => break,
                _ = reclaim.tick() => {
                    let free = permits.available_permits();
                    if free == 0 {
                        continue;
                    }
                    let store = &self.work.store;
                    match store.reclaim_stale_tasks(agent, &self.consumer, self.reclaim_after, free).await {
                        Ok(claims) => {
                            for claim in claims {
                                tracing::info!(agent = %agent, task = %claim.task_id, "taking over a stalled task");
                                self.work.metrics.task_reclaimed(agent);
                                let permit = Arc::clone(&permits).try_acquire_owned().expect("counted free permits");
                                in_flight.spawn(Arc::clone(&self).process(claim, permit));
                            }
                        }
                        Err(err) => tracing::warn!(agent = %agent, %err, "cannot look for stalled tasks"),
                    }
                }
                permit = Arc::clone(&permits).acquire_owned() => {
                    let permit = permit.expect("the semaphore is never closed");
                    let free = 1 + permits.available_permits();
                    // Not raced against shutdown: an interrupted read could leave
                    // entries claimed by us and unprocessed until taken over.
                    match self.work.store.claim_tasks(agent, &self.consumer, free, self.claim_wait).await {
                        Ok(claims) => {
                            let mut permit = Some(permit);
                            for claim in claims {
                                let permit = permit.take().unwrap_or_else(|| {
                                    Arc::clone(&permits).try_acquire_owned().expect("claimed no more than free permits")
                                });
                                in_flight.spawn(Arc::clone(&self).process(claim, permit));
                            }
                        }
                        Err(err) => {
                            tracing::warn!(agent = %agent, %err, "cannot read the queue");
                            tokio::time::sleep(RETRY_PAUSE).await;
                        }
                    }
                }
            }
        }
        while in_flight.join_next().await.is_some() {}
    }

    /// Runs one claimed task to its end. On a storage error the entry is left
    /// unacknowledged, so that it is taken over later rather than lost.
    async fn process(self: Arc<Self>, claim: Claim, _permit: OwnedSemaphorePermit) {
        let store = &*self.work.store;
        let agent = claim.agent_type;
        let task = match store.start_task(&claim).await {
            Ok(Some(task)) => task,
            Ok(None) => {
                // Already finished by an earlier attempt, or deleted with its project.
                self.ack(&claim).await;
                return;
            }
            Err(err) => {
                FAILURES.warn("cannot_start", &format_args!("task {}: {err}; left for a retry", claim.task_id));
                return;
            }
        };
        let started = Instant::now();
        self.work.metrics.task_started(agent);
        self.announce(&task, AgentEventType::TaskStarted, serde_json::json!({ "attempt": task.attempts })).await;
        let outcome = match self.work.perform(&task).await {
            Ok(result) => TaskOutcome::Completed(result),
            Err(reason) => TaskOutcome::Failed(reason),
        };
        // The project goes into a completion event (consumers such as the search
        // indexer need no store of ours): read with the finish, in its round trip.
        let completed = matches!(outcome, TaskOutcome::Completed(_));
        let (finished, project) = tokio::join!(store.finish_task(&task, &outcome), async {
            if completed { store.project(&task.tenant, task.project_id).await.ok().flatten() } else { None }
        });
        let took = started.elapsed();
        match finished {
            Ok(Some(task)) => {
                let (end, event) = match &outcome {
                    TaskOutcome::Completed(_) => (TaskEnd::Completed, AgentEventType::TaskCompleted),
                    TaskOutcome::Failed(reason) => {
                        FAILURES.warn("failed", &format_args!("task {}: {reason}", task.id));
                        (TaskEnd::Failed, AgentEventType::TaskFailed)
                    }
                };
                self.work.metrics.task_ended(agent, end, took);
                let payload = match &outcome {
                    TaskOutcome::Completed(result) => {
                        serde_json::json!({
                            "duration_ms": took.as_millis() as u64,
                            "prompt_tokens": result.prompt_tokens,
                            "completion_tokens": result.completion_tokens,
                            "cost_dollars": result.cost_dollars,
                            "cache_hit": result.cache_hit,
                            "task": { "description": task.description },
                            "result": { "summary": result.summary, "language": result.language, "code": result.code },
                            "project": project.map(|p| serde_json::json!({
                                "name": p.name,
                                "description": p.description,
                                "objective": p.objective,
                                "tags": p.tags,
                                "status": p.status,
                                "created_at": p.created_at.unix_timestamp(),
                            })),
                        })
                    }
                    TaskOutcome::Failed(reason) => serde_json::json!({
                        "duration_ms": took.as_millis() as u64,
                        "error": reason,
                    }),
                };
                // `join!` polls `announce` first, which puts the event in the
                // producer's queue before it awaits anything: acknowledging
                // alongside its notifications loses nothing and shares their
                // round trip.
                tokio::join!(self.announce(&task, event, payload), self.ack(&claim));
            }
            Ok(None) => {
                self.work.metrics.task_ended(agent, TaskEnd::Duplicate, took);
                self.ack(&claim).await;
            }
            Err(err) => {
                self.work.metrics.task_ended(agent, TaskEnd::Failed, took);
                FAILURES.warn("cannot_record", &format_args!("task {}: {err}; left for a retry", claim.task_id));
            }
        }
    }

    async fn ack(&self, claim: &Claim) {
        if let Err(err) = self.work.store.ack(claim).await {
            // Not fatal: the entry is re-delivered, and a finished task is skipped then.
            FAILURES.warn("cannot_ack", &format_args!("task {}: {err}", claim.task_id));
        }
    }

    /// Publishes the task's new status and an agent event; failures are logged only,
    /// since the task's state in the store is already authoritative.
    async fn announce(&self, task: &Task, event_type: AgentEventType, payload: serde_json::Value) {
        let event = AgentEvent {
            event_id: uuid::Uuid::new_v4(),
            agent_id: agent_id(task.agent_type, &self.consumer),
            agent_type: task.agent_type,
            event_type,
            task_id: task.id,
            project_id: task.project_id,
            tenant: task.tenant.clone(),
            at: now(),
            payload,
        };
        // With a log, encoded once for it and the gateways: a completed
        // task's event carries its code. Without one (phase0's monolith, on
        // the in-memory store), not encoded at all.
        let agent = match &self.events {
            Some(events) => {
                let json = serde_json::to_vec(&event).expect("events serialize");
                let key = event.agent_id.clone();
                let agent = Published::agent_event(event, &json);
                events.send_json(key, json);
                agent
            }
            None => Published::new(Notification::Agent(event)),
        };
        let notifications = [Published::new(Notification::Task(TaskUpdate::of(task))), agent];
        if let Err(err) = self.work.store.publish(&notifications).await {
            tracing::warn!(%err, "cannot publish notifications");
        }
    }
}

/// Resolves once shutdown is requested (without holding the watch guard).
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

fn agent_id(agent: AgentType, consumer: &str) -> String {
    format!("{agent}-{consumer}")
}
