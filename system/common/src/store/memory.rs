//! [`Store`] in process memory: the phase0 baseline (one server, nothing shared).
//!
//! Mirrors the Redis semantics that the services rely on (claims stay pending
//! until acknowledged, a task finishes once) so that both backends run the same
//! service code. Nothing survives a restart, which is the point of the baseline.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{Notify, broadcast};

use super::{CacheType, Claim, NotificationHub, RateDecision, Started, Starter, Store, StoreError, TokenBucket};
use crate::domain::{
    AgentEvent, AgentType, Notification, Page, Project, ProjectId, ProjectStatusSummary, Published, Task, TaskId,
    TaskStatus, TaskUpdate, TenantId, now,
};

/// The in-memory [`Store`].
#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<State>,
    queued: HashMap<AgentType, Notify>,
    hub: NotificationHub,
}

#[derive(Debug, Default)]
struct State {
    sessions: HashMap<String, (TenantId, Instant)>,
    buckets: HashMap<TenantId, (f64, Instant)>,
    projects: HashMap<(TenantId, ProjectId), Project>,
    project_order: HashMap<TenantId, Vec<ProjectId>>,
    tasks: HashMap<(TenantId, TaskId), Task>,
    project_tasks: HashMap<(TenantId, ProjectId), Vec<TaskId>>,
    queues: HashMap<AgentType, VecDeque<Claim>>,
    pending: HashMap<String, (Claim, Instant)>,
    next_entry: u64,
    cache: HashMap<(CacheType, String), (String, Instant)>,
    ledgers: HashMap<String, std::collections::HashSet<uuid::Uuid>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore {
            state: Mutex::default(),
            queued: AgentType::ALL.into_iter().map(|a| (a, Notify::new())).collect(),
            hub: NotificationHub::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("store lock is never poisoned")
    }

    fn take_claims(&self, agent: AgentType, max: usize) -> Vec<Claim> {
        let mut state = self.state();
        let mut claims = Vec::new();
        while claims.len() < max {
            let Some(claim) = state.queues.get_mut(&agent).and_then(VecDeque::pop_front) else { break };
            state.pending.insert(claim.entry_id.clone(), (claim.clone(), Instant::now()));
            claims.push(claim);
        }
        claims
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

fn page<T: Clone>(items: &[T], page: Page) -> Vec<T> {
    items.iter().skip(page.offset as usize).take(page.limit as usize).cloned().collect()
}

#[async_trait]
impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn create_session(&self, token: &str, tenant: &TenantId, ttl: Duration) -> Result<(), StoreError> {
        self.state().sessions.insert(token.to_owned(), (tenant.clone(), Instant::now() + ttl));
        Ok(())
    }

    async fn session(&self, token: &str) -> Result<Option<(TenantId, Duration)>, StoreError> {
        let mut state = self.state();
        let now = Instant::now();
        match state.sessions.get(token) {
            Some((tenant, expires)) if *expires > now => Ok(Some((tenant.clone(), *expires - now))),
            Some(_) => {
                state.sessions.remove(token);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn take_tokens(
        &self,
        tenant: &TenantId,
        bucket: TokenBucket,
        want: u32,
    ) -> Result<(u32, RateDecision), StoreError> {
        let mut state = self.state();
        let now = Instant::now();
        let (tokens, last) = state.buckets.get(tenant).copied().unwrap_or((f64::from(bucket.capacity), now));
        let (left, granted, decision) = bucket.take_up_to(tokens, now.duration_since(last), want);
        state.buckets.insert(tenant.clone(), (left, now));
        Ok((granted, decision))
    }

    async fn insert_project(&self, project: &Project) -> Result<(), StoreError> {
        let mut state = self.state();
        state.projects.insert((project.tenant.clone(), project.id), project.clone());
        state.project_order.entry(project.tenant.clone()).or_default().push(project.id);
        Ok(())
    }

    async fn replace_project(&self, project: &Project) -> Result<bool, StoreError> {
        let mut state = self.state();
        match state.projects.get_mut(&(project.tenant.clone(), project.id)) {
            Some(stored) => {
                *stored = project.clone();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn project(&self, tenant: &TenantId, id: ProjectId) -> Result<Option<Project>, StoreError> {
        Ok(self.state().projects.get(&(tenant.clone(), id)).cloned())
    }

    async fn projects(&self, tenant: &TenantId, p: Page) -> Result<Vec<Project>, StoreError> {
        let state = self.state();
        let ids = state.project_order.get(tenant).map(Vec::as_slice).unwrap_or_default();
        Ok(page(ids, p).into_iter().filter_map(|id| state.projects.get(&(tenant.clone(), id)).cloned()).collect())
    }

    async fn delete_project(&self, tenant: &TenantId, id: ProjectId) -> Result<bool, StoreError> {
        let mut state = self.state();
        let existed = state.projects.remove(&(tenant.clone(), id)).is_some();
        if let Some(order) = state.project_order.get_mut(tenant) {
            order.retain(|p| *p != id);
        }
        for task in state.project_tasks.remove(&(tenant.clone(), id)).unwrap_or_default() {
            state.tasks.remove(&(tenant.clone(), task));
        }
        Ok(existed)
    }

    async fn submit_task(&self, task: &Task) -> Result<(), StoreError> {
        {
            let mut state = self.state();
            state.tasks.insert((task.tenant.clone(), task.id), task.clone());
            state.project_tasks.entry((task.tenant.clone(), task.project_id)).or_default().push(task.id);
            state.next_entry += 1;
            let claim = Claim {
                agent_type: task.agent_type,
                entry_id: state.next_entry.to_string(),
                tenant: task.tenant.clone(),
                project_id: Some(task.project_id),
                task_id: task.id,
            };
            state.queues.entry(task.agent_type).or_default().push_back(claim);
        }
        self.queued[&task.agent_type].notify_one();
        Ok(())
    }

    async fn task(&self, tenant: &TenantId, id: TaskId) -> Result<Option<Task>, StoreError> {
        Ok(self.state().tasks.get(&(tenant.clone(), id)).cloned())
    }

    async fn tasks(&self, tenant: &TenantId, project: ProjectId, p: Page) -> Result<Vec<Task>, StoreError> {
        let state = self.state();
        let ids = state.project_tasks.get(&(tenant.clone(), project)).map(Vec::as_slice).unwrap_or_default();
        Ok(page(ids, p).into_iter().filter_map(|id| state.tasks.get(&(tenant.clone(), id)).cloned()).collect())
    }

    async fn recent_task_updates(
        &self,
        tenant: &TenantId,
        project: ProjectId,
        last: u32,
    ) -> Result<Vec<TaskUpdate>, StoreError> {
        let state = self.state();
        let ids = state.project_tasks.get(&(tenant.clone(), project)).map(Vec::as_slice).unwrap_or_default();
        let recent = &ids[ids.len().saturating_sub(last as usize)..];
        Ok(recent.iter().filter_map(|id| state.tasks.get(&(tenant.clone(), *id))).map(TaskUpdate::of).collect())
    }

    async fn project_status(&self, tenant: &TenantId, project: ProjectId) -> Result<ProjectStatusSummary, StoreError> {
        let state = self.state();
        let mut summary = ProjectStatusSummary { project_id: project, ..Default::default() };
        for id in state.project_tasks.get(&(tenant.clone(), project)).into_iter().flatten() {
            let Some(task) = state.tasks.get(&(tenant.clone(), *id)) else { continue };
            summary.total += 1;
            *match task.status {
                TaskStatus::Queued => &mut summary.queued,
                TaskStatus::Running => &mut summary.running,
                TaskStatus::Completed => &mut summary.completed,
                TaskStatus::Failed => &mut summary.failed,
            } += 1;
        }
        Ok(summary)
    }

    async fn ensure_queues(&self, _agents: &[AgentType]) -> Result<(), StoreError> {
        Ok(())
    }

    async fn claim_tasks(
        &self,
        agent: AgentType,
        _consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Claim>, StoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Register interest before looking, so a submit in between is not missed.
            let notified = self.queued[&agent].notified();
            let claims = self.take_claims(agent, max);
            if !claims.is_empty() {
                return Ok(claims);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    async fn reclaim_stale_tasks(
        &self,
        agent: AgentType,
        _consumer: &str,
        min_idle: Duration,
        max: usize,
    ) -> Result<Vec<Claim>, StoreError> {
        let mut state = self.state();
        let now = Instant::now();
        let stale: Vec<Claim> = state
            .pending
            .values_mut()
            .filter(|(claim, since)| claim.agent_type == agent && now.duration_since(*since) >= min_idle)
            .take(max)
            .map(|(claim, since)| {
                *since = now;
                claim.clone()
            })
            .collect();
        Ok(stale)
    }

    async fn ack(&self, claim: &Claim) -> Result<(), StoreError> {
        self.state().pending.remove(&claim.entry_id);
        Ok(())
    }

    async fn queued_tasks(&self) -> Result<u64, StoreError> {
        let state = self.state();
        Ok((state.queues.values().map(VecDeque::len).sum::<usize>() + state.pending.len()) as u64)
    }

    async fn start_task(&self, claim: &Claim, starter: &Starter) -> Result<Option<Started>, StoreError> {
        let started = {
            let mut state = self.state();
            let Some(task) = state.tasks.get_mut(&(claim.tenant.clone(), claim.task_id)) else { return Ok(None) };
            if task.status.is_terminal() {
                return Ok(None);
            }
            task.status = TaskStatus::Running;
            task.attempts += 1;
            task.updated_at = now();
            let task = task.clone();
            let project = state.projects.get(&(task.tenant.clone(), task.project_id)).cloned();
            let event = AgentEvent::task_started(&task, starter.agent_id.clone(), starter.event_id);
            Started { task, project, event }
        };
        self.hub.dispatch(Notification::Task(TaskUpdate::of(&started.task)));
        self.hub.dispatch(Notification::Agent(started.event.clone()));
        Ok(Some(started))
    }

    async fn finish_task(
        &self,
        claim: &Claim,
        finished: &Task,
        notifications: &[Published],
    ) -> Result<bool, StoreError> {
        {
            let mut state = self.state();
            state.pending.remove(&claim.entry_id);
            let Some(task) = state.tasks.get_mut(&(finished.tenant.clone(), finished.id)) else { return Ok(false) };
            if task.status.is_terminal() {
                return Ok(false);
            }
            task.status = finished.status;
            task.updated_at = finished.updated_at;
            task.result.clone_from(&finished.result);
            task.error.clone_from(&finished.error);
        }
        self.publish(notifications).await?;
        Ok(true)
    }

    async fn cache_get(&self, cache: CacheType, key: &str) -> Result<Option<String>, StoreError> {
        let state = self.state();
        Ok(state
            .cache
            .get(&(cache, key.to_owned()))
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(value, _)| value.clone()))
    }

    async fn cache_put(&self, cache: CacheType, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        self.state().cache.insert((cache, key.to_owned()), (value.to_owned(), Instant::now() + ttl));
        Ok(())
    }

    async fn record_event(&self, ledger: &str, event_id: uuid::Uuid) -> Result<bool, StoreError> {
        Ok(self.state().ledgers.entry(ledger.to_owned()).or_default().insert(event_id))
    }

    async fn ledger_size(&self, ledger: &str) -> Result<u64, StoreError> {
        Ok(self.state().ledgers.get(ledger).map_or(0, |l| l.len() as u64))
    }

    async fn ledger_absent(&self, ledger: &str, event_ids: &[uuid::Uuid]) -> Result<u64, StoreError> {
        let state = self.state();
        let held = state.ledgers.get(ledger);
        Ok(event_ids.iter().filter(|id| !held.is_some_and(|l| l.contains(id))).count() as u64)
    }

    async fn publish(&self, notifications: &[Published]) -> Result<(), StoreError> {
        for published in notifications {
            self.hub.dispatch(published.notification.clone());
        }
        Ok(())
    }

    async fn subscribe_project(
        &self,
        tenant: &TenantId,
        project: ProjectId,
    ) -> Result<broadcast::Receiver<TaskUpdate>, StoreError> {
        Ok(self.hub.subscribe_project(tenant, project))
    }

    async fn subscribe_activity(&self, tenant: &TenantId) -> Result<broadcast::Receiver<AgentEvent>, StoreError> {
        Ok(self.hub.subscribe_activity(tenant))
    }
}
