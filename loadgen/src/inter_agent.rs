//! The inter-agent call (coder -> QA review) sent straight to an agents
//! process, over REST/JSON or gRPC/protobuf: the same request the coder agent
//! makes, so that both transports can be driven at one arrival rate and
//! compared side by side.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::grpc_channel::GrpcChannel;
use hyper::body::Bytes;
use prost::Message;
use q2o_proto::v1 as pb;
use q2o_proto::v1::qa_agent_client::QaAgentClient;

use async_trait::async_trait;

use crate::connect::{SetupError, connect_channels};
use crate::http1::Pool;
use crate::outcome::{Outcome, Transport};
use crate::recorder::Protocol;
use crate::step::Call;
use crate::target::{Payload, Target};

/// The agents' REST review endpoint (`q2o_agents::inter_agent::REVIEW_PATH`;
/// the loadgen does not link the agents crate and its Kafka client).
const REVIEW_PATH: &str = "/internal/v1/qa/review";

/// Review requests to one agents process.
#[derive(Debug)]
pub struct ReviewTarget {
    rest: Option<(Pool, Bytes, usize)>,
    channels: Vec<GrpcChannel>,
    next_channel: AtomicUsize,
    message: pb::ReviewRequest,
    /// The agents' service key, sent with every call.
    key: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
}

impl ReviewTarget {
    /// A target for the agents' REST address and/or gRPC address; `channels`
    /// HTTP/2 connections are shared by the gRPC calls, and every call
    /// presents `service_key` (the agents answer the Q2O services only).
    pub async fn connect(
        rest: Option<&str>,
        grpc: Option<&str>,
        channels: usize,
        service_key: &str,
    ) -> Result<ReviewTarget, SetupError> {
        let key = service_key.parse().map_err(|_| SetupError("--service-key is not a header value".into()))?;
        let message = pb::ReviewRequest {
            task_id: "00000000-0000-4000-8000-000000000000".into(),
            language: "rust".into(),
            code: sample_code(),
        };
        let rest = match rest {
            Some(url) => {
                let (pool, _) = Pool::new("--agent-url", url).map_err(SetupError)?;
                let body = serde_json::json!({
                    "task_id": message.task_id,
                    "language": message.language,
                    "code": message.code,
                })
                .to_string();
                let header = (q2o_common::service_key::HEADER, service_key);
                let request = pool.request("POST", REVIEW_PATH, Some(header), Some(body.as_bytes()));
                Some((pool, request, body.len()))
            }
            None => None,
        };
        let pool_of_channels = match grpc {
            Some(grpc) => connect_channels("--agent-grpc-url", "the agents' gRPC", grpc, channels).await?,
            None => Vec::new(),
        };
        Ok(ReviewTarget { rest, channels: pool_of_channels, next_channel: AtomicUsize::new(0), message, key })
    }

    /// Reviews the sample code over `protocol`, returning the payload sizes.
    async fn review(&self, protocol: Protocol, keep_body: bool) -> Result<Payload, Outcome> {
        // A protocol without its URL was refused when the run was set up.
        let no_target = Outcome::Transport(Transport::NoTarget);
        match protocol {
            Protocol::Rest => {
                let (pool, request, body_len) = self.rest.as_ref().ok_or(no_target)?;
                let answer = pool.exchange(request, keep_body).await.map_err(|f| f.outcome())?;
                match answer.outcome() {
                    Outcome::Ok => Ok(Payload { request: *body_len, response: answer.body.len() }),
                    failed => Err(failed),
                }
            }
            Protocol::Grpc => {
                if self.channels.is_empty() {
                    return Err(no_target);
                }
                let i = self.next_channel.fetch_add(1, Ordering::Relaxed) % self.channels.len();
                let message = self.message.clone();
                let request_len = message.encoded_len();
                let mut request = tonic::Request::new(message);
                request.metadata_mut().insert(q2o_common::service_key::HEADER, self.key.clone());
                let review = QaAgentClient::new(self.channels[i].clone())
                    .review_code(request)
                    .await
                    .map_err(|status| Outcome::of_grpc::<()>(&Err(status)))?
                    .into_inner();
                Ok(Payload { request: request_len, response: review.encoded_len() })
            }
        }
    }
}

#[async_trait]
impl Target for ReviewTarget {
    async fn call(&self, call: Call) -> Outcome {
        match self.review(call.protocol, false).await {
            Ok(_) => Outcome::Ok,
            Err(outcome) => outcome,
        }
    }

    async fn probe(&self, call: Call) -> Result<Payload, Outcome> {
        self.review(call.protocol, true).await
    }
}

/// A Rust module of about 4 KB, the size of what the coder agent's templates
/// render for a typical task: the body of every review request.
fn sample_code() -> String {
    let mut code = String::from("//! Generated by the coder agent.\n\nuse std::collections::HashMap;\n\n");
    code.push_str("#[derive(Debug, Default)]\npub struct Ledger {\n    balances: HashMap<String, u64>,\n}\n\n");
    code.push_str("impl Ledger {\n");
    for f in ["deposit", "withdraw", "transfer_in", "transfer_out", "fee", "refund", "interest", "adjust"] {
        code.push_str(&format!(
            "    /// Applies `{f}` to the account named by `input` (\"name:amount\").\n    \
             pub fn {f}(&mut self, input: &str) -> Result<u64, String> {{\n        \
             let (name, amount) = input.split_once(':').ok_or(\"expected name:amount\")?;\n        \
             let amount: u64 = amount.parse().map_err(|e| format!(\"{f}: {{e}}\"))?;\n        \
             let balance = self.balances.entry(name.to_owned()).or_default();\n        \
             *balance = balance.checked_add(amount).ok_or(\"overflow\")?;\n        \
             Ok(*balance)\n    }}\n\n"
        ));
    }
    code.push_str("}\n");
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_the_size_of_a_rendered_artifact() {
        let code = sample_code();
        assert!((3_000..6_000).contains(&code.len()), "{} bytes", code.len());
        assert_eq!(code.matches("pub fn ").count(), 8);
    }
}
