//! One target for a mix that calls both the gateway and an agents process:
//! each call goes where its step belongs.

use std::sync::Arc;

use async_trait::async_trait;

use crate::command::RunCommand;
use crate::connect::SetupError;
use crate::inter_agent::ReviewTarget;
use crate::outcome::{Outcome, Transport};
use crate::recorder::Protocol;
use crate::step::{Call, Step};
use crate::target::{GatewayTarget, Payload, Target};

/// The gateway's steps and the agents' `review`, each sent where it belongs.
#[derive(Debug)]
pub struct Routed {
    /// The gateway, when the mix has its steps.
    pub gateway: Option<Arc<GatewayTarget>>,
    /// An agents process, when the mix has `review`.
    pub agents: Option<ReviewTarget>,
}

impl Routed {
    /// Connects to the gateway and to an agents process, each only if the
    /// command's mix has steps for it; a step without its URL is refused here.
    pub async fn connect(command: &RunCommand) -> Result<Routed, SetupError> {
        let mix = &command.mix;
        let missing = |what: &str| SetupError(what.to_owned());
        let gateway_step = |s: Step| s != Step::Review;
        let (gateway_rest, gateway_grpc) =
            (mix.has(Protocol::Rest, gateway_step), mix.has(Protocol::Grpc, gateway_step));
        let review = |s: Step| s == Step::Review;
        let (review_rest, review_grpc) = (mix.has(Protocol::Rest, review), mix.has(Protocol::Grpc, review));
        let channels = command.common.grpc_channels;
        let gateway = if gateway_rest || gateway_grpc {
            let rest = command
                .rest_url
                .as_deref()
                .ok_or_else(|| missing("--mix has gateway steps; give --rest-url (or --url)"))?;
            if gateway_grpc && command.grpc_url.is_none() {
                return Err(missing("--mix has grpc: steps; give --grpc-url"));
            }
            let grpc = command.grpc_url.as_deref().filter(|_| gateway_grpc);
            Some(GatewayTarget::connect(rest, grpc, &command.api_key, channels).await?)
        } else {
            None
        };
        let agents = if review_rest || review_grpc {
            let rest = command.agent_url.as_deref().filter(|_| review_rest);
            let grpc = command.agent_grpc_url.as_deref().filter(|_| review_grpc);
            if review_rest && rest.is_none() {
                return Err(missing("--mix has rest:review; give --agent-url"));
            }
            if review_grpc && grpc.is_none() {
                return Err(missing("--mix has grpc:review; give --agent-grpc-url"));
            }
            Some(ReviewTarget::connect(rest, grpc, channels, &q2o_common::service_key::from_env()).await?)
        } else {
            None
        };
        Ok(Routed { gateway, agents })
    }

    fn route(&self, call: Call) -> Result<&dyn Target, Outcome> {
        let target: Option<&dyn Target> = if call.step == Step::Review {
            self.agents.as_ref().map(|a| a as &dyn Target)
        } else {
            self.gateway.as_deref().map(|g| g as &dyn Target)
        };
        target.ok_or(Outcome::Transport(Transport::NoTarget))
    }
}

#[async_trait]
impl Target for Routed {
    async fn call(&self, call: Call) -> Outcome {
        match self.route(call) {
            Ok(target) => target.call(call).await,
            Err(outcome) => outcome,
        }
    }

    async fn probe(&self, call: Call) -> Result<Payload, Outcome> {
        self.route(call)?.probe(call).await
    }
}
