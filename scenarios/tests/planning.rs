//! `q2o-bench run scenarios/rest-vs-grpc.toml` and `q2o-bench capacity`, end
//! to end on short rounds and steps: real services, the real loadgen.

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

#[test]
fn a_short_capacity_search_finds_knees_fits_the_usl_and_sizes_the_replicas() {
    let reports = ScratchDir::new("bench-capacity").unwrap();
    let out = reports.path().to_str().unwrap();
    let args = [
        "capacity",
        "scenarios/phase2.toml",
        "--replicas",
        "1,2,3",
        "--step",
        "2s",
        "--start-rate",
        "25",
        "--max-steps",
        "2",
        "--target-users",
        "10000000",
        "--reports",
        out,
    ];
    let (code, stdout, stderr) = bench(&args, &[]);
    // Ten million users are more than two 2-second steps can show: NOT MET, exit 1.
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("NOT MET"), "{stdout}");
    let dir = run_dir(reports.path(), "phase2-capacity");
    let report: Value = serde_json::from_slice(&std::fs::read(dir.join("capacity.json")).unwrap()).unwrap();
    let searches = report["searches"].as_array().unwrap();
    assert_eq!(searches.len(), 3);
    for (i, s) in searches.iter().enumerate() {
        assert_eq!(s["gateways"], i + 1);
        assert_eq!(s["agent_processes"], i + 1, "phase2 has one agents process per gateway");
        assert_eq!(s["steps"].as_array().unwrap().len(), 2, "bounded by --max-steps");
        // 25 and 50 req/s are far below what a replica carries.
        assert_eq!(s["knee"]["rate"], 50.0, "{s}");
        let users = s["users_at_knee"].as_f64().unwrap();
        // Little's law with phase2's 10 s think time: about 50 × 10 users.
        assert!((450.0..=600.0).contains(&users), "{users}");
    }
    assert!(report["fit"]["model"]["lambda"].as_f64().unwrap() > 0.0, "{}", report["fit"]);
    let needed = report["needed"].as_array().unwrap();
    assert_eq!(needed.iter().map(|n| n["users"].as_f64().unwrap()).collect::<Vec<_>>(), [5e3, 5e4, 1e5, 1e7]);
    assert!(stdout.contains(dir.join("report.html").to_str().unwrap()), "{stdout}");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 3, "throughput, latency and USL plots");
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase").count(), 4, "three knees and the target");
    assert_eq!(junit.matches("<failure").count(), 1, "the target is not met");
    assert!(processes_mentioning(&dir).is_empty(), "left running: {:?}", processes_mentioning(&dir));
}
