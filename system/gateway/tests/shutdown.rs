use std::time::Duration;

use crate::support::*;

/// The gateway's drain grace (`SHUTDOWN_GRACE`); an open stream that held the
/// gateway up would make it take all of it.
const GATEWAY_GRACE: Duration = Duration::from_secs(5);

// Multi-threaded: `terminate` blocks its thread while it waits, and the
// clients' connections must still answer the gateway's HTTP/2 GOAWAY ping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_gateway_and_agents_promptly_and_cleanly() {
    let mut stack = Stack::start(GATEWAY, 1, &format!("{FAST_AGENTS}{}", pools("fast")));
    // An open gRPC stream must not hold the gateway up.
    let rest = RestClient::login(&stack.rest(0), "key-acme-0001").await;
    let project = rest.create_project("p").await;
    let mut orchestrator = q2o_proto::v1::orchestrator_client::OrchestratorClient::new(stack.grpc(0).await);
    let _stream = orchestrator
        .stream_project_updates(authed(q2o_proto::v1::StreamProjectUpdatesRequest { project_id: project }, &rest.token))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let code = stack.agents[0].terminate(Duration::from_secs(8)).unwrap();
    assert_eq!(code, Some(0), "agents exit code");
    let gateway_started = std::time::Instant::now();
    let code = stack.gateways[0].terminate(Duration::from_secs(8)).unwrap();
    assert_eq!(code, Some(0), "gateway exit code");
    let gateway = gateway_started.elapsed();
    assert!(gateway < GATEWAY_GRACE - Duration::from_secs(1), "the gateway took {gateway:?}: the stream held it up");
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
}
