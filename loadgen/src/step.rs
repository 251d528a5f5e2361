//! What a request does, as a type: the [`Step`] (an operation of the Q2O API,
//! the wait for a task, or a plain `GET`), the [`Call`] of a step over one
//! protocol (`rest:list_projects`), and an open-model [`Mix`] of calls.
//!
//! These are the loadgen's contract with the runner: their labels are what
//! `results.json` and the `q2o_loadgen_*` series carry, and the runner asks
//! the type (`is_api`) instead of matching label strings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::weights::Weights;

/// Which API a request used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// JSON over HTTP/1.1.
    Rest,
    /// Protobuf over HTTP/2.
    Grpc,
}

impl std::str::FromStr for Protocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Protocol, String> {
        match s {
            "rest" => Ok(Protocol::Rest),
            "grpc" => Ok(Protocol::Grpc),
            other => Err(format!("unknown protocol `{other}` (rest or grpc)")),
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Protocol {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Rest => "rest",
            Protocol::Grpc => "grpc",
        }
    }
}

/// One kind of request a user or the open model makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Log in with the API key (closed model, at a user's start).
    Login,
    /// Create a project.
    CreateProject,
    /// List the tenant's projects.
    ListProjects,
    /// Read one project.
    GetProject,
    /// Read a project's task counts.
    ProjectStatus,
    /// Submit a task to an agent type.
    SubmitTask,
    /// Read a submitted task's state (REST users poll).
    PollTask,
    /// From submitting a task until the user sees it finished: not an API
    /// call but the task's end-to-end time (polls or a stream).
    AwaitTask,
    /// Full-text search (REST only: the gateway has no gRPC search route).
    Search,
    /// The coder -> QA review, sent straight to an agents process.
    Review,
    /// A plain `GET` of one URL (`q2o-loadgen run --url`).
    Get,
}

impl Step {
    /// Every step.
    pub const ALL: [Step; 11] = [
        Step::Login,
        Step::CreateProject,
        Step::ListProjects,
        Step::GetProject,
        Step::ProjectStatus,
        Step::SubmitTask,
        Step::PollTask,
        Step::AwaitTask,
        Step::Search,
        Step::Review,
        Step::Get,
    ];

    /// The Q2O operations an open-model mix can offer: the gateway's, and `review`.
    pub const OPEN: [Step; 6] =
        [Step::ListProjects, Step::GetProject, Step::ProjectStatus, Step::SubmitTask, Step::Search, Step::Review];

    /// The label in results, metrics and mixes.
    pub fn as_label(self) -> &'static str {
        match self {
            Step::Login => "login",
            Step::CreateProject => "create_project",
            Step::ListProjects => "list_projects",
            Step::GetProject => "get_project",
            Step::ProjectStatus => "project_status",
            Step::SubmitTask => "submit_task",
            Step::PollTask => "poll_task",
            Step::AwaitTask => "await_task",
            Step::Search => "search",
            Step::Review => "review",
            Step::Get => "get",
        }
    }

    /// Whether the step is one API call (everything but the wait for a task):
    /// what API latency and error SLIs are made of.
    pub fn is_api(self) -> bool {
        self != Step::AwaitTask
    }

    /// Whether an open-model mix can offer it.
    pub fn is_open(self) -> bool {
        Step::OPEN.contains(&self)
    }

    /// Whether the step exists over gRPC (search has no gRPC route on the gateway).
    pub fn has_grpc(self) -> bool {
        !matches!(self, Step::Search | Step::PollTask | Step::Get)
    }
}

// Ordered by label, as the string keys they replace were: results keep their order.
impl Ord for Step {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_label().cmp(other.as_label())
    }
}

impl PartialOrd for Step {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_label())
    }
}

impl FromStr for Step {
    type Err = String;

    fn from_str(s: &str) -> Result<Step, String> {
        Step::ALL.into_iter().find(|step| step.as_label() == s).ok_or_else(|| {
            let names: Vec<_> = Step::ALL.iter().map(|s| s.as_label()).collect();
            format!("unknown step `{s}` (one of {})", names.join(", "))
        })
    }
}

/// A step over one protocol: `rest:list_projects`, `grpc:review`, or `get`
/// (the plain-URL target).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Call {
    /// Which API.
    pub protocol: Protocol,
    /// Which operation.
    pub step: Step,
}

impl Call {
    /// `step` over `protocol`.
    pub fn new(protocol: Protocol, step: Step) -> Call {
        Call { protocol, step }
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.step == Step::Get {
            return f.write_str("get");
        }
        write!(f, "{}:{}", self.protocol.as_str(), self.step)
    }
}

impl FromStr for Call {
    type Err = String;

    fn from_str(s: &str) -> Result<Call, String> {
        if s == "get" {
            return Ok(Call::new(Protocol::Rest, Step::Get));
        }
        let (protocol, name) =
            s.split_once(':').ok_or_else(|| format!("`{s}` is not PROTOCOL:STEP (e.g. rest:list_projects)"))?;
        let protocol: Protocol = protocol.parse().map_err(|e| format!("{e} in `{s}`"))?;
        let open: Vec<_> = Step::OPEN.iter().map(|s| s.as_label()).collect();
        let step = name
            .parse::<Step>()
            .ok()
            .filter(|step| step.is_open())
            .ok_or_else(|| format!("unknown step `{name}` in `{s}` (one of {})", open.join(", ")))?;
        if protocol == Protocol::Grpc && !step.has_grpc() {
            return Err(format!("{step} has no gRPC route on the gateway; use rest:{step}"));
        }
        Ok(Call { protocol, step })
    }
}

/// An open-model mix: calls and their weights (`rest:list_projects=8,grpc:submit_task=2`).
pub type Mix = Weights<Call>;

impl Mix {
    /// Whether the mix calls a step `step` selects over `protocol`.
    pub fn has(&self, protocol: Protocol, step: impl Fn(Step) -> bool) -> bool {
        self.0.iter().any(|(call, _)| call.protocol == protocol && step(call.step))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_parse_with_weights_and_reject_nonsense() {
        let mix: Mix = "rest:list_projects=8, grpc:submit_task=2,rest:search".parse().unwrap();
        assert_eq!(mix.0.len(), 3);
        assert_eq!((mix.0[0].0.protocol, mix.0[0].1), (Protocol::Rest, 8));
        assert_eq!((mix.0[1].0.step, mix.0[1].1), (Step::SubmitTask, 2));
        assert_eq!(mix.0[2].1, 1);
        assert_eq!(mix.to_string(), "rest:list_projects=8,grpc:submit_task=2,rest:search=1");
        assert_eq!(mix.to_string().parse::<Mix>().unwrap(), mix, "a mix prints as it parses");
        assert!("rest:dance".parse::<Mix>().unwrap_err().contains("unknown step `dance`"));
        assert!("rest:await_task".parse::<Mix>().unwrap_err().contains("unknown step"), "not an open step");
        assert!("soap:list_projects".parse::<Mix>().unwrap_err().contains("unknown protocol"));
        assert!("rest:list_projects=x".parse::<Mix>().unwrap_err().contains("whole number"));
        assert!("rest:list_projects=0".parse::<Mix>().unwrap_err().contains("positive weight"));
        assert!("grpc:search".parse::<Mix>().is_err());
    }

    #[test]
    fn labels_round_trip_and_order_as_their_strings() {
        for step in Step::ALL {
            assert_eq!(step.as_label().parse::<Step>().unwrap(), step);
            let json = serde_json::to_string(&step).unwrap();
            assert_eq!(json, format!("\"{}\"", step.as_label()), "serialized as its label");
        }
        let mut steps = Step::ALL.to_vec();
        steps.sort();
        let labels: Vec<_> = steps.iter().map(|s| s.as_label()).collect();
        let mut sorted = labels.clone();
        sorted.sort_unstable();
        assert_eq!(labels, sorted);
        assert!(!Step::AwaitTask.is_api() && Step::PollTask.is_api());
    }
}
