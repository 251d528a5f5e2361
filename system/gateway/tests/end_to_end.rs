use std::time::Duration;

use futures::StreamExt;
use q2o_proto::v1 as pb;
use q2o_testkit::metric_value;
use serde_json::json;

use crate::support::*;

const WITHIN: Duration = Duration::from_secs(20);

#[tokio::test]
async fn rest_and_grpc_reach_the_same_outcome() {
    let stack = Stack::start(GATEWAY, 1, &format!("{FAST_AGENTS}{}", pools("fast")));

    // REST: login, project, task, poll until done.
    let rest = RestClient::login(&stack.rest(0), "key-acme-0001").await;
    let project = rest.create_project("ledger").await;
    let submitted = rest.submit_task(&project, "coder", "Build a payment ledger with refunds").await;
    assert_eq!(submitted["status"], "queued");
    let by_rest = rest.finished_task(submitted["id"].as_str().unwrap(), WITHIN).await;

    // gRPC: the same journey, streaming instead of polling.
    let channel = stack.grpc(0).await;
    let token = grpc_login(channel.clone(), "key-acme-0001").await;
    let mut projects = pb::projects_client::ProjectsClient::new(channel.clone());
    let mut orchestrator = pb::orchestrator_client::OrchestratorClient::new(channel.clone());
    let mut monitor = pb::agent_monitor_client::AgentMonitorClient::new(channel);
    let grpc_project = projects
        .create_project(authed(pb::CreateProjectRequest { name: "ledger".into(), ..Default::default() }, &token))
        .await
        .unwrap()
        .into_inner();
    let mut activity = monitor
        .stream_agent_activity(authed(pb::StreamAgentActivityRequest { agent_type: "coder".into() }, &token))
        .await
        .unwrap()
        .into_inner();
    let task = orchestrator
        .distribute_task(authed(
            pb::DistributeTaskRequest {
                project_id: grpc_project.id.clone(),
                agent_type: "coder".into(),
                description: "Build a payment ledger with refunds".into(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    let mut updates = orchestrator
        .stream_project_updates(authed(pb::StreamProjectUpdatesRequest { project_id: grpc_project.id.clone() }, &token))
        .await
        .unwrap()
        .into_inner();
    let finished = tokio::time::timeout(WITHIN, async {
        while let Some(update) = updates.next().await {
            let update = update.unwrap();
            if update.task_id == task.id && update.status() == pb::TaskStatus::Completed {
                return update;
            }
        }
        panic!("the update stream ended before the task completed");
    })
    .await
    .expect("completion arrives on the stream");
    assert_eq!(finished.agent_type, "coder");
    let event = tokio::time::timeout(WITHIN, activity.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(event.task_id, task.id);
    assert_eq!(event.event_type, "task_started");

    let by_grpc = orchestrator
        .get_task(authed(pb::GetTaskRequest { task_id: task.id.clone() }, &token))
        .await
        .unwrap()
        .into_inner();
    // Same outcome on both paths: completed once, same generated code, reviewed over REST.
    assert_eq!(by_rest["status"], "completed");
    assert_eq!(by_grpc.status(), pb::TaskStatus::Completed);
    assert_eq!(by_rest["attempts"], 1);
    assert_eq!(by_grpc.attempts, 1);
    let grpc_result = by_grpc.result.unwrap();
    assert_eq!(by_rest["result"]["code"].as_str().unwrap(), grpc_result.code);
    assert_eq!(by_rest["result"]["language"], "rust");
    assert_eq!(by_rest["result"]["review"]["protocol"], "rest");
    assert!(by_rest["result"]["review"]["approved"].as_bool().unwrap());
    assert!(grpc_result.review.unwrap().approved);
    assert!(by_rest["result"]["prompt_tokens"].as_u64().unwrap() > 0);

    // Both views of the project's counts agree.
    let (status, counts) = rest.get(&format!("/api/v1/projects/{project}/status")).await;
    assert_eq!(status, 200);
    assert_eq!(counts["completed"], 1);
    assert_eq!(counts["total"], 1);
    let summary = orchestrator
        .get_project_status(authed(pb::GetProjectStatusRequest { project_id: grpc_project.id }, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((summary.total, summary.completed, summary.queued, summary.running), (1, 1, 0, 0));
}

#[tokio::test]
async fn inter_agent_review_goes_over_grpc_when_configured() {
    let stack = Stack::start(GATEWAY, 1, "");
    let agents = stack.start_agents(&format!("{FAST_AGENTS}{}", pools("fast")), &["--inter-agent", "grpc"]);
    let rest = RestClient::login(&stack.rest(0), "key-acme-0001").await;
    let project = rest.create_project("p").await;
    let task = rest.submit_task(&project, "coder", "inventory reservations").await;
    let done = rest.finished_task(task["id"].as_str().unwrap(), WITHIN).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["review"]["protocol"], "grpc");
    let exposition = metrics(&agents.url("http")).await;
    let calls = metric_value(
        &exposition,
        "q2o_inter_agent_request_duration_seconds_count",
        &[("protocol", "grpc"), ("caller", "coder"), ("callee", "qa")],
    );
    assert_eq!(calls, Some(1.0), "{exposition}");
    let served =
        metric_value(&exposition, "grpc_server_handled_total", &[("grpc_method", "ReviewCode"), ("grpc_code", "OK")]);
    assert_eq!(served, Some(1.0));
}

#[tokio::test]
async fn a_session_made_on_one_replica_works_on_another() {
    let stack = Stack::start(GATEWAY, 2, "");
    let on_first = RestClient::login(&stack.rest(0), "key-acme-0001").await;
    let project = on_first.create_project("shared").await;
    let on_second = on_first.on(&stack.rest(1));
    let (status, body) = on_second.get(&format!("/api/v1/projects/{project}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tenant"], "acme");
    // And over gRPC on the second replica.
    let mut projects = pb::projects_client::ProjectsClient::new(stack.grpc(1).await);
    let got = projects
        .get_project(authed(pb::GetProjectRequest { project_id: project.clone() }, &on_first.token))
        .await
        .unwrap();
    assert_eq!(got.into_inner().name, "shared");
}

#[tokio::test]
async fn metrics_name_every_hop_after_traffic() {
    let stack = Stack::start(GATEWAY, 1, &format!("{FAST_AGENTS}{}", pools("fast")));
    let rest = RestClient::login(&stack.rest(0), "key-acme-0001").await;
    let project = rest.create_project("metrics").await;
    // The same research twice: a miss, then a hit.
    for _ in 0..2 {
        let task = rest.submit_task(&project, "researcher", "Rust async runtimes compared").await;
        rest.finished_task(task["id"].as_str().unwrap(), WITHIN).await;
    }
    let task = rest.submit_task(&project, "coder", "parser for config files").await;
    rest.finished_task(task["id"].as_str().unwrap(), WITHIN).await;
    let mut projects = pb::projects_client::ProjectsClient::new(stack.grpc(0).await);
    projects.list_projects(authed(pb::ListProjectsRequest::default(), &rest.token)).await.unwrap();

    let gateway = metrics(&stack.rest(0)).await;
    let route = "/api/v1/projects/{project_id}/tasks";
    assert_eq!(
        metric_value(&gateway, "http_requests_total", &[("method", "POST"), ("route", route), ("status", "202")]),
        Some(3.0),
        "{gateway}"
    );
    assert!(metric_value(&gateway, "http_request_duration_seconds_count", &[("route", route)]).unwrap() >= 3.0);
    assert!(!gateway.contains(&project), "a raw id leaked into a label");
    assert_eq!(
        metric_value(&gateway, "grpc_server_handled_total", &[("grpc_method", "ListProjects"), ("grpc_code", "OK")]),
        Some(1.0)
    );
    assert!(metric_value(&gateway, "grpc_server_handling_seconds_count", &[("grpc_method", "ListProjects")]).is_some());

    let agents = metrics(&stack.agents[0].url("http")).await;
    assert_eq!(
        metric_value(&agents, "q2o_agent_tasks_total", &[("agent_type", "researcher"), ("status", "completed")]),
        Some(2.0),
        "{agents}"
    );
    assert_eq!(metric_value(&agents, "q2o_cache_hits_total", &[("cache_type", "research")]), Some(1.0));
    assert_eq!(metric_value(&agents, "q2o_cache_misses_total", &[("cache_type", "research")]), Some(1.0));
    assert!(metric_value(&agents, "q2o_llm_tokens_used_total", &[("kind", "completion")]).unwrap() > 0.0);
    assert!(metric_value(&agents, "q2o_llm_cost_dollars_total", &[]).unwrap() > 0.0);
    assert!(metric_value(&agents, "q2o_agent_task_duration_seconds_count", &[("agent_type", "coder")]).unwrap() >= 1.0);
}

#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    let stack = Stack::start(GATEWAY, 1, "");
    let doc: serde_json::Value =
        reqwest::get(format!("{}/api/v1/openapi.json", stack.rest(0))).await.unwrap().json().await.unwrap();
    let client = reqwest::Client::new();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations += 1;
            let url = format!("{}{}", stack.rest(0), path.replace("{project_id}", "x").replace("{task_id}", "x"));
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = client.request(method.clone(), &url).json(&json!({})).send().await.unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap();
            // A documented operation must reach a handler: never "no such route" or 405.
            assert!(status != 405 && !body.contains("route not found"), "{method} {path} -> {status} {body}");
        }
    }
    assert_eq!(operations, 15, "documented operations");
}
