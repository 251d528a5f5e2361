//! The gate report of one run, in `reports/<scenario>/<run-id>/`:
//! `summary.json` (schema in [`summary`]), `report.md`, a self-contained
//! `report.html` with its charts inline as SVG, and `junit.xml`.

pub mod charts;
pub mod html;
pub mod junit;
pub mod lines;
pub mod markdown;
pub mod summary;
pub mod xml;

use std::path::Path;

use charts::Chart;
use summary::Summary;

/// Writes every report file into `dir`.
pub fn write_all(dir: &Path, summary: &Summary, charts: &[Chart]) -> std::io::Result<()> {
    std::fs::write(dir.join("summary.json"), serde_json::to_vec_pretty(summary).expect("summary serializes"))?;
    std::fs::write(dir.join("report.md"), markdown::render(summary))?;
    std::fs::write(dir.join("report.html"), html::render(summary, charts))?;
    std::fs::write(dir.join("junit.xml"), junit::render(summary))?;
    Ok(())
}
