//! In-process fan-out of notifications to the streams that asked for them.

use std::collections::HashMap;
use std::sync::Mutex;

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
    /// Task updates of one project.
    pub fn subscribe_project(&self, tenant: &TenantId, project: ProjectId) -> broadcast::Receiver<TaskUpdate> {
        let mut projects = self.projects.lock().expect("hub lock is never poisoned");
        projects
            .entry((tenant.clone(), project))
            .or_insert_with(|| broadcast::channel(SUBSCRIBER_BACKLOG).0)
            .subscribe()
    }

    /// Agent events of one tenant.
    pub fn subscribe_activity(&self, tenant: &TenantId) -> broadcast::Receiver<AgentEvent> {
        let mut activity = self.activity.lock().expect("hub lock is never poisoned");
        activity.entry(tenant.clone()).or_insert_with(|| broadcast::channel(SUBSCRIBER_BACKLOG).0).subscribe()
    }

    /// Delivers a notification; channels whose subscribers are all gone are dropped.
    pub fn dispatch(&self, notification: Notification) {
        match notification {
            Notification::Task(update) => {
                let key = (update.tenant.clone(), update.project_id);
                let mut projects = self.projects.lock().expect("hub lock is never poisoned");
                if let Some(sender) = projects.get(&key)
                    && sender.send(update).is_err()
                {
                    projects.remove(&key);
                }
            }
            Notification::Agent(event) => {
                let mut activity = self.activity.lock().expect("hub lock is never poisoned");
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
    fn channels_without_subscribers_are_dropped() {
        let hub = NotificationHub::default();
        let project = ProjectId::new();
        drop(hub.subscribe_project(&"acme".parse().unwrap(), project));
        hub.dispatch(update("acme", project));
        assert!(hub.projects.lock().unwrap().is_empty());
    }
}
