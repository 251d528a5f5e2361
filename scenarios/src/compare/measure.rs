//! Payload bytes of each operation over each protocol, measured by sending
//! the loadgen's own requests once: the JSON bodies as they crossed the wire,
//! and the protobuf messages' encoded lengths.

use std::collections::BTreeMap;

use q2o_loadgen::inter_agent::ReviewTarget;
use q2o_loadgen::recorder::Protocol;
use q2o_loadgen::routed::Routed;
use q2o_loadgen::step::{Call, Step};
use q2o_loadgen::target::{GatewayTarget, Payload, Target};
use serde::Serialize;

use crate::error::RunError;

/// One operation's payloads.
#[derive(Clone, Debug, Serialize)]
pub struct PayloadRow {
    /// The operation.
    pub operation: Step,
    /// Request and answer bodies over REST (JSON).
    pub rest: Payload,
    /// Request and answer messages over gRPC (protobuf).
    pub grpc: Payload,
}

/// Sends each operation once over each protocol and measures its payload.
pub(crate) async fn payloads(
    operations: &BTreeMap<Step, u32>,
    api_key: &str,
    [gateway_rest, gateway_grpc]: [&str; 2],
    [agent_rest, agent_grpc]: [&str; 2],
) -> Result<Vec<PayloadRow>, RunError> {
    let system = |e: q2o_loadgen::connect::SetupError| RunError::System(e.to_string());
    let gateway = GatewayTarget::connect(gateway_rest, Some(gateway_grpc), api_key, 1).await.map_err(system)?;
    let key = q2o_common::service_key::from_env();
    let agents = ReviewTarget::connect(Some(agent_rest), Some(agent_grpc), 1, &key).await.map_err(system)?;
    let routed = Routed { gateway: Some(gateway), agents: Some(agents) };
    let mut rows = Vec::new();
    for operation in operations.keys() {
        let mut sizes = [Payload::default(); 2];
        for (slot, protocol) in sizes.iter_mut().zip([Protocol::Rest, Protocol::Grpc]) {
            let call = Call::new(protocol, *operation);
            *slot = routed
                .probe(call)
                .await
                .map_err(|outcome| RunError::System(format!("{call} failed while measuring its payload: {outcome}")))?;
        }
        rows.push(PayloadRow { operation: *operation, rest: sizes[0], grpc: sizes[1] });
    }
    Ok(rows)
}
