use q2o_proto::v1 as pb;
use serde_json::json;
use tonic::Code;

use crate::support::*;

#[tokio::test]
async fn bad_requests_get_a_4xx_naming_what_was_wrong() {
    let stack = Stack::start(GATEWAY, 1, "");
    let base = stack.rest(0);
    let acme = RestClient::login(&base, "key-acme-0001").await;
    let project = acme.create_project("p").await;
    let http = reqwest::Client::new();
    let projects = format!("{base}/api/v1/projects");
    let tasks = format!("{base}/api/v1/projects/{project}/tasks");

    let raw = |url: &str, body: &'static str| {
        http.post(url).bearer_auth(&acme.token).header("content-type", "application/json").body(body).send()
    };
    let cases = [
        ("malformed JSON", raw(&projects, "{\"name\": ").await.unwrap(), 400, "EOF"),
        ("unknown field", raw(&projects, r#"{"name":"x","colour":"red"}"#).await.unwrap(), 422, "colour"),
        ("wrong type", raw(&projects, r#"{"name":5}"#).await.unwrap(), 422, "name"),
        ("missing field", raw(&projects, r#"{"tags":[]}"#).await.unwrap(), 422, "name"),
        ("empty name", raw(&projects, r#"{"name":"  "}"#).await.unwrap(), 400, "name: must not be empty"),
        ("unknown agent type", raw(&tasks, r#"{"agent_type":"poet","description":"x"}"#).await.unwrap(), 422, "poet"),
        (
            "oversized body",
            http.post(&projects)
                .bearer_auth(&acme.token)
                .json(&json!({ "name": "x", "description": "d".repeat(300 * 1024) }))
                .send()
                .await
                .unwrap(),
            413,
            "",
        ),
        (
            "no content type",
            http.post(&projects).bearer_auth(&acme.token).body(r#"{"name":"x"}"#).send().await.unwrap(),
            415,
            "Content-Type",
        ),
        ("missing credential", http.get(&projects).send().await.unwrap(), 401, "missing credential"),
        (
            "bad session token",
            http.get(&projects).bearer_auth("nope").send().await.unwrap(),
            401,
            "unknown or expired session",
        ),
        (
            "bad id in path",
            http.get(format!("{projects}/not-a-uuid")).bearer_auth(&acme.token).send().await.unwrap(),
            400,
            "project_id",
        ),
        (
            "page too large",
            http.get(format!("{projects}?limit=100000")).bearer_auth(&acme.token).send().await.unwrap(),
            400,
            "limit",
        ),
        (
            "unknown query parameter",
            http.get(format!("{projects}?limt=5")).bearer_auth(&acme.token).send().await.unwrap(),
            400,
            "limt",
        ),
    ];
    for (case, response, expected, needle) in cases {
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_else(|e| panic!("{case}: body is not JSON: {e}"));
        assert_eq!(status, expected, "{case}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{case}: `{message}` should mention `{needle}`");
    }

    // The same over gRPC.
    let mut orchestrator = pb::orchestrator_client::OrchestratorClient::new(stack.grpc(0).await);
    let status = orchestrator
        .distribute_task(authed(
            pb::DistributeTaskRequest {
                project_id: project.clone(),
                agent_type: "poet".into(),
                description: "x".into(),
            },
            &acme.token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("agent_type"), "{}", status.message());
    let status =
        orchestrator.get_task(tonic::Request::new(pb::GetTaskRequest { task_id: "x".into() })).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let status =
        orchestrator.get_task(authed(pb::GetTaskRequest { task_id: "x".into() }, &acme.token)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("task_id"));

    // Nothing above was a server error.
    let exposition = metrics(&base).await;
    assert!(!exposition.contains("status=\"5"), "a bad request caused a 5xx:\n{exposition}");
}
