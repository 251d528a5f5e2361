//! `report.html`: one self-contained page (no scripts, no external files)
//! with the verdict, the criteria, the charts inline as SVG, and the load.

use std::fmt::Write;

use crate::charts::Chart;
use crate::judged::Verdict;
use crate::summary::Summary;
use crate::xml::escape;

pub const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:1000px;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}\
th{background:#f4f4f4}.GO{color:#1a7f37}.NO-GO,.ERROR{color:#cf222e}.fail{background:#ffebe9}\
.warn{background:#fff8c5}.chart{margin:1em 0}.note{color:#555;font-size:90%}p,td{overflow-wrap:anywhere}\
#resources td{white-space:nowrap}";

/// The HTML report.
pub fn render(s: &Summary, charts: &[Chart]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{name}: {verdict}</title><style>{STYLE}</style></head><body>\n",
        name = escape(&s.scenario),
        verdict = escape(&s.verdict)
    );
    let _ = writeln!(
        h,
        "<h1>{} <span id=\"verdict\" class=\"{v}\">{v}</span></h1>\n<p>{}</p>\n<p class=\"note\">Run {} from {} to {}.</p>",
        escape(&s.scenario),
        escape(&s.description),
        escape(&s.run_id),
        escape(&s.started_at),
        escape(&s.finished_at),
        v = escape(&s.verdict)
    );
    if s.sizes.scaled {
        let _ = writeln!(
            h,
            "<p><strong>Scaled run:</strong> {} users (the scenario file asks for {}), hold {:.0} s. The verdict is for these sizes.</p>",
            s.sizes.users, s.sizes.users_in_file, s.sizes.hold_seconds
        );
    }
    if !s.reasons.is_empty() {
        h.push_str("<h2>Why not GO</h2><ul>");
        for reason in &s.reasons {
            let _ = write!(h, "<li>{}</li>", escape(reason));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("<h2>Criteria</h2>\n<table id=\"criteria\"><tr><th>criterion</th><th>SLI</th><th>target</th><th>measured</th><th>source</th><th>Prometheus</th><th>verdict</th><th>note</th></tr>\n");
    for c in &s.criteria {
        let unit = c.sli.unit();
        let (class, verdict) = match c.verdict {
            Verdict::Pass => ("", "pass"),
            Verdict::Warn => ("warn", "warn"),
            Verdict::Fail => ("fail", "FAIL"),
            Verdict::NoData => ("fail", "NO DATA"),
            Verdict::Recorded => ("", "recorded"),
        };
        let _ = writeln!(
            h,
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td><td>{verdict}</td><td>{}</td></tr>",
            escape(&c.title()),
            escape(c.sli.as_str()),
            escape(c.op),
            escape(&unit.format(c.target)),
            c.measured.map_or("-".into(), |v| escape(&unit.format(v))),
            escape(c.source.as_str()),
            c.prometheus.map_or("-".into(), |v| escape(&unit.format(v))),
            escape(c.note.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</table>\n");
    if !s.alerts_firing.is_empty() {
        h.push_str("<h2>Gate alerts firing when the load ended</h2><ul>");
        for a in &s.alerts_firing {
            let _ = write!(
                h,
                "<li><code>{}</code> ({}, {})</li>",
                escape(&a.alert),
                escape(&a.criterion),
                escape(&a.severity)
            );
        }
        h.push_str("</ul>\n");
    }
    h.push_str("<h2>Over time</h2>\n");
    h.push_str(&charts_html(charts));
    if let Some(load) = &s.load {
        let _ = writeln!(
            h,
            "<h2>Load</h2><p>{} requests in {:.1} s ({:.1} req/s), {} failed; {} loadgen process(es).</p>",
            load.requests, load.duration_seconds, load.achieved_rate, load.failed, s.sizes.loadgen_processes
        );
        h.push_str("<table id=\"steps\"><tr><th>protocol</th><th>step</th><th>count</th><th>failed</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>max ms</th></tr>\n");
        for st in &load.steps {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td></tr>",
                escape(&st.protocol),
                escape(&st.step),
                st.count,
                st.failed,
                st.p50_ms,
                st.p95_ms,
                st.p99_ms,
                st.max_ms
            );
        }
        h.push_str("</table>\n");
    }
    for line in crate::lines::coverage_lines(s) {
        let _ = write!(h, "<p id=\"{}\">{}</p>", line.id, escape(&line.sentence));
        if !line.missing.is_empty() {
            h.push_str("<ul>");
            for missing in &line.missing {
                let _ = write!(h, "<li>{}</li>", escape(missing));
            }
            h.push_str("</ul>\n");
        }
    }
    let (sentences, rows) = crate::lines::resource_lines(s);
    if !sentences.is_empty() {
        h.push_str("<h2>Where the machine's capacity went</h2>\n");
        for line in sentences {
            let _ = writeln!(h, "<p class=\"resources\">{}</p>", escape(&line));
        }
        h.push_str("<table id=\"resources\"><tr>");
        for title in crate::lines::RESOURCE_COLUMNS {
            let _ = write!(h, "<th>{}</th>", escape(title));
        }
        h.push_str("</tr>\n");
        for row in rows {
            h.push_str("<tr>");
            for cell in row {
                let _ = write!(h, "<td>{}</td>", escape(&cell));
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n");
    }
    let faults = crate::lines::fault_lines(s);
    if !faults.is_empty() {
        h.push_str("<h2>Faults and restarts</h2><ul id=\"faults\">");
        for line in faults {
            let _ = write!(h, "<li>{}</li>", escape(&line));
        }
        h.push_str("</ul>\n");
    }
    let _ = writeln!(
        h,
        "<p class=\"note\">Environment: {}. Logs: {}.</p>\n</body></html>",
        escape(&crate::summary::machine_line(&s.environment)),
        escape(&s.files.iter().filter(|f| f.starts_with("logs/")).cloned().collect::<Vec<_>>().join(", "))
    );
    h
}

/// The sections of a Markdown report of ours as HTML: `## ` headings, pipe
/// tables, `- ` items and plain lines (the `# ` title and `**` lines are left
/// to the caller). The comparison and capacity reports print their tables once, in
/// Markdown, and show the same tables in HTML.
pub fn markdown_tables(md: &str) -> String {
    let mut h = String::new();
    let mut in_table = false;
    let mut header = false;
    for line in md.lines() {
        if line.starts_with('|') {
            if line.starts_with("|---") {
                continue;
            }
            if !in_table {
                h.push_str("<table>");
                in_table = true;
                header = true;
            }
            let tag = if header { "th" } else { "td" };
            header = false;
            h.push_str("<tr>");
            for cell in line.trim_matches('|').split('|') {
                let _ = write!(h, "<{tag}>{}</{tag}>", escape(cell.trim()));
            }
            h.push_str("</tr>\n");
            continue;
        }
        if in_table {
            h.push_str("</table>\n");
            in_table = false;
        }
        if let Some(title) = line.strip_prefix("## ") {
            let _ = writeln!(h, "<h2>{}</h2>", escape(title));
        } else if let Some(item) = line.strip_prefix("- ") {
            let _ = writeln!(h, "<p>{}</p>", escape(item));
        } else if !line.trim().is_empty() && !line.starts_with("# ") && !line.starts_with("**") {
            let _ = writeln!(h, "<p class=\"note\">{}</p>", escape(line));
        }
    }
    if in_table {
        h.push_str("</table>\n");
    }
    h
}

/// Each chart as inline SVG, or a line saying it had no data.
pub fn charts_html(charts: &[Chart]) -> String {
    let mut h = String::new();
    for chart in charts {
        match chart.svg() {
            Some(svg) => {
                let _ = writeln!(h, "<div class=\"chart\">{svg}</div>");
            }
            None => {
                let _ = writeln!(h, "<p class=\"note\">{}: no data in this run.</p>", escape(&chart.title));
            }
        }
    }
    h
}

/// A self-contained page: `<h1>` with `heading` and a `status` badge (green
/// when `good`), then `body` (HTML), then the charts under `charts_heading`.
pub fn page(heading: &str, status: &str, good: bool, body: &str, charts_heading: &str, charts: &[Chart]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{heading}: {status}</title><style>{STYLE}</style></head><body>\n",
        heading = escape(heading),
        status = escape(status)
    );
    let _ = writeln!(
        h,
        "<h1>{} <span id=\"verdict\" class=\"{}\">{}</span></h1>",
        escape(heading),
        if good { "GO" } else { "NO-GO" },
        escape(status)
    );
    h.push_str(body);
    let _ = writeln!(h, "<h2>{}</h2>", escape(charts_heading));
    h.push_str(&charts_html(charts));
    h.push_str("</body></html>\n");
    h
}
