//! What a comparison measured, round by round: the results and the CPU time
//! of the loadgen and of every service.

use q2o_loadgen::recorder::Protocol;
use q2o_loadgen::results::RunResults;

use super::measure::PayloadRow;

/// One round as measured.
#[derive(Debug)]
pub struct Round {
    /// Which protocol it offered.
    pub protocol: Protocol,
    /// The loadgen's results.
    pub results: RunResults,
    /// CPU seconds of the loadgen.
    pub client_cpu_seconds: f64,
    /// CPU seconds of every service process over the round, by service.
    pub server_cpu_seconds: Vec<(String, f64)>,
}

/// Everything the report is made from.
#[derive(Debug)]
pub struct Measured {
    /// The measured rounds, in the order run.
    pub rounds: Vec<Round>,
    /// One saturation round per protocol.
    pub saturation: Vec<Round>,
    /// Payload bytes per operation.
    pub payloads: Vec<PayloadRow>,
}
