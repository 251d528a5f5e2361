//! The one error of this crate: an environment that could not be started,
//! used or stopped, with what and where.

use crate::topology::FaultAction;

/// An environment could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// A file or folder of the run could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// No free port could be had.
    #[error("no free port on 127.0.0.1: {0}")]
    NoFreePort(std::io::Error),
    /// A program could not be executed.
    #[error("cannot start {name} ({program}): {source}")]
    Spawn {
        /// The service.
        name: String,
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// A service exited or never became ready.
    #[error("{name} did not become ready within {seconds} s ({why}); last log lines:\n{tail}")]
    NotReady {
        /// The service.
        name: String,
        /// How long it was waited for.
        seconds: u64,
        /// `exited with ...` or `timed out`.
        why: String,
        /// The end of its log.
        tail: String,
    },
    /// The docker engine refused or failed; the message says what was asked.
    #[error("{0}")]
    Docker(String),
    /// A fault this environment cannot inject.
    #[error("fault `{}` of {service} needs the docker environment", action.as_str())]
    NeedsDocker {
        /// What was asked.
        action: FaultAction,
        /// Of which service.
        service: String,
    },
}

impl EnvError {
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> EnvError + '_ {
        move |source| EnvError::Io { path: path.display().to_string(), source }
    }
}
