//! A file `q2o-bench run` takes: a gate scenario (`[load]`) or a comparison
//! (`[compare]`), told apart by parsing the file, not by searching its text.

use std::path::Path;

use crate::compare::file::ComparisonFile;
use crate::scenario::{Scenario, ScenarioError};

/// What a scenario file holds.
#[derive(Clone, Debug)]
pub enum ScenarioFile {
    /// A gate: users, a topology and criteria.
    Gate(Scenario),
    /// REST against gRPC in rounds on one topology.
    Comparison(ComparisonFile),
}

impl ScenarioFile {
    /// Reads `path` as whichever kind of file it is.
    pub fn load(path: &Path) -> Result<ScenarioFile, ScenarioError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ScenarioError::Read { path: path.to_owned(), source })?;
        let table: toml::Table = q2o_common::config::parse_toml(&text)
            .map_err(|message| ScenarioError::Invalid { path: path.to_owned(), message })?;
        if table.contains_key("compare") {
            ComparisonFile::parse(path, &text).map(ScenarioFile::Comparison)
        } else {
            Scenario::parse(path, &text).map(ScenarioFile::Gate)
        }
    }
}
