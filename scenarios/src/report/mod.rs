//! The gate report of one run, in `reports/<scenario>/<run-id>/`:
//! `summary.json` (schema in [`summary`]), `report.md`, a self-contained
//! `report.html` with its charts inline as SVG, and `junit.xml`.

pub mod charts;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod summary;

use std::path::Path;

pub use summary::Summary;

use crate::report::charts::Chart;

/// Writes every report file into `dir`.
pub fn write_all(dir: &Path, summary: &Summary, charts: &[Chart]) -> std::io::Result<()> {
    std::fs::write(dir.join("summary.json"), serde_json::to_vec_pretty(summary).expect("summary serializes"))?;
    std::fs::write(dir.join("report.md"), markdown::render(summary))?;
    std::fs::write(dir.join("report.html"), html::render(summary, charts))?;
    std::fs::write(dir.join("junit.xml"), junit::render(summary))?;
    Ok(())
}

/// `text` with XML's five special characters escaped.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}
