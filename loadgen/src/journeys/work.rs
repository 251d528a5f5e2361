//! What users ask for: the agent types their tasks go to and the words they
//! search for, drawn per request so that caches and indexes see a spread.

use rand::RngExt;

/// Task kinds users submit: coder tasks also exercise the coder -> QA review call
/// between agents (the REST-versus-gRPC experiment).
const AGENT_TYPES: &[&str] = &["coder", "coder", "researcher", "documentation"];

/// Search terms: words the agents' event payloads and task descriptions contain.
const TERMS: &[&str] = &["coder", "review", "research", "documentation", "task", "completed", "api", "cache"];

/// An agent type and a description for one task.
pub(crate) fn task() -> (&'static str, String) {
    let mut rng = rand::rng();
    let agent_type = AGENT_TYPES[rng.random_range(0..AGENT_TYPES.len())];
    let n: u32 = rng.random_range(0..1000);
    (agent_type, format!("load test {agent_type} task {n}: write the api handler and its cache"))
}

/// One search term.
pub(crate) fn term() -> &'static str {
    TERMS[rand::rng().random_range(0..TERMS.len())]
}
