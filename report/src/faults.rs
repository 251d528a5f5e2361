//! Faults as a report tells them: each as injected, and the users' view of them.

use serde::Serialize;

/// A fault as injected.
#[derive(Clone, Debug, Serialize)]
pub struct Injected {
    /// `kill`, `pause`, ...
    pub action: &'static str,
    /// The service.
    pub service: String,
    /// Seconds after the load started.
    pub at: f64,
    /// Whether the environment could do it (the service was running).
    pub done: bool,
    /// Seconds until the service was ready again (after `kill`, or after the `start` of a `stop`).
    pub recovered_after: Option<f64>,
    /// The scenario's `recover_within`, seconds.
    pub expected_within: Option<f64>,
    /// On the environment's clock, to match restarts to faults.
    #[serde(skip)]
    pub clock_at: f64,
}

/// The users' view of the faults: the burst of failures that begins at the
/// first failure after the first fault and ends at the last failure before
/// [`QUIET`] seconds pass without one (a lone failure long after is not the
/// fault's).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ErrorBurst {
    /// Requests that failed in the burst.
    pub failed_requests: u64,
    /// The second (after the load started) of the first of them.
    pub first_failure_at: Option<f64>,
    /// The second of the last of them.
    pub last_failure_at: Option<f64>,
    /// From the start of the first failing second to the end of the last: 0 when none failed.
    pub seconds: f64,
}
