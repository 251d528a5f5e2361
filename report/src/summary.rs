//! `summary.json`, the machine-readable report (schema version 2).
//!
//! ```text
//! schema_version    1
//! scenario          scenario name; description: its one line
//! run_id            UTC timestamp of the start, e.g. 20261122T031500Z
//! started_at, finished_at   RFC 3339
//! verdict           "GO" | "NO-GO" | "ERROR" (the run itself failed)
//! reasons[]         why not GO: one sentence per failed criterion, or the error
//! environment       {kind: "local" | "docker" | "kubernetes", os, cpus, memory_bytes, prometheus}
//! sizes             {users, users_in_file, ramp_rate, hold_seconds, ramp_down_seconds,
//!                    loadgen_processes, scaled: bool, overrides {users, duration, scale}}
//! topology          the scenario's [topology] as run
//! criteria[]        {name, sli, op, target, warning, measured, source, prometheus, exact,
//!                    verdict: pass|warn|fail|no_data|recorded, note}
//!                   values in the SLI's unit: seconds, ratio 0..1, or a count;
//!                   source: loadgen-hdr | prometheus | supervisor | redis | promtool | census | none
//! alerts_firing[]   {alert, criterion, severity}: gate alerts firing when the load ended
//! faults[]          {action, service, at, done, recovered_after, expected_within}: the
//!                   scenario's faults as injected, seconds after the load started
//! error_burst       {failed_requests, first_failure_at, last_failure_at, seconds}: the users'
//!                   view: the burst of failures after the first fault (null without faults)
//! recoveries[]      {service, died_at, recovered_after}: every death and restart, seconds
//!                   on the supervisor's clock
//! scrape            {targets, up}: Prometheus's scrape targets, and how many were up, at
//!                   the end of the hold
//! slis              {recorded, with_data, empty[]}: the SLI and SLO recording rules
//!                   (1-minute windows) asked at the end of the hold
//! dashboards        {queries, with_data, empty[] {dashboard, panel}}: every panel query of
//!                   dashboards/grafana asked of this run's Prometheus at the end of the hold
//! alert_tests       {alerts, tested, untested[], failed_files[]}: the alerts the run loaded
//!                   with a firing and a quiet case in a test file promtool passed
//! events            {checked, missing_from_ledger, given_up, lost, unconsumed, waited_seconds}:
//!                   the event log's census against the audit ledger (null without one)
//! resources         {machine {cores, memory_bytes, cpu_busy_mean, cpu_busy_peak},
//!                    processes[] {name, role: service|harness, cpu_cores_mean, cpu_cores_peak,
//!                    cpu_us_per_request, runs_per_request, wait_us_per_run, rss_peak_bytes,
//!                    open_files_peak}}: over the hold; a run is a thread put on a core
//!                    (a wake-up or a return from preemption), its wait the time it was
//!                    runnable before it ran
//! saturation        {resource, at_seconds, users, detail}: the first resource at 90 %, or null
//! warnings[]        the load generator saturated, or its users fell behind their schedule
//! load              {requests, failed, achieved_rate, duration_seconds,
//!                    steps[] {protocol, step, count, failed, p50_ms, p95_ms, p99_ms, max_ms}}
//! files[]           report files and logs, relative to the run folder
//! ```

use serde::Serialize;

use std::time::Duration;

use q2o_env::backend::Recovery;
pub use q2o_env::resources::{Resources, Saturation};
use q2o_env::topology::Topology;
pub use q2o_slo::alert_tests::AlertTestCoverage;

use crate::faults::{ErrorBurst, Injected};
use crate::judged::Judged;

/// The version written to `schema_version`.
pub const SCHEMA_VERSION: u32 = 2;

/// The whole summary.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Scenario name.
    pub scenario: String,
    /// Its description.
    pub description: String,
    /// Run identifier (the folder name).
    pub run_id: String,
    /// Start, RFC 3339.
    pub started_at: String,
    /// End, RFC 3339.
    pub finished_at: String,
    /// `GO`, `NO-GO` or `ERROR`.
    pub verdict: String,
    /// Why not GO.
    pub reasons: Vec<String>,
    /// Where it ran.
    pub environment: Machine,
    /// The sizes actually run.
    pub sizes: Sizes,
    /// What ran.
    pub topology: Topology,
    /// Every criterion.
    pub criteria: Vec<Judged>,
    /// Gate alerts firing at the end of the load.
    pub alerts_firing: Vec<FiringAlert>,
    /// The faults as injected.
    pub faults: Vec<Injected>,
    /// The users' view of the faults.
    pub error_burst: Option<ErrorBurst>,
    /// Deaths and restarts of services.
    pub recoveries: Vec<Recovery>,
    /// Scrape targets up at the end of the hold.
    pub scrape: Option<ScrapeCoverage>,
    /// Which recording rules had data for this run.
    pub slis: Option<SliCoverage>,
    /// Which dashboard queries returned data for this run.
    pub dashboards: Option<DashboardCoverage>,
    /// Which of the run's alerts are unit-tested.
    pub alert_tests: Option<AlertTestCoverage>,
    /// What the event log's census found (null without Kafka, or where the
    /// broker cannot be reached from the host).
    pub events: Option<EventCensus>,
    /// Where the machine's capacity went over the hold.
    pub resources: Option<Resources>,
    /// The first resource that reached 90 % of what it has, and when.
    pub saturation: Option<Saturation>,
    /// What makes the figures less than they seem: the load generator
    /// saturated, or its users fell behind their schedule.
    pub warnings: Vec<String>,
    /// What the users did.
    pub load: Option<LoadFigures>,
    /// Files in the run folder.
    pub files: Vec<String>,
}

/// The machine.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// `local`, `docker` or `kubernetes`.
    pub kind: String,
    /// Operating system and kernel.
    pub os: String,
    /// Logical CPUs (0: a cluster's, not measured by the judge).
    pub cpus: usize,
    /// Physical memory.
    pub memory_bytes: u64,
    /// Prometheus's URL during the run.
    pub prometheus: String,
}

/// `local on linux 6.1 (2 CPUs, 23.5 GiB)`; a cluster's machines, which
/// nothing here measured (cpus 0), without the figures.
pub fn machine_line(m: &Machine) -> String {
    if m.cpus == 0 {
        return format!("{} on {}", m.kind, m.os);
    }
    format!("{} on {} ({} CPUs, {:.1} GiB)", m.kind, m.os, m.cpus, m.memory_bytes as f64 / (1u64 << 30) as f64)
}

impl Machine {
    /// This machine.
    pub fn here(prometheus: String) -> Machine {
        let os = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|r| format!("{} {}", std::env::consts::OS, r.trim()))
            .unwrap_or_else(|_| std::env::consts::OS.to_owned());
        let memory_bytes = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<u64>().ok())
            })
            .map_or(0, |kb| kb * 1024);
        Machine {
            kind: "local".into(),
            os,
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            memory_bytes,
            prometheus,
        }
    }
}

/// Sizes as run.
#[derive(Clone, Debug, Serialize)]
pub struct Sizes {
    /// Users at the top of the ramp.
    pub users: usize,
    /// Users the scenario file asks for.
    pub users_in_file: usize,
    /// Users started per second.
    pub ramp_rate: f64,
    /// Hold, seconds.
    pub hold_seconds: f64,
    /// Ramp-down, seconds.
    pub ramp_down_seconds: f64,
    /// Loadgen processes.
    pub loadgen_processes: usize,
    /// Whether the command line changed the file's sizes.
    pub scaled: bool,
    /// The changes.
    pub overrides: Overrides,
}

/// The event log against the audit ledger, once the audit group's lag (from
/// the broker) reached zero or the census gave up waiting.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EventCensus {
    /// Distinct event ids in the log up to the audit group's commits.
    pub checked: u64,
    /// Of those, ids the audit ledger never recorded.
    pub missing_from_ledger: u64,
    /// Events the producers gave up delivering (never in the log).
    pub given_up: u64,
    /// Proven lost: missing from the ledger plus given up. Never negative.
    pub lost: u64,
    /// Messages past the audit group's commits when the census ended: not
    /// yet consumed, so neither counted nor lost.
    pub unconsumed: u64,
    /// Seconds the census waited for the lag to reach zero.
    pub waited_seconds: f64,
}

/// Sizes set on the command line; the report says plainly that they were.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Overrides {
    /// `--users`.
    pub users: Option<usize>,
    /// `--duration` (the hold).
    #[serde(with = "option_seconds")]
    pub duration: Option<Duration>,
    /// `--scale`: multiplies the users.
    pub scale: Option<f64>,
}

impl Overrides {
    /// Whether any size was changed.
    pub fn any(&self) -> bool {
        self.users.is_some() || self.duration.is_some() || self.scale.is_some()
    }
}

mod option_seconds {
    use std::time::Duration;

    pub(super) fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

/// Prometheus's scrape targets at the end of the hold.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ScrapeCoverage {
    /// Targets (services and loadgen processes).
    pub targets: usize,
    /// Of which up.
    pub up: usize,
}

/// The recording rules asked of this run's Prometheus.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SliCoverage {
    /// Recording rules asked.
    pub recorded: usize,
    /// Of which had data.
    pub with_data: usize,
    /// The ones without.
    pub empty: Vec<String>,
}

/// The dashboards asked of this run's Prometheus.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DashboardCoverage {
    /// Panel queries asked.
    pub queries: usize,
    /// Of which returned at least one series.
    pub with_data: usize,
    /// The ones that returned nothing.
    pub empty: Vec<EmptyPanel>,
}

/// A panel query without data.
#[derive(Clone, Debug, Serialize)]
pub struct EmptyPanel {
    /// Dashboard file.
    pub dashboard: String,
    /// Panel title.
    pub panel: String,
}

/// A firing gate alert.
#[derive(Clone, Debug, Serialize)]
pub struct FiringAlert {
    /// Alert name.
    pub alert: String,
    /// The criterion label.
    pub criterion: String,
    /// `gate` or `warning`.
    pub severity: String,
}

/// What the users did, from the loadgen's merged results.
#[derive(Clone, Debug, Serialize)]
pub struct LoadFigures {
    /// Requests finished.
    pub requests: u64,
    /// Of which not ok.
    pub failed: u64,
    /// Requests per second over the run.
    pub achieved_rate: f64,
    /// Wall time of the load.
    pub duration_seconds: f64,
    /// By (protocol, step).
    pub steps: Vec<StepFigures>,
}

/// One (protocol, step).
#[derive(Clone, Debug, Serialize)]
pub struct StepFigures {
    /// `rest` or `grpc`.
    pub protocol: String,
    /// The step.
    pub step: String,
    /// Finished.
    pub count: u64,
    /// Not ok.
    pub failed: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
}

impl LoadFigures {
    /// The figures of merged loadgen results.
    pub fn of(results: &q2o_loadgen::results::RunResults) -> LoadFigures {
        let steps: Vec<StepFigures> = results
            .steps
            .iter()
            .map(|s| StepFigures {
                protocol: s.protocol.as_str().to_owned(),
                step: s.step.as_label().to_owned(),
                count: s.count,
                failed: s.failed(),
                p50_ms: s.latency_us.p50 as f64 / 1e3,
                p95_ms: s.latency_us.p95 as f64 / 1e3,
                p99_ms: s.latency_us.p99 as f64 / 1e3,
                max_ms: s.latency_us.max as f64 / 1e3,
            })
            .collect();
        LoadFigures {
            requests: steps.iter().map(|s| s.count).sum(),
            failed: steps.iter().map(|s| s.failed).sum(),
            achieved_rate: results.achieved_rate,
            duration_seconds: results.duration_seconds,
            steps,
        }
    }
}

impl Summary {
    /// The summary of a run of `(scenario, description)` with `(run id, start)`
    /// in environment `kind` that has just started: verdict `ERROR` until judged.
    pub fn started(
        (scenario, description): (&str, &str),
        (run_id, started_at): (&str, String),
        kind: &str,
        sizes: Sizes,
        topology: Topology,
    ) -> Summary {
        let mut environment = Machine::here(String::new());
        environment.kind = kind.into();
        Summary {
            schema_version: SCHEMA_VERSION,
            scenario: scenario.to_owned(),
            description: description.to_owned(),
            run_id: run_id.to_owned(),
            started_at,
            finished_at: String::new(),
            verdict: "ERROR".into(),
            reasons: Vec::new(),
            environment,
            sizes,
            topology,
            criteria: Vec::new(),
            alerts_firing: Vec::new(),
            faults: Vec::new(),
            error_burst: None,
            events: None,
            resources: None,
            saturation: None,
            warnings: Vec::new(),
            recoveries: Vec::new(),
            scrape: None,
            slis: None,
            dashboards: None,
            alert_tests: None,
            load: None,
            files: Vec::new(),
        }
    }
}
