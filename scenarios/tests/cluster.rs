//! The Indexed Job contract without a cluster: the Job `q2o-bench render`
//! writes runs as N loadgen containers beside the docker environment, each
//! given `JOB_COMPLETION_INDEX` as the Job controller gives it and the
//! Job's own image, arguments and environment; a Prometheus scrapes them and
//! the stack as the cluster's would. `q2o-bench collect` fetches what the
//! containers serve, and `q2o-bench judge` over it must say what the exact
//! local merge of the same parts says. What this cannot show (scheduling,
//! the Job controller, the Prometheus Operator) is the cluster's.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use q2o_env::binaries::Binaries;
use q2o_env::endpoints::ScrapeTarget;
use q2o_env::prometheus::Prometheus;
use q2o_env::topology::Topology;
use q2o_env::{EnvKind, Environment};
use q2o_loadgen::results::RunResults;
use q2o_scenarios::scenario::Scenario;
use q2o_slo::gates::{Gate, gate_rules};
use q2o_testkit::{ScratchDir, docker};
use serde_json::Value;

const PODS: usize = 3;

const SCENARIO: &str = r#"
name = "cluster-contract"
description = "The loadgen's Indexed Job contract, as containers"

[load]
users = 60
ramp_rate = 60
hold = "12s"
ramp_down = "1s"
think = "const:500ms"
journeys = { browse = 3, submit_task = 1 }
protocols = { rest = 1, grpc = 1 }

[topology]
gateways = 1
agent_processes = 1
redis = true

[[criteria]]
name = "api_p95"
sli = "api_latency_p95"
op = "<"
target = 1.0

[[criteria]]
name = "errors"
sli = "error_rate"
op = "<="
target = 0.01

[[criteria]]
name = "users"
sli = "users_reached"
op = ">="
target = 60

[[criteria]]
name = "tasks_unfinished"
sli = "tasks_unfinished"
op = "<="
target = 0
"#;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// Removes the run's loadgen containers, however the test ends.
struct Containers(String);

impl Drop for Containers {
    fn drop(&mut self) {
        let label = format!("label=q2o.contract={}", self.0);
        let ids = Command::new("docker").args(["ps", "-aq", "--filter", &label]).output();
        for id in ids.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default().split_whitespace() {
            let _ = Command::new("docker").args(["rm", "-f", id]).output();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loadgen_job_as_containers_is_judged_as_its_local_merge() {
    if !docker::available() {
        eprintln!("skipping the Indexed Job contract: /var/run/docker.sock is absent (no docker engine here)");
        return;
    }
    docker::build_images(&["redis", "agents", "gateway", "loadgen"]);

    let dir = ScratchDir::new("cluster-contract").unwrap();
    let scenario_file = dir.path().join("cluster-contract.toml");
    std::fs::write(&scenario_file, SCENARIO).unwrap();
    let scenario = Scenario::load(&scenario_file).unwrap();
    let topology: Topology = scenario.topology.clone();
    let run_id = format!("contract{}", std::process::id());
    let binaries = Binaries { q2o: q2o_testkit::bin_dir(), ..Binaries::discover() };
    let env = Environment::start(&topology, EnvKind::Docker, &binaries, dir.path(), &run_id).await.unwrap();
    let network = format!("q2o-{run_id}");
    let gateway = format!("{network}-gateway-0");

    // The run's manifests, for pods that reach the gateway by its container name.
    let rendered = dir.path().join("rendered");
    let bench = |args: &[&str]| {
        let output = Command::new(q2o_testkit::bin_dir().join("q2o-bench")).args(args).current_dir(repo()).output();
        let output = output.unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.code(), text)
    };
    let (code, said) = bench(&[
        "render",
        scenario_file.to_str().unwrap(),
        "--pods",
        &PODS.to_string(),
        "--rest-url",
        &format!("http://{gateway}:8080"),
        "--grpc-url",
        &format!("http://{gateway}:9090"),
        "--start-in",
        "20s",
        "--serve-results",
        "3m",
        "--out",
        rendered.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{said}");
    let job: Value =
        serde_json::from_str(&std::fs::read_to_string(rendered.join("loadgen-job.json")).unwrap()).unwrap();
    assert_eq!(job["spec"]["completions"], PODS);
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    let image = container["image"].as_str().unwrap();
    let args: Vec<&str> = container["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();

    // One container per completion index, as the Job controller would start them.
    let _containers = Containers(run_id.clone());
    let mut urls = Vec::new();
    let mut targets: Vec<ScrapeTarget> = env.endpoints.targets.clone();
    for index in 0..PODS {
        let name = format!("{network}-loadgen-{index}");
        let mut run = vec!["run", "-d", "--name", &name, "--network", &network, "-p", "127.0.0.1::9100"];
        let label = format!("q2o.contract={run_id}");
        let index_var = format!("JOB_COMPLETION_INDEX={index}");
        run.extend(["--label", &label, "-e", &index_var]);
        let vars: Vec<String> = container["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| format!("{}={}", v["name"].as_str().unwrap(), v["value"].as_str().unwrap()))
            .collect();
        for var in &vars {
            run.extend(["-e", var]);
        }
        run.push(image);
        run.extend(&args);
        docker::cli(&run);
        let port = Command::new("docker").args(["port", &name, "9100/tcp"]).output().unwrap();
        assert!(port.status.success(), "loadgen {index} is not running: {}", docker::cli(&["logs", &name]));
        let published = String::from_utf8_lossy(&port.stdout).trim().to_owned();
        let addr = published.lines().next().unwrap().to_owned();
        urls.push(format!("http://{addr}"));
        targets.push(ScrapeTarget { job: "loadgen".into(), addr: addr.parse().unwrap() });
    }

    // The cluster's Prometheus: the same rules, scraping the stack and the pods.
    let rules = dir.path().join("gate.rules.yml");
    let gate = Gate { phase: &scenario.name, description: &scenario.description, criteria: &scenario.criteria };
    std::fs::write(&rules, gate_rules(&[gate])).unwrap();
    let rule_files = vec![repo().join("alerts/slis.rules.yml"), repo().join("alerts/slos.rules.yml"), rules];
    let prometheus_dir = dir.path().join("prometheus");
    std::fs::create_dir_all(&prometheus_dir).unwrap();
    let prometheus = Prometheus::start(
        &env.harness,
        &binaries.prometheus,
        &prometheus_dir,
        &targets,
        &rule_files,
        &[("phase", "cluster-contract")],
        0,
    )
    .await
    .unwrap();

    // Collected as the runner would from a cluster (there, through port-forwards).
    let results = dir.path().join("results");
    let mut collect = vec!["collect", "--out", results.to_str().unwrap(), "--wait", "2m"];
    collect.extend(urls.iter().map(String::as_str));
    let (code, said) = bench(&collect);
    assert_eq!(code, Some(0), "{said}");
    // Fetched, every pod completes by itself.
    for index in 0..PODS {
        let name = format!("{network}-loadgen-{index}");
        let status = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::task::spawn_blocking(move || docker::cli(&["wait", &name])),
        )
        .await
        .expect("a pod whose results were fetched exits")
        .unwrap();
        assert_eq!(status, "0", "loadgen {index}: {}", docker::cli(&["logs", &format!("{network}-loadgen-{index}")]));
    }

    let parts: Vec<RunResults> =
        (0..PODS).map(|i| RunResults::read(&results.join(format!("part-{i}/results.json"))).unwrap()).collect();
    // The start barrier lines the pods' ramps up within a second.
    let starts: Vec<f64> = parts.iter().map(|p| p.started_at.expect("each pod says when it started")).collect();
    let spread = starts.iter().copied().fold(f64::MIN, f64::max) - starts.iter().copied().fold(f64::MAX, f64::min);
    assert!(spread < 1.0, "the pods started {spread:.3} s apart: {starts:?}");
    // Each pod ran its share of the users.
    let users: Vec<u64> = parts.iter().map(|p| p.users.unwrap()).collect();
    assert_eq!(users, [20, 20, 20]);
    let local = RunResults::merge(&parts).unwrap();

    // Give Prometheus a last scrape of the stack, then judge.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let reports = dir.path().join("reports");
    let redis = env.endpoints.redis_url.clone().unwrap();
    let (code, said) = bench(&[
        "judge",
        scenario_file.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--prometheus",
        prometheus.url(),
        "--redis-url",
        &redis,
        "--env",
        "docker",
        "--reports",
        reports.to_str().unwrap(),
        "--dashboards-dir",
        repo().join("dashboards/grafana").to_str().unwrap(),
    ]);
    env.stop().await;
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("cluster-contract: GO (3 loadgen parts merged)"), "{said}");

    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("cluster-contract/latest/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["environment"]["kind"], "docker");
    // The judged counts are the exact merge's.
    let requests: u64 = local.steps.iter().map(|s| s.count).sum();
    assert!(requests > 0);
    assert_eq!(summary["load"]["requests"], requests, "{}", summary["load"]);
    assert_eq!(summary["load"]["failed"], local.failed(), "{}", summary["load"]);
    let p95 = local.overall_latency().unwrap().value_at_quantile(0.95) as f64 / 1e6;
    let judged = summary["criteria"].as_array().unwrap().iter().find(|c| c["name"] == "api_p95").unwrap();
    assert!(judged["exact"].is_number(), "{judged}");
    assert!(p95 > 0.0);
    let users = summary["criteria"].as_array().unwrap().iter().find(|c| c["name"] == "users").unwrap();
    assert_eq!(users["measured"], 60.0, "{users}");
    let tasks = summary["criteria"].as_array().unwrap().iter().find(|c| c["name"] == "tasks_unfinished").unwrap();
    assert_eq!(tasks["verdict"], "pass", "{tasks}");
}
