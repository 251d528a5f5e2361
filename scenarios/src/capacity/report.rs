//! The capacity run's `capacity.json`, `report.md` and `report.html`, with
//! three plots: throughput against offered load, p95 latency against offered
//! load with the SLO line, and the measured knees with the fitted USL curve.

use std::fmt::Write;
use std::path::Path;

use super::figures::{CapacityReport, Needed};
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
            failure: s.knee.rate.is_none().then(|| "no rate held".to_owned()),
            output: match (s.knee.rate, s.users_at_knee) {
                (Some(rate), Some(users)) => format!("{rate:.0} req/s, {users:.0} users"),
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

fn needed_line(r: &CapacityReport, n: &Needed) -> String {
    format!(
        "| {:.0} | {:.0} | {} | {} |",
        n.users,
        n.rate,
        replicas(r.fit.is_some(), n.replicas),
        replicas(r.fit_optimistic.is_some(), n.replicas_optimistic)
    )
}

fn markdown(r: &CapacityReport) -> String {
    let mut m = String::new();
    let status = if r.met { "MET" } else { "NOT MET" };
    let _ = writeln!(m, "# {} capacity: {status}\n", r.scenario);
    let _ = writeln!(
        m,
        "Run {} from {} to {} on {} CPUs. Each step offers `{}` at one open-model rate for {:.0} s; it holds when {}.\n",
        r.run_id,
        r.started_at,
        r.finished_at,
        r.environment.cpus,
        r.mix,
        r.step_seconds,
        r.criteria.join(", ")
    );
    let _ = writeln!(
        m,
        "Users follow from a rate by Little's law, N = X · (Z + R): X the rate, Z the scenario's mean think time ({:.1} s), R the mean response time at the knee.\n",
        r.think_seconds
    );
    for reason in &r.reasons {
        let _ = writeln!(m, "- {reason}");
    }
    m.push_str("\n## Knees\n\n| gateways | agents processes | knee req/s | first broke at req/s | users at the knee | steps |\n|---|---|---|---|---|---|\n");
    for s in &r.searches {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} | {} |",
            s.gateways,
            s.agent_processes,
            s.knee.rate.map_or("-".into(), |v| format!("{v:.0}")),
            s.knee.broke_at.map_or("-".into(), |v| format!("{v:.0}")),
            s.users_at_knee.map_or("-".into(), |v| format!("{v:.0}")),
            s.steps.len()
        );
    }
    m.push_str("\n## Universal Scalability Law, X(N) = λN / (1 + σ(N−1) + κN(N−1))\n\n");
    match &r.fit {
        Some(fit) => {
            let errors = fit
                .std_errors
                .map_or("exactly determined (as many points as parameters): no standard errors".into(), |e| {
                    format!("standard errors σ ±{:.4}, κ ±{:.6}, λ ±{:.1}", e[0], e[1], e[2])
                });
            let _ = writeln!(
                m,
                "Through the knees: σ = {:.4}, κ = {:.6}, λ = {:.1} req/s; {errors}; RMS residual {:.1} req/s.",
                fit.model.sigma, fit.model.kappa, fit.model.lambda, fit.rms_residual
            );
            if let Some(o) = &r.fit_optimistic {
                let _ = writeln!(
                    m,
                    "Through the first rates that broke (the top of each knee's bracket): σ = {:.4}, κ = {:.6}, λ = {:.1} req/s.",
                    o.model.sigma, o.model.kappa, o.model.lambda
                );
            }
            match r.peak {
                Some((n, _)) if n <= 1.0 => {
                    let _ = writeln!(
                        m,
                        "The fitted curve falls from the first replica on: on this machine every replica added loses throughput (they share its {} CPUs).",
                        r.environment.cpus
                    );
                }
                Some((n, x)) => {
                    let _ =
                        writeln!(m, "Predicted peak: {x:.0} req/s at {n:.1} replicas; more replicas lose throughput.");
                }
                None => {
                    let _ = writeln!(
                        m,
                        "No coherency cost was measured (κ = 0): throughput approaches λ/σ without a peak."
                    );
                }
            }
        }
        None => m.push_str("No fit: it needs knees at three or more distinct replica counts.\n"),
    }
    m.push_str("\n## Replicas needed\n\n| users | req/s | replicas (fit through the knees) | replicas (fit through the first breaks) |\n|---|---|---|---|\n");
    for n in &r.needed {
        let _ = writeln!(m, "{}", needed_line(r, n));
    }
    m.push_str(
        "\nThe two fits bracket the answer: the knee search brackets each knee between the last rate that held and the first that broke. \"not reachable\": no number of replicas reaches that rate on the fitted curve.\n",
    );
    m.push_str("\n## Steps\n\n| gateways | offered req/s | ok req/s | mean ms | p95 ms | held | what broke |\n|---|---|---|---|---|---|---|\n");
    for s in &r.searches {
        for f in &s.steps {
            let _ = writeln!(
                m,
                "| {} | {:.0} | {:.0} | {:.1} | {:.1} | {} | {} |",
                s.gateways,
                f.offered_rate,
                f.ok_rate,
                f.mean_seconds * 1e3,
                f.p95_seconds * 1e3,
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
    let max_offered = r.searches.iter().flat_map(|s| &s.steps).map(|f| f.offered_rate).fold(0.0, f64::max);
    let slo = criteria.iter().find(|c| c.sli == Sli::ApiLatencyP95).map(|c| c.target * 1e3);
    // Past the knee latency grows by seconds; clipped at 5x the SLO the line
    // where it breaks stays readable.
    let clip = slo.map(|ms| ms * 5.0);
    let mut throughput = Vec::new();
    let mut latency = Vec::new();
    for s in &r.searches {
        let label = format!("{} gateways", s.gateways);
        throughput.push((label.clone(), sorted(s.steps.iter().map(|f| (f.offered_rate, f.ok_rate)).collect())));
        let p95 = |f: &super::figures::StepFigures| clip.map_or(f.p95_seconds * 1e3, |c| (f.p95_seconds * 1e3).min(c));
        latency.push((label, sorted(s.steps.iter().map(|f| (f.offered_rate, p95(f))).collect())));
    }
    throughput.push(("answered = offered".into(), vec![(0.0, 0.0), (max_offered, max_offered)]));
    if let Some(ms) = slo {
        latency.push(("SLO: API p95".into(), vec![(0.0, ms), (max_offered, ms)]));
    }
    let mut usl = Chart {
        title: "Knee throughput by replicas, with the fitted USL".into(),
        x_label: "gateway replicas".into(),
        y_label: "requests/s".into(),
        lines: Vec::new(),
        dots: vec![(
            "measured knees".into(),
            r.searches.iter().filter_map(|s| s.knee.rate.map(|k| (s.gateways as f64, k))).collect(),
        )],
    };
    if let Some(fit) = &r.fit {
        let top = r.searches.iter().map(|s| s.gateways).max().unwrap_or(1).max(3) as f64 * 2.0;
        let curve = (0..=100).map(|i| 1.0 + (top - 1.0) * i as f64 / 100.0).map(|n| (n, fit.model.throughput(n)));
        usl.lines.push(("USL fit".into(), curve.collect()));
    }
    vec![
        Chart {
            title: "Throughput against offered load".into(),
            x_label: "offered requests/s".into(),
            y_label: "answered ok requests/s".into(),
            lines: throughput,
            dots: Vec::new(),
        },
        Chart {
            title: match clip {
                Some(c) => format!("p95 latency against offered load (clipped at {c:.0} ms)"),
                None => "p95 latency against offered load".into(),
            },
            x_label: "offered requests/s".into(),
            y_label: "ms (from the planned start)".into(),
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
