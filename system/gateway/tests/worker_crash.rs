use std::time::Duration;

use q2o_testkit::{eventually, metric_value};

use crate::support::*;

/// A model slow enough that the worker is surely mid-task when it is killed.
const SLOW_AGENTS: &str = r#"
claim_wait = "200ms"
reclaim_after = "30s"
[[models]]
name = "slow"
latency_median = "20s"
latency_p99 = "20s"
prompt_overhead_tokens = 100
completion_tokens_mean = 200
usd_per_1k_prompt = 0.01
usd_per_1k_completion = 0.03
"#;

#[tokio::test]
async fn a_task_of_a_killed_worker_is_taken_over_and_completes_exactly_once() {
    let stack = Stack::start(GATEWAY, 1, "");
    let mut doomed = stack.start_agents(&format!("{SLOW_AGENTS}{}", pools("slow")), &["--consumer", "doomed"]);
    let rest = RestClient::login(&stack.rest(0), "key-acme-0001").await;
    let project = rest.create_project("crash").await;
    let task = rest.submit_task(&project, "documentation", "operations runbook").await;
    let task = task["id"].as_str().unwrap().to_owned();

    eventually(Duration::from_secs(10), "the first worker to start the task", || async {
        let (_, body) = rest.get(&format!("/api/v1/tasks/{task}")).await;
        (body["status"] == "running").then_some(())
    })
    .await
    .unwrap();
    doomed.kill();

    let survivor = stack.start_agents(&format!("{FAST_AGENTS}{}", pools("fast")), &["--consumer", "survivor"]);
    let done = rest.finished_task(&task, Duration::from_secs(20)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["attempts"], 2, "one attempt by each worker");

    // Give a stray second delivery time to show up, then check it did not.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let exposition = metrics(&survivor.url("http")).await;
    let count = |status| {
        metric_value(&exposition, "q2o_agent_tasks_total", &[("agent_type", "documentation"), ("status", status)])
    };
    assert_eq!(count("completed"), Some(1.0), "{exposition}");
    assert_eq!(count("duplicate"), Some(0.0));
    assert_eq!(
        metric_value(&exposition, "q2o_agent_tasks_reclaimed_total", &[("agent_type", "documentation")]),
        Some(1.0)
    );
    let (_, counts) = rest.get(&format!("/api/v1/projects/{project}/status")).await;
    assert_eq!((counts["completed"].as_u64(), counts["running"].as_u64()), (Some(1), Some(0)), "{counts}");
}
