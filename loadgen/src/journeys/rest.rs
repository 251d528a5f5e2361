//! The journeys over REST. goose runs the users (their plan, scenarios and
//! transactions, see `journeys`); their requests go through the loadgen's own
//! HTTP/1.1 client ([`crate::http1`]), one connection pool per process as
//! goose's shared client had. goose keeps no per-request metrics here, and
//! its client (reqwest behind tower layers, a URL parsed per request) cost
//! about half the loadgen's instructions per REST request. Each request is
//! timed here, from just before it is sent until its whole body has arrived,
//! into the run's HDR recorder.

use std::time::{Duration, Instant};

use goose::goose::{GooseUser, TransactionResult};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::journeys::plan::Journey;
use crate::journeys::shared::{STOPPED_IDLE, Session, Shared, TASK_DEADLINE, session};
use crate::journeys::work;
use crate::outcome::Outcome;
use crate::recorder::Protocol;
use crate::step::Step;

/// Between two polls of a running task.
const POLL_EVERY: Duration = Duration::from_millis(500);

/// What a step reads from a successful answer: only the fields the user
/// goes on with. A step that needs nothing reads `()`, and its body is
/// received whole (its time includes it) but not parsed: a `serde_json::Value`
/// of every answer, a polled task's generated code included, was a tree of
/// allocations per request that nothing read.
trait Answer: DeserializeOwned {
    /// Whether the body is kept to be read; when not, it is received and dropped.
    const READS_BODY: bool = true;

    fn read(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
    }
}

impl Answer for () {
    const READS_BODY: bool = false;

    fn read(_: &[u8]) -> Option<()> {
        Some(())
    }
}

/// A login's answer.
#[derive(Deserialize)]
struct Token {
    token: String,
}

impl Answer for Token {}

/// A created project's or submitted task's answer.
#[derive(Deserialize)]
struct Created {
    id: String,
}

impl Answer for Created {}

/// A polled task's answer.
#[derive(Deserialize)]
struct Polled {
    status: PolledStatus,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum PolledStatus {
    Completed,
    Failed,
    #[serde(other)]
    Unfinished,
}

impl Answer for Polled {}

/// One request: its outcome is recorded; what the step reads of the body
/// comes back on success. A shed answer is recorded as such, then the user waits as the
/// `Retry-After` asked and, if the run's retry budget allows, tries once more.
async fn call<A: Answer>(
    shared: &Shared,
    method: &str,
    path: &str,
    step: Step,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> Option<A> {
    shared.retries.deposit();
    let credential = token.map(|token| format!("Bearer {token}"));
    let body = body.map(|body| serde_json::to_vec(&body).expect("a JSON value serializes"));
    let request = shared.gateway.rest.request(
        method,
        path,
        credential.as_deref().map(|value| ("authorization", value)),
        body.as_deref(),
    );
    let mut retried = false;
    loop {
        // Boxed: a request's state is hundreds of bytes, and inline it would
        // size the user's journey future for its think times too, when no
        // request is in flight. See the `walk` transaction in `journeys`.
        match Box::pin(attempt(shared, &request, step)).await {
            Attempt::Done(value) => return value,
            Attempt::Shed(wait) => {
                if !shared.back_off(wait).await || retried || !shared.retries.withdraw() {
                    return None;
                }
                retried = true;
            }
        }
    }
}

/// How one attempt of a request ended.
enum Attempt<A> {
    /// Answered (what the step reads, on success), or failed.
    Done(Option<A>),
    /// Shed: come back after this.
    Shed(Duration),
}

async fn attempt<A: Answer>(shared: &Shared, request: &[u8], step: Step) -> Attempt<A> {
    let started = Instant::now();
    let (outcome, answer) = match shared.gateway.rest.exchange(request, A::READS_BODY).await {
        Err(failure) => (failure.outcome(), Attempt::Done(None)),
        Ok(answer) => {
            let outcome = answer.outcome();
            let attempt = match answer.retry_after {
                Some(wait) if outcome.is_shed() => Attempt::Shed(wait),
                _ if !(200..300).contains(&answer.status) => Attempt::Done(None),
                _ => Attempt::Done(A::read(&answer.body)),
            };
            (outcome, attempt)
        }
    };
    shared.record(Protocol::Rest, step, outcome, started.elapsed());
    answer
}

/// The user's start: log in with the API key and create the project its
/// journeys work on. A user whose start failed retries at its next journey.
pub(crate) async fn start(user: &mut GooseUser, shared: &Shared) -> TransactionResult {
    let login = json!({ "api_key": shared.api_key });
    let Some(Token { token }) = call(shared, "POST", "/api/v1/auth/login", Step::Login, None, Some(login)).await else {
        return Ok(());
    };
    let project = json!({ "name": "loadgen user", "tags": ["loadgen"] });
    let path = "/api/v1/projects";
    if let Some(Created { id }) = call(shared, "POST", path, Step::CreateProject, Some(&token), Some(project)).await {
        user.set_session_data(Session { token, project: id });
    }
    Ok(())
}

/// One walk through `journey`, thinking after each step.
pub(crate) async fn journey(user: &mut GooseUser, shared: &Shared, journey: Journey) -> TransactionResult {
    // Once the run is over every pause returns at once: goose would walk the
    // users through journey after journey without a pause until it has let
    // them go, a burst of requests at the end that no user would make. The
    // user idles instead (and yields, which an immediate return would not).
    if shared.stopping() {
        tokio::time::sleep(STOPPED_IDLE).await;
        return Ok(());
    }
    let Some((token, project)) = session(user) else {
        Box::pin(start(user, shared)).await?;
        shared.think().await;
        return Ok(());
    };
    let token = Some(token.as_str());
    match journey {
        Journey::Browse => {
            call::<()>(shared, "GET", "/api/v1/projects?limit=10", Step::ListProjects, token, None).await;
            if !shared.think().await {
                return Ok(());
            }
            let path = format!("/api/v1/projects/{project}");
            call::<()>(shared, "GET", &path, Step::GetProject, token, None).await;
            if !shared.think().await {
                return Ok(());
            }
            let path = format!("/api/v1/projects/{project}/status");
            call::<()>(shared, "GET", &path, Step::ProjectStatus, token, None).await;
        }
        Journey::CreateProject => {
            let body = json!({ "name": "loadgen journey", "tags": ["loadgen"] });
            let created = call(shared, "POST", "/api/v1/projects", Step::CreateProject, token, Some(body)).await;
            if let Some(Created { id }) = created {
                if !shared.think().await {
                    return Ok(());
                }
                let path = format!("/api/v1/projects/{id}");
                call::<()>(shared, "GET", &path, Step::GetProject, token, None).await;
            }
        }
        Journey::SubmitTask => submit_and_poll(shared, token, &project).await,
        Journey::Search => {
            let path = format!("/api/v1/search?q={}", work::term());
            call::<()>(shared, "GET", &path, Step::Search, token, None).await;
        }
    }
    shared.think().await;
    Ok(())
}

/// Submits a task and polls it until it has finished, failed, or
/// [`TASK_DEADLINE`] passed; `await_task` records the time to the answer.
async fn submit_and_poll(shared: &Shared, token: Option<&str>, project: &str) {
    let (agent_type, description) = work::task();
    let body = json!({ "agent_type": agent_type, "description": description });
    let path = format!("/api/v1/projects/{project}/tasks");
    let submitted = Instant::now();
    let Some(Created { id }) = call(shared, "POST", &path, Step::SubmitTask, token, Some(body)).await else {
        return;
    };
    let path = format!("/api/v1/tasks/{id}");
    let outcome = loop {
        if submitted.elapsed() > TASK_DEADLINE {
            break Outcome::TaskTimeout;
        }
        if !shared.pause(POLL_EVERY).await {
            // The run ended while the task ran: not the system's failure, not recorded.
            return;
        }
        match call(shared, "GET", &path, Step::PollTask, token, None).await {
            Some(Polled { status: PolledStatus::Completed }) => break Outcome::Ok,
            Some(Polled { status: PolledStatus::Failed }) => break Outcome::TaskFailed,
            Some(Polled { status: PolledStatus::Unfinished }) | None => {}
        }
    };
    shared.record(Protocol::Rest, Step::AwaitTask, outcome, submitted.elapsed());
}
