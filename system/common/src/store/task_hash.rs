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

/// The task in the hash at `key`, or `None` when the hash holds none.
pub(super) fn task(key: &str, fields: &HashMap<String, String>) -> Result<Option<Task>, StoreError> {
    let Some(doc) = fields.get("doc") else { return Ok(None) };
    let mut task: Task = serde_json::from_str(doc).map_err(|e| StoreError::corrupt(key, e))?;
    changes(key, fields, &mut task.status, &mut task.attempts, &mut task.updated_at)?;
    task.result = result(key, fields)?;
    task.error = error(fields).map(str::to_owned);
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
    let mut task: Encoded<'_> = serde_json::from_str(doc).map_err(|e| StoreError::corrupt(key, e))?;
    changes(key, fields, &mut task.status, &mut task.attempts, &mut task.updated_at)?;
    task.result = result(key, fields)?;
    task.error = error(fields).map(Cow::Borrowed);
    Ok(Some(serde_json::to_string(&task).expect("a task's fields serialize")))
}

/// What has changed since submission, over the document's own values.
fn changes(
    key: &str,
    fields: &HashMap<String, String>,
    status: &mut TaskStatus,
    attempts: &mut u32,
    updated_at: &mut OffsetDateTime,
) -> Result<(), StoreError> {
    if let Some(value) = fields.get("status") {
        *status = value.parse().map_err(|e| StoreError::corrupt(key, e))?;
    }
    if let Some(value) = fields.get("attempts") {
        *attempts = value.parse().map_err(|e| StoreError::corrupt(key, e))?;
    }
    if let Some(value) = fields.get("updated_at") {
        *updated_at = OffsetDateTime::parse(value, &Rfc3339).map_err(|e| StoreError::corrupt(key, e))?;
    }
    Ok(())
}

/// The finished task's result (the document's is never read: only the hash has it).
fn result<'a, R: Deserialize<'a>>(key: &str, fields: &'a HashMap<String, String>) -> Result<Option<R>, StoreError> {
    match fields.get("result").map(String::as_str) {
        None | Some("") => Ok(None),
        Some(json) => serde_json::from_str(json).map(Some).map_err(|e| StoreError::corrupt(key, e)),
    }
}

/// Why the task failed, if it did (likewise only in the hash).
fn error(fields: &HashMap<String, String>) -> Option<&str> {
    fields.get("error").map(String::as_str).filter(|e| !e.is_empty())
}

/// [`Task`]'s fields in its order and encoding, but with the result kept as
/// the JSON it was read as, and text borrowed where it needs no unescaping.
#[derive(Deserialize, Serialize)]
struct Encoded<'a> {
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
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<Cow<'a, str>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(task: &Task) -> HashMap<String, String> {
        HashMap::from([("doc".to_owned(), serde_json::to_string(task).unwrap())])
    }

    #[test]
    fn a_corrupt_field_is_refused_by_both_readings_naming_the_key() {
        let task = Task::queued("acme".parse().unwrap(), ProjectId::new(), AgentType::Coder, "d".into());
        let cases = [("status", "lost"), ("attempts", "-1"), ("updated_at", "yesterday"), ("result", r#"{"code":"#)];
        for (field, value) in cases {
            let mut fields = stored(&task);
            fields.insert(field.to_owned(), value.to_owned());
            let json = task_json("q2o:task:1", &fields).unwrap_err();
            assert!(matches!(&json, StoreError::Corrupt { key, .. } if key == "q2o:task:1"), "{field}: {json:?}");
            assert!(matches!(super::task("q2o:task:1", &fields), Err(StoreError::Corrupt { .. })), "{field}");
        }
        let mut doc = stored(&task);
        doc.insert("doc".to_owned(), r#"{"id":"not a uuid"}"#.to_owned());
        assert!(matches!(task_json("k", &doc), Err(StoreError::Corrupt { .. })));
        assert_eq!(task_json("k", &HashMap::new()).unwrap(), None, "no document, no task");
        assert_eq!(task_json("k", &stored(&task)).unwrap(), Some(serde_json::to_string(&task).unwrap()));
    }
}
