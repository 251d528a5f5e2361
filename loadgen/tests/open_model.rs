use std::sync::Arc;
use std::time::Duration;

use q2o_loadgen::OpenRun;
use q2o_loadgen::arrival::ArrivalSchedule;
use q2o_loadgen::outcome::Outcome;
use q2o_loadgen::recorder::{Protocol, Recorder, latency_histogram};
use q2o_loadgen::results::{RateSpan, RunResults};
use q2o_loadgen::step::{Call, Mix, Step};
use q2o_loadgen::target::{GatewayTarget, UrlTarget};
use q2o_loadgen::weights::Weights;
use q2o_testkit::{RedisServer, ScratchDir, Service, metric_value};
use tokio::sync::RwLock;

/// A server that answers at once, except during one 1 s stall that starts 1 s in.
async fn stalling_server() -> String {
    let gate = Arc::new(RwLock::new(()));
    let app = axum::Router::new().route(
        "/",
        axum::routing::get({
            let gate = Arc::clone(&gate);
            move || {
                let gate = Arc::clone(&gate);
                async move {
                    let _open = gate.read().await;
                    "ok"
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let _stalled = gate.write().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    });
    format!("http://{addr}/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_model_counts_a_stall_that_a_closed_loop_hides() {
    let url = stalling_server().await;
    let run = OpenRun {
        target: Arc::new(UrlTarget::new(&url).unwrap()),
        mix: Weights(vec![("get".parse().unwrap(), 1)]),
        schedule: ArrivalSchedule::new(200.0, 200.0, Duration::from_secs(4)).unwrap(),
        max_in_flight: 10_000,
        out: None,
        metrics: None,
        progress: false,
        start_at: None,
    };
    let (results, summary) = run.run(std::future::pending()).await.unwrap();
    assert_eq!(summary.dropped, 0);
    let all = results.overall_latency().unwrap();
    assert!(all.len() >= 790, "{} requests", all.len());
    // ~200 requests were due during the stall: a quarter of the run waited.
    let p99 = all.value_at_quantile(0.99);
    assert!(p99 >= 500_000, "open-model p99 {p99} us should show the 1 s stall");

    // The naive way: one request after another, timing each from its own send.
    let naive_server = stalling_server().await;
    let client = UrlTarget::new(&naive_server).unwrap();
    let mut naive = latency_histogram();
    let until = tokio::time::Instant::now() + Duration::from_secs(4);
    let call: Call = "get".parse().unwrap();
    while tokio::time::Instant::now() < until {
        let sent = tokio::time::Instant::now();
        q2o_loadgen::target::Target::call(&client, call).await;
        naive.record(sent.elapsed().as_micros().max(1) as u64).unwrap();
    }
    assert!(naive.value_at_quantile(0.99) < 500_000, "the closed loop hides the stall in one sample");
}

fn feed(recorder: &Recorder, samples: impl Iterator<Item = u64>) {
    for (i, us) in samples.enumerate() {
        let outcome = if i % 50 == 0 { Outcome::Http(500) } else { Outcome::Ok };
        recorder.record(0, outcome, Duration::from_micros(us), Duration::from_millis(i as u64));
    }
}

#[test]
fn merged_results_equal_one_histogram_of_all_samples() {
    let steps = [(Protocol::Rest, Step::ListProjects)];
    let (a, b) = (Recorder::new(&steps), Recorder::new(&steps));
    let first = (1..=5_000u64).map(|i| 200 + i * 37 % 9_000);
    let second = (1..=3_000u64).map(|i| 5_000 + i * 91 % 400_000);
    feed(&a, first.clone());
    feed(&b, second.clone());
    let span = RateSpan { start: 10.0, end: 10.0 };
    let dir = ScratchDir::new("merge").unwrap();
    let mut parts = Vec::new();
    for (i, recorder) in [a, b].iter().enumerate() {
        let sub = dir.path().join(i.to_string());
        RunResults::from_snapshot(&recorder.snapshot(), 10.0, span).write(&sub).unwrap();
        parts.push(RunResults::read(&sub.join("results.json")).unwrap());
    }
    let merged = RunResults::merge(&parts).unwrap();

    let mut single = latency_histogram();
    for us in first.chain(second) {
        single.record(us).unwrap();
    }
    let m = merged.overall_latency().unwrap();
    assert_eq!(m.len(), single.len());
    for q in [0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
        assert_eq!(m.value_at_quantile(q), single.value_at_quantile(q), "quantile {q}");
    }
    assert_eq!(merged.processes, 2);
    assert_eq!(merged.steps[0].outcomes[&Outcome::Http(500)], 100 + 60);
    assert_eq!(merged.steps[0].count, 8_000);
    assert_eq!(merged.target_rate.start, 20.0);
}

fn gateway() -> (RedisServer, Service, ScratchDir) {
    let redis = RedisServer::start().unwrap();
    let dir = ScratchDir::new("loadgen-gateway").unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, "[rate_limit]\ncapacity = 1000\nrefill_per_second = 1000.0\n").unwrap();
    let gateway = Service::start(
        "q2o-gateway",
        &["--config", config.to_str().unwrap(), "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"],
        &[("Q2O_REDIS_URL", &redis.url())],
    )
    .unwrap();
    (redis, gateway, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_counts_equal_the_gateways_own_counters() {
    let (_redis, gateway, _dir) = gateway();
    for (mix, series, labels) in [
        (
            "rest:list_projects",
            "http_requests_total",
            vec![("method", "GET"), ("route", "/api/v1/projects"), ("status", "200")],
        ),
        ("grpc:list_projects", "grpc_server_handled_total", vec![("grpc_method", "ListProjects"), ("grpc_code", "OK")]),
    ] {
        let target =
            GatewayTarget::connect(&gateway.url("http"), Some(&gateway.url("grpc")), "demo-key-acme", 2).await.unwrap();
        let run = OpenRun {
            target,
            mix: mix.parse::<Mix>().unwrap(),
            schedule: ArrivalSchedule::new(80.0, 80.0, Duration::from_secs(3)).unwrap(),
            max_in_flight: 1_000,
            out: None,
            metrics: None,
            progress: false,
            start_at: None,
        };
        let (results, _) = run.run(std::future::pending()).await.unwrap();
        let step = &results.steps[0];
        assert_eq!(step.outcomes.get(&Outcome::Ok).copied(), Some(step.count), "{mix}: {:?}", step.outcomes);
        assert!(step.count >= 235, "{mix}: {} requests", step.count);
        let exposition = reqwest::get(format!("{}/metrics", gateway.url("http"))).await.unwrap().text().await.unwrap();
        assert_eq!(metric_value(&exposition, series, &labels), Some(step.count as f64), "{mix}");
    }
}

fn loadgen(args: &[&str]) -> (Option<i32>, String) {
    let output = std::process::Command::new(q2o_testkit::bin_dir().join("q2o-loadgen")).args(args).output().unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn bad_flags_and_unreachable_targets_exit_2_with_one_clear_sentence() {
    for (args, needle) in [
        (&["run", "--url", "http://127.0.0.1:9/", "--rate", "-5", "--duration", "1s"][..], "--rate"),
        (&["run", "--url", "http://127.0.0.1:9/", "--rate", "0", "--duration", "1s"][..], "--rate"),
        (&["run", "--url", "http://127.0.0.1:9/", "--rate", "5", "--duration", "5x"][..], "duration"),
        (
            &["run", "--url", "http://127.0.0.1:9/", "--rate", "5", "--duration", "1s", "--ramp-to", "nan"][..],
            "--ramp-to",
        ),
        (
            &["run", "--rest-url", "http://127.0.0.1:9", "--rate", "5", "--duration", "1s"][..],
            "cannot reach the gateway",
        ),
        (
            &["run", "--rest-url", "http://127.0.0.1:9", "--rate", "5", "--duration", "1s", "--mix", "rest:dance"][..],
            "--mix",
        ),
        (&["run", "--rate", "5", "--duration", "1s"][..], "--rest-url"),
        (&["merge", "/nonexistent/results.json", "--out", "/tmp"][..], "/nonexistent/results.json"),
        (&["run", "--url", "http://127.0.0.1:9/", "--rate", "5", "--duration", "1s", "--processes", "2"][..], "--out"),
        (
            &["users", "--rest-url", "http://127.0.0.1:9", "--users", "5", "--hold", "1s"][..],
            "cannot reach the gateway",
        ),
        (&["users", "--rest-url", "http://127.0.0.1:9", "--users", "0", "--hold", "1s"][..], "--users"),
        (
            &["users", "--rest-url", "http://127.0.0.1:9", "--users", "5", "--hold", "1s", "--think", "gauss:1s"][..],
            "--think",
        ),
        (
            &["users", "--rest-url", "http://127.0.0.1:9", "--users", "5", "--hold", "1s", "--journeys", "dance"][..],
            "--journeys",
        ),
        (
            &["users", "--rest-url", "http://127.0.0.1:9", "--users", "5", "--hold", "1s", "--ramp-rate", "-1"][..],
            "--ramp-rate",
        ),
    ] {
        let (code, stderr) = loadgen(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: `{stderr}` should mention `{needle}`");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_split_over_processes_merges_into_one_result() {
    let url = stalling_server().await;
    let dir = ScratchDir::new("split").unwrap();
    let out = dir.path().to_str().unwrap().to_owned();
    let binary = q2o_testkit::bin_dir().join("q2o-loadgen");
    let args = ["run", "--url", &url, "--rate", "100", "--duration", "2s", "--processes", "2", "--out", &out];
    let output = tokio::process::Command::new(binary).args(args).output().await.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let merged = RunResults::read(&dir.path().join("results.json")).unwrap();
    let parts: Vec<RunResults> =
        (0..2).map(|i| RunResults::read(&dir.path().join(format!("part-{i}/results.json"))).unwrap()).collect();
    assert_eq!(merged.processes, 2);
    assert_eq!(merged.target_rate.start, 100.0, "each process ran half the rate");
    assert_eq!(parts[0].target_rate.start, 50.0);
    assert_eq!(merged.steps[0].count, parts[0].steps[0].count + parts[1].steps[0].count);
    assert_eq!(merged.steps[0].count, 200, "2 s at 100 req/s in all");
}
