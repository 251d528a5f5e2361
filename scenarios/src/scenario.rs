//! The scenario file: what load to drive, on what topology, judged by which
//! criteria. One typed schema with `deny_unknown_fields`; a bad file gets one
//! error naming the file, the line and the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use q2o_common::config::{duration, parse_toml};
use q2o_loadgen::journeys::plan::{Journey, ThinkTime, UserPlan, parse_protocol};
use serde::{Deserialize, Serialize};

/// A scenario that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML, or not our schema; the message names the line and key.
    #[error("invalid scenario {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Line, key and reason.
        message: String,
    },
}

/// One scenario file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name: the report folder and the gate alerts' `phase` label.
    pub name: String,
    /// One line for the report.
    pub description: String,
    /// The simulated users.
    pub load: Load,
    /// What runs.
    pub topology: Topology,
    /// Faults injected during the hold.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// The gate: every criterion must pass for GO.
    #[serde(default)]
    pub criteria: Vec<Criterion>,
}

/// The closed-model load (goose users).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// Users at the top of the ramp.
    pub users: usize,
    /// Users started per second.
    pub ramp_rate: f64,
    /// How long all users stay.
    #[serde(with = "duration")]
    pub hold: Duration,
    /// How long users take to leave.
    #[serde(with = "duration", default = "default_ramp_down")]
    pub ramp_down: Duration,
    /// Think time between steps (`exp:10s`, `uniform:5s..15s`, `const:1s`, `none`).
    #[serde(default = "default_think")]
    pub think: String,
    /// Journey weights (browse, create_project, submit_task, search).
    pub journeys: BTreeMap<String, u32>,
    /// Protocol weights (rest, grpc).
    pub protocols: BTreeMap<String, u32>,
    /// Most users one loadgen process carries; more users start more processes.
    #[serde(default = "default_users_per_process")]
    pub users_per_process: usize,
    /// API key the users log in with.
    #[serde(default = "default_api_key")]
    pub api_key: String,
}

fn default_ramp_down() -> Duration {
    Duration::from_secs(5)
}
fn default_think() -> String {
    "exp:10s".into()
}
fn default_users_per_process() -> usize {
    10_000
}
pub(crate) fn default_api_key() -> String {
    "demo-key-acme".into()
}
fn one() -> usize {
    1
}

/// The services a phase runs.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Phase 0: gateway and agents in one process over an in-memory queue.
    #[serde(default)]
    pub monolith: bool,
    /// Gateway replicas (the users are spread over them).
    #[serde(default = "one")]
    pub gateways: usize,
    /// q2o-agents processes.
    #[serde(default = "one")]
    pub agent_processes: usize,
    /// Workers per agent type in each agents process (the agents' default when absent).
    #[serde(default)]
    pub workers_per_type: Option<usize>,
    /// How the coder calls QA: `rest` or `grpc`.
    #[serde(default = "default_inter_agent")]
    pub inter_agent: String,
    /// Redis (sessions, rate limits, queues); required unless `monolith`.
    #[serde(default)]
    pub redis: bool,
    /// The Kafka-protocol broker and the event consumers.
    #[serde(default)]
    pub kafka: bool,
    /// q2o-search, fed from Kafka.
    #[serde(default)]
    pub search: bool,
    /// An nginx load balancer in front of the gateway replicas (REST and gRPC),
    /// with passive health checks; the users go through it.
    #[serde(default)]
    pub load_balancer: bool,
    /// Redis with its append-only file on (`appendfsync everysec`), so that a
    /// restart keeps sessions, queues and task states.
    #[serde(default)]
    pub redis_aof: bool,
    /// Docker environment: CPUs each q2o replica's container may use (like a
    /// pod's limit); unlimited when absent. The local environment ignores it.
    #[serde(default)]
    pub cpus: Option<f64>,
    /// Docker environment: memory limit of each q2o replica's container, MiB.
    #[serde(default)]
    pub memory_mib: Option<u64>,
}

fn default_inter_agent() -> String {
    "rest".into()
}

/// A fault: what happens to which service, when, and what must follow.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Time after the load started.
    #[serde(with = "duration")]
    pub at: Duration,
    /// What is done to the service.
    pub action: FaultAction,
    /// Service name as the report lists it: `gateway-0`, `agents-1`, `redis`, `broker`, ...
    pub service: String,
    /// The expected outcome: the service is ready again within this long of the
    /// fault (`kill`) or of its `start`. Judged as a gate criterion.
    #[serde(with = "duration::option", default)]
    pub recover_within: Option<Duration>,
}

/// What a fault does.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FaultAction {
    /// SIGKILL the process (the container): it is restarted, as Kubernetes would.
    Kill,
    /// Freeze it (SIGSTOP; `docker pause`): it keeps its sockets and answers nothing.
    Pause,
    /// Thaw a paused service.
    Unpause,
    /// Stop it gracefully (SIGTERM; `docker stop`) and keep it down until `start`.
    Stop,
    /// Start a stopped service again.
    Start,
    /// Cut it off the network (docker only: `docker network disconnect`).
    Disconnect,
    /// Put it back on the network (docker only).
    Reconnect,
}

impl FaultAction {
    /// The name in scenario files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultAction::Kill => "kill",
            FaultAction::Pause => "pause",
            FaultAction::Unpause => "unpause",
            FaultAction::Stop => "stop",
            FaultAction::Start => "start",
            FaultAction::Disconnect => "disconnect",
            FaultAction::Reconnect => "reconnect",
        }
    }

    /// Network faults: only the docker environment has a network to cut.
    pub fn needs_docker(self) -> bool {
        matches!(self, FaultAction::Disconnect | FaultAction::Reconnect)
    }
}

/// The service-level indicators a criterion can test.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Sli {
    /// 95th percentile latency of the users' API calls, seconds.
    ApiLatencyP95,
    /// 99th percentile latency of the users' API calls, seconds.
    ApiLatencyP99,
    /// Share of API calls that did not succeed (any non-ok outcome).
    ErrorRate,
    /// Share of API calls the system served (not a 5xx, a transport error or a timeout).
    Availability,
    /// 95th percentile of search requests, seconds.
    SearchLatencyP95,
    /// 95th percentile of coder -> QA calls between agents, seconds.
    InterAgentLatencyP95,
    /// Agent events produced to Kafka but not counted by the audit consumer.
    EventsLost,
    /// Most users active at once.
    UsersReached,
    /// Share of scrape targets up at the end of the run.
    ScrapeCoverage,
    /// Longest time from a fault until the service was ready again, seconds.
    RecoverySeconds,
    /// Share of the dashboards' panel queries that returned data for this run.
    DashboardCoverage,
    /// Share of the SLI and SLO recording rules that had data for this run.
    SliCoverage,
    /// Share of the alerts the run loaded that promtool tests both fire and keep quiet.
    AlertTestCoverage,
    /// SLO burn-rate alerts of the compressed (`bench`) catalogue that fired during the run.
    BurnRateAlerts,
    /// The users' view of a fault: seconds from the first to the last request
    /// that failed in the burst after the first fault (it ends after 10 s without one).
    ErrorBurstSeconds,
    /// Tasks of the users' tenant in Redis that never reached a final state
    /// (completed or failed) once the queues drained: a task lost on the way.
    TasksUnfinished,
}

impl Sli {
    /// The name used in rules, reports and junit.
    pub fn as_str(self) -> &'static str {
        match self {
            Sli::ApiLatencyP95 => "api_latency_p95",
            Sli::ApiLatencyP99 => "api_latency_p99",
            Sli::ErrorRate => "error_rate",
            Sli::Availability => "availability",
            Sli::SearchLatencyP95 => "search_latency_p95",
            Sli::InterAgentLatencyP95 => "inter_agent_latency_p95",
            Sli::EventsLost => "events_lost",
            Sli::UsersReached => "users_reached",
            Sli::ScrapeCoverage => "scrape_coverage",
            Sli::RecoverySeconds => "recovery_seconds",
            Sli::DashboardCoverage => "dashboard_coverage",
            Sli::SliCoverage => "sli_coverage",
            Sli::AlertTestCoverage => "alert_test_coverage",
            Sli::BurnRateAlerts => "burn_rate_alerts",
            Sli::ErrorBurstSeconds => "error_burst_seconds",
            Sli::TasksUnfinished => "tasks_unfinished",
        }
    }

    /// The unit the target is written in.
    pub fn unit(self) -> Unit {
        match self {
            Sli::ApiLatencyP95
            | Sli::ApiLatencyP99
            | Sli::SearchLatencyP95
            | Sli::InterAgentLatencyP95
            | Sli::RecoverySeconds
            | Sli::ErrorBurstSeconds => Unit::Seconds,
            Sli::ErrorRate
            | Sli::Availability
            | Sli::ScrapeCoverage
            | Sli::DashboardCoverage
            | Sli::SliCoverage
            | Sli::AlertTestCoverage => Unit::Ratio,
            Sli::EventsLost | Sli::UsersReached | Sli::BurnRateAlerts | Sli::TasksUnfinished => Unit::Count,
        }
    }
}

/// How a value is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Seconds, shown in ms below 10 s.
    Seconds,
    /// 0..1, shown as a percentage.
    Ratio,
    /// A whole number.
    Count,
}

impl Unit {
    /// `value` for people.
    pub fn format(self, value: f64) -> String {
        match self {
            Unit::Seconds if value < 10.0 => format!("{:.3} ms", value * 1e3),
            Unit::Seconds => format!("{value:.1} s"),
            Unit::Ratio => format!("{:.4} %", value * 100.0),
            Unit::Count => format!("{value:.0}"),
        }
    }
}

/// How the measured value is compared with the target.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub enum Op {
    /// Below.
    #[serde(rename = "<")]
    Lt,
    /// At most.
    #[serde(rename = "<=")]
    Le,
    /// At least.
    #[serde(rename = ">=")]
    Ge,
    /// Above.
    #[serde(rename = ">")]
    Gt,
}

impl Op {
    /// Whether `value op target` holds.
    pub fn holds(self, value: f64, target: f64) -> bool {
        match self {
            Op::Lt => value < target,
            Op::Le => value <= target,
            Op::Ge => value >= target,
            Op::Gt => value > target,
        }
    }

    /// The symbol.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Ge => ">=",
            Op::Gt => ">",
        }
    }

    /// The PromQL comparison that is true when the criterion is *missed*.
    pub fn violated_by(self) -> &'static str {
        match self {
            Op::Lt => ">=",
            Op::Le => ">",
            Op::Ge => "<",
            Op::Gt => "<=",
        }
    }
}

/// One gate criterion.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    /// Identifier (junit test case, alert label).
    pub name: String,
    /// What is measured.
    pub sli: Sli,
    /// Comparison with the target.
    pub op: Op,
    /// The target, in the SLI's unit (seconds, ratio 0..1, count).
    pub target: f64,
    /// A softer threshold: missing it warns without failing the gate.
    #[serde(default)]
    pub warning: Option<f64>,
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ScenarioError::Read { path: path.to_owned(), source })?;
        let invalid = |message: String| ScenarioError::Invalid { path: path.to_owned(), message };
        let scenario: Scenario = parse_toml(&text).map_err(invalid)?;
        scenario.check().map_err(|(key, reason)| {
            let line = line_of(&text, &key).map(|l| format!("line {l}: ")).unwrap_or_default();
            invalid(format!("{line}`{key}`: {reason}"))
        })?;
        Ok(scenario)
    }

    /// Values that parse but make no sense, as (dotted key, reason).
    pub(crate) fn check(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, reason: String| Err((key.to_owned(), reason));
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return bad("name", "use letters, digits, - and _ (it names the report folder)".into());
        }
        self.user_plan()?;
        if self.load.users_per_process == 0 {
            return bad("load.users_per_process", "must be at least 1".into());
        }
        let t = &self.topology;
        if !t.monolith && !t.redis {
            return bad("topology.redis", "the services share state in Redis; only a monolith runs without".into());
        }
        if t.monolith && (t.redis || t.kafka || t.search || t.gateways != 1 || t.agent_processes != 1) {
            return bad("topology.monolith", "a monolith is one process: no redis, kafka, search or replicas".into());
        }
        if t.search && !t.kafka {
            return bad("topology.search", "the search index is fed from Kafka: set kafka = true".into());
        }
        if t.gateways == 0 || t.agent_processes == 0 {
            return bad("topology.gateways", "gateways and agent_processes must be at least 1".into());
        }
        if !matches!(t.inter_agent.as_str(), "rest" | "grpc") {
            return bad("topology.inter_agent", format!("`{}` is not rest or grpc", t.inter_agent));
        }
        if t.workers_per_type == Some(0) {
            return bad("topology.workers_per_type", "must be at least 1".into());
        }
        if t.load_balancer && t.monolith {
            return bad("topology.load_balancer", "balances gateway replicas; a monolith has none".into());
        }
        if t.cpus.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
            return bad("topology.cpus", "must be a positive number of CPUs".into());
        }
        if t.memory_mib.is_some_and(|m| m < 16) {
            return bad("topology.memory_mib", "must be at least 16".into());
        }
        if t.redis_aof && !t.redis {
            return bad("topology.redis_aof", "needs redis = true".into());
        }
        if self.load.protocols.contains_key("grpc") && t.monolith {
            return bad("load.protocols", "the monolith serves REST only (phase0)".into());
        }
        let services = self.service_names();
        for (i, fault) in self.faults.iter().enumerate() {
            if !services.contains(&fault.service) {
                return bad(
                    &format!("faults[{i}].service"),
                    format!("no service `{}` in this topology (one of {})", fault.service, services.join(", ")),
                );
            }
            if fault.at >= self.load.hold + self.user_plan().map(|p| p.ramp_up()).unwrap_or_default() {
                return bad(&format!("faults[{i}].at"), "falls after the hold ends".into());
            }
            if fault.recover_within.is_some() && !matches!(fault.action, FaultAction::Kill | FaultAction::Start) {
                return bad(
                    &format!("faults[{i}].recover_within"),
                    format!("a service recovers after `kill` or `start`, not after `{}`", fault.action.as_str()),
                );
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, criterion) in self.criteria.iter().enumerate() {
            if !names.insert(&criterion.name) {
                return bad(&format!("criteria[{i}].name"), format!("`{}` appears twice", criterion.name));
            }
            if !criterion.target.is_finite() {
                return bad(&format!("criteria[{i}].target"), "must be a finite number".into());
            }
            let needs = match criterion.sli {
                Sli::SearchLatencyP95 => (!t.search).then_some("topology.search"),
                Sli::EventsLost => (!t.kafka).then_some("topology.kafka"),
                Sli::RecoverySeconds => {
                    (!self.faults.iter().any(|f| matches!(f.action, FaultAction::Kill | FaultAction::Stop)))
                        .then_some("a [[faults]] entry that kills or stops a service")
                }
                Sli::ErrorBurstSeconds => self.faults.is_empty().then_some("a [[faults]] entry"),
                Sli::TasksUnfinished => {
                    self.load.journeys.get("submit_task").is_none_or(|w| *w == 0).then_some("a submit_task journey")
                }
                _ => None,
            };
            if let Some(what) = needs {
                return bad(&format!("criteria[{i}].sli"), format!("{} needs {what}", criterion.sli.as_str()));
            }
        }
        Ok(())
    }

    /// The services of this topology by name, in start order.
    pub fn service_names(&self) -> Vec<String> {
        let t = &self.topology;
        let mut names = Vec::new();
        if t.monolith {
            names.push("monolith".to_owned());
            return names;
        }
        names.push("redis".to_owned());
        if t.kafka {
            names.push("broker".to_owned());
        }
        if t.search {
            names.push("search".to_owned());
        }
        names.extend((0..t.agent_processes).map(|i| format!("agents-{i}")));
        names.extend((0..t.gateways).map(|i| format!("gateway-{i}")));
        if t.load_balancer {
            names.push("load-balancer".to_owned());
        }
        names
    }

    /// The load as the loadgen's plan (the users of all processes together).
    pub fn user_plan(&self) -> Result<UserPlan, (String, String)> {
        let load = &self.load;
        let think: ThinkTime = load.think.parse().map_err(|e: String| ("load.think".to_owned(), e))?;
        let mut journeys = Vec::new();
        for (name, weight) in &load.journeys {
            let journey: Journey = name.parse().map_err(|e| (format!("load.journeys.{name}"), e))?;
            if *weight > 0 {
                journeys.push((journey, *weight));
            }
        }
        let mut protocols = Vec::new();
        for (name, weight) in &load.protocols {
            let protocol = parse_protocol(name).map_err(|e| (format!("load.protocols.{name}"), e))?;
            if *weight > 0 {
                protocols.push((protocol, *weight));
            }
        }
        if journeys.is_empty() {
            return Err(("load.journeys".into(), "needs a journey with a positive weight".into()));
        }
        if protocols.is_empty() {
            return Err(("load.protocols".into(), "needs a protocol with a positive weight".into()));
        }
        let plan = UserPlan {
            users: load.users,
            ramp_rate: load.ramp_rate,
            hold: load.hold,
            ramp_down: load.ramp_down,
            think,
            journeys,
            protocols,
        };
        plan.validate().map_err(|e| {
            let key = e.split_whitespace().next().unwrap_or("load").trim_start_matches("--").replace('-', "_");
            (format!("load.{key}"), e)
        })?;
        Ok(plan)
    }

    /// A scenario that only names a topology (no users, faults or criteria):
    /// what the REST-versus-gRPC and capacity runs start their services from.
    pub fn of_topology(name: &str, description: &str, topology: Topology) -> Scenario {
        Scenario {
            name: name.to_owned(),
            description: description.to_owned(),
            load: Load {
                users: 1,
                ramp_rate: 1.0,
                hold: Duration::from_secs(1),
                ramp_down: default_ramp_down(),
                think: "none".into(),
                journeys: BTreeMap::from([("browse".into(), 1)]),
                protocols: BTreeMap::from([("rest".into(), 1)]),
                users_per_process: default_users_per_process(),
                api_key: default_api_key(),
            },
            topology,
            faults: Vec::new(),
            criteria: Vec::new(),
        }
    }

    /// How many loadgen processes carry the users.
    pub fn loadgen_processes(&self) -> usize {
        self.load.users.div_ceil(self.load.users_per_process).max(1)
    }
}

/// The line where `key`'s last segment is set, to point at it in an error.
fn line_of(text: &str, key: &str) -> Option<usize> {
    let last = key.rsplit('.').next()?.split('[').next()?;
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            line.starts_with(last) && line[last.len()..].trim_start().starts_with('=')
        })
        .map(|i| i + 1)
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

mod option_seconds {
    use std::time::Duration;

    pub(super) fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

impl Overrides {
    /// Whether any size was changed.
    pub fn any(&self) -> bool {
        self.users.is_some() || self.duration.is_some() || self.scale.is_some()
    }

    /// Applies the overrides. The ramp rate stays the file's (a smaller run
    /// ramps up sooner), and a `users_reached` target that asked for the file's
    /// users asks for the users run instead.
    pub fn apply(&self, scenario: &mut Scenario) -> Result<(), String> {
        let original = scenario.load.users;
        let planned = |s: &Scenario| s.user_plan().map(|p| p.ramp_up() + p.hold).unwrap_or_default();
        let original_span = planned(scenario);
        if let Some(scale) = self.scale {
            if !(scale.is_finite() && scale > 0.0) {
                return Err(format!("--scale must be a positive number, got {scale}"));
            }
            scenario.load.users = ((original as f64 * scale).round() as usize).max(1);
        }
        if let Some(users) = self.users {
            if users == 0 {
                return Err("--users must be at least 1".into());
            }
            scenario.load.users = users;
        }
        for criterion in &mut scenario.criteria {
            if criterion.sli == Sli::UsersReached && criterion.target == original as f64 {
                criterion.target = scenario.load.users as f64;
            }
        }
        if let Some(duration) = self.duration {
            if duration.is_zero() {
                return Err("--duration must be positive".into());
            }
            scenario.load.hold = duration;
        }
        // Faults keep their place in the run (and their order): their times
        // scale with the time from the first user to the end of the hold.
        let span = planned(scenario);
        if span != original_span && !original_span.is_zero() {
            let factor = span.as_secs_f64() / original_span.as_secs_f64();
            for fault in &mut scenario.faults {
                fault.at = fault.at.mul_f64(factor);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (q2o_testkit::ScratchDir, PathBuf) {
        let dir = q2o_testkit::ScratchDir::new("scenario").unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    const GOOD: &str = r#"
name = "t"
description = "test"
[load]
users = 100
ramp_rate = 50
hold = "30s"
journeys = { browse = 1 }
protocols = { rest = 1 }
[topology]
redis = true
[[criteria]]
name = "p95"
sli = "api_latency_p95"
op = "<"
target = 0.05
"#;

    #[test]
    fn every_phase_file_in_the_repository_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut found = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") && path.file_name().unwrap() != "Cargo.toml" {
                if crate::compare::Comparison::is_comparison(&std::fs::read_to_string(&path).unwrap()) {
                    crate::compare::Comparison::load(&path).unwrap_or_else(|e| panic!("{e}"));
                } else {
                    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
                }
                found += 1;
            }
        }
        assert!(found >= 5, "phase0..phase4 at least, found {found}");
    }

    #[test]
    fn bad_files_name_the_file_line_and_key() {
        let (_d, path) = write(GOOD);
        assert_eq!(Scenario::load(&path).unwrap().load.users, 100);
        for (edit, needle) in [
            (GOOD.replace("users = 100", "users = 100\nuserz = 3"), "line 6: unknown field `userz`"),
            (GOOD.replace("hold = \"30s\"", "hold = \"30 parsecs\""), "line 7"),
            (GOOD.replace("browse = 1", "dance = 1"), "`load.journeys.dance`"),
            (GOOD.replace("ramp_rate = 50", "ramp_rate = 0"), "line 6: `load.ramp_rate`"),
            (GOOD.replace("op = \"<\"", "op = \"~\""), "line 15: unknown variant `~`"),
            (GOOD.replace("redis = true", "redis = false"), "`topology.redis`"),
            (GOOD.replace("sli = \"api_latency_p95\"", "sli = \"search_latency_p95\""), "needs topology.search"),
            (
                format!(
                    "{GOOD}[[faults]]\nat = \"5s\"\naction = \"pause\"\nservice = \"redis\"\nrecover_within = \"1s\"\n"
                ),
                "`faults[0].recover_within`",
            ),
            (
                format!("{GOOD}[[faults]]\nat = \"5s\"\naction = \"explode\"\nservice = \"redis\"\n"),
                "unknown variant `explode`",
            ),
            (GOOD.replace("redis = true", "redis = true\nload_balancer = true\nmonolith = true"), "topology.monolith"),
        ] {
            let (_d, path) = write(&edit);
            let err = Scenario::load(&path).unwrap_err().to_string();
            assert!(err.contains(path.to_str().unwrap()), "{err}");
            assert!(err.contains(needle), "`{err}` should contain `{needle}`");
        }
    }

    #[test]
    fn overrides_scale_the_users_and_their_target() {
        let text = format!("{GOOD}[[criteria]]\nname = \"u\"\nsli = \"users_reached\"\nop = \">=\"\ntarget = 100\n");
        let (_d, path) = write(&text);
        let mut scenario = Scenario::load(&path).unwrap();
        let overrides = Overrides { scale: Some(0.1), duration: Some(Duration::from_secs(5)), users: None };
        overrides.apply(&mut scenario).unwrap();
        assert_eq!(scenario.load.users, 10);
        assert_eq!(scenario.criteria[1].target, 10.0, "users_reached follows the users run");
        assert_eq!(scenario.load.hold, Duration::from_secs(5));
        assert!(
            Overrides { scale: Some(-1.0), ..Default::default() }.apply(&mut scenario).unwrap_err().contains("--scale")
        );
    }

    #[test]
    fn a_shorter_run_keeps_its_faults_in_place_and_in_order() {
        let text = format!(
            "{GOOD}[[faults]]\nat = \"10s\"\naction = \"stop\"\nservice = \"redis\"\n\
             [[faults]]\nat = \"20s\"\naction = \"start\"\nservice = \"redis\"\nrecover_within = \"5s\"\n"
        );
        let (_d, path) = write(&text);
        let mut scenario = Scenario::load(&path).unwrap();
        let before = scenario.user_plan().unwrap();
        let span = (before.ramp_up() + before.hold).as_secs_f64();
        Overrides { duration: Some(Duration::from_secs(10)), ..Default::default() }.apply(&mut scenario).unwrap();
        let after = scenario.user_plan().unwrap();
        let factor = (after.ramp_up() + after.hold).as_secs_f64() / span;
        let at: Vec<f64> = scenario.faults.iter().map(|f| f.at.as_secs_f64()).collect();
        assert!((at[0] - 10.0 * factor).abs() < 1e-6 && (at[1] - 20.0 * factor).abs() < 1e-6, "{at:?}");
        assert!(at[0] < at[1]);
    }
}
