//! `report.md`: the gate for a pull request.

use std::fmt::Write;

use crate::judged::Verdict;
use crate::summary::Summary;

/// The Markdown report of a summary.
pub fn render(s: &Summary) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# {}: {}\n", s.scenario, s.verdict);
    let _ = writeln!(md, "{}\n", s.description);
    let _ = writeln!(md, "Run `{}`, {} to {}.\n", s.run_id, s.started_at, s.finished_at);
    if s.sizes.scaled {
        let _ = writeln!(
            md,
            "**Scaled run:** {} users (the scenario file asks for {}), hold {:.0} s. The verdict is for these sizes, not the file's.\n",
            s.sizes.users, s.sizes.users_in_file, s.sizes.hold_seconds
        );
    }
    if !s.reasons.is_empty() {
        md.push_str("## Why not GO\n\n");
        for reason in &s.reasons {
            let _ = writeln!(md, "- {reason}");
        }
        md.push('\n');
    }
    md.push_str("## Criteria\n\n| criterion | SLI | target | measured | source | verdict | note |\n|---|---|---|---|---|---|---|\n");
    for c in &s.criteria {
        let unit = c.sli.unit();
        let verdict = match c.verdict {
            Verdict::Pass => "pass",
            Verdict::Warn => "WARN",
            Verdict::Fail => "**FAIL**",
            Verdict::NoData => "**NO DATA**",
            Verdict::Recorded => "recorded",
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} {} | {} | {} | {verdict} | {} |",
            c.title(),
            c.sli.as_str(),
            c.op,
            unit.format(c.target),
            c.measured.map_or("-".into(), |v| unit.format(v)),
            c.source,
            c.note.as_deref().unwrap_or("")
        );
    }
    md.push('\n');
    if !s.alerts_firing.is_empty() {
        md.push_str("## Gate alerts firing when the load ended\n\n");
        for a in &s.alerts_firing {
            let _ = writeln!(md, "- `{}` ({}, {})", a.alert, a.criterion, a.severity);
        }
        md.push('\n');
    }
    if let Some(load) = &s.load {
        let _ = writeln!(
            md,
            "## Load\n\n{} requests in {:.1} s ({:.1} req/s), {} failed; {} loadgen process(es).\n",
            load.requests, load.duration_seconds, load.achieved_rate, load.failed, s.sizes.loadgen_processes
        );
        md.push_str("| protocol | step | count | failed | p50 ms | p95 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|---|\n");
        for st in &load.steps {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
                st.protocol, st.step, st.count, st.failed, st.p50_ms, st.p95_ms, st.p99_ms, st.max_ms
            );
        }
        md.push('\n');
    }
    for line in crate::lines::coverage_lines(s) {
        let _ = writeln!(md, "{}\n", line.sentence);
        for missing in &line.missing {
            let _ = writeln!(md, "- {missing}");
        }
        if !line.missing.is_empty() {
            md.push('\n');
        }
    }
    let (sentences, rows) = crate::lines::resource_lines(s);
    if !sentences.is_empty() {
        md.push_str("## Where the machine's capacity went\n\n");
        for line in sentences {
            let _ = writeln!(md, "{line}\n");
        }
        let _ = writeln!(md, "| {} |", crate::lines::RESOURCE_COLUMNS.join(" | "));
        let _ = writeln!(md, "|{}", "---|".repeat(crate::lines::RESOURCE_COLUMNS.len()));
        for row in rows {
            let _ = writeln!(md, "| {} |", row.join(" | "));
        }
        md.push('\n');
    }
    let faults = crate::lines::fault_lines(s);
    if !faults.is_empty() {
        md.push_str("## Faults and restarts\n\n");
        for line in faults {
            let _ = writeln!(md, "- {line}");
        }
        md.push('\n');
    }
    let _ =
        writeln!(md, "Environment: {}. Files: {}.", crate::summary::machine_line(&s.environment), s.files.join(", "));
    md
}
