//! The Redis key layout. Every key of a tenant's record contains the tenant, so a
//! lookup with another tenant's credential cannot reach it.

use crate::domain::{AgentType, Notification, ProjectId, TaskId, TenantId};

use super::CacheType;

/// Consumer group shared by every agents process.
pub(super) const AGENT_GROUP: &str = "q2o-agents";
/// Pattern of the agent activity channels: apart from the updates, so that a
/// gateway with no activity stream is not sent every agent event.
pub(super) const ACTIVITY_PATTERN: &str = "q2o:activity:*";

pub(super) fn session(token: &str) -> String {
    format!("q2o:session:{token}")
}

/// What a tenant's bucket key starts with (the admission script appends the tenant itself).
pub(super) const RATE_LIMIT_PREFIX: &str = "q2o:ratelimit:";

pub(super) fn rate_limit(tenant: &TenantId) -> String {
    format!("{RATE_LIMIT_PREFIX}{tenant}")
}

pub(super) fn project(tenant: &TenantId, id: ProjectId) -> String {
    format!("q2o:project:{tenant}:{id}")
}

/// Sorted set of a tenant's project ids, scored by creation time.
pub(super) fn projects(tenant: &TenantId) -> String {
    format!("q2o:projects:{tenant}")
}

/// Hash: `doc` (the task as submitted, JSON), `status`, `attempts`, `updated_at`,
/// `result` (JSON), `error`.
pub(super) fn task(tenant: &TenantId, id: TaskId) -> String {
    format!("q2o:task:{tenant}:{id}")
}

/// Sorted set of a project's task ids, scored by submission time.
pub(super) fn project_tasks(tenant: &TenantId, project: ProjectId) -> String {
    format!("q2o:tasks:{tenant}:{project}")
}

/// Hash of a project's task counts by status, plus `total`.
pub(super) fn project_stats(tenant: &TenantId, project: ProjectId) -> String {
    format!("q2o:pstat:{tenant}:{project}")
}

/// Stream of one agent type's queued tasks.
pub(super) fn queue(agent: AgentType) -> String {
    format!("q2o:queue:{agent}")
}

pub(super) fn cache(cache: CacheType, key: &str) -> String {
    format!("q2o:cache:{}:{key}", cache.as_str())
}

/// The channel of a project's task updates: one per project, so that an
/// update reaches only the processes that stream that project.
pub(super) fn project_updates(tenant: &TenantId, project: ProjectId) -> String {
    format!("q2o:notify:{tenant}:{project}")
}

/// Where a notification is published.
pub(super) fn notify(notification: &Notification) -> String {
    match notification {
        Notification::Task(update) => project_updates(&update.tenant, update.project_id),
        Notification::Agent(event) => format!("q2o:activity:{}", event.tenant),
    }
}

/// Set of event ids a consumer group has processed.
pub(super) fn ledger(name: &str) -> String {
    format!("q2o:ledger:{name}")
}
