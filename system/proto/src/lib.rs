/*!
The gRPC contract of the Q2O reference system, generated from `proto/q2o.proto`.

Everything lives in [`v1`]: the domain messages (`Project`, `Task`, `AgentEvent`),
the gateway's services (`Auth`, `Projects`, `Orchestrator`, `AgentMonitor`) and the
agents' services (`CoderAgent`, `ResearcherAgent`, `QaAgent`). Each service has a
`*_server` module with the trait a server implements and a `*_client` module.

This crate holds generated code only; conversions to the domain types live in
`q2o-common`.
*/

/// Package `q2o.v1`.
#[allow(missing_docs, unreachable_pub, missing_debug_implementations, clippy::all)]
pub mod v1 {
    tonic::include_proto!("q2o.v1");
}
