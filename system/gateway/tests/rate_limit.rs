use q2o_proto::v1 as pb;
use tonic::Code;

use crate::support::*;

const LIMITED: &str = r#"
[rate_limit]
capacity = 5
refill_per_second = 0.01
[[tenants]]
tenant = "acme"
api_key = "key-acme-0001"
[[tenants]]
tenant = "globex"
api_key = "key-globex-0001"
"#;

#[tokio::test]
async fn two_replicas_share_one_bucket_and_the_next_request_gets_429() {
    let stack = Stack::start(LIMITED, 2, "");
    let client = reqwest::Client::new();
    let get = |replica: usize, key: &'static str| {
        client.get(format!("{}/api/v1/projects", stack.rest(replica))).header("x-api-key", key).send()
    };
    // Five tokens, spent alternately on the two replicas.
    for (i, replica) in [0, 1, 0, 1, 0].into_iter().enumerate() {
        let response = get(replica, "key-acme-0001").await.unwrap();
        assert_eq!(response.status(), 200, "request {i}");
        let header = |name| response.headers()[name].to_str().unwrap().to_owned();
        assert_eq!(header("x-ratelimit-limit"), "5");
        assert_eq!(header("x-ratelimit-remaining"), (4 - i).to_string());
    }
    let limited = get(1, "key-acme-0001").await.unwrap();
    assert_eq!(limited.status(), 429);
    let headers = limited.headers().clone();
    assert!(headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    assert_eq!(headers["x-ratelimit-limit"], "5");
    assert!(headers.contains_key("x-ratelimit-reset"));
    let body: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");

    // gRPC draws on the same bucket.
    let mut projects = pb::projects_client::ProjectsClient::new(stack.grpc(0).await);
    let mut request = tonic::Request::new(pb::ListProjectsRequest::default());
    request.metadata_mut().insert("x-api-key", "key-acme-0001".parse().unwrap());
    let status = projects.list_projects(request).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(status.metadata().get("retry-after").is_some());

    // Another tenant has its own bucket.
    assert_eq!(get(0, "key-globex-0001").await.unwrap().status(), 200);
}
