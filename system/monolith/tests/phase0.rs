//! The phase0 baseline runs the whole journey in one process, without Redis.

use std::time::Duration;

use q2o_testkit::{Service, eventually, metric_value};
use serde_json::{Value, json};

#[tokio::test]
async fn one_process_serves_the_journey_without_redis() {
    let monolith =
        Service::start("q2o-monolith", &["--http-addr", "127.0.0.1:0", "--agents-http-addr", "127.0.0.1:0"], &[])
            .expect("monolith starts");
    let base = monolith.url("http");
    let http = reqwest::Client::new();
    let ready: Value = http.get(format!("{base}/ready")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["store"], "memory");

    let post = |path: String, token: Option<String>, body: Value| {
        let mut request = http.post(format!("{base}{path}")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let login = post("/api/v1/auth/login".into(), None, json!({ "api_key": "demo-key-acme" })).await;
    let token = login["token"].as_str().unwrap();
    let project = post("/api/v1/projects".into(), Some(token.into()), json!({ "name": "baseline" })).await;
    let tasks = format!("/api/v1/projects/{}/tasks", project["id"].as_str().unwrap());
    let task = post(tasks, Some(token.into()), json!({ "agent_type": "testing", "description": "login flow" })).await;
    let url = format!("{base}/api/v1/tasks/{}", task["id"].as_str().unwrap());
    // The default small model answers in ~120 ms median.
    let done = eventually(Duration::from_secs(20), "the task to complete", || async {
        let body: Value = http.get(&url).bearer_auth(token).send().await.ok()?.json().await.ok()?;
        (body["status"] == "completed").then_some(body)
    })
    .await
    .unwrap();
    assert_eq!(done["result"]["language"], "python");

    let agents_metrics =
        http.get(format!("{}/metrics", monolith.url("agents_http"))).send().await.unwrap().text().await.unwrap();
    assert_eq!(
        metric_value(&agents_metrics, "q2o_agent_tasks_total", &[("agent_type", "testing"), ("status", "completed")]),
        Some(1.0)
    );
}
