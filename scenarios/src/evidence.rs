//! Gathering a gate run's evidence from where it lives: Prometheus (the
//! SLIs, the recording rules, the dashboards' queries, the scrape targets),
//! Redis (what became of the tasks) and promtool (which alerts are tested).
//! Judging it is [`crate::gate::judge`]'s, apart and without servers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use q2o_common::domain::{Page, TenantId};
use q2o_common::kafka::census::{event_ids, group_offsets};
use q2o_common::kafka::{AGENT_ACTIVITY_TOPIC, KafkaConfig};
use q2o_common::store::{RedisStore, RedisStoreOptions, Store};
use q2o_slo::alert_tests::{self, AlertTestCoverage};
use q2o_slo::dashboards::{self, Dashboard};
use q2o_slo::promql::{RECORDED, promql, record_name};
use q2o_slo::sli::{Criterion, Sli};
use q2o_slo::slos::recorded_one_minute;

use crate::error::RunError;
use q2o_env::prometheus::{Prometheus, unix_now};
use q2o_report::summary::{DashboardCoverage, EmptyPanel, EventCensus, ScrapeCoverage, SliCoverage};

/// What Prometheus says of each criterion's SLI over the last `window`, at `at`.
pub async fn slis(
    prometheus: &Prometheus,
    criteria: &[Criterion],
    window: &str,
    at: f64,
) -> Result<BTreeMap<Sli, f64>, RunError> {
    let mut values = BTreeMap::new();
    for criterion in criteria {
        if let Some(query) = promql(criterion.sli, window)
            && let Some(value) = prometheus.scalar(&query, at).await?
        {
            values.insert(criterion.sli, value);
        }
    }
    Ok(values)
}

/// Runs promtool on every `*.test.yml` in `tests_dir` (from that folder, as
/// the tests' relative `rule_files` expect) and counts which of `alerts`
/// have a firing and a quiet case in a file that passed.
pub async fn alert_tests(promtool: &Path, tests_dir: &Path, alerts: &[String]) -> Result<AlertTestCoverage, RunError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(tests_dir)
        .map_err(RunError::io(tests_dir))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(".test.yml")))
        .collect();
    files.sort();
    let mut judged = Vec::new();
    for file in files {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let output = tokio::process::Command::new(promtool)
            .args(["test", "rules", &name])
            .current_dir(tests_dir)
            .kill_on_drop(true)
            .output()
            .await
            .map_err(RunError::io(promtool))?;
        if output.status.success() {
            judged.push((name, Ok(std::fs::read_to_string(&file).map_err(RunError::io(&file))?)));
        } else {
            let said = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
            let last = said.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("failed").trim().to_owned();
            judged.push((name, Err(last)));
        }
    }
    Ok(alert_tests::coverage(alerts, &judged))
}

/// Asks every panel query of the dashboards in `dir` for this run (`phase`, `run_id`) at `at`.
pub async fn dashboard_coverage(
    prometheus: &Prometheus,
    dir: &Path,
    phase: &str,
    run_id: &str,
    at: f64,
) -> Result<DashboardCoverage, RunError> {
    let mut coverage = DashboardCoverage::default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for file in files {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let text = std::fs::read_to_string(&file).map_err(RunError::io(&file))?;
        let dashboard: Dashboard = serde_json::from_str(&text)
            .map_err(|e| RunError::Io { path: file.clone(), source: std::io::Error::other(e) })?;
        for (panel, query) in dashboards::queries(&dashboard, phase, run_id, "5m") {
            coverage.queries += 1;
            if prometheus.query(&query, at).await?.is_empty() {
                coverage.empty.push(EmptyPanel { dashboard: name.clone(), panel });
            } else {
                coverage.with_data += 1;
            }
        }
    }
    Ok(coverage)
}

/// Which SLI and SLO recording rules had data at `at`.
pub async fn sli_coverage(prometheus: &Prometheus, at: f64) -> Result<SliCoverage, RunError> {
    let mut slis = SliCoverage::default();
    for name in RECORDED.iter().map(|sli| record_name(*sli)).chain(recorded_one_minute()) {
        slis.recorded += 1;
        if prometheus.query(&name, at).await?.is_empty() {
            slis.empty.push(name);
        } else {
            slis.with_data += 1;
        }
    }
    Ok(slis)
}

/// Scrape targets, and how many were up, at `at`.
pub async fn scrape_coverage(prometheus: &Prometheus, at: f64) -> Result<ScrapeCoverage, RunError> {
    let count = async |query: &str| Ok::<_, RunError>(prometheus.scalar(query, at).await?.unwrap_or(0.0) as usize);
    Ok(ScrapeCoverage { targets: count("count(up)").await?, up: count("sum(up)").await? })
}

/// Waits (up to 30 s) until the audit consumer has counted every event the
/// agents produced, so that `events_lost` judges loss and not lag.
pub async fn wait_for_audit(prometheus: &Prometheus) {
    let query = promql(Sli::EventsLost, "1m").expect("events_lost has PromQL");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        if let Ok(Some(lost)) = prometheus.scalar(&query, unix_now()).await
            && lost <= 0.0
        {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// How long a run's census waits for the audit group's lag to reach zero.
pub const CENSUS_LAG_BOUND: Duration = Duration::from_secs(60);
/// How long the census's reader may go without reading an event before it
/// gives up on reaching the audit group's commits. Not a bound on the whole
/// read, which grows with the run's events.
const CENSUS_STALL_BOUND: Duration = Duration::from_secs(60);

/// Events the agents' producers gave up on delivering, by their own count.
pub async fn events_given_up(prometheus: &Prometheus) -> Result<u64, RunError> {
    let given_up = r#"sum(q2o_kafka_messages_sent_total{topic="agent_activity",status="failed"})"#;
    Ok(prometheus.scalar(given_up, unix_now()).await?.unwrap_or(0.0) as u64)
}

/// The event log against the audit ledger. Waits (up to `lag_bound`) until
/// the audit group's lag, asked of the broker, is zero; then reads the log's
/// event ids up to the group's commits and counts those the ledger lacks:
/// lost. What is past the commits when the wait ends is unconsumed, not
/// lost. Events the producers gave up on are lost too, but only they can
/// count them: the caller adds them ([`events_given_up`]).
pub async fn event_census(kafka: &str, redis_url: &str, lag_bound: Duration) -> Result<EventCensus, RunError> {
    let config = KafkaConfig { bootstrap_servers: kafka.to_owned(), ..KafkaConfig::default() };
    let broker = |e: q2o_common::kafka::ConsumeError| RunError::System(format!("the event census at {kafka}: {e}"));
    let started = tokio::time::Instant::now();
    let offsets = loop {
        let probe = config.clone();
        let offsets = tokio::task::spawn_blocking(move || group_offsets(&probe, "audit", Duration::from_secs(10)))
            .await
            .map_err(|e| RunError::System(format!("the event census: {e}")))?
            .map_err(broker)?;
        if offsets.unconsumed() == 0 || started.elapsed() >= lag_bound {
            break offsets;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let waited_seconds = started.elapsed().as_secs_f64();
    let ids = event_ids(&config, "q2o-bench-census", &offsets.committed, CENSUS_STALL_BOUND)
        .await
        .map_err(broker)?
        .ok_or_else(|| {
            RunError::System(format!(
                "the event census could not read {AGENT_ACTIVITY_TOPIC} up to the audit group's commits: no event came for {} s",
                CENSUS_STALL_BOUND.as_secs()
            ))
        })?;
    let ids: Vec<_> = ids.into_iter().collect();
    let store = RedisStore::connect(RedisStoreOptions::new(redis_url)).await?;
    let missing_from_ledger = store.ledger_absent("audit", &ids).await?;
    Ok(EventCensus {
        checked: ids.len() as u64,
        missing_from_ledger,
        given_up: 0,
        lost: missing_from_ledger,
        unconsumed: offsets.unconsumed(),
        waited_seconds,
    })
}

/// The users' tenant, when they log in with a demo key (`demo-key-<tenant>`).
pub fn tenant_of(api_key: &str) -> Option<TenantId> {
    api_key.strip_prefix("demo-key-").and_then(|t| TenantId::try_from(t.to_owned()).ok())
}

/// Tasks of `tenant` not in a final state once the queues drained (up to
/// 60 s), asked of Redis itself through the store's per-project summaries:
/// a task counts once however many times an agent tried it.
pub async fn tasks_unfinished(redis_url: &str, tenant: &TenantId) -> Result<f64, RunError> {
    let store = RedisStore::connect(RedisStoreOptions::new(redis_url)).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut open = 0;
        for offset in (0..).step_by(100) {
            let projects = store.projects(tenant, Page { limit: 100, offset }).await?;
            for project in &projects {
                let status = store.project_status(tenant, project.id).await?;
                open += status.queued + status.running;
            }
            if projects.len() < 100 {
                break;
            }
        }
        if open == 0 || tokio::time::Instant::now() > deadline {
            return Ok(open as f64);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
