//! The interface every backend implements once its services run: faults,
//! the record of deaths and restarts, the services' processes, and stop.

use async_trait::async_trait;

use crate::error::EnvError;
use crate::topology::FaultAction;

/// A death and what followed: when it died and how long until it was ready again.
#[derive(Clone, Debug, serde::Serialize, PartialEq)]
pub struct Recovery {
    /// The service.
    pub service: String,
    /// Seconds after the environment's epoch when the death was noticed (or
    /// the service was stopped on purpose).
    pub died_at: f64,
    /// Seconds from its restart (or its `start`) until it was ready; `None` if it never was.
    pub recovered_after: Option<f64>,
}

/// Running services, however they run.
#[async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Does `action` to `service`; `false` if no such service runs. A killed
    /// service is restarted and a started one waited for in the background:
    /// the recovery is recorded when it is ready, and nothing here waits for it.
    async fn inject(&self, action: FaultAction, service: &str) -> Result<bool, EnvError>;

    /// Every death and restart so far.
    fn recoveries(&self) -> Vec<Recovery>;

    /// The host process of each running service, by name: the local child, or
    /// a container's main process as the host sees it.
    async fn pids(&self) -> Vec<(String, u32)>;

    /// Stops every service and removes what the backend made (containers, networks).
    async fn stop(&self);
}
