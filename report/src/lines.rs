//! The sentences both gate reports print: the run's coverage figures and
//! what its faults did.

use crate::summary::Summary;

/// One coverage figure of a run, as both reports print it: an HTML id, the
/// sentence, and what is missing.
#[derive(Debug)]
pub struct CoverageLine {
    pub id: &'static str,
    pub sentence: String,
    pub missing: Vec<String>,
}

/// The run's coverage figures: scrape targets, recording rules, dashboard queries, alert tests.
pub fn coverage_lines(s: &Summary) -> Vec<CoverageLine> {
    let mut lines = Vec::new();
    if let Some(t) = &s.scrape {
        lines.push(CoverageLine {
            id: "scrape",
            sentence: format!("Scrape targets: {} of {} up at the end of the hold.", t.up, t.targets),
            missing: Vec::new(),
        });
    }
    if let Some(c) = &s.slis {
        lines.push(CoverageLine {
            id: "slis",
            sentence: format!("Recording rules: {} of {} had data for this run.", c.with_data, c.recorded),
            missing: c.empty.iter().map(|name| format!("no data: {name}")).collect(),
        });
    }
    if let Some(d) = &s.dashboards {
        lines.push(CoverageLine {
            id: "dashboards",
            sentence: format!("Dashboards: {} of {} panel queries returned data for this run.", d.with_data, d.queries),
            missing: d.empty.iter().map(|e| format!("no data: {} / {}", e.dashboard, e.panel)).collect(),
        });
    }
    if let Some(e) = &s.events {
        let unconsumed = match e.unconsumed {
            0 => "none was left unconsumed".to_owned(),
            n => format!("{n} messages were still unconsumed after {:.0} s (not counted as lost)", e.waited_seconds),
        };
        lines.push(CoverageLine {
            id: "events",
            sentence: format!(
                "Events: {} distinct ids in the log up to the audit group's commits; {} lost ({} missing from the audit ledger, {} given up by the producers); {unconsumed}.",
                e.checked, e.lost, e.missing_from_ledger, e.given_up
            ),
            missing: Vec::new(),
        });
    }
    if let Some(a) = &s.alert_tests {
        lines.push(CoverageLine {
            id: "alert-tests",
            sentence: format!(
                "Alert unit tests: {} of {} alerts loaded by this run fire and stay quiet under promtool.",
                a.tested, a.alerts
            ),
            missing: a
                .failed_files
                .iter()
                .map(|f| format!("failed: {f}"))
                .chain(a.untested.iter().map(|name| format!("untested: {name}")))
                .collect(),
        });
    }
    lines
}

/// Where the machine's capacity went: a sentence on the harness's share, the
/// saturation line, and warnings; then the table's rows, one per process, in
/// the order of [`RESOURCE_COLUMNS`].
pub fn resource_lines(s: &Summary) -> (Vec<String>, Vec<[String; 9]>) {
    let Some(r) = &s.resources else { return (Vec::new(), Vec::new()) };
    let cores = r.machine.cores as f64;
    let share = |role| r.processes.iter().filter(|p| p.role == role).map(|p| p.cpu_cores_mean).sum::<f64>() / cores;
    let harness: Vec<&str> =
        r.processes.iter().filter(|p| p.role == q2o_env::resources::Role::Harness).map(|p| p.name.as_str()).collect();
    let mut sentences = vec![format!(
        "Over the hold the machine's {} cores were {:.0} % busy on average ({:.0} % in its busiest second); the system used {:.0} % of them and the harness ({}) {:.0} %.",
        r.machine.cores,
        r.machine.cpu_busy_mean * 100.0,
        r.machine.cpu_busy_peak * 100.0,
        share(q2o_env::resources::Role::Service) * 100.0,
        harness.join(", "),
        share(q2o_env::resources::Role::Harness) * 100.0
    )];
    sentences.push(match &s.saturation {
        Some(sat) => format!(
            "Saturation: {} reached 90 % at {:.0} s{} ({}).",
            sat.resource,
            sat.at_seconds,
            sat.users.map_or(String::new(), |u| format!(", with {u} users")),
            sat.detail
        ),
        None => "Saturation: no resource reached 90 % of what it has.".into(),
    });
    sentences.extend(s.warnings.iter().map(|w| format!("Warning: {w}.")));
    let rows = r
        .processes
        .iter()
        .map(|p| {
            [
                p.name.clone(),
                format!("{:?}", p.role).to_lowercase(),
                format!("{:.2}", p.cpu_cores_mean),
                format!("{:.2}", p.cpu_cores_peak),
                p.cpu_us_per_request.map_or("-".into(), |us| format!("{us:.0}")),
                p.runs_per_request.map_or("-".into(), |runs| format!("{runs:.2}")),
                p.wait_us_per_run.map_or("-".into(), |us| format!("{us:.0}")),
                format!("{:.0}", p.rss_peak_bytes as f64 / (1u64 << 20) as f64),
                p.open_files_peak.to_string(),
            ]
        })
        .collect();
    (sentences, rows)
}

/// The first reason of a NO-GO run whose machine saturated, pointing to the
/// scenario's latest capacity knee (users, and its file) when there is one.
pub fn saturated_reason(sat: &q2o_env::resources::Saturation, knee: Option<&(f64, std::path::PathBuf)>) -> String {
    let users = sat.users.map_or(String::new(), |u| format!(" with {u} users"));
    let mut reason = format!(
        "the machine saturated before the system was judged: {} reached 90 % at {:.0} s{users} ({})",
        sat.resource, sat.at_seconds, sat.detail
    );
    if let Some((users, file)) = knee {
        reason.push_str(&format!("; the latest capacity run puts the knee at {users:.0} users ({})", file.display()));
    }
    reason
}

/// The column titles of [`resource_lines`]'s rows.
pub const RESOURCE_COLUMNS: [&str; 9] = [
    "process",
    "role",
    "cores (mean)",
    "cores (peak)",
    "CPU-µs per request",
    "runs per request",
    "wait per run (µs)",
    "RSS peak (MiB)",
    "open files (peak)",
];

/// The "Faults and restarts" section as lines, empty when nothing happened.
pub fn fault_lines(s: &Summary) -> Vec<String> {
    let mut lines = Vec::new();
    for f in &s.faults {
        let outcome = match (f.done, f.recovered_after) {
            (false, _) => "not done: the service was not running".to_owned(),
            (true, Some(t)) => format!("ready again after {t:.2} s"),
            (true, None) if matches!(f.action, "kill" | "start") => "never ready again".to_owned(),
            (true, None) => "done".to_owned(),
        };
        let expected = f.expected_within.map_or(String::new(), |t| format!(" (expected within {t:.0} s)"));
        lines.push(format!("at {:.1} s: {} {}, {outcome}{expected}", f.at, f.action, f.service));
    }
    if let Some(b) = &s.error_burst {
        lines.push(match (b.first_failure_at, b.last_failure_at) {
            (Some(first), Some(last)) => format!(
                "users' view: {} failed in the burst after the first fault, over {:.0} s (seconds {first:.0} to {last:.0} of the load)",
                if b.failed_requests == 1 { "1 request".to_owned() } else { format!("{} requests", b.failed_requests) },
                b.seconds
            ),
            _ => "users' view: no request failed from the first fault on".to_owned(),
        });
    }
    for r in &s.recoveries {
        let after = r.recovered_after.map_or("never ready again".into(), |t| format!("ready again after {t:.2} s"));
        lines.push(format!("restart: {} died at {:.1} s of the run, {after}", r.service, r.died_at));
    }
    lines
}
