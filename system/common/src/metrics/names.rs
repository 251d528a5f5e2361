//! Metric names. The roadmap's names stay as they are (dashboards and alerts quote
//! them); our own follow `q2o_<component>_<name>_<unit>[_total]`.
//!
//! Alerts and dashboards may only use names listed in [`ALL`].

/// Counter `{method,route,status}`: HTTP requests served.
pub const HTTP_REQUESTS_TOTAL: &str = "http_requests_total";
/// Histogram `{method,route}`: HTTP request latency.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "http_request_duration_seconds";
/// Counter `{grpc_service,grpc_method,grpc_code}`: gRPC calls finished.
pub const GRPC_SERVER_HANDLED_TOTAL: &str = "grpc_server_handled_total";
/// Histogram `{grpc_service,grpc_method}`: gRPC call latency.
pub const GRPC_SERVER_HANDLING_SECONDS: &str = "grpc_server_handling_seconds";
/// Counter `{agent_type,status}`: tasks finished by agents (`completed`, `failed`, `duplicate`).
pub const AGENT_TASKS_TOTAL: &str = "q2o_agent_tasks_total";
/// Histogram `{agent_type}`: time from claim to finish of a task.
pub const AGENT_TASK_DURATION_SECONDS: &str = "q2o_agent_task_duration_seconds";
/// Gauge `{agent_type}`: tasks being worked on now.
pub const AGENT_ACTIVE_TASKS: &str = "q2o_agent_active_tasks";
/// Counter `{agent_type}`: tasks taken over from a crashed or stalled worker.
pub const AGENT_TASKS_RECLAIMED_TOTAL: &str = "q2o_agent_tasks_reclaimed_total";
/// Counter `{model,kind}`: simulated LLM tokens (`prompt`, `completion`).
pub const LLM_TOKENS_USED_TOTAL: &str = "q2o_llm_tokens_used_total";
/// Counter `{model}`: simulated LLM spend.
pub const LLM_COST_DOLLARS_TOTAL: &str = "q2o_llm_cost_dollars_total";
/// Histogram `{model}`: simulated LLM call latency.
pub const LLM_REQUEST_DURATION_SECONDS: &str = "q2o_llm_request_duration_seconds";
/// Counter `{cache_type}`: cache lookups that hit.
pub const CACHE_HITS_TOTAL: &str = "q2o_cache_hits_total";
/// Counter `{cache_type}`: cache lookups that missed.
pub const CACHE_MISSES_TOTAL: &str = "q2o_cache_misses_total";
/// Histogram `{protocol,caller,callee}`: agent-to-agent call latency, client side.
pub const INTER_AGENT_REQUEST_DURATION_SECONDS: &str = "q2o_inter_agent_request_duration_seconds";
/// Counter `{protocol,caller,callee,outcome}`: agent-to-agent calls.
pub const INTER_AGENT_REQUESTS_TOTAL: &str = "q2o_inter_agent_requests_total";
/// Counter `{outcome}`: rate-limit decisions (`allowed`, `limited`).
pub const GATEWAY_RATE_LIMIT_DECISIONS_TOTAL: &str = "q2o_gateway_rate_limit_decisions_total";
/// Gauge: open gRPC update and activity streams.
pub const GATEWAY_ACTIVE_STREAMS: &str = "q2o_gateway_active_streams";
/// Gauge `{agent_type}`: entries waiting in an agent type's queue.
pub const QUEUE_DEPTH: &str = "q2o_queue_depth";

/// Every name above, for the check that alerts and dashboards quote only real metrics.
pub const ALL: &[&str] = &[
    HTTP_REQUESTS_TOTAL,
    HTTP_REQUEST_DURATION_SECONDS,
    GRPC_SERVER_HANDLED_TOTAL,
    GRPC_SERVER_HANDLING_SECONDS,
    AGENT_TASKS_TOTAL,
    AGENT_TASK_DURATION_SECONDS,
    AGENT_ACTIVE_TASKS,
    AGENT_TASKS_RECLAIMED_TOTAL,
    LLM_TOKENS_USED_TOTAL,
    LLM_COST_DOLLARS_TOTAL,
    LLM_REQUEST_DURATION_SECONDS,
    CACHE_HITS_TOTAL,
    CACHE_MISSES_TOTAL,
    INTER_AGENT_REQUEST_DURATION_SECONDS,
    INTER_AGENT_REQUESTS_TOTAL,
    GATEWAY_RATE_LIMIT_DECISIONS_TOTAL,
    GATEWAY_ACTIVE_STREAMS,
    QUEUE_DEPTH,
];
