//! goose users against a real gateway (and agents, so that submitted tasks
//! finish): the recorder's counts must equal the gateway's own counters.

use std::time::Duration;

use q2o_loadgen::journeys::ClosedRun;
use q2o_loadgen::journeys::plan::{Journey, ThinkTime, UserPlan};
use q2o_loadgen::outcome::Outcome;
use q2o_loadgen::recorder::Protocol;
use q2o_loadgen::results::RunResults;
use q2o_testkit::{RedisServer, ScratchDir, Service, metric_sum};

struct Stack {
    _redis: RedisServer,
    gateway: Service,
    _agents: Service,
    _dir: ScratchDir,
}

fn stack() -> Stack {
    let redis = RedisServer::start().unwrap();
    let dir = ScratchDir::new("loadgen-closed").unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, "[rate_limit]\ncapacity = 10000\nrefill_per_second = 10000.0\n").unwrap();
    let env = [("Q2O_REDIS_URL", redis.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let gateway = Service::start(
        "q2o-gateway",
        &["--config", config.to_str().unwrap(), "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"],
        &env,
    )
    .unwrap();
    let agents =
        Service::start("q2o-agents", &["--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"], &env).unwrap();
    Stack { _redis: redis, gateway, _agents: agents, _dir: dir }
}

fn plan(protocol: Protocol) -> UserPlan {
    UserPlan {
        users: 12,
        ramp_rate: 12.0,
        hold: Duration::from_secs(4),
        ramp_down: Duration::from_secs(1),
        think: ThinkTime::Constant(Duration::from_millis(100)),
        journeys: vec![(Journey::Browse, 2), (Journey::CreateProject, 1), (Journey::SubmitTask, 1)],
        protocols: vec![(protocol, 1)],
        surge: None,
    }
}

fn count(results: &RunResults, protocol: Protocol, step: &str) -> u64 {
    results.steps.iter().find(|s| s.protocol == protocol && s.step.as_label() == step).map_or(0, |s| s.count)
}

async fn exposition(gateway: &Service) -> String {
    reqwest::get(format!("{}/metrics", gateway.url("http"))).await.unwrap().text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_users_walk_their_journeys_and_every_request_reaches_the_gateway() {
    let stack = stack();
    let run = ClosedRun {
        rest_url: stack.gateway.url("http"),
        grpc_url: None,
        api_key: "demo-key-acme".into(),
        plan: plan(Protocol::Rest),
        grpc_channels: 1,
        out: None,
        metrics: None,
        progress: false,
        start_at: None,
        warm_up: Duration::ZERO,
    };
    let (results, goose) = run.run(std::future::pending()).await.unwrap();
    for step in &results.steps {
        assert_eq!(step.outcomes.get(&Outcome::Ok), Some(&step.count), "{}: {:?}", step.step, step.outcomes);
    }
    assert_eq!(count(&results, Protocol::Rest, "login"), 12, "each user logs in once");
    assert!(count(&results, Protocol::Rest, "list_projects") > 0);
    assert!(count(&results, Protocol::Rest, "await_task") > 0, "some task was followed to its end");
    assert_eq!(goose.max_users, 12, "goose ran every user");

    let metrics = [exposition(&stack.gateway).await];
    for (step, method, route) in [
        ("login", "POST", "/api/v1/auth/login"),
        ("create_project", "POST", "/api/v1/projects"),
        ("list_projects", "GET", "/api/v1/projects"),
        ("get_project", "GET", "/api/v1/projects/{project_id}"),
        ("project_status", "GET", "/api/v1/projects/{project_id}/status"),
        ("submit_task", "POST", "/api/v1/projects/{project_id}/tasks"),
        ("poll_task", "GET", "/api/v1/tasks/{task_id}"),
    ] {
        let served = metric_sum(&metrics, "http_requests_total", &[("method", method), ("route", route)]);
        assert_eq!(served, count(&results, Protocol::Rest, step) as f64, "{step}: {method} {route}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_users_stream_their_tasks_and_the_gateway_served_every_call() {
    let stack = stack();
    let dir = ScratchDir::new("closed-grpc-out").unwrap();
    let run = ClosedRun {
        rest_url: stack.gateway.url("http"),
        grpc_url: Some(stack.gateway.url("grpc")),
        api_key: "demo-key-acme".into(),
        plan: plan(Protocol::Grpc),
        grpc_channels: 2,
        out: Some(dir.path().to_owned()),
        metrics: None,
        progress: false,
        start_at: None,
        warm_up: Duration::ZERO,
    };
    let (results, goose) = run.run(std::future::pending()).await.unwrap();
    for step in &results.steps {
        assert_eq!(step.outcomes.get(&Outcome::Ok), Some(&step.count), "{}: {:?}", step.step, step.outcomes);
    }
    assert_eq!(count(&results, Protocol::Grpc, "login"), 12);
    assert!(count(&results, Protocol::Grpc, "await_task") > 0, "some task's completion arrived on the stream");
    assert_eq!(goose.max_users, 12, "goose ran every user");

    let metrics = [exposition(&stack.gateway).await];
    for (step, method) in [
        ("login", "Login"),
        ("create_project", "CreateProject"),
        ("list_projects", "ListProjects"),
        ("get_project", "GetProject"),
        ("project_status", "GetProjectStatus"),
        ("submit_task", "DistributeTask"),
    ] {
        let served = metric_sum(&metrics, "grpc_server_handled_total", &[("grpc_method", method)]);
        assert_eq!(served, count(&results, Protocol::Grpc, step) as f64, "{step}: {method}");
    }
    let written = RunResults::read(&dir.path().join("results.json")).unwrap();
    assert_eq!(written.model, "closed");
    assert_eq!(written.users, Some(12));
    assert!(dir.path().join("latency.hlog").exists());
}
