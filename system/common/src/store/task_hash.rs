//! A task as the Redis store keeps it: one hash per task, whose `doc` is the
//! task's serde encoding at submission and whose other fields are what has
//! changed since (`status`, `attempts`, `updated_at`, and once finished
//! `result`, the result's own serde encoding, and `error`).

use std::borrow::Cow;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::StoreError;
use crate::domain::{AgentType, ProjectId, Task, TaskId, TaskStatus, TenantId};

pub(super) fn corrupt(key: &str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { key: key.to_owned(), reason: reason.to_string() }
}

/// The task in the hash at `key`, or `None` when the hash holds none.
pub(super) fn task(key: &str, mut fields: HashMap<String, String>) -> Result<Option<Task>, StoreError> {
    let Some(doc) = fields.remove("doc") else { return Ok(None) };
    let mut task: Task = serde_json::from_str(&doc).map_err(|e| corrupt(key, e))?;
    if let Some(status) = fields.get("status") {
        task.status = status.parse().map_err(|e| corrupt(key, e))?;
    }
    if let Some(attempts) = fields.get("attempts") {
        task.attempts = attempts.parse().map_err(|e| corrupt(key, e))?;
    }
    if let Some(updated) = fields.get("updated_at") {
        task.updated_at = time::OffsetDateTime::parse(updated, &Rfc3339).map_err(|e| corrupt(key, e))?;
    }
    task.result = match fields.get("result").map(String::as_str) {
        None | Some("") => None,
        Some(json) => Some(serde_json::from_str(json).map_err(|e| corrupt(key, e))?),
    };
    task.error = fields.get("error").filter(|e| !e.is_empty()).cloned();
    Ok(Some(task))
}

/// The task in the hash at `key` as its serde encoding: byte for byte what
/// encoding [`task`]'s answer gives, without decoding the result. A completed
/// task's result holds kilobytes of generated code, and each poll of the task
/// decoded it into a string and escaped it again, character by character;
/// here it is only checked as JSON and copied. Every other field is decoded
/// as [`task`] decodes it, so a corrupt hash is refused alike.
pub(super) fn task_json(key: &str, fields: &HashMap<String, String>) -> Result<Option<String>, StoreError> {
    let Some(doc) = fields.get("doc") else { return Ok(None) };
    let submitted: Submitted<'_> = serde_json::from_str(doc).map_err(|e| corrupt(key, e))?;
    let status = match fields.get("status") {
        Some(status) => status.parse().map_err(|e| corrupt(key, e))?,
        None => submitted.status,
    };
    let attempts = match fields.get("attempts") {
        Some(attempts) => attempts.parse().map_err(|e| corrupt(key, e))?,
        None => submitted.attempts,
    };
    let updated_at = match fields.get("updated_at") {
        Some(updated) => time::OffsetDateTime::parse(updated, &Rfc3339).map_err(|e| corrupt(key, e))?,
        None => submitted.updated_at,
    };
    let result = match fields.get("result").map(String::as_str) {
        None | Some("") => None,
        Some(json) => Some(serde_json::from_str::<&RawValue>(json).map_err(|e| corrupt(key, e))?),
    };
    let answer = Answer {
        id: submitted.id,
        project_id: submitted.project_id,
        tenant: submitted.tenant,
        agent_type: submitted.agent_type,
        description: submitted.description,
        status,
        attempts,
        created_at: submitted.created_at,
        updated_at,
        result,
        error: fields.get("error").map(String::as_str).filter(|e| !e.is_empty()),
    };
    Ok(Some(serde_json::to_string(&answer).expect("a task's fields serialize")))
}

/// What a task's `doc` gives its answer: everything but the result and the
/// error, which only the hash's own fields hold.
#[derive(Deserialize)]
struct Submitted<'a> {
    id: TaskId,
    project_id: ProjectId,
    tenant: TenantId,
    agent_type: AgentType,
    #[serde(borrow)]
    description: Cow<'a, str>,
    status: TaskStatus,
    attempts: u32,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

/// [`Task`]'s fields in its order and encoding, with the result as stored.
#[derive(Serialize)]
struct Answer<'a> {
    id: TaskId,
    project_id: ProjectId,
    tenant: TenantId,
    agent_type: AgentType,
    description: Cow<'a, str>,
    status: TaskStatus,
    attempts: u32,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    result: Option<&'a RawValue>,
    error: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::now;

    fn stored(task: &Task) -> HashMap<String, String> {
        HashMap::from([("doc".to_owned(), serde_json::to_string(task).unwrap())])
    }

    #[test]
    fn a_corrupt_field_is_refused_by_both_readings_naming_the_key() {
        let task = Task {
            id: TaskId::new(),
            project_id: ProjectId::new(),
            tenant: "acme".parse().unwrap(),
            agent_type: AgentType::Coder,
            description: "d".into(),
            status: TaskStatus::Queued,
            attempts: 0,
            created_at: now(),
            updated_at: now(),
            result: None,
            error: None,
        };
        let cases = [("status", "lost"), ("attempts", "-1"), ("updated_at", "yesterday"), ("result", r#"{"code":"#)];
        for (field, value) in cases {
            let mut fields = stored(&task);
            fields.insert(field.to_owned(), value.to_owned());
            let json = task_json("q2o:task:1", &fields).unwrap_err();
            assert!(matches!(&json, StoreError::Corrupt { key, .. } if key == "q2o:task:1"), "{field}: {json:?}");
            assert!(matches!(super::task("q2o:task:1", fields), Err(StoreError::Corrupt { .. })), "{field}");
        }
        let mut doc = stored(&task);
        doc.insert("doc".to_owned(), r#"{"id":"not a uuid"}"#.to_owned());
        assert!(matches!(task_json("k", &doc), Err(StoreError::Corrupt { .. })));
        assert_eq!(task_json("k", &HashMap::new()).unwrap(), None, "no document, no task");
        assert_eq!(task_json("k", &stored(&task)).unwrap(), Some(serde_json::to_string(&task).unwrap()));
    }
}
