//! Domain records to protobuf messages (and back where a service receives them).

use q2o_proto::v1 as pb;

use super::{
    AgentEvent, Project, ProjectStatus, ProjectStatusSummary, Review, Task, TaskResult, TaskStatus, TaskUpdate, rfc3339,
};

impl From<ProjectStatus> for pb::ProjectStatus {
    fn from(status: ProjectStatus) -> Self {
        match status {
            ProjectStatus::Active => pb::ProjectStatus::Active,
            ProjectStatus::Paused => pb::ProjectStatus::Paused,
            ProjectStatus::Archived => pb::ProjectStatus::Archived,
        }
    }
}

impl TryFrom<pb::ProjectStatus> for ProjectStatus {
    type Error = String;

    fn try_from(status: pb::ProjectStatus) -> Result<Self, Self::Error> {
        match status {
            pb::ProjectStatus::Active => Ok(ProjectStatus::Active),
            pb::ProjectStatus::Paused => Ok(ProjectStatus::Paused),
            pb::ProjectStatus::Archived => Ok(ProjectStatus::Archived),
            pb::ProjectStatus::Unspecified => Err("status is unspecified".into()),
        }
    }
}

impl From<TaskStatus> for pb::TaskStatus {
    fn from(status: TaskStatus) -> Self {
        match status {
            TaskStatus::Queued => pb::TaskStatus::Queued,
            TaskStatus::Running => pb::TaskStatus::Running,
            TaskStatus::Completed => pb::TaskStatus::Completed,
            TaskStatus::Failed => pb::TaskStatus::Failed,
        }
    }
}

impl From<Project> for pb::Project {
    fn from(p: Project) -> Self {
        pb::Project {
            id: p.id.to_string(),
            tenant: p.tenant.into(),
            name: p.name,
            description: p.description,
            objective: p.objective,
            tags: p.tags,
            status: pb::ProjectStatus::from(p.status).into(),
            created_at: rfc3339(p.created_at),
            updated_at: rfc3339(p.updated_at),
        }
    }
}

impl From<Review> for pb::Review {
    fn from(r: Review) -> Self {
        pb::Review { approved: r.approved, score: r.score, comments: r.comments, protocol: r.protocol }
    }
}

impl From<pb::Review> for Review {
    fn from(r: pb::Review) -> Self {
        Review { approved: r.approved, score: r.score, comments: r.comments, protocol: r.protocol }
    }
}

impl From<TaskResult> for pb::TaskResult {
    fn from(r: TaskResult) -> Self {
        pb::TaskResult {
            summary: r.summary,
            language: r.language,
            code: r.code,
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            cost_dollars: r.cost_dollars,
            cache_hit: r.cache_hit,
            review: r.review.map(Into::into),
        }
    }
}

impl From<Task> for pb::Task {
    fn from(t: Task) -> Self {
        pb::Task {
            id: t.id.to_string(),
            project_id: t.project_id.to_string(),
            tenant: t.tenant.into(),
            agent_type: t.agent_type.as_str().to_owned(),
            description: t.description,
            status: pb::TaskStatus::from(t.status).into(),
            attempts: t.attempts,
            created_at: rfc3339(t.created_at),
            updated_at: rfc3339(t.updated_at),
            result: t.result.map(Into::into),
            error: t.error.unwrap_or_default(),
        }
    }
}

impl From<TaskUpdate> for pb::TaskUpdate {
    fn from(u: TaskUpdate) -> Self {
        pb::TaskUpdate {
            task_id: u.task_id.to_string(),
            project_id: u.project_id.to_string(),
            agent_type: u.agent_type.as_str().to_owned(),
            status: pb::TaskStatus::from(u.status).into(),
            at: rfc3339(u.at),
        }
    }
}

impl From<ProjectStatusSummary> for pb::ProjectStatusSummary {
    fn from(s: ProjectStatusSummary) -> Self {
        pb::ProjectStatusSummary {
            project_id: s.project_id.to_string(),
            total: s.total,
            queued: s.queued,
            running: s.running,
            completed: s.completed,
            failed: s.failed,
        }
    }
}

impl From<AgentEvent> for pb::AgentEvent {
    fn from(e: AgentEvent) -> Self {
        pb::AgentEvent {
            event_id: e.event_id.to_string(),
            agent_id: e.agent_id,
            agent_type: e.agent_type.as_str().to_owned(),
            event_type: e.event_type.as_str().to_owned(),
            task_id: e.task_id.to_string(),
            project_id: e.project_id.to_string(),
            tenant: e.tenant.into(),
            at: rfc3339(e.at),
            payload_json: e.payload.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AgentType, ProjectId, TaskId, TenantId, now};

    #[test]
    fn rest_and_grpc_views_of_a_task_carry_the_same_text() {
        let at = now();
        let task = Task {
            id: TaskId::new(),
            project_id: ProjectId::new(),
            tenant: "acme".parse::<TenantId>().unwrap(),
            agent_type: AgentType::Coder,
            description: "write a parser".into(),
            status: TaskStatus::Running,
            attempts: 2,
            created_at: at,
            updated_at: at,
            result: None,
            error: None,
        };
        let json = serde_json::to_value(&task).unwrap();
        let proto = pb::Task::from(task.clone());
        assert_eq!(json["id"], proto.id);
        assert_eq!(json["created_at"], proto.created_at);
        assert_eq!(json["agent_type"], proto.agent_type);
        assert_eq!(proto.status(), pb::TaskStatus::Running);
    }
}
