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
/// Counter `{protocol,reason}`: requests turned away by admission control
/// (`concurrency_limit`), answered 503 or `UNAVAILABLE`.
pub const GATEWAY_SHED_REQUESTS_TOTAL: &str = "q2o_gateway_shed_requests_total";
/// Gauge: the requests admission control lets in at once (static, or the adaptive limit now).
pub const GATEWAY_CONCURRENCY_LIMIT: &str = "q2o_gateway_concurrency_limit";
/// Gauge: admitted requests not yet answered.
pub const GATEWAY_IN_FLIGHT_REQUESTS: &str = "q2o_gateway_in_flight_requests";
/// Counter `{topic,status}`: Kafka messages produced, by delivery report (`delivered`, `failed`).
pub const KAFKA_MESSAGES_SENT_TOTAL: &str = "q2o_kafka_messages_sent_total";
/// Counter `{group,topic,outcome}`: Kafka messages processed by a consumer group.
pub const KAFKA_MESSAGES_CONSUMED_TOTAL: &str = "q2o_kafka_messages_consumed_total";
/// Gauge `{group,topic,partition}`: consumer lag in messages.
pub const KAFKA_CONSUMER_LAG_MESSAGES: &str = "q2o_kafka_consumer_lag_messages";
/// Histogram `{group}`: age of an event when a consumer group processed it (produce -> consume latency).
pub const KAFKA_EVENT_AGE_SECONDS: &str = "q2o_kafka_event_age_seconds";
/// Counter `{group,outcome}`: events recorded in a group's audit ledger (`unique`, `duplicate`).
pub const AUDIT_EVENTS_TOTAL: &str = "q2o_audit_events_total";
/// Counter `{agent_type,event_type}`: events seen by the analytics group.
pub const ANALYTICS_EVENTS_TOTAL: &str = "q2o_analytics_events_total";
/// Histogram `{agent_type}`: task durations as reported in completion events.
pub const ANALYTICS_TASK_DURATION_SECONDS: &str = "q2o_analytics_task_duration_seconds";
/// Counter `{agent_type}`: LLM spend as reported in completion events.
pub const ANALYTICS_COST_DOLLARS_TOTAL: &str = "q2o_analytics_cost_dollars_total";
/// Histogram `{kind}`: time the search index spends answering (`search`, `autocomplete`).
pub const SEARCH_QUERY_DURATION_SECONDS: &str = "q2o_search_query_duration_seconds";
/// Gauge: documents in the search index.
pub const SEARCH_INDEX_DOCUMENTS: &str = "q2o_search_index_documents";
/// Gauge: bytes the search index occupies on disk.
pub const SEARCH_INDEX_SIZE_BYTES: &str = "q2o_search_index_size_bytes";
/// Histogram: time from an event's creation until its document is searchable.
pub const SEARCH_INDEXING_LAG_SECONDS: &str = "q2o_search_indexing_lag_seconds";
/// Counter: documents indexed.
pub const SEARCH_DOCUMENTS_INDEXED_TOTAL: &str = "q2o_search_documents_indexed_total";
/// Counter `{protocol,step,outcome}`: requests finished by the load generator.
pub const LOADGEN_REQUESTS_TOTAL: &str = "q2o_loadgen_requests_total";
/// Histogram `{protocol,step}`: client-side latency from the planned start.
pub const LOADGEN_REQUEST_DURATION_SECONDS: &str = "q2o_loadgen_request_duration_seconds";
/// Gauge: requests in flight.
pub const LOADGEN_IN_FLIGHT_REQUESTS: &str = "q2o_loadgen_in_flight_requests";
/// Gauge: simulated users active now.
pub const LOADGEN_ACTIVE_USERS: &str = "q2o_loadgen_active_users";
/// Counter: planned starts not made on time.
pub const LOADGEN_DROPPED_STARTS_TOTAL: &str = "q2o_loadgen_dropped_starts_total";
/// Gauge: planned arrival rate.
pub const LOADGEN_TARGET_RATE: &str = "q2o_loadgen_target_rate";

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
    GATEWAY_SHED_REQUESTS_TOTAL,
    GATEWAY_CONCURRENCY_LIMIT,
    GATEWAY_IN_FLIGHT_REQUESTS,
    KAFKA_MESSAGES_SENT_TOTAL,
    KAFKA_MESSAGES_CONSUMED_TOTAL,
    KAFKA_CONSUMER_LAG_MESSAGES,
    KAFKA_EVENT_AGE_SECONDS,
    AUDIT_EVENTS_TOTAL,
    ANALYTICS_EVENTS_TOTAL,
    ANALYTICS_TASK_DURATION_SECONDS,
    ANALYTICS_COST_DOLLARS_TOTAL,
    SEARCH_QUERY_DURATION_SECONDS,
    SEARCH_INDEX_DOCUMENTS,
    SEARCH_INDEX_SIZE_BYTES,
    SEARCH_INDEXING_LAG_SECONDS,
    SEARCH_DOCUMENTS_INDEXED_TOTAL,
    LOADGEN_REQUESTS_TOTAL,
    LOADGEN_REQUEST_DURATION_SECONDS,
    LOADGEN_IN_FLIGHT_REQUESTS,
    LOADGEN_ACTIVE_USERS,
    LOADGEN_DROPPED_STARTS_TOTAL,
    LOADGEN_TARGET_RATE,
];
