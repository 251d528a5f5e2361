//! The inter-agent lane in a running agents process: the QA agent answers
//! on it and the coder's call runs there, on a thread at the configured nice
//! value, which goes when the process stops serving.

use std::sync::Arc;
use std::time::{Duration, Instant};

use q2o_agents::Agents;
use q2o_agents::config::{Config, InterAgentProtocol};
use q2o_common::domain::{AgentType, Project, ProjectId, ProjectStatus, Task, TaskStatus, TenantId, now};
use q2o_common::store::{MemoryStore, Store};

/// Every thread of this process: its name and nice value, from `/proc`.
fn threads() -> Vec<(String, i32)> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|entry| std::fs::read_to_string(entry.unwrap().path().join("stat")).ok())
        .map(|stat| {
            let name = stat[stat.find('(').unwrap() + 1..stat.rfind(')').unwrap()].to_owned();
            // Field 19, counted after the name's closing parenthesis (field 2).
            let nice = stat[stat.rfind(')').unwrap() + 2..].split(' ').nth(16).unwrap().parse().unwrap();
            (name, nice)
        })
        .collect()
}

fn lane_threads() -> Vec<i32> {
    threads().into_iter().filter(|(name, _)| name == "inter-agent").map(|(_, nice)| nice).collect()
}

#[tokio::test(flavor = "current_thread")]
async fn a_coder_task_is_reviewed_over_grpc_on_a_lane_at_its_own_nice_value() {
    let mine = threads().into_iter().map(|(_, nice)| nice).next().unwrap();
    // Lowering a priority needs no right, so the test holds for any user.
    let nice = (mine + 2).min(19);
    assert_ne!(nice, mine, "the test runs at the lowest priority already");
    let mut config = Config {
        http_addr: "127.0.0.1:0".parse().unwrap(),
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        inter_agent: InterAgentProtocol::Grpc,
        inter_agent_nice: Some(nice),
        claim_wait: Duration::from_millis(100),
        ..Config::default()
    };
    for model in &mut config.models {
        (model.latency_median, model.latency_p99) = (Duration::from_millis(1), Duration::from_millis(2));
    }
    config.pools.retain(|pool| pool.agent_type == AgentType::Coder);

    let store = Arc::new(MemoryStore::new());
    let tenant: TenantId = "acme".parse().unwrap();
    let project = Project {
        id: ProjectId::new(),
        tenant: tenant.clone(),
        name: "p".into(),
        description: String::new(),
        objective: String::new(),
        tags: Vec::new(),
        status: ProjectStatus::Active,
        created_at: now(),
        updated_at: now(),
    };
    store.insert_project(&project).await.unwrap();
    let task = Task::queued(tenant.clone(), project.id, AgentType::Coder, "a rate limiter".into());
    store.submit_task(&task).await.unwrap();

    let agents = Agents::bind(config, store.clone(), prometheus::Registry::new()).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = agents.serve(async {
        let _ = stopped.await;
    });
    let checks = async {
        let deadline = Instant::now() + Duration::from_secs(20);
        let done = loop {
            let now = store.task(&tenant, task.id).await.unwrap().unwrap();
            if matches!(now.status, TaskStatus::Completed | TaskStatus::Failed) {
                break now;
            }
            assert!(Instant::now() < deadline, "the task did not finish: {:?}", now.status);
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let lanes = lane_threads();
        let _ = stop.send(());
        (done, lanes)
    };
    let (served, (done, lanes)) = tokio::join!(serving, checks);
    served.unwrap();

    assert_eq!(done.status, TaskStatus::Completed, "{:?}", done.error);
    let review = done.result.unwrap().review.expect("a coder's result carries the QA review");
    assert_eq!(review.protocol, "grpc", "the review came over the QA agent's gRPC server");
    assert_eq!(lanes, vec![nice], "one lane thread, at the configured nice value");
    assert!(lane_threads().is_empty(), "the lane's thread ends with the process's serving");
}
