/*!
The reports of q2o-bench: their schemas and how they are written.

# Brief overview

* [`summary::Summary`] is `summary.json`, the gate report's machine-readable
  form (schema version and fields in [`summary`]); [`judged::Judged`] is one
  criterion as judged and [`faults::Injected`] one fault as injected.
* [`write_all`] writes a gate run's `summary.json`, `report.md`
  ([`markdown`]), a self-contained `report.html` ([`html`], charts inline as
  SVG by [`charts`]) and `junit.xml` ([`junit`]).
* [`html::page`], [`charts::Chart`], [`junit::suite`] and [`xml::escape`]
  are shared with the comparison and capacity reports.

This crate renders data it is given: it starts nothing and asks no server.
*/

pub mod charts;
pub mod faults;
pub mod html;
pub mod judged;
pub mod junit;
pub mod lines;
pub mod markdown;
pub mod summary;
pub mod xml;

use std::path::{Path, PathBuf};

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

/// The report files and every log, loadgen result and rule file, relative to the run folder.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut files = vec!["summary.json".to_owned(), "report.md".into(), "report.html".into(), "junit.xml".into()];
    for sub in ["logs", "loadgen", "rules"] {
        let mut found: Vec<String> = walk(&dir.join(sub))
            .into_iter()
            .filter_map(|p| p.strip_prefix(dir).ok().map(|p| p.display().to_string()))
            .collect();
        found.sort();
        files.extend(found);
    }
    files.push("prometheus.yml".into());
    files
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
