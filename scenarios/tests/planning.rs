//! `q2o-bench run scenarios/rest-vs-grpc.toml` and `q2o-bench capacity`, end
//! to end on short rounds and steps: real services, the real loadgen, and
//! the gate run on each side of the knee the capacity search found.

use q2o_testkit::ScratchDir;
use serde_json::Value;

use crate::runner::{bench, processes_mentioning, run_dir};

#[test]
fn a_short_rest_versus_grpc_comparison_measures_both_protocols_and_states_a_verdict() {
    let reports = ScratchDir::new("bench-compare").unwrap();
    let out = reports.path().to_str().unwrap();
    // Rounds of 2 s instead of 10 (saturation too), the file's rates.
    let (code, stdout, stderr) =
        bench(&["run", "scenarios/rest-vs-grpc.toml", "--scale", "0.2", "--reports", out], &[]);
    assert!(matches!(code, Some(0 | 1)), "exit {code:?}\n{stdout}\n{stderr}");
    let dir = run_dir(reports.path(), "rest-vs-grpc");
    assert!(stdout.contains(dir.join("report.html").to_str().unwrap()), "{stdout}");
    let report: Value = serde_json::from_slice(&std::fs::read(dir.join("comparison.json")).unwrap()).unwrap();
    assert_eq!(report["valid"] == true, code == Some(0), "{}", report["reasons"]);
    assert_eq!(report["round_figures"].as_array().unwrap().len(), 12, "6 rounds per protocol");

    let operations = report["operations"].as_array().unwrap();
    let names: Vec<&str> = operations.iter().map(|o| o["operation"].as_str().unwrap()).collect();
    for op in ["list_projects", "get_project", "project_status", "submit_task", "review", "all"] {
        assert!(names.contains(&op), "{op} missing from {names:?}");
    }
    for o in operations {
        for protocol in ["rest", "grpc"] {
            assert!(o[protocol]["count"].as_u64().unwrap() > 0, "{}: no {protocol} requests", o["operation"]);
        }
        let ci = &o["ratio_p50"];
        let (low, ratio, high) =
            (ci["low"].as_f64().unwrap(), ci["ratio"].as_f64().unwrap(), ci["high"].as_f64().unwrap());
        assert!(low > 0.0 && low <= ratio && ratio <= high, "{}: {ci}", o["operation"]);
    }
    // The verdict quotes the measured ratio.
    let verdict = report["verdict"].as_str().unwrap();
    let all = operations.iter().find(|o| o["operation"] == "all").unwrap();
    let ratio = all["ratio_p50"]["ratio"].as_f64().unwrap();
    assert!(verdict.contains(&format!("REST/gRPC is {ratio:.2} (95 % CI")), "{verdict}");
    assert!(stdout.contains(verdict), "printed: {stdout}");

    // JSON is bigger than protobuf for the review request (a 4 KB code string in both).
    let payloads = report["payloads"].as_array().unwrap();
    let review = payloads.iter().find(|p| p["operation"] == "review").unwrap();
    let (json, pb) = (review["rest"]["request"].as_u64().unwrap(), review["grpc"]["request"].as_u64().unwrap());
    assert!(json > pb && pb > 3_000, "review request: JSON {json} B, protobuf {pb} B");
    for cpu in report["cpu"].as_array().unwrap() {
        assert!(cpu["client_per_1k"].as_f64().unwrap() > 0.0, "{cpu}");
        assert!(cpu["server_per_1k"].as_f64().unwrap() > 0.0, "{cpu}");
        assert!(cpu["server_per_1k_by_service"]["gateway-0"].as_f64().is_some(), "{cpu}");
    }
    for s in report["saturation"].as_array().unwrap() {
        assert!(s["ok_rate"].as_f64().unwrap() > 0.0, "{s}");
    }
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("id=\"fifty-x\""), "charts and the verdict are on the page");
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase").count(), 12, "one case per round");
    assert!(processes_mentioning(&dir).is_empty(), "left running: {:?}", processes_mentioning(&dir));
}

/// One gateway whose tenant may make 30 requests per second: a topology whose
/// capacity is a quota, known in advance and the same on a busy machine.
/// Users browse with 500 ms of think time (about 2 requests per second each),
/// and a request over the quota gets 429, which the error rate counts.
const SMALL: &str = r#"
name = "small"
description = "one gateway, a tenant quota of 30 requests per second"
[load]
users = 40
ramp_rate = 40
hold = "8s"
ramp_down = "1s"
think = "const:500ms"
journeys = { browse = 1 }
protocols = { rest = 1 }
[topology]
redis = true
tenant_rate_limit = 30
[[criteria]]
name = "errors"
sli = "error_rate"
op = "<="
target = 0.01
[[criteria]]
name = "users"
sli = "users_reached"
op = ">="
target = 1
"#;

#[test]
fn the_gate_passes_below_the_capacity_knee_and_fails_above_it() {
    let dir = ScratchDir::new("bench-capacity").unwrap();
    let scenario = dir.path().join("small.toml");
    std::fs::write(&scenario, SMALL).unwrap();
    let (scenario, reports) = (scenario.to_str().unwrap(), dir.path().join("reports"));
    let out = reports.to_str().unwrap();
    let args = ["capacity", scenario, "--replicas", "1", "--hold", "5s", "--target-users", "1000", "--reports", out];
    let (code, stdout, stderr) = bench(&args, &[]);
    // A thousand users are far beyond the quota: NOT MET, exit 1.
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("NOT MET"), "{stdout}");
    let run = run_dir(&reports, "small-capacity");
    let report: Value = serde_json::from_slice(&std::fs::read(run.join("capacity.json")).unwrap()).unwrap();
    assert_eq!(report["load"]["model"], "closed");
    let not_judged = report["not_judged"].as_array().unwrap();
    assert_eq!(not_judged.len(), 1, "{not_judged:?}");
    assert_eq!(not_judged[0]["criterion"], "users", "a step sets its own users");
    let search = &report["searches"][0];
    let (knee, broke) = (search["knee_users"].as_u64().unwrap(), search["broke_users"].as_u64().unwrap());
    // 30 requests per second at about 2 per user: the knee is near 15 users.
    assert!((8..=18).contains(&knee) && knee < broke, "knee {knee}, broke {broke}: {search}");
    for step in search["steps"].as_array().unwrap() {
        let per_user = step["requests_per_user_per_second"].as_f64().unwrap();
        // About 2 a second, and a little more in short steps: a login, and
        // users counted at the end of each second.
        assert!((1.0..=3.0).contains(&per_user), "{step}");
    }
    assert!(stdout.contains(run.join("report.html").to_str().unwrap()), "{stdout}");
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 3, "throughput, latency and USL plots");
    let junit = std::fs::read_to_string(run.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase").count(), 2, "the knee and the target");
    assert!(processes_mentioning(&run).is_empty(), "left running: {:?}", processes_mentioning(&run));

    // The gate, on the same path, agrees: GO at 0.75 x the knee, NO-GO at 1.5 x.
    for (share, expected) in [(0.75, Some(0)), (1.5, Some(1))] {
        let users = ((knee as f64 * share).round() as u64).to_string();
        let (code, stdout, stderr) = bench(&["run", scenario, "--users", &users, "--reports", out], &[]);
        assert_eq!(code, expected, "{users} users ({share} x the knee of {knee}):\n{stdout}\n{stderr}");
    }
}

/// One gateway over Redis, unthrottled: users browsing every 200 ms.
const COSTED: &str = r#"
name = "costed"
description = "one gateway over Redis"
[load]
users = 20
ramp_rate = 20
hold = "5s"
think = "const:200ms"
journeys = { browse = 1 }
protocols = { rest = 1 }
[topology]
redis = true
[[criteria]]
name = "errors"
sli = "error_rate"
op = "<="
target = 0.01
"#;

#[test]
fn cost_measures_every_process_per_request_under_a_fixed_load_and_the_idle_stack() {
    let dir = ScratchDir::new("bench-cost").unwrap();
    let scenario = dir.path().join("costed.toml");
    std::fs::write(&scenario, COSTED).unwrap();
    let (scenario, reports) = (scenario.to_str().unwrap(), dir.path().join("reports"));
    let args =
        ["cost", scenario, "--users", "20", "--hold", "6s", "--idle", "2s", "--reports", reports.to_str().unwrap()];
    let (code, stdout, stderr) = bench(&args, &[]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let run = run_dir(&reports, "costed-cost");
    assert!(stdout.contains(run.join("cost.md").to_str().unwrap()), "{stdout}");
    let report: Value = serde_json::from_slice(&std::fs::read(run.join("cost.json")).unwrap()).unwrap();
    assert_eq!((report["users"].as_u64(), report["measured_seconds"].as_f64()), (Some(20), Some(6.0)), "{report}");
    // 20 users a request every 200 ms (plus its latency): about 100 a second.
    let rate = report["requests_per_second"].as_f64().unwrap();
    assert!((50.0..=110.0).contains(&rate), "{rate} requests/s");
    assert_eq!(report["failed"], 0);
    let processes = report["processes"].as_array().unwrap();
    for name in ["redis", "gateway-0", "loadgen-0"] {
        let p = processes.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("{name} missing: {report}"));
        assert!(p["cpu_us_per_request"].as_f64().unwrap() > 0.0, "{p}");
        assert!(p["rss_peak_bytes"].as_u64().unwrap() > 0, "{p}");
    }
    let (machine, services, loadgen) = (
        report["machine_cpu_us_per_request"].as_f64().unwrap(),
        report["services_cpu_us_per_request"].as_f64().unwrap(),
        report["loadgen_cpu_us_per_request"].as_f64().unwrap(),
    );
    assert!(services > 0.0 && loadgen > 0.0 && machine >= services, "{report}");
    assert!(report["loadgen_rss_bytes_per_user"].as_f64().unwrap() > 1024.0, "{report}");
    // The idle stack: the services alone, and an idle gateway uses little.
    let idle: Vec<&str> = report["idle"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(idle, ["redis", "agents-0", "gateway-0"], "{report}");
    assert!(report["idle_cores"].as_f64().unwrap() < 0.5, "{report}");
    assert!(processes_mentioning(&run).is_empty(), "left running: {:?}", processes_mentioning(&run));
}
