//! The records that cross service boundaries, in their JSON (REST) shape.
//!
//! The protobuf view of the same records is in `q2o_proto::v1`; [`convert`] maps
//! between the two so that REST and gRPC always agree on content.

pub mod convert;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// The current time, truncated to milliseconds so that it survives a round trip
/// through RFC 3339 text unchanged.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000).expect("a truncated nanosecond is in range")
}

/// `at` as RFC 3339 text, as records and messages carry times.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339).expect("UTC timestamps always format")
}

/// A tenant: the unit of isolation. Every record belongs to exactly one.
///
/// Tenant ids appear in storage keys, so they are restricted to `[a-z0-9_-]{1,64}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String)]
pub struct TenantId(String);

impl TenantId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let valid = !value.is_empty()
            && value.len() <= 64
            && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if valid {
            Ok(TenantId(value))
        } else {
            Err(format!("tenant id `{value}` must be 1-64 characters of a-z, 0-9, `-` or `_`"))
        }
    }
}

impl FromStr for TenantId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TenantId::try_from(s.to_owned())
    }
}

impl From<TenantId> for String {
    fn from(id: TenantId) -> String {
        id.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random id.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// Identifies a project within its tenant.
    ProjectId
);
uuid_id!(
    /// Identifies a task within its tenant.
    TaskId
);

/// The roadmap's twelve agent types. Each has its own queue and workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentType {
    /// Writes code from templates and asks QA for a review.
    Coder,
    /// Researches a topic; results are cached.
    Researcher,
    /// Reviews code.
    Qa,
    /// Writes tests.
    Testing,
    /// Builds user interfaces.
    Frontend,
    /// Builds services and APIs.
    Backend,
    /// Connects third-party systems.
    Integration,
    /// Provisions infrastructure.
    Infrastructure,
    /// Audits security.
    Security,
    /// Writes documentation.
    Documentation,
    /// Builds data pipelines.
    Data,
    /// Automates deployment.
    Devops,
}

impl AgentType {
    /// All twelve, in a fixed order.
    pub const ALL: [AgentType; 12] = [
        AgentType::Coder,
        AgentType::Researcher,
        AgentType::Qa,
        AgentType::Testing,
        AgentType::Frontend,
        AgentType::Backend,
        AgentType::Integration,
        AgentType::Infrastructure,
        AgentType::Security,
        AgentType::Documentation,
        AgentType::Data,
        AgentType::Devops,
    ];

    /// The snake_case name used in JSON, queues and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentType::Coder => "coder",
            AgentType::Researcher => "researcher",
            AgentType::Qa => "qa",
            AgentType::Testing => "testing",
            AgentType::Frontend => "frontend",
            AgentType::Backend => "backend",
            AgentType::Integration => "integration",
            AgentType::Infrastructure => "infrastructure",
            AgentType::Security => "security",
            AgentType::Documentation => "documentation",
            AgentType::Data => "data",
            AgentType::Devops => "devops",
        }
    }
}

impl FromStr for AgentType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AgentType::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| {
            let known: Vec<_> = AgentType::ALL.iter().map(|t| t.as_str()).collect();
            format!("unknown agent type `{s}` (expected one of: {})", known.join(", "))
        })
    }
}

impl fmt::Display for AgentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a project stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProjectStatus {
    /// Accepting tasks.
    #[default]
    Active,
    /// Kept, but not being worked on.
    Paused,
    /// Finished.
    Archived,
}

/// A tenant's project: the unit tasks are submitted to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Project {
    /// Its id.
    pub id: ProjectId,
    /// The owning tenant.
    pub tenant: TenantId,
    /// Short name, 1-200 characters.
    pub name: String,
    /// Free text.
    pub description: String,
    /// What the project should achieve.
    pub objective: String,
    /// Labels for search and facets.
    pub tags: Vec<String>,
    /// Where it stands.
    pub status: ProjectStatus,
    /// When it was created (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When it last changed (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// The life cycle of a task: `queued -> running -> completed | failed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Waiting in its agent type's queue.
    Queued,
    /// Claimed by a worker.
    Running,
    /// Finished with a result.
    Completed,
    /// Finished without one.
    Failed,
}

impl TaskStatus {
    /// The snake_case name used in JSON, storage and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Running => "running",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
        }
    }

    /// Whether the task has finished.
    pub fn is_terminal(self) -> bool {
        matches!(self, TaskStatus::Completed | TaskStatus::Failed)
    }
}

impl FromStr for TaskStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "queued" => Ok(TaskStatus::Queued),
            "running" => Ok(TaskStatus::Running),
            "completed" => Ok(TaskStatus::Completed),
            "failed" => Ok(TaskStatus::Failed),
            other => Err(format!("unknown task status `{other}`")),
        }
    }
}

/// A QA agent's verdict on generated code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Review {
    /// Whether the code passed.
    pub approved: bool,
    /// 0.0 (worst) to 1.0 (best).
    pub score: f64,
    /// Findings.
    pub comments: Vec<String>,
    /// `rest` or `grpc`: which transport carried the review call.
    pub protocol: String,
}

/// What an agent produced for a task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskResult {
    /// One-line description of the result.
    pub summary: String,
    /// Language of `code` (empty when there is none).
    pub language: String,
    /// Generated artefact (code, tests, docs ...).
    pub code: String,
    /// Simulated LLM prompt tokens.
    pub prompt_tokens: u64,
    /// Simulated LLM completion tokens.
    pub completion_tokens: u64,
    /// Simulated LLM cost.
    pub cost_dollars: f64,
    /// Whether the result came from the research cache.
    pub cache_hit: bool,
    /// The QA review, for coder tasks.
    pub review: Option<Review>,
}

/// A unit of work for one agent type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Task {
    /// Its id.
    pub id: TaskId,
    /// The project it belongs to.
    pub project_id: ProjectId,
    /// The owning tenant.
    pub tenant: TenantId,
    /// Which agent type runs it.
    pub agent_type: AgentType,
    /// What to do.
    pub description: String,
    /// Where it stands.
    pub status: TaskStatus,
    /// How many times a worker started it (more than one after a worker crash).
    pub attempts: u32,
    /// When it was submitted (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When it last changed (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// The result, once completed.
    pub result: Option<TaskResult>,
    /// Why it failed, once failed.
    pub error: Option<String>,
}

impl Task {
    /// A new task of `project`, queued now and not yet started.
    pub fn queued(tenant: TenantId, project_id: ProjectId, agent_type: AgentType, description: String) -> Task {
        let at = now();
        Task {
            id: TaskId::new(),
            project_id,
            tenant,
            agent_type,
            description,
            status: TaskStatus::Queued,
            attempts: 0,
            created_at: at,
            updated_at: at,
            result: None,
            error: None,
        }
    }
}

/// How a task ended, as a worker reports it.
#[derive(Clone, Debug, PartialEq)]
pub enum TaskOutcome {
    /// Finished with a result.
    Completed(TaskResult),
    /// Finished without one.
    Failed(String),
}

impl TaskOutcome {
    /// The status a task ends in.
    pub fn status(&self) -> TaskStatus {
        match self {
            TaskOutcome::Completed(_) => TaskStatus::Completed,
            TaskOutcome::Failed(_) => TaskStatus::Failed,
        }
    }

    /// Records the outcome in `task`, as of `at`: what every store keeps of it.
    pub fn apply(self, task: &mut Task, at: OffsetDateTime) {
        task.status = self.status();
        task.updated_at = at;
        match self {
            TaskOutcome::Completed(result) => task.result = Some(result),
            TaskOutcome::Failed(reason) => task.error = Some(reason),
        }
    }
}

/// Counts of a project's tasks by status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProjectStatusSummary {
    /// The project.
    pub project_id: ProjectId,
    /// All tasks ever submitted to it.
    pub total: u64,
    /// Waiting.
    pub queued: u64,
    /// Being worked on.
    pub running: u64,
    /// Finished with a result.
    pub completed: u64,
    /// Finished without one.
    pub failed: u64,
}

/// One change of a task's status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskUpdate {
    /// The owning tenant.
    pub tenant: TenantId,
    /// The task.
    pub task_id: TaskId,
    /// Its project.
    pub project_id: ProjectId,
    /// Its agent type.
    pub agent_type: AgentType,
    /// The new status.
    pub status: TaskStatus,
    /// When it changed.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl TaskUpdate {
    /// The update that describes `task` as it is now.
    pub fn of(task: &Task) -> Self {
        TaskUpdate {
            tenant: task.tenant.clone(),
            task_id: task.id,
            project_id: task.project_id,
            agent_type: task.agent_type,
            status: task.status,
            at: task.updated_at,
        }
    }
}

/// What happened in an [`AgentEvent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentEventType {
    /// A worker claimed the task.
    TaskStarted,
    /// The task finished with a result.
    TaskCompleted,
    /// The task finished without one.
    TaskFailed,
}

impl AgentEventType {
    /// The snake_case name used in JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentEventType::TaskStarted => "task_started",
            AgentEventType::TaskCompleted => "task_completed",
            AgentEventType::TaskFailed => "task_failed",
        }
    }
}

/// One entry of the agent activity log (Kafka topic `agent_activity`).
///
/// `P` is what of the payload was read: all of it (the default), or, for a
/// consumer that needs less, a part (see `kafka::PayloadScalars`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentEvent<P = serde_json::Value> {
    /// Unique per event; the audit counts these.
    pub event_id: Uuid,
    /// The worker that emitted it (`<agent_type>-<process>-<n>`).
    pub agent_id: String,
    /// Its agent type.
    pub agent_type: AgentType,
    /// What happened.
    pub event_type: AgentEventType,
    /// The task concerned.
    pub task_id: TaskId,
    /// Its project.
    pub project_id: ProjectId,
    /// The owning tenant.
    pub tenant: TenantId,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Event-specific details (durations, token counts ...).
    pub payload: P,
}

impl AgentEvent {
    /// The event that announces `task`'s start, as the store left it: the
    /// attempt's number in the payload, the start's time as the event's.
    pub fn task_started(task: &Task, agent_id: String, event_id: Uuid) -> AgentEvent {
        AgentEvent {
            event_id,
            agent_id,
            agent_type: task.agent_type,
            event_type: AgentEventType::TaskStarted,
            task_id: task.id,
            project_id: task.project_id,
            tenant: task.tenant.clone(),
            at: task.updated_at,
            payload: serde_json::json!({ "attempt": task.attempts }),
        }
    }
}

impl<P> AgentEvent<P> {
    /// The same event, its payload turned into another.
    pub fn map_payload<Q>(self, f: impl FnOnce(P) -> Q) -> AgentEvent<Q> {
        AgentEvent {
            event_id: self.event_id,
            agent_id: self.agent_id,
            agent_type: self.agent_type,
            event_type: self.event_type,
            task_id: self.task_id,
            project_id: self.project_id,
            tenant: self.tenant,
            at: self.at,
            payload: f(self.payload),
        }
    }
}

/// What the update feed carries: task changes and agent events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notification {
    /// A task changed status.
    Task(TaskUpdate),
    /// An agent did something.
    Agent(AgentEvent),
}

impl Notification {
    /// The tenant the notification belongs to.
    pub fn tenant(&self) -> &TenantId {
        match self {
            Notification::Task(update) => &update.tenant,
            Notification::Agent(event) => &event.tenant,
        }
    }
}

/// A notification for a store to publish, with its JSON when the sender has
/// it already; a store that needs JSON and finds none encodes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Published {
    /// What is announced.
    pub notification: Notification,
    json: Option<Vec<u8>>,
}

impl Published {
    /// A notification not encoded yet.
    pub fn new(notification: Notification) -> Self {
        Published { notification, json: None }
    }

    /// An agent event's notification from the JSON of the event itself, as
    /// it went to the activity log: the payload (a completed task's code
    /// among it) is not encoded a second time. serde writes an internally
    /// tagged variant as its tag, then the struct's fields: `event_json` with
    /// the tag put in front is those bytes.
    pub fn agent_event(event: AgentEvent, event_json: &[u8]) -> Self {
        const TAG: &[u8] = br#"{"kind":"agent""#;
        let Some(fields) = event_json.strip_prefix(b"{").filter(|fields| fields.first() == Some(&b'"')) else {
            return Published::new(Notification::Agent(event));
        };
        let mut json = Vec::with_capacity(TAG.len() + 1 + fields.len());
        json.extend_from_slice(TAG);
        json.push(b',');
        json.extend_from_slice(fields);
        Published { notification: Notification::Agent(event), json: Some(json) }
    }

    /// The notification as JSON, as `serde_json` writes it.
    pub fn json(&self) -> std::borrow::Cow<'_, [u8]> {
        match &self.json {
            Some(json) => json.as_slice().into(),
            None => serde_json::to_vec(&self.notification).expect("notifications serialize").into(),
        }
    }
}

/// Limit and offset of a listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// At most this many items (1..=100).
    pub limit: u32,
    /// Skip this many first.
    pub offset: u32,
}

impl Page {
    /// The largest page a client may ask for.
    pub const MAX_LIMIT: u32 = 100;
    /// The page size when a client names none.
    pub const DEFAULT_LIMIT: u32 = 20;

    /// Validates a client's page request; a zero limit means the default.
    pub fn new(limit: u32, offset: u32) -> Result<Page, String> {
        match limit {
            0 => Ok(Page { limit: Self::DEFAULT_LIMIT, offset }),
            1..=Self::MAX_LIMIT => Ok(Page { limit, offset }),
            _ => Err(format!("limit must be between 1 and {}, got {limit}", Self::MAX_LIMIT)),
        }
    }
}

impl Default for Page {
    fn default() -> Self {
        Page { limit: Self::DEFAULT_LIMIT, offset: 0 }
    }
}

/// A coder's completion event of tenant `acme` with this payload, for tests.
#[cfg(test)]
pub(crate) fn completed_event(payload: serde_json::Value) -> AgentEvent {
    AgentEvent {
        event_id: Uuid::new_v4(),
        agent_id: "coder-agents-0-1".into(),
        agent_type: AgentType::Coder,
        event_type: AgentEventType::TaskCompleted,
        task_id: TaskId::new(),
        project_id: ProjectId::new(),
        tenant: "acme".parse().expect("a valid tenant"),
        at: now(),
        payload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_restricted_to_key_safe_characters() {
        assert!(TenantId::from_str("acme-01").is_ok());
        assert!(TenantId::from_str("").is_err());
        assert!(TenantId::from_str("Acme").is_err());
        assert!(TenantId::from_str("a:b").is_err());
        assert!(TenantId::from_str(&"a".repeat(65)).is_err());
    }

    #[test]
    fn agent_types_round_trip_and_bad_names_list_the_choices() {
        for agent in AgentType::ALL {
            assert_eq!(agent.as_str().parse::<AgentType>(), Ok(agent));
            let json = serde_json::to_string(&agent).unwrap();
            assert_eq!(json, format!("\"{}\"", agent.as_str()));
        }
        let err = "poet".parse::<AgentType>().unwrap_err();
        assert!(err.contains("poet") && err.contains("coder"), "{err}");
    }

    #[test]
    fn an_agent_events_notification_from_its_json_is_what_serde_writes() {
        let event = completed_event(serde_json::json!({ "result": { "code": "fn main() {\n}\n" }, "duration_ms": 3 }));
        let event_json = serde_json::to_vec(&event).unwrap();
        let spliced = Published::agent_event(event.clone(), &event_json);
        let fresh = Published::new(Notification::Agent(event.clone()));
        assert_eq!(spliced.json(), fresh.json());
        assert_eq!(spliced.notification, fresh.notification);
        let read: Notification = serde_json::from_slice(&spliced.json()).unwrap();
        assert_eq!(read, Notification::Agent(event.clone()));
        // Bytes that are not an encoded struct are not trusted: the event is encoded again.
        assert_eq!(Published::agent_event(event.clone(), b"{}"), fresh);
    }

    #[test]
    fn page_limits_are_bounded() {
        assert_eq!(Page::new(0, 5).unwrap(), Page { limit: 20, offset: 5 });
        assert!(Page::new(101, 0).is_err());
    }
}
