//! The capacity run's `capacity.json`, `report.md` and `report.html`, with
//! three plots: API throughput against users, p95 latency against users with
//! the SLO line, and the measured knees with the fitted USL curve.

use std::fmt::Write;
use std::path::Path;

use super::figures::CapacityReport;
use q2o_report::charts::Chart;
use q2o_report::junit::{self, Case};
use q2o_slo::sli::{Criterion, Sli};

/// Writes the three files into `dir`.
pub(crate) fn write_all(dir: &Path, report: &CapacityReport, criteria: &[Criterion]) -> std::io::Result<()> {
    let json = serde_json::to_string_pretty(report).expect("reports serialize") + "\n";
    std::fs::write(dir.join("capacity.json"), json)?;
    std::fs::write(dir.join("report.md"), markdown(report))?;
    std::fs::write(dir.join("junit.xml"), junit(report))?;
    std::fs::write(dir.join("report.html"), html(report, &charts(report, criteria)))
}

/// One test case per replica count (a knee was found) and one for the target users.
fn junit(r: &CapacityReport) -> String {
    let mut cases: Vec<Case> = r
        .searches
        .iter()
        .map(|s| Case {
            name: format!("knee at {} gateway replicas", s.gateways),
            failure: s.knee.knee_users.is_none().then(|| "no user count held".to_owned()),
            output: match (s.knee.knee_users, s.knee.broke_users) {
                (Some(knee), Some(broke)) => format!("{knee} users held, {broke} broke"),
                (Some(knee), None) => format!("{knee} users held"),
                _ => format!("{} steps, none held", s.steps.len()),
            },
        })
        .collect();
    if let Some(target) = r.target_users {
        cases.push(Case {
            name: format!("carries {target:.0} users"),
            failure: (!r.met).then(|| format!("the largest knee carries fewer than {target:.0} users")),
            output: r.reasons.join("; "),
        });
    }
    junit::suite(&format!("{}-capacity", r.scenario), &r.started_at, &cases)
}

/// A replica count, "not reachable" when the fit never gets there, or
/// "no fit" when there was none to ask.
fn replicas(fitted: bool, n: Option<u64>) -> String {
    match (fitted, n) {
        (false, _) => "no fit".into(),
        (true, Some(n)) => n.to_string(),
        (true, None) => "not reachable".into(),
    }
}

fn or_dash<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

fn markdown(r: &CapacityReport) -> String {
    let mut m = String::new();
    let status = if r.met { "MET" } else { "NOT MET" };
    let load = &r.load;
    let _ = writeln!(m, "# {} capacity: {status}\n", r.scenario);
    let _ = writeln!(
        m,
        "Run {} from {} to {} on {} CPUs. Each step runs the scenario's own users ({} model): journeys `{}`, protocols `{}`, think `{}`, started at {:.0} users/s or faster (every ramp within {:.0} s), then held {:.0} s; {} are its warm-up, counted but not judged. A step holds when {}.\n",
        r.run_id,
        r.started_at,
        r.finished_at,
        r.environment.cpus,
        load.model,
        load.journeys,
        load.protocols,
        load.think,
        load.ramp_rate,
        load.ramp_seconds_at_most,
        load.hold_seconds,
        load.warm_up,
        r.criteria.join(", ")
    );
    if !r.not_judged.is_empty() {
        m.push_str("Not judged in a step (the gate judges them over a whole run):\n\n");
        for n in &r.not_judged {
            let _ = writeln!(m, "- `{}`: {}", n.criterion, n.reason);
        }
        m.push('\n');
    }
    for reason in &r.reasons {
        let _ = writeln!(m, "- {reason}");
    }
    m.push_str("\n## Knees\n\n| gateways | gateway processes | agents processes | knee users (most that held) | broke users (fewest that broke) | steps |\n|---|---|---|---|---|---|\n");
    for s in &r.searches {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} | {} |",
            s.gateways,
            s.gateway_processes,
            s.agent_processes,
            or_dash(s.knee.knee_users),
            or_dash(s.knee.broke_users),
            s.steps.len()
        );
    }
    m.push_str("\n## Universal Scalability Law, N(R) = λR / (1 + σ(R−1) + κR(R−1)), users carried at R replicas\n\n");
    match &r.fit {
        Some(fit) => {
            let errors = fit
                .std_errors
                .map_or("exactly determined (as many points as parameters): no standard errors".into(), |e| {
                    format!("standard errors σ ±{:.4}, κ ±{:.6}, λ ±{:.0}", e[0], e[1], e[2])
                });
            let _ = writeln!(
                m,
                "Through the knees: σ = {:.4}, κ = {:.6}, λ = {:.0} users; {errors}; RMS residual {:.0} users.",
                fit.model.sigma, fit.model.kappa, fit.model.lambda, fit.rms_residual
            );
            if let Some(o) = &r.fit_optimistic {
                let _ = writeln!(
                    m,
                    "Through the fewest users that broke (the top of each knee's bracket): σ = {:.4}, κ = {:.6}, λ = {:.0} users.",
                    o.model.sigma, o.model.kappa, o.model.lambda
                );
            }
            match r.peak {
                Some((n, _)) if n <= 1.0 => {
                    let _ = writeln!(
                        m,
                        "The fitted curve falls from the first replica on: on this machine every replica added carries fewer users (they share its {} CPUs).",
                        r.environment.cpus
                    );
                }
                Some((n, users)) => {
                    let _ =
                        writeln!(m, "Predicted peak: {users:.0} users at {n:.1} replicas; more replicas carry fewer.");
                }
                None => {
                    let _ = writeln!(m, "No coherency cost was measured (κ = 0): users approach λ/σ without a peak.");
                }
            }
        }
        None => {
            m.push_str("No fit: it needs knees at three or more distinct replica counts (e.g. `--replicas 1,2,3`).\n")
        }
    }
    m.push_str("\n## Replicas needed\n\n| users | replicas (fit through the knees) | replicas (fit through the first breaks) |\n|---|---|---|\n");
    for n in &r.needed {
        let _ = writeln!(
            m,
            "| {:.0} | {} | {} |",
            n.users,
            replicas(r.fit.is_some(), n.replicas),
            replicas(r.fit_optimistic.is_some(), n.replicas_optimistic)
        );
    }
    m.push_str(
        "\nThe two fits bracket the answer: the search brackets each knee between the most users that held and the fewest that broke. \"not reachable\": no number of replicas carries that many users on the fitted curve.\n",
    );
    m.push_str("\n## Steps\n\n| gateways | users | active at most | API req/s | req/s per user | failed | p95 ms | machine busy | tasks queued (hold start → end) | settled after s | held | what broke |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for s in &r.searches {
        for f in &s.steps {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {:.0} | {:.3} | {} | {} | {} | {} | {} | {} | {} |",
                s.gateways,
                f.users,
                f.users_reached,
                f.requests_per_second,
                f.requests_per_user_per_second,
                f.failed,
                f.p95_seconds.map_or("-".into(), |p| format!("{:.1}", p * 1e3)),
                f.machine_cpu_busy.map_or("-".into(), |b| format!("{:.0} %", b * 100.0)),
                f.tasks_queued.map_or("-".into(), |(from, to)| format!("{from} → {to}")),
                f.settled_seconds.map_or("not within 120".into(), |s| format!("{s:.0}")),
                if f.held { "yes" } else { "no" },
                f.broke.join("; ")
            );
        }
    }
    m
}

fn charts(r: &CapacityReport, criteria: &[Criterion]) -> Vec<Chart> {
    let sorted = |mut v: Vec<(f64, f64)>| {
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    };
    let max_users = r.searches.iter().flat_map(|s| &s.steps).map(|f| f.users as f64).fold(0.0, f64::max);
    let slo = criteria.iter().find(|c| c.sli == Sli::ApiLatencyP95).map(|c| c.target * 1e3);
    // Past the knee latency grows by seconds; clipped at 5x the SLO the line
    // where it breaks stays readable.
    let clip = slo.map(|ms| ms * 5.0);
    let mut throughput = Vec::new();
    let mut latency = Vec::new();
    for s in &r.searches {
        let label = format!("{} gateways", s.gateways);
        let steps = || s.steps.iter().map(|f| f.users as f64);
        throughput.push((label.clone(), sorted(steps().zip(s.steps.iter().map(|f| f.requests_per_second)).collect())));
        let p95 = s.steps.iter().filter_map(|f| {
            let ms = f.p95_seconds? * 1e3;
            Some((f.users as f64, clip.map_or(ms, |c| ms.min(c))))
        });
        latency.push((label, sorted(p95.collect())));
    }
    if let Some(ms) = slo {
        latency.push(("SLO: API p95".into(), vec![(0.0, ms), (max_users, ms)]));
    }
    let mut usl = Chart {
        title: "Knee users by replicas, with the fitted USL".into(),
        x_label: "gateway replicas".into(),
        y_label: "users".into(),
        lines: Vec::new(),
        dots: vec![(
            "measured knees".into(),
            r.searches.iter().filter_map(|s| s.knee.knee_users.map(|k| (s.gateways as f64, k as f64))).collect(),
        )],
    };
    if let Some(fit) = &r.fit {
        let top = r.searches.iter().map(|s| s.gateways).max().unwrap_or(1).max(3) as f64 * 2.0;
        let curve = (0..=100).map(|i| 1.0 + (top - 1.0) * i as f64 / 100.0).map(|n| (n, fit.model.throughput(n)));
        usl.lines.push(("USL fit".into(), curve.collect()));
    }
    vec![
        Chart {
            title: "API throughput against users".into(),
            x_label: "users".into(),
            y_label: "API requests/s".into(),
            lines: throughput,
            dots: Vec::new(),
        },
        Chart {
            title: match clip {
                Some(c) => format!("API p95 latency against users (clipped at {c:.0} ms)"),
                None => "API p95 latency against users".into(),
            },
            x_label: "users".into(),
            y_label: "ms".into(),
            lines: latency,
            dots: Vec::new(),
        },
        usl,
    ]
}

fn html(r: &CapacityReport, charts: &[Chart]) -> String {
    let status = if r.met { "MET" } else { "NOT MET" };
    let body = q2o_report::html::markdown_tables(&markdown(r));
    q2o_report::html::page(&format!("{} capacity", r.scenario), status, r.met, &body, "Plots", charts)
}
