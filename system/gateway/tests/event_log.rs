//! The activity log end to end: agents produce to a real tansu broker, the audit
//! and analytics groups consume it (two members each), and q2o-search indexes it.

use std::time::Duration;

use q2o_testkit::{Broker, Service, eventually, metric_sum, metric_value};
use serde_json::Value;

use crate::support::*;

/// A stack with the event log: Redis, tansu, q2o-search, one gateway, and two
/// agents processes that each run a member of `audit` and `analytics`.
pub(crate) struct LogStack {
    pub(crate) stack: Stack,
    _broker: Broker,
    pub(crate) search: Service,
    agents: Vec<Service>,
    agents_config: String,
}

fn kafka_section(bootstrap: &str) -> String {
    format!(
        "consumer_groups = [\"analytics\", \"audit\"]\n[kafka]\nbootstrap_servers = \"{bootstrap}\"\npartitions = 4\n"
    )
}

impl LogStack {
    pub(crate) fn start() -> LogStack {
        let broker = Broker::start().expect("tansu starts");
        let mut stack = Stack::start(GATEWAY, 0, "");
        let search_config = stack.write(
            "search.toml",
            &format!("commit_every = \"200ms\"\n[kafka]\nbootstrap_servers = \"{}\"\n", broker.bootstrap()),
        );
        let data = stack.dir.path().join("search-data");
        let search = Service::start(
            "q2o-search",
            &["--config", &search_config, "--http-addr", "127.0.0.1:0", "--data-dir", data.to_str().unwrap()],
            &[],
        )
        .expect("search starts");
        let gateway_config =
            stack.write("gateway-search.toml", &format!("search_url = \"{}\"\n{GATEWAY}", search.url("http")));
        stack.gateways.push(
            Service::start(
                "q2o-gateway",
                &["--config", &gateway_config, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"],
                &[("Q2O_REDIS_URL", &stack.redis.url())],
            )
            .expect("gateway starts"),
        );
        // Top-level keys must precede the [[models]] and [kafka] tables.
        let agents_config = format!(
            "{}{FAST_AGENTS}{}{}",
            kafka_section(&broker.bootstrap()).split("[kafka]").next().unwrap(),
            pools("fast"),
            {
                let s = kafka_section(&broker.bootstrap());
                format!("[kafka]{}", s.split("[kafka]").nth(1).unwrap())
            }
        );
        let agents = (0..2).map(|_| stack.start_agents(&agents_config, &[])).collect();
        LogStack { stack, _broker: broker, search, agents, agents_config }
    }

    async fn agents_metrics(&self) -> Vec<String> {
        let mut out = Vec::new();
        for agents in &self.agents {
            out.push(metrics(&agents.url("http")).await);
        }
        out
    }
}

async fn search(client: &RestClient, query: &str) -> (u16, Value) {
    client.get(&format!("/api/v1/search?{}", serde_urlencoded_pair("q", query))).await
}

fn serde_urlencoded_pair(key: &str, value: &str) -> String {
    let encoded: String = value
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("{key}={encoded}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_is_audited_once_and_its_code_becomes_searchable() {
    let log = LogStack::start();
    let acme = RestClient::login(&log.stack.rest(0), "key-acme-0001").await;
    let globex = RestClient::login(&log.stack.rest(0), "key-globex-0001").await;
    let project = acme.create_project("Quantum ledger").await;
    let task = acme.submit_task(&project, "coder", "reconciliation engine for payouts").await;
    let task_id = task["id"].as_str().unwrap().to_owned();
    let done = acme.finished_task(&task_id, Duration::from_secs(20)).await;
    assert_eq!(done["status"], "completed");

    // Searchable through the gateway once the indexer has consumed the
    // task's events. How soon is a measurement (the indexing-lag histogram,
    // `just measure-search`), not this test's: on a busy two-core CI machine
    // the indexer's first group join alone has taken over 5 s.
    let hit = eventually(Duration::from_secs(20), "the generated code to be searchable", || async {
        let (status, body) = search(&acme, "reconciliation").await;
        (status == 200 && body["hits"].as_array().is_some_and(|h| h.iter().any(|h| h["id"] == task_id.as_str())))
            .then_some(body)
    })
    .await
    .unwrap();
    assert_eq!(hit["facets"]["agent_type"]["coder"], 1, "{hit}");
    // One typo still finds it; the project is found by name.
    let (_, typo) = search(&acme, "reconcilation").await;
    assert!(typo["hits"].as_array().unwrap().iter().any(|h| h["id"] == task_id.as_str()), "{typo}");
    let (_, by_name) = search(&acme, "quantum").await;
    assert_eq!(by_name["hits"][0]["kind"], "project", "{by_name}");
    let (status, suggestions) = acme.get("/api/v1/search/autocomplete?prefix=quan").await;
    assert_eq!(status, 200);
    assert_eq!(suggestions["suggestions"][0], "Quantum ledger");
    // Another tenant sees nothing of it, even when asking for acme's tenant.
    let (_, theirs) = globex.get("/api/v1/search?q=reconciliation&tenant=acme").await;
    assert_eq!(theirs["total"], 0, "{theirs}");

    // The audit saw each of the task's two events (started, completed) exactly once.
    let expositions = eventually(Duration::from_secs(10), "the audit to record both events", || async {
        let expositions = log.agents_metrics().await;
        (metric_sum(&expositions, "q2o_audit_events_total", &[("group", "audit"), ("outcome", "unique")]) == 2.0)
            .then_some(expositions)
    })
    .await
    .unwrap();
    assert_eq!(
        metric_sum(&expositions, "q2o_audit_events_total", &[("group", "audit"), ("outcome", "duplicate")]),
        0.0
    );
    assert_eq!(
        metric_sum(
            &expositions,
            "q2o_kafka_messages_sent_total",
            &[("topic", "agent_activity"), ("status", "delivered")]
        ),
        2.0
    );
    let search_metrics = metrics(&log.search.url("http")).await;
    assert!(metric_value(&search_metrics, "q2o_search_indexing_lag_seconds_count", &[]).unwrap() >= 1.0);
    assert!(metric_value(&search_metrics, "q2o_search_index_documents", &[]).unwrap() >= 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_rejects_only_what_its_schema_refuses_and_says_what_it_left_out() {
    let log = LogStack::start();
    let acme = RestClient::login(&log.stack.rest(0), "key-acme-0001").await;
    for (query, field, needle) in [
        ("q=", "q", "must not be empty"),
        ("q=x&size=100000", "size", "between 1 and 50"),
        ("q=x&page=0", "page", "between 1 and 20"),
        ("q=x&page=21&size=10", "page", "between 1 and 20"),
        ("q=x&month=june", "month", "YYYY-MM"),
        ("q=x&month=2026-13", "month", "YYYY-MM"),
    ] {
        let (status, body) = acme.get(&format!("/api/v1/search?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(needle), "{query}: {body}");
    }
    let (status, body) = acme.get("/api/v1/search/autocomplete?prefix=").await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("prefix")), "{body}");
    // A query's syntax is never refused: what is not understood is listed.
    for (query, needle) in [("q=%22open", "unbalanced quote"), ("q=colour:red", "not a field"), ("q=!!!", "nothing")] {
        let (status, body) = acme.get(&format!("/api/v1/search?{query}")).await;
        assert_eq!(status, 200, "{query}: {body}");
        let ignored = body["ignored"].as_array().unwrap_or_else(|| panic!("{query}: {body}"));
        assert!(ignored.iter().any(|i| i.as_str().unwrap().contains(needle)), "{query}: {body}");
    }
    let (status, body) = acme.get("/api/v1/search?q=!!!").await;
    assert_eq!((status, &body["total"]), (200, &serde_json::json!(0)), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_mid_stream_loses_nothing_and_duplicates_are_counted() {
    let mut log = LogStack::start();
    let acme = RestClient::login(&log.stack.rest(0), "key-acme-0001").await;
    let project = acme.create_project("stream").await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let task = acme.submit_task(&project, "documentation", &format!("runbook {i}")).await;
        tasks.push(task["id"].as_str().unwrap().to_owned());
        if i == 15 {
            // Crash one member of each group while events are flowing, then restart it.
            log.agents[1].kill();
            let restarted = log.stack.start_agents(&log.agents_config, &[]);
            log.agents[1] = restarted;
        }
    }
    for task in &tasks {
        acme.finished_task(task, Duration::from_secs(30)).await;
    }
    // Every event produced reached both groups' ledgers. The killed process's
    // counters died with it, so the proof is the ledgers in Redis.
    let produced = 2 * tasks.len() as u64;
    let redis = log.stack.redis.url();
    for group in ["audit", "analytics"] {
        let size = eventually(Duration::from_secs(30), "the ledger to hold every event", || {
            let redis = redis.clone();
            async move {
                let size = ledger_size(&redis, group).await;
                (size == produced).then_some(size)
            }
        })
        .await;
        assert!(size.is_ok(), "{group}: {} of {produced} events in its ledger", ledger_size(&redis, group).await);
    }
    // Re-deliveries after the crash were recognised, never double-counted.
    let expositions = log.agents_metrics().await;
    let duplicates =
        metric_sum(&expositions, "q2o_audit_events_total", &[("group", "audit"), ("outcome", "duplicate")]);
    let unique = metric_sum(&expositions, "q2o_audit_events_total", &[("group", "audit"), ("outcome", "unique")]);
    assert!(unique <= produced as f64, "unique {unique} > produced {produced}");
    eprintln!("audit after crash: {unique} unique in live processes, {duplicates} duplicates detected");
}

async fn ledger_size(redis: &str, group: &str) -> u64 {
    use std::io::{Read, Write};
    let port: u16 = redis.rsplit(':').next().unwrap().parse().unwrap();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let key = format!("q2o:ledger:{group}");
    write!(stream, "*2\r\n$5\r\nSCARD\r\n${}\r\n{key}\r\n", key.len()).unwrap();
    let mut reply = [0u8; 32];
    let n = stream.read(&mut reply).unwrap();
    std::str::from_utf8(&reply[1..n]).unwrap().trim().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_rereads_the_whole_log_into_a_new_group() {
    let log = LogStack::start();
    let acme = RestClient::login(&log.stack.rest(0), "key-acme-0001").await;
    let project = acme.create_project("replayed").await;
    for i in 0..3 {
        let task = acme.submit_task(&project, "qa", &format!("review {i}")).await;
        acme.finished_task(task["id"].as_str().unwrap(), Duration::from_secs(20)).await;
    }
    // Delivery is asynchronous: wait until the audit has all six events.
    let redis = log.stack.redis.url();
    eventually(Duration::from_secs(20), "all events in the log", || {
        let redis = redis.clone();
        async move { (ledger_size(&redis, "audit").await == 6).then_some(()) }
    })
    .await
    .unwrap();
    let config = log.stack.write("replay.toml", &log.agents_config);
    let replay = |group: &'static str| {
        std::process::Command::new(q2o_testkit::bin_dir().join("q2o-agents"))
            .args(["--config", &config, "replay", "--group", group, "--from-beginning", "--timeout", "30s"])
            .env("Q2O_REDIS_URL", log.stack.redis.url())
            .output()
            .unwrap()
    };
    let output = replay("reprocess");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    // Three tasks, each started and completed: six events, each seen once.
    assert_eq!((summary["events"].as_u64(), summary["unique"].as_u64()), (Some(6), Some(6)), "{summary}");
    assert_eq!(summary["by_agent_type"]["qa"], 6);
    // Replaying the same group again reads everything again, and the ledger knows it.
    let again: Value = serde_json::from_slice(&replay("reprocess").stdout).unwrap();
    assert_eq!((again["events"].as_u64(), again["duplicates"].as_u64()), (Some(6), Some(6)), "{again}");
}
