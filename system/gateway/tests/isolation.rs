use std::time::Duration;

use q2o_proto::v1 as pb;
use serde_json::json;
use tonic::Code;

use crate::support::*;

#[tokio::test]
async fn one_tenant_never_reaches_anothers_records() {
    let stack = Stack::start(GATEWAY, 1, "");
    let acme = RestClient::login(&stack.rest(0), "key-acme-0001").await;
    let globex = RestClient::login(&stack.rest(0), "key-globex-0001").await;
    let project = acme.create_project("secret").await;
    let task = acme.submit_task(&project, "qa", "review the vault").await;
    let task = task["id"].as_str().unwrap();

    for (method, path, body) in [
        (reqwest::Method::GET, format!("/api/v1/projects/{project}"), None),
        (reqwest::Method::PATCH, format!("/api/v1/projects/{project}"), Some(json!({ "name": "mine" }))),
        (reqwest::Method::DELETE, format!("/api/v1/projects/{project}"), None),
        (reqwest::Method::GET, format!("/api/v1/projects/{project}/tasks"), None),
        (reqwest::Method::GET, format!("/api/v1/projects/{project}/status"), None),
        (
            reqwest::Method::POST,
            format!("/api/v1/projects/{project}/tasks"),
            Some(json!({ "agent_type": "coder", "description": "x" })),
        ),
        (reqwest::Method::GET, format!("/api/v1/tasks/{task}"), None),
    ] {
        let (status, body) = globex.send(method.clone(), &path, body).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let (_, listed) = globex.get("/api/v1/projects").await;
    assert_eq!(listed["projects"], json!([]));
    // The owner still sees everything untouched.
    let (status, body) = acme.get(&format!("/api/v1/projects/{project}")).await;
    assert_eq!((status, body["name"].as_str()), (200, Some("secret")));

    let channel = stack.grpc(0).await;
    let mut projects = pb::projects_client::ProjectsClient::new(channel.clone());
    let mut orchestrator = pb::orchestrator_client::OrchestratorClient::new(channel);
    let token = &globex.token;
    let code = projects
        .get_project(authed(pb::GetProjectRequest { project_id: project.clone() }, token))
        .await
        .unwrap_err()
        .code();
    assert_eq!(code, Code::NotFound);
    let code =
        orchestrator.get_task(authed(pb::GetTaskRequest { task_id: task.into() }, token)).await.unwrap_err().code();
    assert_eq!(code, Code::NotFound);
    let distribute =
        pb::DistributeTaskRequest { project_id: project.clone(), agent_type: "coder".into(), description: "x".into() };
    assert_eq!(orchestrator.distribute_task(authed(distribute, token)).await.unwrap_err().code(), Code::NotFound);
    let stream = orchestrator
        .stream_project_updates(authed(pb::StreamProjectUpdatesRequest { project_id: project.clone() }, token))
        .await;
    assert_eq!(stream.err().map(|s| s.code()), Some(Code::NotFound));
    let update =
        pb::UpdateProjectRequest { project_id: project.clone(), name: Some("mine".into()), ..Default::default() };
    assert_eq!(projects.update_project(authed(update, token)).await.unwrap_err().code(), Code::NotFound);
    let list = pb::ListTasksRequest { project_id: project.clone(), limit: 10, offset: 0 };
    assert_eq!(orchestrator.list_tasks(authed(list, token)).await.unwrap_err().code(), Code::NotFound);
    let status = pb::GetProjectStatusRequest { project_id: project.clone() };
    assert_eq!(orchestrator.get_project_status(authed(status, token)).await.unwrap_err().code(), Code::NotFound);
    let listed = projects.list_projects(authed(pb::ListProjectsRequest { limit: 10, offset: 0 }, token)).await;
    assert!(listed.unwrap().into_inner().projects.is_empty(), "another tenant's projects are not listed");
    let delete = projects.delete_project(authed(pb::DeleteProjectRequest { project_id: project }, token)).await;
    assert_eq!(delete.unwrap_err().code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_activity_stream_carries_only_the_callers_tenants_events() {
    let stack = Stack::start(GATEWAY, 1, &format!("{FAST_AGENTS}{}", pools("fast")));
    let channel = stack.grpc(0).await;
    let mut monitor = pb::agent_monitor_client::AgentMonitorClient::new(channel.clone());
    let open = |token: &str| authed(pb::StreamAgentActivityRequest { agent_type: String::new() }, token);
    let acme_token = grpc_login(channel.clone(), "key-acme-0001").await;
    let globex_token = grpc_login(channel, "key-globex-0001").await;
    let mut acme_events = monitor.stream_agent_activity(open(&acme_token)).await.unwrap().into_inner();
    let mut globex_events = monitor.stream_agent_activity(open(&globex_token)).await.unwrap().into_inner();

    let acme = RestClient::login(&stack.rest(0), "key-acme-0001").await;
    let project = acme.create_project("watched").await;
    let task = acme.submit_task(&project, "qa", "review the ledger").await;
    let task = task["id"].as_str().unwrap().to_owned();
    acme.finished_task(&task, Duration::from_secs(20)).await;
    let event = tokio::time::timeout(Duration::from_secs(10), acme_events.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(event.task_id, task, "the owner sees its task's events");
    // The task is over and its events were published: none reached the other tenant.
    let leaked = tokio::time::timeout(Duration::from_secs(1), globex_events.message()).await;
    assert!(leaked.is_err(), "globex received {leaked:?}");
}
