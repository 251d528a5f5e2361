//! The `search_indexer` consumer group: completion events become documents.

use std::sync::Arc;

use async_trait::async_trait;
use q2o_common::domain::{AgentEvent, AgentEventType};
use q2o_common::kafka::{EventHandler, HandleError, Position};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::index::{DocKind, IndexDoc, SearchIndex};

/// The Kafka group name.
pub const GROUP: &str = "search_indexer";

#[derive(Debug, Deserialize)]
struct Completed {
    task: TaskPart,
    result: ResultPart,
    project: Option<ProjectPart>,
}

#[derive(Debug, Deserialize)]
struct TaskPart {
    description: String,
}

#[derive(Debug, Deserialize)]
struct ResultPart {
    summary: String,
    language: String,
    code: String,
}

#[derive(Debug, Deserialize)]
struct ProjectPart {
    name: String,
    description: String,
    objective: String,
    tags: Vec<String>,
    status: String,
    created_at: i64,
}

/// Feeds the index from the activity log.
#[derive(Debug)]
pub struct Indexer {
    pub(crate) index: Arc<SearchIndex>,
}

impl Indexer {
    /// The documents an event yields: the project and the artefact of a completed task.
    pub fn documents(event: &AgentEvent) -> Vec<IndexDoc> {
        if event.event_type != AgentEventType::TaskCompleted {
            return Vec::new();
        }
        let Ok(done) = serde_json::from_value::<Completed>(event.payload.clone()) else {
            tracing::warn!(event = %event.event_id, "completion event without an indexable payload");
            return Vec::new();
        };
        let project = done.project.unwrap_or(ProjectPart {
            name: String::new(),
            description: String::new(),
            objective: String::new(),
            tags: Vec::new(),
            status: "active".into(),
            created_at: event.at.unix_timestamp(),
        });
        let created = OffsetDateTime::from_unix_timestamp(project.created_at).unwrap_or(event.at);
        let common = IndexDoc {
            kind: DocKind::Project,
            id: event.project_id.to_string(),
            tenant: event.tenant.to_string(),
            project_id: event.project_id.to_string(),
            name: project.name,
            objective: project.objective,
            description: project.description,
            tags: project.tags,
            code: String::new(),
            language: String::new(),
            agent_type: String::new(),
            status: project.status,
            created,
        };
        let code = IndexDoc {
            kind: DocKind::Code,
            id: event.task_id.to_string(),
            description: format!("{}\n{}", done.task.description, done.result.summary),
            objective: String::new(),
            code: done.result.code,
            language: done.result.language,
            agent_type: event.agent_type.as_str().to_owned(),
            status: "completed".into(),
            created: event.at,
            ..common.clone()
        };
        vec![common, code]
    }
}

#[async_trait]
impl EventHandler for Indexer {
    async fn handle(&self, event: &AgentEvent, at: Position) -> Result<(), HandleError> {
        let docs = Indexer::documents(event);
        if docs.is_empty() {
            self.index.advance(at.partition, at.offset);
        }
        for doc in &docs {
            self.index
                .upsert(doc, Some((at.partition, at.offset, event.at)))
                .map_err(|e| HandleError(e.to_string()))?;
        }
        Ok(())
    }
}
