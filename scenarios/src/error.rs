//! Why a run failed, as a type: each cause converts in with `?`, and an
//! interrupt is a variant of its own, not a message to recognise.

use std::path::PathBuf;

use q2o_env::EnvError;
use q2o_env::binaries::Missing;
use q2o_loadgen::results::ResultsError;

use crate::scenario::{FlagError, ScenarioError};
use q2o_env::prometheus::QueryError;

/// The run itself failed (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The scenario file.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A command-line size.
    #[error(transparent)]
    Flag(#[from] FlagError),
    /// A scenario that cannot run in the environment asked for.
    #[error("{key}: {reason}")]
    Unsupported {
        /// The scenario's key (`faults[0].action`).
        key: String,
        /// Why.
        reason: String,
    },
    /// A program is not installed.
    #[error(transparent)]
    Missing(#[from] Missing),
    /// The environment could not start, hurt or stop a service.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// Prometheus could not answer.
    #[error(transparent)]
    Prometheus(#[from] QueryError),
    /// A loadgen's results could not be read or merged.
    #[error(transparent)]
    Results(#[from] ResultsError),
    /// A loadgen process failed, or left results that do not merge.
    #[error("{0}")]
    Loadgen(String),
    /// Redis could not say what became of the tasks.
    #[error("cannot count the tasks in Redis: {0}")]
    Tasks(#[from] q2o_common::store::StoreError),
    /// A report or a run file could not be written or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The system under test could not serve what the run needs.
    #[error("{0}")]
    System(String),
    /// Ctrl-C or SIGTERM.
    #[error("interrupted: the run was stopped by a signal")]
    Interrupted,
}

impl RunError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> RunError {
        let path = path.into();
        move |source| RunError::Io { path, source }
    }
}

/// A failed run: its error, and the run folder (with the logs and an ERROR
/// summary) if one was made.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct RunFailed {
    /// Why.
    pub error: RunError,
    /// The run folder.
    pub dir: Option<PathBuf>,
}

impl From<RunError> for RunFailed {
    fn from(error: RunError) -> RunFailed {
        RunFailed { error, dir: None }
    }
}
