//! In-process fan-out of notifications to the streams that asked for them.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use serde::Deserialize;
use tokio::sync::broadcast;

use crate::domain::{AgentEvent, Notification, ProjectId, TaskUpdate, TenantId};

/// Routes each notification to the subscribers of its project (task updates) or
/// tenant (agent events), so a message costs work only for those who listen.
#[derive(Debug, Default)]
pub struct NotificationHub {
    projects: Mutex<HashMap<(TenantId, ProjectId), broadcast::Sender<TaskUpdate>>>,
    activity: Mutex<HashMap<TenantId, broadcast::Sender<AgentEvent>>>,
}

/// How many notifications a slow subscriber may fall behind before it misses some.
const SUBSCRIBER_BACKLOG: usize = 256;

impl NotificationHub {
    fn lock_projects(&self) -> MutexGuard<'_, HashMap<(TenantId, ProjectId), broadcast::Sender<TaskUpdate>>> {
        self.projects.lock().expect("hub lock is never poisoned")
    }

    fn lock_activity(&self) -> MutexGuard<'_, HashMap<TenantId, broadcast::Sender<AgentEvent>>> {
        self.activity.lock().expect("hub lock is never poisoned")
    }

    /// Task updates of one project.
    pub fn subscribe_project(&self, tenant: &TenantId, project: ProjectId) -> broadcast::Receiver<TaskUpdate> {
        let mut projects = self.lock_projects();
        projects
            .entry((tenant.clone(), project))
            .or_insert_with(|| broadcast::channel(SUBSCRIBER_BACKLOG).0)
            .subscribe()
    }

    /// Whether a stream still reads this project's updates.
    pub fn project_watched(&self, tenant: &TenantId, project: ProjectId) -> bool {
        self.lock_projects().get(&(tenant.clone(), project)).is_some_and(|sender| sender.receiver_count() > 0)
    }

    /// Drops the project's channel if no stream reads it any more.
    pub fn forget_project(&self, tenant: &TenantId, project: ProjectId) {
        let mut projects = self.lock_projects();
        let key = (tenant.clone(), project);
        if projects.get(&key).is_some_and(|sender| sender.receiver_count() == 0) {
            projects.remove(&key);
        }
    }

    /// Agent events of one tenant.
    pub fn subscribe_activity(&self, tenant: &TenantId) -> broadcast::Receiver<AgentEvent> {
        let mut activity = self.lock_activity();
        activity.entry(tenant.clone()).or_insert_with(|| broadcast::channel(SUBSCRIBER_BACKLOG).0).subscribe()
    }

    /// Delivers a notification received as JSON, parsing it whole only when
    /// someone listens: most are not wanted by this replica (agent events
    /// when no one streams activity, updates of projects no one streams), and
    /// a completed task's event carries kilobytes of generated code.
    pub fn dispatch_json(&self, json: &[u8]) -> Result<(), serde_json::Error> {
        // A plain struct, not the tagged enum: serde buffers every field of an
        // internally tagged enum before it reads the tag, and skips unknown
        // fields of a struct without allocating.
        #[derive(Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum Kind {
            Task,
            Agent,
        }
        #[derive(Deserialize)]
        struct Route {
            kind: Kind,
            tenant: TenantId,
            project_id: ProjectId,
        }
        let route: Route = serde_json::from_slice(json)?;
        let wanted = match route.kind {
            Kind::Task => self.lock_projects().contains_key(&(route.tenant, route.project_id)),
            Kind::Agent => self.lock_activity().contains_key(&route.tenant),
        };
        if wanted {
            self.dispatch(serde_json::from_slice(json)?);
        }
        Ok(())
    }

    /// Delivers a notification; channels whose subscribers are all gone are dropped.
    pub fn dispatch(&self, notification: Notification) {
        match notification {
            Notification::Task(update) => {
                let key = (update.tenant.clone(), update.project_id);
                let mut projects = self.lock_projects();
                if let Some(sender) = projects.get(&key)
                    && sender.send(update).is_err()
                {
                    projects.remove(&key);
                }
            }
            Notification::Agent(event) => {
                let mut activity = self.lock_activity();
                if let Some(sender) = activity.get(&event.tenant)
                    && sender.send(event.clone()).is_err()
                {
                    activity.remove(&event.tenant);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AgentType, TaskId, TaskStatus, now};

    fn update(tenant: &str, project: ProjectId) -> Notification {
        Notification::Task(TaskUpdate {
            tenant: tenant.parse().unwrap(),
            task_id: TaskId::new(),
            project_id: project,
            agent_type: AgentType::Qa,
            status: TaskStatus::Running,
            at: now(),
        })
    }

    #[test]
    fn updates_reach_only_the_subscribers_of_their_project() {
        let hub = NotificationHub::default();
        let (a, b) = (ProjectId::new(), ProjectId::new());
        let acme: TenantId = "acme".parse().unwrap();
        let mut on_a = hub.subscribe_project(&acme, a);
        let mut on_b = hub.subscribe_project(&acme, b);
        let mut other_tenant = hub.subscribe_project(&"globex".parse().unwrap(), a);
        hub.dispatch(update("acme", a));
        assert_eq!(on_a.try_recv().unwrap().project_id, a);
        assert!(on_b.try_recv().is_err());
        assert!(other_tenant.try_recv().is_err());
    }

    #[test]
    fn json_reaches_the_subscribers_it_routes_to() {
        let hub = NotificationHub::default();
        let acme: TenantId = "acme".parse().unwrap();
        let project = ProjectId::new();
        let mut updates = hub.subscribe_project(&acme, project);
        let Notification::Task(sent) = update("acme", project) else { unreachable!() };
        hub.dispatch_json(&serde_json::to_vec(&Notification::Task(sent.clone())).unwrap()).unwrap();
        assert_eq!(updates.try_recv().unwrap(), sent);
    }

    #[test]
    fn json_no_one_listens_to_is_not_parsed_whole() {
        let hub = NotificationHub::default();
        let acme: TenantId = "acme".parse().unwrap();
        // Routable, but not an agent event: only a parse of the whole would fail.
        let partial = format!(r#"{{"kind":"agent","tenant":"acme","project_id":"{}","payload":1}}"#, ProjectId::new());
        hub.dispatch_json(partial.as_bytes()).unwrap();
        let _listening = hub.subscribe_activity(&acme);
        assert!(hub.dispatch_json(partial.as_bytes()).is_err(), "a wanted notification is parsed whole");
        assert!(hub.dispatch_json(b"{}").is_err(), "one that cannot be routed is an error");
    }

    #[test]
    fn a_project_is_watched_while_a_receiver_lives_and_forgotten_only_after() {
        let hub = NotificationHub::default();
        let acme: TenantId = "acme".parse().unwrap();
        let project = ProjectId::new();
        assert!(!hub.project_watched(&acme, project));
        let first = hub.subscribe_project(&acme, project);
        let second = hub.subscribe_project(&acme, project);
        drop(first);
        hub.forget_project(&acme, project);
        assert!(hub.project_watched(&acme, project), "one stream still reads it");
        drop(second);
        assert!(!hub.project_watched(&acme, project));
        hub.forget_project(&acme, project);
        assert!(hub.projects.lock().unwrap().is_empty());
    }

    #[test]
    fn channels_without_subscribers_are_dropped() {
        let hub = NotificationHub::default();
        let project = ProjectId::new();
        drop(hub.subscribe_project(&"acme".parse().unwrap(), project));
        hub.dispatch(update("acme", project));
        assert!(hub.projects.lock().unwrap().is_empty());
    }
}
