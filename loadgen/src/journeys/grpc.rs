//! The journeys over gRPC, on the run's shared channel pool. goose speaks only
//! HTTP and keeps no metrics of its own here (the recorder has them all), so
//! each call is timed here, into the recorder.

use std::time::Instant;

use goose::goose::{GooseUser, TransactionResult};
use q2o_proto::v1 as pb;
use tonic::Status;

use crate::grpc_channel::GrpcChannel;
use crate::journeys::plan::Journey;
use crate::journeys::shared::{STOPPED_IDLE, Session, Shared, TASK_DEADLINE, session};
use crate::journeys::work;
use crate::outcome::{Outcome, pushback};
use crate::recorder::Protocol;
use crate::step::Step;

/// Times `call`, records it and hands back its answer. A
/// shed call makes the user wait as its retry pushback asked; it is not
/// retried (a tonic call cannot be sent twice; the user's next step is the
/// next request), so the retry budget applies to REST only.
fn timed<'a, T: Send + 'a>(
    shared: &'a Shared,
    step: Step,
    call: impl Future<Output = Result<tonic::Response<T>, Status>> + Send + 'a,
) -> impl Future<Output = Option<T>> + Send + 'a {
    // Boxed before the first poll: a tonic call's state is kilobytes, and
    // inline it would size the user's journey future for its think times
    // too, when no call is in flight. See the `walk` transaction in `journeys`.
    let call = Box::pin(call);
    async move {
        let started = Instant::now();
        let result = call.await;
        let elapsed = started.elapsed();
        shared.record(Protocol::Grpc, step, Outcome::of_grpc(&result), elapsed);
        if let Err(status) = &result
            && let Some(wait) = pushback(status)
        {
            shared.back_off(wait).await;
        }
        result.ok().map(tonic::Response::into_inner)
    }
}

fn authed<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(bearer) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", bearer);
    }
    request
}

/// The user's start: log in and create the project its journeys work on.
pub(crate) async fn start(user: &mut GooseUser, shared: &Shared) -> TransactionResult {
    let mut auth = pb::auth_client::AuthClient::new(shared.channel());
    let login = pb::LoginRequest { api_key: shared.api_key.clone() };
    let Some(login) = timed(shared, Step::Login, auth.login(login)).await else { return Ok(()) };
    let mut projects = pb::projects_client::ProjectsClient::new(shared.channel());
    let create =
        pb::CreateProjectRequest { name: "loadgen user".into(), tags: vec!["loadgen".into()], ..Default::default() };
    if let Some(project) =
        timed(shared, Step::CreateProject, projects.create_project(authed(&login.token, create))).await
    {
        user.set_session_data(Session { token: login.token, project: project.id });
    }
    Ok(())
}

/// One walk through `journey`, thinking after each step. Search has no gRPC
/// route on the gateway, so a gRPC user searches over REST.
pub(crate) async fn journey(user: &mut GooseUser, shared: &Shared, journey: Journey) -> TransactionResult {
    // Once the run is over every pause returns at once: goose would walk the
    // users through journey after journey without a pause until it has let
    // them go, a burst of requests at the end that no user would make. The
    // user idles instead (and yields, which an immediate return would not).
    if shared.stopping() {
        tokio::time::sleep(STOPPED_IDLE).await;
        return Ok(());
    }
    if journey == Journey::Search {
        // Boxed: inline, the REST journey's state would double this one's.
        return Box::pin(crate::journeys::rest::journey(user, shared, journey)).await;
    }
    let Some((token, project)) = session(user) else {
        Box::pin(start(user, shared)).await?;
        shared.think().await;
        return Ok(());
    };
    let mut projects = pb::projects_client::ProjectsClient::new(shared.channel());
    let mut orchestrator = pb::orchestrator_client::OrchestratorClient::new(shared.channel());
    match journey {
        Journey::Browse => {
            let list = authed(&token, pb::ListProjectsRequest { limit: 10, offset: 0 });
            timed(shared, Step::ListProjects, projects.list_projects(list)).await;
            if !shared.think().await {
                return Ok(());
            }
            let get = authed(&token, pb::GetProjectRequest { project_id: project.clone() });
            timed(shared, Step::GetProject, projects.get_project(get)).await;
            if !shared.think().await {
                return Ok(());
            }
            let status = authed(&token, pb::GetProjectStatusRequest { project_id: project });
            timed(shared, Step::ProjectStatus, orchestrator.get_project_status(status)).await;
        }
        Journey::CreateProject => {
            let create = pb::CreateProjectRequest {
                name: "loadgen journey".into(),
                tags: vec!["loadgen".into()],
                ..Default::default()
            };
            if let Some(created) =
                timed(shared, Step::CreateProject, projects.create_project(authed(&token, create))).await
            {
                if !shared.think().await {
                    return Ok(());
                }
                let get = authed(&token, pb::GetProjectRequest { project_id: created.id });
                timed(shared, Step::GetProject, projects.get_project(get)).await;
            }
        }
        // Boxed for the same reason as `timed`: an open update stream is large.
        Journey::SubmitTask => Box::pin(submit_and_stream(shared, &token, &project, &mut orchestrator)).await,
        Journey::Search => unreachable!("handled above"),
    }
    shared.think().await;
    Ok(())
}

/// Opens the project's update stream, submits a task, and reads the stream
/// until that task has finished or failed, or [`TASK_DEADLINE`] passed.
async fn submit_and_stream(
    shared: &Shared,
    token: &str,
    project: &str,
    orchestrator: &mut pb::orchestrator_client::OrchestratorClient<GrpcChannel>,
) {
    let submitted = Instant::now();
    // Subscribe first: an update sent before the stream opened would be missed.
    let open = pb::StreamProjectUpdatesRequest { project_id: project.to_owned() };
    let stream = match orchestrator.stream_project_updates(authed(token, open)).await {
        Ok(stream) => stream,
        Err(status) => match pushback(&status) {
            // Shed before the task was submitted: the submission was turned
            // away, and no task exists to wait for.
            Some(wait) => {
                shared.record(Protocol::Grpc, Step::SubmitTask, Outcome::Shed, submitted.elapsed());
                shared.back_off(wait).await;
                return;
            }
            None => {
                shared.record(Protocol::Grpc, Step::AwaitTask, Outcome::StreamRefused, submitted.elapsed());
                return;
            }
        },
    };
    let mut stream = stream.into_inner();
    let (agent_type, description) = work::task();
    let distribute =
        pb::DistributeTaskRequest { project_id: project.to_owned(), agent_type: agent_type.to_owned(), description };
    let Some(task) = timed(shared, Step::SubmitTask, orchestrator.distribute_task(authed(token, distribute))).await
    else {
        return;
    };
    let finished = async {
        loop {
            match stream.message().await {
                Ok(Some(update)) if update.task_id == task.id => {
                    if update.status == pb::TaskStatus::Completed as i32 {
                        return Outcome::Ok;
                    }
                    if update.status == pb::TaskStatus::Failed as i32 {
                        return Outcome::TaskFailed;
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => return Outcome::StreamEnded,
                Err(_) => return Outcome::StreamError,
            }
        }
    };
    let deadline = TASK_DEADLINE.saturating_sub(submitted.elapsed());
    let outcome = tokio::select! {
        outcome = finished => outcome,
        () = tokio::time::sleep(deadline) => Outcome::TaskTimeout,
        // The run ended while the task ran: not the system's failure, not recorded.
        () = shared.stopped() => return,
    };
    shared.record(Protocol::Grpc, Step::AwaitTask, outcome, submitted.elapsed());
}
