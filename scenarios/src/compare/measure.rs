//! Payload bytes of each operation over each protocol, measured by sending
//! the loadgen's own requests once: the JSON bodies as they crossed the wire,
//! and the protobuf messages' encoded lengths.

use std::collections::BTreeMap;

use q2o_loadgen::inter_agent::ReviewTarget;
use q2o_loadgen::recorder::Protocol;
use q2o_loadgen::target::{GatewayTarget, Payload, Routed, Step, Target};
use serde::Serialize;

/// One operation's payloads.
#[derive(Clone, Debug, Serialize)]
pub struct PayloadRow {
    /// The operation.
    pub operation: String,
    /// Request and answer bodies over REST (JSON).
    pub rest: Payload,
    /// Request and answer messages over gRPC (protobuf).
    pub grpc: Payload,
}

/// Sends each operation once over each protocol and measures its payload.
pub(crate) async fn payloads(
    operations: &BTreeMap<String, u32>,
    api_key: &str,
    [gateway_rest, gateway_grpc]: [&str; 2],
    [agent_rest, agent_grpc]: [&str; 2],
) -> Result<Vec<PayloadRow>, String> {
    let gateway =
        GatewayTarget::connect(gateway_rest, Some(gateway_grpc), api_key, 1).await.map_err(|e| e.to_string())?;
    let agents = ReviewTarget::connect(Some(agent_rest), Some(agent_grpc), 1).await.map_err(|e| e.to_string())?;
    let routed = Routed { gateway: Some(gateway), agents: Some(agents) };
    let mut rows = Vec::new();
    for operation in operations.keys() {
        let mut sizes = [Payload::default(); 2];
        for (slot, protocol) in sizes.iter_mut().zip([Protocol::Rest, Protocol::Grpc]) {
            let step = Step { protocol, name: operation.clone() };
            *slot = routed.probe(&step).await.map_err(|outcome| {
                format!("{}:{operation} failed while measuring its payload: {outcome}", protocol.as_str())
            })?;
        }
        rows.push(PayloadRow { operation: operation.clone(), rest: sizes[0], grpc: sizes[1] });
    }
    Ok(rows)
}
