//! The system's state and task queue behind one trait.
//!
//! [`Store`] is everything the gateway and the agents keep outside their own
//! memory: sessions, rate-limit buckets, projects, tasks and their queues, the
//! research cache, and the notification feed behind the streaming RPCs.
//!
//! * [`RedisStore`] is the real stack: state shared by every replica, queues on
//!   Redis Streams with consumer groups, notifications on pub/sub.
//! * [`MemoryStore`] is the phase0 baseline: one process, nothing shared, no Redis.
//!
//! Both run the same gateway and agent code, so phase0 measures the code paths the
//! later phases improve on.

mod keys;
mod memory;
mod notify;
mod project_channels;
mod rate_limit;
mod redis;
mod task_hash;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;

pub use memory::MemoryStore;
pub use notify::NotificationHub;
pub use rate_limit::{RateDecision, TokenBucket};
pub use redis::{RedisStore, RedisStoreOptions};

use crate::domain::{
    AgentEvent, AgentType, Page, Project, ProjectId, ProjectStatusSummary, Published, Task, TaskId, TaskUpdate,
    TenantId,
};

/// A storage operation that failed. Its message never contains user data.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis could not be reached or answered with an error.
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    /// A stored record could not be decoded (written by an incompatible version?).
    #[error("corrupt record {key}: {reason}")]
    Corrupt {
        /// The storage key.
        key: String,
        /// What was wrong.
        reason: String,
    },
}

impl StoreError {
    /// The record at `key` could not be decoded, for `reason`.
    pub(crate) fn corrupt(key: &str, reason: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt { key: key.to_owned(), reason: reason.to_string() }
    }
}

/// A task taken from its agent type's queue by one worker. It stays pending (and
/// can be re-claimed by another worker) until [`Store::ack`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The queue it came from.
    pub agent_type: AgentType,
    /// The queue entry (a stream id on Redis).
    pub entry_id: String,
    /// The task's tenant.
    pub tenant: TenantId,
    /// The task's project, carried by the entry so that starting the task
    /// needs no read of it first; `None` for an entry queued without it.
    pub project_id: Option<ProjectId>,
    /// The task.
    pub task_id: TaskId,
}

/// Who starts a task: what the store needs for the event that announces it.
#[derive(Clone, Debug)]
pub struct Starter {
    /// The worker (`AgentEvent::agent_id`).
    pub agent_id: String,
    /// The announcing event's id.
    pub event_id: uuid::Uuid,
}

/// A task as [`Store::start_task`] started it.
#[derive(Clone, Debug, PartialEq)]
pub struct Started {
    /// The task, running.
    pub task: Task,
    /// Its project as it was at the start, `None` if it is gone: what the
    /// completion event carries, read here so that finishing is one step.
    pub project: Option<Project>,
    /// The `task_started` event the store published
    /// ([`AgentEvent::task_started`]).
    pub event: AgentEvent,
}

/// Which cache a lookup concerns (the `cache_type` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CacheType {
    /// Research results by topic.
    Research,
}

impl CacheType {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheType::Research => "research",
        }
    }
}

/// State, queues, cache and notifications of the Q2O system.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// `redis` or `memory`, for logs and reports.
    fn backend(&self) -> &'static str;

    /// Succeeds when the store answers (the `/ready` probe).
    async fn ping(&self) -> Result<(), StoreError>;

    // ---- sessions

    /// Stores a session token for `tenant`, expiring after `ttl`.
    async fn create_session(&self, token: &str, tenant: &TenantId, ttl: Duration) -> Result<(), StoreError>;
    /// The tenant of a live session and how long it stays live (what a
    /// replica may cache it for: a session never changes tenant and is never
    /// revoked, it only expires).
    async fn session(&self, token: &str) -> Result<Option<(TenantId, Duration)>, StoreError>;

    // ---- rate limiting

    /// Takes up to `want` tokens (at least one, or none and a refusal) from
    /// the tenant's bucket, atomically across replicas: a replica's lease.
    /// Returns how many were granted and the decision.
    async fn take_tokens(
        &self,
        tenant: &TenantId,
        bucket: TokenBucket,
        want: u32,
    ) -> Result<(u32, RateDecision), StoreError>;

    /// Takes one token from the tenant's bucket.
    async fn take_token(&self, tenant: &TenantId, bucket: TokenBucket) -> Result<RateDecision, StoreError> {
        Ok(self.take_tokens(tenant, bucket, 1).await?.1)
    }

    // ---- projects

    /// Stores a new project.
    async fn insert_project(&self, project: &Project) -> Result<(), StoreError>;
    /// Overwrites an existing project; `false` if it no longer exists.
    async fn replace_project(&self, project: &Project) -> Result<bool, StoreError>;
    /// One project of the tenant.
    async fn project(&self, tenant: &TenantId, id: ProjectId) -> Result<Option<Project>, StoreError>;
    /// The tenant's projects, oldest first.
    async fn projects(&self, tenant: &TenantId, page: Page) -> Result<Vec<Project>, StoreError>;
    /// [`Store::project`] as its JSON document, what a REST answer carries.
    /// A store that keeps projects as that document hands it over as it is,
    /// without decoding and encoding it again; the others encode.
    async fn project_json(&self, tenant: &TenantId, id: ProjectId) -> Result<Option<String>, StoreError> {
        Ok(self.project(tenant, id).await?.map(|project| serde_json::to_string(&project).expect("projects serialize")))
    }
    /// [`Store::projects`] as their JSON documents (see [`Store::project_json`]).
    async fn projects_json(&self, tenant: &TenantId, page: Page) -> Result<Vec<String>, StoreError> {
        let projects = self.projects(tenant, page).await?;
        Ok(projects.iter().map(|project| serde_json::to_string(project).expect("projects serialize")).collect())
    }
    /// Deletes a project and its tasks; `false` if it did not exist.
    async fn delete_project(&self, tenant: &TenantId, id: ProjectId) -> Result<bool, StoreError>;

    // ---- tasks

    /// Records a queued task and enqueues it for its agent type, atomically.
    async fn submit_task(&self, task: &Task) -> Result<(), StoreError>;
    /// One task of the tenant.
    async fn task(&self, tenant: &TenantId, id: TaskId) -> Result<Option<Task>, StoreError>;
    /// [`Store::task`] as its JSON document, what a REST answer carries. A
    /// store that keeps a task's result as its JSON copies it in as it is,
    /// without decoding the generated code and encoding it again; the others
    /// encode the task.
    async fn task_json(&self, tenant: &TenantId, id: TaskId) -> Result<Option<String>, StoreError> {
        Ok(self.task(tenant, id).await?.map(|task| serde_json::to_string(&task).expect("tasks serialize")))
    }
    /// A project's tasks, oldest first.
    async fn tasks(&self, tenant: &TenantId, project: ProjectId, page: Page) -> Result<Vec<Task>, StoreError>;
    /// The current status of a project's `last` most recent tasks, oldest
    /// first: what a stream of the project's updates starts with. Reads only
    /// what an update carries, never a task's result, which is kilobytes.
    async fn recent_task_updates(
        &self,
        tenant: &TenantId,
        project: ProjectId,
        last: u32,
    ) -> Result<Vec<TaskUpdate>, StoreError>;
    /// Counts of a project's tasks by status.
    async fn project_status(&self, tenant: &TenantId, project: ProjectId) -> Result<ProjectStatusSummary, StoreError>;

    // ---- the queue (agents)

    /// Prepares the queues of these agent types for consumption.
    async fn ensure_queues(&self, agents: &[AgentType]) -> Result<(), StoreError>;
    /// Claims up to `max` new tasks, waiting up to `wait` for the first.
    async fn claim_tasks(
        &self,
        agent: AgentType,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Claim>, StoreError>;
    /// Takes over tasks another consumer claimed more than `min_idle` ago without
    /// acknowledging them (it crashed or stalled).
    async fn reclaim_stale_tasks(
        &self,
        agent: AgentType,
        consumer: &str,
        min_idle: Duration,
        max: usize,
    ) -> Result<Vec<Claim>, StoreError>;
    /// Removes a claimed task from the queue for good.
    async fn ack(&self, claim: &Claim) -> Result<(), StoreError>;
    /// Tasks in the queues not yet acknowledged, over every agent type:
    /// waiting to be claimed, or claimed and still running.
    async fn queued_tasks(&self) -> Result<u64, StoreError>;
    /// Marks a task running, counts the attempt and announces it (the task's
    /// update and a `task_started` event from `starter`), in one step; reads
    /// the task's project in the same step. `None` if the task is gone or
    /// already finished (a re-delivered entry): nothing changed, nothing was
    /// announced, and the claim is still to be acknowledged.
    async fn start_task(&self, claim: &Claim, starter: &Starter) -> Result<Option<Started>, StoreError>;
    /// Finishes a task exactly once, as `finished` (a started task with
    /// [`apply`](crate::domain::TaskOutcome::apply)-ed) holds it, publishes `notifications` if this
    /// call finished it, and acknowledges `claim` either way, in one step.
    /// `false` if the task was already finished (by an earlier attempt) or is
    /// gone: nothing changed and nothing was announced.
    async fn finish_task(
        &self,
        claim: &Claim,
        finished: &Task,
        notifications: &[Published],
    ) -> Result<bool, StoreError>;

    // ---- cache

    /// A cached value.
    async fn cache_get(&self, cache: CacheType, key: &str) -> Result<Option<String>, StoreError>;
    /// Caches a value for `ttl`.
    async fn cache_put(&self, cache: CacheType, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError>;

    // ---- audit ledger

    /// Records an event id in `ledger`; `true` the first time, `false` for a duplicate.
    async fn record_event(&self, ledger: &str, event_id: uuid::Uuid) -> Result<bool, StoreError>;
    /// How many distinct event ids `ledger` holds.
    async fn ledger_size(&self, ledger: &str) -> Result<u64, StoreError>;
    /// How many of `event_ids` `ledger` does not hold.
    async fn ledger_absent(&self, ledger: &str, event_ids: &[uuid::Uuid]) -> Result<u64, StoreError>;

    // ---- notifications

    /// Announces task changes and agent events to every gateway replica, in
    /// order and in one round trip.
    async fn publish(&self, notifications: &[Published]) -> Result<(), StoreError>;
    /// Task updates of one project, from now on.
    async fn subscribe_project(
        &self,
        tenant: &TenantId,
        project: ProjectId,
    ) -> Result<broadcast::Receiver<TaskUpdate>, StoreError>;
    /// Agent events of one tenant, from now on.
    async fn subscribe_activity(&self, tenant: &TenantId) -> Result<broadcast::Receiver<AgentEvent>, StoreError>;
}
