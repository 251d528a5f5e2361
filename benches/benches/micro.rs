//! Criterion micro-benchmarks of the pieces every request pays for:
//!
//! - `codec/*`: a finished task and an agent event as JSON (serde_json, the
//!   REST body and the Kafka payload) and as protobuf (prost, the gRPC body),
//!   encoded and decoded. JSON decodes into the domain type, as the REST
//!   handlers do; protobuf into the wire type, as tonic does. The encoded
//!   sizes are printed once, before the timings.
//! - `redis/token_bucket`: one rate-limit decision, the Lua script's round trip
//!   to a real redis-server on loopback.
//! - `gateway/*`: one REST request through the gateway's whole router (admission,
//!   deadline, authentication with a session token, the rate-limit lease,
//!   the handler, the Redis round trip to a real redis-server, the JSON body),
//!   without the socket: `GET /api/v1/projects/{id}` and `/api/v1/tasks/{id}`
//!   (a user's poll).
//! - `hdr/*`: recording one latency, and merging two interval histograms.
//! - `templates/render`: the agents' code generation for one task.
//! - `search/100k/*`: one search (2 words, page of 10 with facets and
//!   highlights) on an index of 100,000 documents of 20 tenants, with the
//!   words as typed and with one typo. Building the index takes a while
//!   before the first timing; `Q2O_MICRO_SEARCH_DOCS` makes it smaller.
//!
//! `just microbench` (`cargo bench -p q2o-benches --bench micro`).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use prost::Message;
use q2o_agents::templates;
use q2o_common::domain::{
    AgentEvent, AgentEventType, AgentType, ProjectId, Task, TaskId, TaskResult, TaskStatus, TenantId, now,
};
use q2o_common::store::{RedisStore, RedisStoreOptions, Store, TokenBucket};
use q2o_proto::v1 as pb;

fn finished_task() -> Task {
    let description = "Build the payment ledger service with refunds and invoice export";
    let artifact = templates::render(AgentType::Coder, description);
    Task {
        id: TaskId::new(),
        project_id: ProjectId::new(),
        tenant: "acme".parse().expect("valid tenant"),
        agent_type: AgentType::Coder,
        description: description.into(),
        status: TaskStatus::Completed,
        attempts: 1,
        created_at: now(),
        updated_at: now(),
        result: Some(TaskResult {
            summary: description.into(),
            language: artifact.language.into(),
            code: artifact.code,
            prompt_tokens: 812,
            completion_tokens: 1630,
            cost_dollars: 0.0431,
            cache_hit: false,
            review: None,
        }),
        error: None,
    }
}

fn event() -> AgentEvent {
    AgentEvent {
        event_id: uuid::Uuid::new_v4(),
        agent_id: "coder-0-3".into(),
        agent_type: AgentType::Coder,
        event_type: AgentEventType::TaskCompleted,
        task_id: TaskId::new(),
        project_id: ProjectId::new(),
        tenant: "acme".parse().expect("valid tenant"),
        at: now(),
        payload: serde_json::json!({"duration_ms": 1834, "prompt_tokens": 812, "completion_tokens": 1630, "cost_dollars": 0.0431}),
    }
}

fn codec(c: &mut Criterion) {
    let task = finished_task();
    let event = event();
    let task_json = serde_json::to_vec(&task).expect("serializes");
    let task_pb = pb::Task::from(task.clone()).encode_to_vec();
    let event_json = serde_json::to_vec(&event).expect("serializes");
    let event_pb = pb::AgentEvent::from(event.clone()).encode_to_vec();
    println!(
        "encoded sizes: task JSON {} B, protobuf {} B; agent event JSON {} B, protobuf {} B",
        task_json.len(),
        task_pb.len(),
        event_json.len(),
        event_pb.len()
    );

    let mut group = c.benchmark_group("codec");
    group.bench_function("task/json/encode", |b| b.iter(|| serde_json::to_vec(black_box(&task)).unwrap()));
    group.bench_function("task/protobuf/encode", |b| {
        b.iter(|| pb::Task::from(black_box(&task).clone()).encode_to_vec())
    });
    group.bench_function("task/json/decode", |b| {
        b.iter(|| serde_json::from_slice::<Task>(black_box(&task_json)).unwrap())
    });
    group.bench_function("task/protobuf/decode", |b| b.iter(|| pb::Task::decode(black_box(&task_pb[..])).unwrap()));
    group.bench_function("event/json/encode", |b| b.iter(|| serde_json::to_vec(black_box(&event)).unwrap()));
    group.bench_function("event/protobuf/encode", |b| {
        b.iter(|| pb::AgentEvent::from(black_box(&event).clone()).encode_to_vec())
    });
    group.bench_function("event/json/decode", |b| {
        b.iter(|| serde_json::from_slice::<AgentEvent>(black_box(&event_json)).unwrap())
    });
    group.bench_function("event/protobuf/decode", |b| {
        b.iter(|| pb::AgentEvent::decode(black_box(&event_pb[..])).unwrap())
    });
    group.finish();
}

fn token_bucket(c: &mut Criterion) {
    let redis = q2o_testkit::RedisServer::start().expect("redis-server starts (scripts/setup.sh installs it)");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let store = runtime.block_on(RedisStore::connect(RedisStoreOptions::new(redis.url()))).expect("connects");
    let tenant: TenantId = "acme".parse().expect("valid tenant");
    // Never empty: the benchmark times the decision, not a refusal path.
    let bucket = TokenBucket { capacity: u32::MAX, refill_per_second: 1e9 };
    c.bench_function("redis/token_bucket", |b| {
        b.iter(|| runtime.block_on(store.take_token(black_box(&tenant), bucket)).unwrap())
    });
}

fn gateway(c: &mut Criterion) {
    use axum::body::Body;
    use axum::http::{Request, header};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let redis = q2o_testkit::RedisServer::start().expect("redis-server starts (scripts/setup.sh installs it)");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let config = q2o_gateway::Config {
        // The load tests' bucket: never empty, but its script runs (as leases).
        rate_limit: Some(TokenBucket { capacity: 100_000_000, refill_per_second: 1e8 }),
        ..q2o_gateway::Config::default()
    };
    let store = runtime.block_on(RedisStore::connect(RedisStoreOptions::new(redis.url()))).expect("connects");
    let state = q2o_gateway::AppState::new(&config, std::sync::Arc::new(store), prometheus::Registry::new());
    let app = q2o_gateway::rest::app(state, config.max_body_bytes);
    let call = |request: Request<Body>| {
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await.expect("the router answers");
            assert!(response.status().is_success(), "{}", response.status());
            let body = response.into_body().collect().await.expect("a body").to_bytes();
            serde_json::from_slice::<serde_json::Value>(&body).expect("JSON")
        }
    };
    let post = |path: &str, token: Option<&str>, body: serde_json::Value| {
        let mut request = Request::post(path).header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        request.body(Body::from(body.to_string())).expect("a request")
    };
    let (token, project, task) = runtime.block_on(async {
        let login = call(post("/api/v1/auth/login", None, serde_json::json!({ "api_key": "demo-key-acme" }))).await;
        let token = login["token"].as_str().expect("a token").to_owned();
        let project = call(post("/api/v1/projects", Some(&token), serde_json::json!({ "name": "bench" }))).await;
        let project = project["id"].as_str().expect("an id").to_owned();
        let body = serde_json::json!({ "agent_type": "coder", "description": "write the api handler" });
        let task = call(post(&format!("/api/v1/projects/{project}/tasks"), Some(&token), body)).await;
        (token, project, task["id"].as_str().expect("an id").to_owned())
    });
    let bearer = format!("Bearer {token}");
    let mut group = c.benchmark_group("gateway");
    for (name, path) in
        [("get_project", format!("/api/v1/projects/{project}")), ("poll_task", format!("/api/v1/tasks/{task}"))]
    {
        group.bench_function(name, |b| {
            b.iter(|| {
                let request = Request::get(&path).header(header::AUTHORIZATION, &bearer).body(Body::empty());
                runtime.block_on(call(request.expect("a request")))
            })
        });
    }
    group.finish();
}

fn hdr(c: &mut Criterion) {
    let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds");
    let mut value = 1u64;
    c.bench_function("hdr/record", |b| {
        b.iter(|| {
            // A spread of latencies from 1 µs to ~1 s, so that the recording touches many buckets.
            value = value * 6_364_136_223_846_793_005 % 1_000_003 + 1;
            h.record(black_box(value)).unwrap()
        })
    });
    let mut a = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds");
    for v in (1..100_000u64).step_by(7) {
        a.record(v * 13).expect("in range");
    }
    let interval = a.clone();
    c.bench_function("hdr/merge", |b| b.iter(|| a.add(black_box(&interval)).unwrap()));
}

fn search(c: &mut Criterion) {
    use q2o_search::index::{Filters, SearchIndex};
    use q2o_search::metrics::SearchMetrics;
    use q2o_search::query_plan::QueryPlan;
    use rand::SeedableRng;

    let docs: usize = std::env::var("Q2O_MICRO_SEARCH_DOCS").ok().and_then(|d| d.parse().ok()).unwrap_or(100_000);
    let dir = q2o_testkit::ScratchDir::new("micro-search").expect("a scratch directory");
    // Every query computed: the rotation below would otherwise be answered from the result cache.
    let index = SearchIndex::open(dir.path(), SearchMetrics::new(&prometheus::Registry::new()))
        .expect("index opens")
        .without_result_cache();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let started = std::time::Instant::now();
    q2o_benches::corpus::fill(&index, docs, 20, &mut rng);
    println!("search: indexed {docs} documents in {:.1} s", started.elapsed().as_secs_f64());
    // A fixed rotation of queries, so that every run times the same work.
    let queries: Vec<(String, String)> =
        (0..64).map(|i| (q2o_benches::corpus::sentence(&mut rng, 2), format!("tenant-{}", i % 20))).collect();
    let label = if docs == 100_000 { "100k".to_owned() } else { docs.to_string() };
    let mut group = c.benchmark_group(format!("search/{label}"));
    for (name, typo) in [("exact", false), ("one_typo", true)] {
        let plans: Vec<(QueryPlan, &str)> = queries
            .iter()
            .map(|(q, tenant)| {
                let mut q = q.clone();
                if typo {
                    q.remove(1);
                }
                (QueryPlan::parse(&q).expect("the query parses"), tenant.as_str())
            })
            .collect();
        let mut next = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                let (plan, tenant) = &plans[next % plans.len()];
                next += 1;
                index.search(black_box(tenant), plan, &Filters::default(), 1, 10).expect("search answers")
            })
        });
    }
    group.finish();
}

fn render(c: &mut Criterion) {
    c.bench_function("templates/render", |b| {
        b.iter(|| templates::render(black_box(AgentType::Coder), black_box("Build the payment ledger service")))
    });
}

criterion_group!(benches, codec, token_bucket, gateway, hdr, render, search);
criterion_main!(benches);
