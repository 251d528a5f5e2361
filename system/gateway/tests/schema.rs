//! The REST API against its own OpenAPI document, by schemathesis (PyPI,
//! installed into the project's `.venv` by `scripts/setup.sh`): every
//! operation, with valid and invalid input, checked for server errors,
//! undocumented statuses and bodies, schema-valid requests refused,
//! invalid ones accepted, and credentials not enforced. And the search
//! service behind the gateway answers no one without the service key.
//!
//! A 504 is taken for what it is, an answer the document promises: the
//! `X-Request-Timeout` header may ask for as little as 10 ms, and on a busy
//! machine (CI runs the tests in parallel) a task's submission can take
//! longer. Every other 5xx is still a failure.

use std::path::PathBuf;
use std::process::Command;

use crate::event_log::LogStack;

fn schemathesis() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/schemathesis");
    assert!(venv.exists(), "{} is missing: run scripts/setup.sh, which installs schemathesis", venv.display());
    venv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_against_the_openapi_document() {
    let stack = LogStack::start();
    let base = stack.stack.rest(0);
    // schemathesis keeps a cache in its working directory, and reads its
    // config there: the stack's scratch one.
    let scratch = stack.stack.dir.path();
    let config = "[checks.not_a_server_error]\nexpected-statuses = [\"2xx\", \"3xx\", \"4xx\", \"504\"]\n";
    std::fs::write(scratch.join("schemathesis.toml"), config).unwrap();
    let output = Command::new(schemathesis())
        .current_dir(scratch)
        .args(["run", &format!("{base}/api/v1/openapi.json"), "--checks", "all"])
        .args(["--header", "X-API-Key: key-acme-0001", "--max-examples", "40", "--seed", "20261201"])
        .args(["--request-timeout", "10", "--no-color"])
        .output()
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("Selected: 15/15"), "every operation was tested, the searches too:\n{report}");
    // What was tried, for the test's log.
    println!(
        "{}",
        report.lines().filter(|l| l.contains("generated") || l.contains("Tested")).collect::<Vec<_>>().join("\n")
    );
}

#[tokio::test]
async fn the_search_service_answers_only_callers_with_the_service_key() {
    let stack = LogStack::start();
    let url = format!("{}/api/v1/search?q=anything&tenant=acme", stack.search.url("http"));
    let client = reqwest::Client::new();
    let without = client.get(&url).send().await.unwrap();
    assert_eq!(without.status(), 401, "a caller that reached the port is not a caller");
    let wrong = client.get(&url).header("x-service-key", "guessed-key-123").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let right = client.get(&url).header("x-service-key", q2o_common::service_key::DEMO).send().await.unwrap();
    assert_eq!(right.status(), 200);
    let probe = client.get(format!("{}/health", stack.search.url("http"))).send().await.unwrap();
    assert_eq!(probe.status(), 200, "probes stay open");
    let acme = crate::support::RestClient::login(&stack.stack.rest(0), "key-acme-0001").await;
    assert_eq!(acme.get("/api/v1/search?q=anything").await.0, 200, "the gateway holds the key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_apis_answer_only_callers_with_the_service_key() {
    use q2o_proto::v1 as pb;
    let stack = crate::support::Stack::start(
        crate::support::GATEWAY,
        1,
        &format!("{}{}", crate::support::FAST_AGENTS, crate::support::pools("fast")),
    );
    let agents = &stack.agents[0];
    let review = serde_json::json!({ "task_id": "t-1", "language": "rust", "code": "fn main() {}" });
    let url = format!("{}/internal/v1/qa/review", agents.url("http"));
    let client = reqwest::Client::new();
    assert_eq!(client.post(&url).json(&review).send().await.unwrap().status(), 401);
    let with_key = client.post(&url).header("x-service-key", q2o_common::service_key::DEMO).json(&review);
    assert_eq!(with_key.send().await.unwrap().status(), 200);

    let channel = tonic::transport::Channel::from_shared(agents.url("grpc")).unwrap().connect().await.unwrap();
    let mut qa = pb::qa_agent_client::QaAgentClient::new(channel);
    let message = pb::ReviewRequest { task_id: "t-1".into(), language: "rust".into(), code: "fn main() {}".into() };
    let refused = qa.review_code(message.clone()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("x-service-key", q2o_common::service_key::DEMO.parse().unwrap());
    assert!(qa.review_code(request).await.is_ok());
    // The coder's own calls to QA carry the key: a coder task completes.
    let acme = crate::support::RestClient::login(&stack.rest(0), "key-acme-0001").await;
    let project = acme.create_project("keys").await;
    let task = acme.submit_task(&project, "coder", "write a parser").await;
    let done = acme.finished_task(task["id"].as_str().unwrap(), std::time::Duration::from_secs(20)).await;
    assert_eq!(done["status"], "completed", "{done}");
}
