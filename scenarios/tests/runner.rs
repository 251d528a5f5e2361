//! `q2o-bench run` end to end on the local environment: real redis-server,
//! tansu, Prometheus and our binaries.

use std::path::{Path, PathBuf};
use std::process::Command;

use q2o_testkit::ScratchDir;
use q2o_testkit::docker;
use serde_json::Value;

use crate::schema::violations;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

pub(crate) fn bench(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let output = Command::new(q2o_testkit::bin_dir().join("q2o-bench"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(repo())
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Processes whose command line mentions `dir`: everything a run started does
/// (configs, data and logs all live in its folder).
pub(crate) fn processes_mentioning(dir: &Path) -> Vec<String> {
    let needle = dir.to_str().unwrap();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) && !cmdline.contains("q2o-bench run") {
            found.push(cmdline);
        }
    }
    found
}

pub(crate) fn run_dir(reports: &Path, scenario: &str) -> PathBuf {
    reports.join(scenario).join("latest").canonicalize().expect("the latest link points at the run")
}

#[test]
fn a_scaled_down_phase2_writes_every_report_file_from_this_run_and_leaves_nothing_running() {
    let reports = ScratchDir::new("bench-phase2").unwrap();
    let out = reports.path().to_str().unwrap();
    let (code, stdout, stderr) =
        bench(&["run", "scenarios/phase2.toml", "--users", "200", "--duration", "20s", "--reports", out], &[]);
    // GO or NO-GO both mean the run worked; what this machine achieves is the report's business.
    assert!(matches!(code, Some(0 | 1)), "exit {code:?}\n{stdout}\n{stderr}");
    let dir = run_dir(reports.path(), "phase2");
    assert!(stdout.contains(dir.join("report.html").to_str().unwrap()), "prints where the report is: {stdout}");
    for file in ["summary.json", "report.md", "report.html", "junit.xml", "loadgen/results.json", "prometheus.yml"] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    for service in ["redis", "broker", "search", "agents-0", "gateway-0", "prometheus", "loadgen-0"] {
        assert!(dir.join(format!("logs/{service}.log")).is_file(), "log of {service} missing");
    }
    for packed in ["agents-1", "gateway-1"] {
        assert!(!dir.join(format!("logs/{packed}.log")).exists(), "phase2's two replicas share one process here");
    }

    let summary: Value = serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    let schema: Value =
        serde_json::from_slice(&std::fs::read(repo().join("scenarios/summary.schema.json")).unwrap()).unwrap();
    let mut problems = Vec::new();
    violations(&schema, &summary, "summary", &mut problems);
    assert!(problems.is_empty(), "summary.json breaks its schema: {problems:#?}");
    assert_eq!(summary["sizes"]["users"], 200);
    assert_eq!(summary["sizes"]["users_in_file"], 50000);
    assert_eq!(summary["sizes"]["scaled"], true);

    // Every criterion measured, by this run: the values agree with this run's loadgen records.
    let criteria = summary["criteria"].as_array().unwrap();
    assert_eq!(criteria.len(), 8);
    for c in criteria {
        assert!(c["measured"].is_number(), "{} has no value: {c}", c["name"]);
    }
    let by_name = |n: &str| criteria.iter().find(|c| c["name"] == n).unwrap();
    assert_eq!(by_name("users")["exact"], 200.0, "all 200 users were active at once");
    // Lost events are proven by the census of the log against the audit
    // ledger, once the audit group caught up; what it had not consumed is not loss.
    assert_eq!(by_name("events_lost")["source"], "census");
    let events = &summary["events"];
    assert!(events["checked"].as_u64().unwrap() > 0, "{events}");
    assert_eq!(events["lost"], events["missing_from_ledger"].as_u64().unwrap() + events["given_up"].as_u64().unwrap());
    assert_eq!(by_name("events_lost")["measured"].as_f64().unwrap(), events["lost"].as_f64().unwrap());
    // Errors and tasks are judged: from the loadgen's exact counts, and from Redis.
    assert_eq!(by_name("availability")["source"], "loadgen-hdr");
    assert_eq!(by_name("task_success")["source"], "loadgen-hdr");
    assert_eq!(by_name("tasks_unfinished")["source"], "redis");
    assert!(by_name("inter_agent_p95")["prometheus"].as_f64().unwrap() > 0.0, "coder tasks called QA over gRPC");
    let results: Value = serde_json::from_slice(&std::fs::read(dir.join("loadgen/results.json")).unwrap()).unwrap();
    let requests: u64 = results["steps"].as_array().unwrap().iter().map(|s| s["count"].as_u64().unwrap()).sum();
    assert_eq!(summary["load"]["requests"], requests);
    assert!(requests > 200, "every user logged in and did more: {requests}");
    // Where the machine's capacity went: every service and harness process, measured.
    let resources = &summary["resources"];
    assert_eq!(
        resources["machine"]["cores"].as_u64().unwrap() as usize,
        std::thread::available_parallelism().unwrap().get()
    );
    let processes = resources["processes"].as_array().unwrap();
    let names: Vec<&str> = processes.iter().map(|p| p["name"].as_str().unwrap()).collect();
    for name in ["redis", "broker", "search", "agents-0", "gateway-0", "prometheus", "loadgen-0", "runner"] {
        assert!(names.contains(&name), "{name} is not in {names:?}");
    }
    let gateway = processes.iter().find(|p| p["name"] == "gateway-0").unwrap();
    assert_eq!(gateway["role"], "service");
    assert!(
        gateway["cpu_cores_mean"].as_f64().unwrap() > 0.0 && gateway["rss_peak_bytes"].as_u64().unwrap() > 0,
        "{gateway}"
    );
    assert!(gateway["cpu_us_per_request"].as_f64().unwrap() > 0.0, "{gateway}");
    assert!(processes.iter().any(|p| p["role"] == "harness" && p["name"] == "loadgen-0"));
    assert!(summary.as_object().unwrap().contains_key("saturation"));
    // All 200 users were on time, and the loadgen was not what saturated.
    assert_eq!(summary["warnings"], serde_json::json!([]), "{}", summary["warnings"]);
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("## Where the machine's capacity went") && md.contains("| gateway-0 | service |"), "{md}");
    let verdict = summary["verdict"].as_str().unwrap();
    assert_eq!(code == Some(0), verdict == "GO");

    // Every SLI and SLO recording rule had data, and every panel of every
    // dashboard answered for this run (its phase and run id).
    let slis = &summary["slis"];
    assert!(slis["recorded"].as_u64().unwrap() >= 15, "{slis}");
    assert_eq!(slis["with_data"], slis["recorded"], "recording rules without data: {}", slis["empty"]);
    let dashboards = &summary["dashboards"];
    assert!(dashboards["queries"].as_u64().unwrap() >= 20, "{dashboards}");
    assert_eq!(dashboards["with_data"], dashboards["queries"], "panels without data: {}", dashboards["empty"]);
    // Every service and the loadgen were scraped: the gateway and the agents
    // (each its two replicas in one process here), search, and the one
    // loadgen process 200 users need.
    assert_eq!(summary["sizes"]["loadgen_processes"], 1);
    assert_eq!(summary["scrape"]["targets"], 4, "{}", summary["scrape"]);
    assert_eq!(summary["scrape"]["up"], 4, "{}", summary["scrape"]);
    // Every alert the run loaded (SLO, operational and this phase's gate) is unit-tested.
    let alert_tests = &summary["alert_tests"];
    assert!(alert_tests["alerts"].as_u64().unwrap() >= 40, "{alert_tests}");
    assert_eq!(alert_tests["tested"], alert_tests["alerts"], "{alert_tests}");

    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("<svg"), "charts are inline SVG");
    assert!(!html.contains("<script") && !html.contains("src=\"http"), "the page is self-contained");
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase").count(), 8, "one test case per criterion");

    assert!(processes_mentioning(&dir).is_empty(), "left running: {:?}", processes_mentioning(&dir));
    let prometheus_yml = std::fs::read_to_string(dir.join("prometheus.yml")).unwrap();
    for line in prometheus_yml.lines().filter(|l| l.trim_start().starts_with("- '127.0.0.1:")) {
        let addr = line.trim().trim_start_matches("- '").trim_end_matches('\'');
        assert!(std::net::TcpStream::connect(addr).is_err(), "{addr} still listening");
    }
}

#[test]
fn an_impossible_target_fails_the_gate_and_the_report_names_it() {
    let dir = ScratchDir::new("bench-impossible").unwrap();
    let scenario = dir.path().join("impossible.toml");
    std::fs::write(
        &scenario,
        r#"
name = "impossible"
description = "p95 under a microsecond"
[load]
users = 20
ramp_rate = 20
hold = "5s"
ramp_down = "1s"
think = "const:200ms"
journeys = { browse = 1 }
protocols = { rest = 1 }
[topology]
redis = true
[[criteria]]
name = "p95_under_a_microsecond"
sli = "api_latency_p95"
op = "<"
target = 0.000001
[[criteria]]
name = "available"
sli = "availability"
op = ">="
target = 0.99
"#,
    )
    .unwrap();
    let reports = dir.path().join("reports");
    let (code, stdout, stderr) =
        bench(&["run", scenario.to_str().unwrap(), "--reports", reports.to_str().unwrap()], &[]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("p95_under_a_microsecond missed"), "{stdout}");
    let run = run_dir(&reports, "impossible");
    let summary: Value = serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["verdict"], "NO-GO");
    // Named among the reasons; a busy CI machine may add its saturation first.
    let reasons = summary["reasons"].as_array().unwrap();
    assert!(
        reasons.iter().any(|r| r.as_str().unwrap().starts_with("p95_under_a_microsecond")),
        "{}",
        summary["reasons"]
    );
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(md.contains("p95_under_a_microsecond missed"), "{md}");
    assert!(
        std::fs::read_to_string(run.join("junit.xml")).unwrap().contains("<failure message=\"p95_under_a_microsecond")
    );
}

#[test]
fn a_service_that_cannot_start_exits_2_with_the_reason_and_stops_the_rest() {
    let dir = ScratchDir::new("bench-startup").unwrap();
    // Our binaries, except a gateway that dies at once.
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for name in ["q2o-agents", "q2o-loadgen", "q2o-search", "q2o-monolith"] {
        std::os::unix::fs::symlink(q2o_testkit::bin_dir().join(name), bin.join(name)).unwrap();
    }
    let gateway = bin.join("q2o-gateway");
    std::fs::write(&gateway, "#!/bin/sh\necho 'q2o-gateway: cannot bind: address already in use' >&2\nexit 1\n")
        .unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(&mut std::fs::metadata(&gateway).unwrap().permissions(), 0o755);
    std::fs::set_permissions(&gateway, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let reports = dir.path().join("reports");
    let args =
        ["run", "scenarios/phase1.toml", "--users", "10", "--duration", "5s", "--reports", reports.to_str().unwrap()];
    let (code, stdout, stderr) = bench(&args, &[("Q2O_BIN_DIR", bin.to_str().unwrap())]);
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("gateway-0 did not become ready"), "{stderr}");
    assert!(stderr.contains("address already in use"), "the reason includes the service's own words: {stderr}");
    let run = run_dir(&reports, "phase1");
    assert!(processes_mentioning(&run).is_empty(), "left running: {:?}", processes_mentioning(&run));
    let summary: Value = serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["verdict"], "ERROR");

    // A missing program is named before anything starts.
    let (code, _, stderr) = bench(&args, &[("Q2O_BIN_DIR", "/nonexistent")]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("/nonexistent/q2o-loadgen not found"), "{stderr}");
}

/// A scaled run of a scenario that kills gateway-0 behind the load balancer,
/// in `env`: its summary, after checking what both environments must show.
fn failover_in(scenario: &str, env: &str) -> Value {
    let reports = ScratchDir::new(&format!("bench-{scenario}-{env}")).unwrap();
    let out = reports.path().to_str().unwrap();
    let file = format!("scenarios/{scenario}.toml");
    let args = ["run", &file, "--env", env, "--users", "300", "--duration", "20s", "--reports", out];
    let (code, stdout, stderr) = bench(&args, &[]);
    assert!(matches!(code, Some(0 | 1)), "{env}: exit {code:?}\n{stdout}\n{stderr}");
    let dir = run_dir(reports.path(), scenario);
    let summary: Value = serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    let schema: Value =
        serde_json::from_slice(&std::fs::read(repo().join("scenarios/summary.schema.json")).unwrap()).unwrap();
    let mut problems = Vec::new();
    violations(&schema, &summary, "summary", &mut problems);
    assert!(problems.is_empty(), "{env}: summary.json breaks its schema: {problems:#?}");
    assert_eq!(summary["environment"]["kind"], env);

    // The kill happened, mid-run, and the replica came back.
    let fault = &summary["faults"][0];
    assert_eq!((fault["action"].as_str(), fault["done"].as_bool()), (Some("kill"), Some(true)), "{env}: {fault}");
    let at = fault["at"].as_f64().unwrap();
    assert!(at > 3.0 && at < 20.0, "{env}: the kill falls in the hold: {at}");
    assert!(fault["recovered_after"].as_f64().unwrap() < 10.0, "{env}: {fault}");
    assert!(!std::fs::read_to_string(dir.join("logs/gateway-0.log")).unwrap().is_empty(), "{env}: gateway-0 logged");

    // Through the balancer, the users barely noticed: the gate's availability holds.
    let criteria = summary["criteria"].as_array().unwrap();
    let by_name = |n: &str| criteria.iter().find(|c| c["name"] == n).unwrap_or_else(|| panic!("{n} missing"));
    let availability = by_name("availability")["measured"].as_f64().unwrap();
    assert!(availability >= 0.999, "{env}: availability {availability} through the load balancer");
    assert_eq!(by_name("gateway-0_recovers_after_kill")["verdict"], "pass", "{env}");
    let burst = &summary["error_burst"];
    assert!(burst["seconds"].as_f64().unwrap() < 10.0, "{env}: {burst}");
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("kill gateway-0, ready again after"), "{env}: {md}");
    assert!(processes_mentioning(&dir).is_empty(), "{env}: left running: {:?}", processes_mentioning(&dir));
    summary
}

/// Runs `scenario` locally and, where a docker engine runs, in containers:
/// the same verdicts, and nothing of the docker run left behind.
fn in_both_environments(scenario: &str) {
    let local = failover_in(scenario, "local");
    if !docker::available() {
        eprintln!("skipping the docker half: /var/run/docker.sock is absent (no docker engine here)");
        return;
    }
    // Every image, from the binaries under test (a no-op when they are current).
    docker::build_images(&[]);

    let docker_run = failover_in(scenario, "docker");
    let verdicts = |s: &Value| -> Vec<(String, String)> {
        let mut v: Vec<_> = s["criteria"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["name"].as_str().unwrap().to_owned(), c["verdict"].as_str().unwrap().to_owned()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(verdicts(&local), verdicts(&docker_run), "the same scenario, the same verdicts");
    let run_id = docker_run["run_id"].as_str().unwrap();
    assert_eq!(docker::cli(&["ps", "-a", "-q", "--filter", &format!("label=q2o.run={run_id}")]), "", "containers left");
    let network = format!("q2o-{}", run_id.to_lowercase());
    assert_eq!(docker::cli(&["network", "ls", "-q", "--filter", &format!("name={network}")]), "", "network left");
}

#[test]
fn a_gateway_killed_behind_the_load_balancer_costs_the_users_almost_nothing_locally_and_in_docker() {
    in_both_environments("failover");
}

#[test]
fn a_scaled_phase1_gives_the_same_verdicts_locally_and_in_docker() {
    in_both_environments("phase1");
}

#[test]
fn a_broker_restart_loses_no_event_and_no_task() {
    let reports = ScratchDir::new("bench-broker-restart").unwrap();
    let out = reports.path().to_str().unwrap();
    let args = ["run", "scenarios/broker-restart.toml", "--users", "200", "--duration", "30s", "--reports", out];
    let (code, stdout, stderr) = bench(&args, &[]);
    assert!(matches!(code, Some(0 | 1)), "exit {code:?}\n{stdout}\n{stderr}");
    let summary: Value =
        serde_json::from_slice(&std::fs::read(run_dir(reports.path(), "broker-restart").join("summary.json")).unwrap())
            .unwrap();
    let faults: Vec<_> = summary["faults"].as_array().unwrap().iter().map(|f| f["action"].as_str().unwrap()).collect();
    assert_eq!(faults, ["stop", "start"]);
    let criteria = summary["criteria"].as_array().unwrap();
    let by_name = |n: &str| criteria.iter().find(|c| c["name"] == n).unwrap_or_else(|| panic!("{n} missing"));
    assert_eq!(by_name("no_event_lost")["measured"], 0.0, "{}", by_name("no_event_lost"));
    assert_eq!(by_name("no_event_lost")["source"], "census");
    assert_eq!(summary["events"]["lost"], 0, "{}", summary["events"]);
    assert_eq!(by_name("no_task_lost")["measured"], 0.0, "{}", by_name("no_task_lost"));
    assert_eq!(by_name("no_task_lost")["source"], "redis");
    assert_eq!(by_name("broker_recovers_after_start")["verdict"], "pass");
}

#[test]
fn a_broker_down_past_the_producers_give_up_time_loses_events_and_the_census_counts_them() {
    // The agents' producers give up on an event after retrying it for 60 s:
    // a broker down for 70 s while tasks finish loses the events of its
    // first 10 s for real.
    let dir = ScratchDir::new("bench-broker-outage").unwrap();
    let scenario = dir.path().join("outage.toml");
    std::fs::write(
        &scenario,
        r#"
name = "broker-outage"
description = "the broker down past the producers' give-up time"
[load]
users = 40
ramp_rate = 40
hold = "85s"
ramp_down = "1s"
think = "const:500ms"
journeys = { submit_task = 1 }
protocols = { rest = 1 }
[topology]
agent_processes = 2
redis = true
kafka = true
[[faults]]
at = "5s"
action = "stop"
service = "broker"
[[faults]]
at = "75s"
action = "start"
service = "broker"
recover_within = "20s"
[[criteria]]
name = "no_event_lost"
sli = "events_lost"
op = "<="
target = 0
"#,
    )
    .unwrap();
    let reports = dir.path().join("reports");
    let (code, stdout, stderr) =
        bench(&["run", scenario.to_str().unwrap(), "--reports", reports.to_str().unwrap()], &[]);
    assert_eq!(code, Some(1), "NO-GO on the lost events:\n{stdout}\n{stderr}");
    let summary: Value =
        serde_json::from_slice(&std::fs::read(run_dir(&reports, "broker-outage").join("summary.json")).unwrap())
            .unwrap();
    let events = &summary["events"];
    let given_up = events["given_up"].as_u64().unwrap();
    assert!(given_up > 0, "the producers gave up on events: {events}");
    assert_eq!(events["lost"], events["missing_from_ledger"].as_u64().unwrap() + given_up, "{events}");
    let lost = summary["criteria"].as_array().unwrap().iter().find(|c| c["name"] == "no_event_lost").unwrap();
    assert_eq!((&lost["verdict"], &lost["source"]), (&"fail".into(), &"census".into()), "{lost}");
    assert_eq!(lost["measured"].as_f64().unwrap(), events["lost"].as_f64().unwrap());
    assert!(stdout.contains("no_event_lost missed"), "{stdout}");
}

#[test]
fn a_network_fault_is_refused_by_the_local_environment_before_anything_starts() {
    let dir = ScratchDir::new("bench-netfault").unwrap();
    let scenario = dir.path().join("cut.toml");
    // A disconnect that is never undone lasts to the end of the hold, so
    // nothing comes after it: the criterion of the time after it goes too.
    let text = std::fs::read_to_string(repo().join("scenarios/failover.toml"))
        .unwrap()
        .replace(
            "action = \"kill\"\nservice = \"gateway-0\"\nrecover_within = \"10s\"",
            "action = \"disconnect\"\nservice = \"redis\"",
        )
        .replace("window = \"after:replica_loss+10s\"\n", "");
    std::fs::write(&scenario, text).unwrap();
    let reports = dir.path().join("reports");
    let (code, _, stderr) = bench(&["run", scenario.to_str().unwrap(), "--reports", reports.to_str().unwrap()], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("faults[0].action: `disconnect` needs the docker environment"), "{stderr}");
    assert!(!reports.join("failover").exists(), "nothing started, no run folder");
}

fn yml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    files
}

fn promtool(args: &[&str], files: &[PathBuf], cwd: &Path) {
    let output =
        Command::new("promtool").args(args).args(files).current_dir(cwd).output().expect("setup.sh installs promtool");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "promtool {args:?}: {said}");
}

#[test]
fn every_rule_file_passes_promtool_check_and_its_unit_tests() {
    let (code, stdout, stderr) = bench(&["rules", "--check"], &[]);
    assert_eq!(code, Some(0), "alerts/ is stale: {stdout}{stderr}");
    let alerts = repo().join("alerts");
    let rules = yml_files(&alerts);
    assert!(rules.len() >= 2);
    promtool(&["check", "rules"], &rules, &alerts);
    // Every gate alert fires just past its threshold and not just inside it;
    // the SLI recording rules compute what they claim from shaped series.
    let tests = yml_files(&alerts.join("tests"));
    assert!(tests.iter().any(|t| t.ends_with("gates.test.yml")) && tests.iter().any(|t| t.ends_with("slis.test.yml")));
    promtool(&["test", "rules"], &tests, &alerts.join("tests"));
    assert!(tests.iter().any(|t| t.ends_with("slos.test.yml")), "burn-rate and operational alerts are tested");

    // The PrometheusRule manifest holds the same rules as the files.
    let manifest =
        std::fs::read_to_string(repo().join("deploy/kubernetes/base/monitoring/prometheus-rules.yaml")).unwrap();
    assert!(manifest.contains("kind: PrometheusRule\n"));
    let count = |text: &str| text.matches("- alert: ").count() + text.matches("- record: ").count();
    let in_files: usize = rules.iter().map(|f| count(&std::fs::read_to_string(f).unwrap())).sum();
    assert_eq!(count(&manifest), in_files);
}

#[test]
fn ctrl_c_stops_every_process_and_exits_2() {
    let reports = ScratchDir::new("bench-interrupt").unwrap();
    let child = Command::new(q2o_testkit::bin_dir().join("q2o-bench"))
        .args(["run", "scenarios/phase1.toml", "--users", "20", "--duration", "60s", "--reports"])
        .arg(reports.path())
        .current_dir(repo())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the users are running: their loadgen log exists.
    let started = std::time::Instant::now();
    let log = loop {
        let found = std::fs::read_dir(reports.path().join("phase1"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("logs/loadgen-0.log"))
            .find(|p| p.exists());
        if let Some(log) = found {
            break log;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(180), "the run never started its users");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let run = log.parent().unwrap().parent().unwrap().to_owned();
    assert!(!processes_mentioning(&run).is_empty(), "the services are running");
    // SAFETY: kill(2) on the child this test spawned.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(processes_mentioning(&run).is_empty(), "left running: {:?}", processes_mentioning(&run));
    let summary: Value = serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["verdict"], "ERROR");
}

#[test]
fn a_run_held_against_a_slower_baseline_passes_and_against_a_faster_one_regresses() {
    let dir = ScratchDir::new("bench-baseline").unwrap();
    let write = |name: &str, scenario: &str, p95: f64| {
        let run = dir.path().join(name);
        std::fs::create_dir_all(&run).unwrap();
        let summary = serde_json::json!({
            "scenario": scenario, "run_id": name, "verdict": "GO",
            "criteria": [{"name": "api_p95", "op": "<", "measured": p95, "verdict": "pass"}],
            "load": {"steps": [{"protocol": "grpc", "step": "get_project", "p95_ms": p95 * 1e3}]}
        });
        std::fs::write(run.join("summary.json"), summary.to_string()).unwrap();
        run.to_str().unwrap().to_owned()
    };
    let (fast, slow, other) =
        (write("fast", "phase2", 0.010), write("slow", "phase2", 0.020), write("x", "phase3", 0.01));
    let (code, stdout, stderr) = bench(&["report", &slow, "--baseline", &fast], &[]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("2 regressions"), "{stdout}");
    let written = std::fs::read_to_string(Path::new(&slow).join("baseline.md")).unwrap();
    assert!(written.contains("| api_p95 | 0.0100 | 0.0200 | +100.0 % | REGRESSION |"), "{written}");
    let (code, stdout, _) = bench(&["report", &fast, "--baseline", &slow], &[]);
    assert_eq!(code, Some(0), "faster than the baseline: {stdout}");
    let (code, _, stderr) = bench(&["report", &fast, "--baseline", &other], &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("is a run of phase3, not of phase2"), "{stderr}");
}
