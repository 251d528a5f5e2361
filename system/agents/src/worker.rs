//! Queue consumption: one claim loop per agent type, a bounded number of tasks in
//! flight per pool, and take-over of tasks whose worker died.

use std::sync::Arc;
use std::time::{Duration, Instant};

use q2o_common::domain::{
    AgentEvent, AgentEventType, AgentType, Notification, Project, Published, TaskOutcome, TaskUpdate, now,
};
use q2o_common::kafka::EventProducer;
use q2o_common::store::{Claim, Started, Starter};
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
    ///
    /// Two round trips to the store per task: the start (with its
    /// announcement and the project's read) and the finish (with its
    /// announcement and the acknowledgement).
    async fn process(self: Arc<Self>, claim: Claim, _permit: OwnedSemaphorePermit) {
        let store = &*self.work.store;
        let agent = claim.agent_type;
        let starter = Starter { agent_id: agent_id(agent, &self.consumer), event_id: uuid::Uuid::new_v4() };
        let Started { task, project, event } = match store.start_task(&claim, &starter).await {
            Ok(Some(started)) => started,
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
        if let Some(events) = &self.events {
            events.send(&event);
        }
        let outcome = match self.work.perform(&task).await {
            Ok(result) => TaskOutcome::Completed(result),
            Err(reason) => TaskOutcome::Failed(reason),
        };
        // The work's, without the finish's round trip: the event that reports
        // it goes to the store with the finish.
        let took = started.elapsed();
        let (end, event_type, payload) = ending(&outcome, took, &task.description, project);
        let mut finished = task;
        outcome.apply(&mut finished, now());
        let event = AgentEvent {
            event_id: uuid::Uuid::new_v4(),
            agent_id: starter.agent_id.clone(),
            agent_type: agent,
            event_type,
            task_id: finished.id,
            project_id: finished.project_id,
            tenant: finished.tenant.clone(),
            at: finished.updated_at,
            payload,
        };
        // With a log, encoded once for it and the gateways: a completed
        // task's event carries its code. Without one (phase0's monolith, on
        // the in-memory store), not encoded at all.
        let (announced, logged) = match &self.events {
            Some(_) => {
                let json = serde_json::to_vec(&event).expect("events serialize");
                (Published::agent_event(event, &json), Some(json))
            }
            None => (Published::new(Notification::Agent(event)), None),
        };
        let notifications = [Published::new(Notification::Task(TaskUpdate::of(&finished))), announced];
        match store.finish_task(&claim, &finished, &notifications).await {
            Ok(true) => {
                if let Some(reason) = &finished.error {
                    FAILURES.warn("failed", &format_args!("task {}: {reason}", finished.id));
                }
                self.work.metrics.task_ended(agent, end, took);
                // Logged once the store took the finish: a task finished
                // twice (taken over from a stalled worker) is reported once.
                if let (Some(events), Some(json)) = (&self.events, logged) {
                    events.send_json(starter.agent_id, json);
                }
            }
            Ok(false) => self.work.metrics.task_ended(agent, TaskEnd::Duplicate, took),
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
}

/// How a task ended, as its metrics and its event report it: what the
/// event's payload says of the work and, for a result, of the project as it
/// was when the task started (read with the start).
fn ending(
    outcome: &TaskOutcome,
    took: Duration,
    description: &str,
    project: Option<Project>,
) -> (TaskEnd, AgentEventType, serde_json::Value) {
    match outcome {
        TaskOutcome::Completed(result) => {
            let payload = serde_json::json!({
                "duration_ms": took.as_millis() as u64,
                "prompt_tokens": result.prompt_tokens,
                "completion_tokens": result.completion_tokens,
                "cost_dollars": result.cost_dollars,
                "cache_hit": result.cache_hit,
                "task": { "description": description },
                "result": { "summary": result.summary, "language": result.language, "code": result.code },
                "project": project.map(|p| serde_json::json!({
                    "name": p.name,
                    "description": p.description,
                    "objective": p.objective,
                    "tags": p.tags,
                    "status": p.status,
                    "created_at": p.created_at.unix_timestamp(),
                })),
            });
            (TaskEnd::Completed, AgentEventType::TaskCompleted, payload)
        }
        TaskOutcome::Failed(reason) => {
            let payload = serde_json::json!({ "duration_ms": took.as_millis() as u64, "error": reason });
            (TaskEnd::Failed, AgentEventType::TaskFailed, payload)
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
