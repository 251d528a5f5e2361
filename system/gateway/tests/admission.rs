use std::time::{Duration, Instant};

use q2o_proto::v1 as pb;
use q2o_testkit::{eventually, metric_value};
use tonic::Code;

use crate::support::*;

/// Two requests at once, no rate limit (an API key then costs no Redis call
/// before the handler), deadlines of at most 3 s.
const TWO_AT_ONCE: &str = r#"
request_timeout = "3s"
[admission]
mode = "static"
limit = 2
retry_after = "2s"
[[tenants]]
tenant = "acme"
api_key = "key-acme-0001"
"#;

/// Stops (or continues) the test's own redis-server, so that requests hang in the gateway.
fn signal_redis(stack: &Stack, signal: &str) {
    let status = std::process::Command::new("kill").args([signal, &stack.redis.pid().to_string()]).status().unwrap();
    assert!(status.success(), "kill {signal}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_limit_requests_are_turned_away_at_once_and_deadlines_end_the_rest() {
    let stack = Stack::start(TWO_AT_ONCE, 1, "");
    let client = reqwest::Client::new();
    let base = stack.rest(0);
    let list = |timeout: Option<&'static str>| {
        let mut request = client.get(format!("{base}/api/v1/projects")).header("x-api-key", "key-acme-0001");
        if let Some(timeout) = timeout {
            request = request.header("x-request-timeout", timeout);
        }
        request.send()
    };
    assert_eq!(list(None).await.unwrap().status(), 200);

    let bad = list(Some("soon")).await.unwrap();
    assert_eq!(bad.status(), 400);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["field"], "X-Request-Timeout", "{body}");

    signal_redis(&stack, "-STOP");
    // A caller's deadline ends its request, even while Redis hangs.
    let started = Instant::now();
    let late = list(Some("300ms")).await.unwrap();
    assert_eq!(late.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(2), "answered at its deadline, took {:?}", started.elapsed());
    let body: serde_json::Value = late.json().await.unwrap();
    assert_eq!(body["error"]["code"], "deadline_exceeded");

    // Two requests hang on Redis and fill the limit ...
    let hanging = [tokio::spawn(list(None)), tokio::spawn(list(None))];
    let mut channel = pb::projects_client::ProjectsClient::new(stack.grpc(0).await);
    eventually(Duration::from_secs(5), "two requests in flight", || async {
        let metrics = client.get(format!("{base}/metrics")).send().await.ok()?.text().await.ok()?;
        (metric_value(&metrics, "q2o_gateway_in_flight_requests", &[]) == Some(2.0)).then_some(())
    })
    .await
    .unwrap();
    // ... so the next one is turned away at once, over REST ...
    let started = Instant::now();
    let shed = list(None).await.unwrap();
    let took = started.elapsed();
    assert_eq!(shed.status(), 503);
    assert!(took < Duration::from_millis(500), "shedding waits for nothing, took {took:?}");
    assert_eq!(shed.headers()["retry-after"], "2");
    let body: serde_json::Value = shed.json().await.unwrap();
    assert_eq!(body["error"]["code"], "overloaded");
    // ... and over gRPC, with retry pushback.
    let mut request = tonic::Request::new(pb::ListProjectsRequest::default());
    request.metadata_mut().insert("x-api-key", "key-acme-0001".parse().unwrap());
    let status = channel.list_projects(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.metadata().get("grpc-retry-pushback-ms").unwrap(), "2000");

    signal_redis(&stack, "-CONT");
    for request in hanging {
        assert_eq!(request.await.unwrap().unwrap().status(), 200, "admitted requests finish once Redis answers");
    }
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    let shed = |protocol, reason| {
        metric_value(&metrics, "q2o_gateway_shed_requests_total", &[("protocol", protocol), ("reason", reason)])
    };
    assert_eq!(shed("rest", "concurrency_limit"), Some(1.0), "{metrics}");
    assert_eq!(shed("grpc", "concurrency_limit"), Some(1.0), "{metrics}");
    assert_eq!(metric_value(&metrics, "q2o_gateway_in_flight_requests", &[]), Some(0.0));
    assert_eq!(list(None).await.unwrap().status(), 200, "the limit frees up");
}
