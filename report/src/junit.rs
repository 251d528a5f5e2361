//! `junit.xml`: one test case per criterion, so that CI shows the gate as tests.

use std::fmt::Write;

use crate::judged::Verdict;
use crate::summary::Summary;
use crate::xml::escape;

/// The JUnit XML of a summary.
pub fn render(summary: &Summary) -> String {
    let failures = summary.criteria.iter().filter(|c| matches!(c.verdict, Verdict::Fail | Verdict::NoData)).count();
    let errors = usize::from(summary.verdict == "ERROR");
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"q2o-bench\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\">",
        summary.criteria.len()
    );
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" timestamp=\"{}\">",
        escape(&summary.scenario),
        summary.criteria.len(),
        escape(&summary.started_at)
    );
    for c in &summary.criteria {
        let unit = c.sli.unit();
        let _ =
            writeln!(xml, "    <testcase classname=\"{}\" name=\"{}\">", escape(&summary.scenario), escape(&c.title()));
        let measured = c.measured.map_or("no data".to_owned(), |v| unit.format(v));
        let line = format!(
            "{} {} {} {} (measured {measured}, source {})",
            c.name,
            c.sli.as_str(),
            c.op,
            unit.format(c.target),
            c.source
        );
        match c.verdict {
            Verdict::Fail | Verdict::NoData => {
                let _ = writeln!(
                    xml,
                    "      <failure message=\"{}\">{}</failure>",
                    escape(&line),
                    escape(c.note.as_deref().unwrap_or(""))
                );
            }
            Verdict::Warn | Verdict::Pass | Verdict::Recorded => {
                let _ = writeln!(xml, "      <system-out>{}</system-out>", escape(&line));
            }
        }
        xml.push_str("    </testcase>\n");
    }
    if summary.verdict == "ERROR" {
        let _ = writeln!(xml, "    <testcase classname=\"{}\" name=\"run\">", escape(&summary.scenario));
        let _ = writeln!(xml, "      <error message=\"{}\"/>", escape(&summary.reasons.join("; ")));
        xml.push_str("    </testcase>\n");
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

/// One test case of a plain suite: its name, and the failure message if it failed.
#[derive(Debug)]
pub struct Case {
    pub name: String,
    pub failure: Option<String>,
    pub output: String,
}

/// A suite of plain cases: the comparison's rounds, the capacity run's knees.
pub fn suite(name: &str, timestamp: &str, cases: &[Case]) -> String {
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let n = cases.len();
    let _ = writeln!(xml, "<testsuites name=\"q2o-bench\" tests=\"{n}\" failures=\"{failures}\" errors=\"0\">");
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{}\" tests=\"{n}\" failures=\"{failures}\" errors=\"0\" timestamp=\"{}\">",
        escape(name),
        escape(timestamp)
    );
    for case in cases {
        let _ = writeln!(xml, "    <testcase classname=\"{}\" name=\"{}\">", escape(name), escape(&case.name));
        if let Some(message) = &case.failure {
            let _ = writeln!(xml, "      <failure message=\"{}\"/>", escape(message));
        }
        let _ = writeln!(xml, "      <system-out>{}</system-out>", escape(&case.output));
        xml.push_str("    </testcase>\n");
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}
