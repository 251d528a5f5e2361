//! `q2o-bench rules` (`just rules`): the gates of the scenario files, handed
//! to `q2o-slo`'s generator, which says what every rule, test, manifest and
//! dashboard file holds.

use std::path::{Path, PathBuf};

use q2o_slo::gates::Gate;
use q2o_slo::generate::{Destinations, generated};

use crate::error::RunError;
use crate::scenario::Scenario;
use crate::scenario_file::ScenarioFile;

/// The gate scenarios of `files`, or of every `*.toml` in `dir` but
/// `Cargo.toml` when none is named; comparison files have no gate.
pub fn gate_scenarios(files: &[PathBuf], dir: &Path) -> Result<Vec<Scenario>, RunError> {
    let mut files = files.to_vec();
    if files.is_empty() {
        for entry in std::fs::read_dir(dir).map_err(RunError::io(dir))? {
            let path = entry.map_err(RunError::io(dir))?.path();
            if path.extension().is_some_and(|e| e == "toml") && path.file_name().is_some_and(|n| n != "Cargo.toml") {
                files.push(path);
            }
        }
        files.sort();
    }
    let mut scenarios = Vec::new();
    for file in &files {
        if let ScenarioFile::Gate(scenario) = ScenarioFile::load(file)? {
            scenarios.push(scenario);
        }
    }
    Ok(scenarios)
}

/// Every generated file for `scenarios`, with its text.
pub fn files(scenarios: &[Scenario], to: &Destinations) -> Vec<(PathBuf, String)> {
    let gates: Vec<Gate<'_>> =
        scenarios.iter().map(|s| Gate { phase: &s.name, description: &s.description, criteria: &s.criteria }).collect();
    generated(&gates, to)
}
