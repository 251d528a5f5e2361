//! Agent-to-agent calls (coder -> QA review) over REST or gRPC: the two paths of
//! the REST-versus-gRPC experiment. Both are real network calls on pooled,
//! kept-alive connections, timed by the caller.

use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::HeaderValue;
use hyper::{Method, Request, StatusCode, Uri, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use q2o_common::domain::{AgentType, Review};
use q2o_common::service_key;
use q2o_proto::v1 as pb;
use q2o_proto::v1::qa_agent_client::QaAgentClient;
use serde::{Deserialize, Serialize};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};

use crate::config::InterAgentProtocol;
use crate::metrics::AgentMetrics;

/// Path of the QA agent's REST review endpoint.
pub const REVIEW_PATH: &str = "/internal/v1/qa/review";

/// How long one inter-agent call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Body of a REST review request (the JSON twin of `ReviewRequest`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// The task the code belongs to.
    pub task_id: String,
    /// The code's language.
    pub language: String,
    /// The code.
    pub code: String,
}

/// An inter-agent call that failed.
#[derive(Debug, thiserror::Error)]
pub enum InterAgentError {
    /// The QA agent's URL is not usable.
    #[error("invalid QA agent URL `{url}`: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The REST call failed in transport.
    #[error("REST call failed: {0}")]
    Http(String),
    /// The REST call got an error status.
    #[error("REST call answered {0}")]
    Status(StatusCode),
    /// The gRPC call failed.
    #[error("gRPC call failed: {0}")]
    Grpc(#[from] tonic::Status),
    /// The call took longer than allowed.
    #[error("call timed out after {0:?}")]
    Timeout(Duration),
    /// The process stopped the inter-agent lane before the call ended.
    #[error("the process is stopping")]
    Stopped,
}

/// A client of the QA agent over the configured transport.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // One per process, cloned rarely: boxing would buy nothing.
pub enum QaClient {
    /// JSON over HTTP/1.1, keep-alive pool.
    Rest {
        /// Pooled HTTP client.
        client: Client<HttpConnector, Full<Bytes>>,
        /// Full URL of the review endpoint.
        url: Uri,
        /// The service key presented.
        key: HeaderValue,
    },
    /// Protobuf over one HTTP/2 connection, multiplexed.
    Grpc {
        /// The client on its channel.
        client: QaAgentClient<Channel>,
        /// The service key presented.
        key: MetadataValue<Ascii>,
    },
}

impl QaClient {
    /// A client for `protocol` at `base_url` (`http://host:port`), presenting `service_key`.
    pub fn new(protocol: InterAgentProtocol, base_url: &str, service_key: &str) -> Result<QaClient, InterAgentError> {
        let bad = |reason: String| InterAgentError::Url { url: base_url.to_owned(), reason };
        let key =
            HeaderValue::from_str(service_key).map_err(|_| bad("the service key is not a header value".into()))?;
        match protocol {
            InterAgentProtocol::Rest => {
                let url: Uri = format!("{}{REVIEW_PATH}", base_url.trim_end_matches('/'))
                    .parse()
                    .map_err(|e: hyper::http::uri::InvalidUri| bad(e.to_string()))?;
                let mut connector = HttpConnector::new();
                connector.set_nodelay(true);
                let client =
                    Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
                Ok(QaClient::Rest { client, url, key })
            }
            InterAgentProtocol::Grpc => {
                let endpoint = Endpoint::from_shared(base_url.to_owned())
                    .map_err(|e| bad(e.to_string()))?
                    .tcp_nodelay(true)
                    .timeout(CALL_TIMEOUT);
                let key =
                    MetadataValue::try_from(service_key).map_err(|_| bad("the service key is not metadata".into()))?;
                Ok(QaClient::Grpc { client: QaAgentClient::new(endpoint.connect_lazy()), key })
            }
        }
    }

    /// The `protocol` label value.
    pub fn protocol(&self) -> &'static str {
        match self {
            QaClient::Rest { .. } => InterAgentProtocol::Rest.as_str(),
            QaClient::Grpc { .. } => InterAgentProtocol::Grpc.as_str(),
        }
    }

    /// Asks the QA agent to review `code`, recording the call in `metrics`.
    pub async fn review(
        &self,
        caller: AgentType,
        request: ReviewRequest,
        metrics: &AgentMetrics,
    ) -> Result<Review, InterAgentError> {
        let started = Instant::now();
        let result = match tokio::time::timeout(CALL_TIMEOUT, self.call(request)).await {
            Ok(result) => result,
            Err(_) => Err(InterAgentError::Timeout(CALL_TIMEOUT)),
        };
        metrics.inter_agent_call(self.protocol(), caller, AgentType::Qa, started.elapsed(), result.is_ok());
        result
    }

    async fn call(&self, request: ReviewRequest) -> Result<Review, InterAgentError> {
        match self {
            QaClient::Rest { client, url, key } => {
                let body = serde_json::to_vec(&request).expect("review requests serialize");
                let http = Request::builder()
                    .method(Method::POST)
                    .uri(url.clone())
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(service_key::HEADER, key.clone())
                    .body(Full::new(Bytes::from(body)))
                    .expect("a static request shape is valid");
                let response = client.request(http).await.map_err(|e| InterAgentError::Http(e.to_string()))?;
                let status = response.status();
                let bytes =
                    response.into_body().collect().await.map_err(|e| InterAgentError::Http(e.to_string()))?.to_bytes();
                if !status.is_success() {
                    return Err(InterAgentError::Status(status));
                }
                serde_json::from_slice(&bytes).map_err(|e| InterAgentError::Http(format!("malformed review: {e}")))
            }
            QaClient::Grpc { client, key } => {
                let message =
                    pb::ReviewRequest { task_id: request.task_id, language: request.language, code: request.code };
                let mut request = tonic::Request::new(message);
                request.metadata_mut().insert(service_key::HEADER, key.clone());
                let review = client.clone().review_code(request).await?.into_inner();
                Ok(review.into())
            }
        }
    }
}
