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

    let login: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "api_key": "demo-key-acme" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap();
    let project: Value = http
        .post(format!("{base}/api/v1/projects"))
        .bearer_auth(token)
        .json(&json!({ "name": "baseline" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let task: Value = http
        .post(format!("{base}/api/v1/projects/{}/tasks", project["id"].as_str().unwrap()))
        .bearer_auth(token)
        .json(&json!({ "agent_type": "testing", "description": "login flow" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
