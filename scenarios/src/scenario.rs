//! The scenario file: what load to drive, on what topology, judged by which
//! criteria. One typed schema with `deny_unknown_fields`, parsed once into
//! the loadgen's and the environment's own types; a bad file gets one error
//! naming the file, the line and the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use q2o_common::config::{duration, parse_toml};
use q2o_env::topology::{FaultAction, Topology};
use q2o_loadgen::journeys::plan::{Journey, Surge, ThinkTime, UserPlan};
use q2o_loadgen::recorder::Protocol;
use q2o_slo::sli::{Criterion, Sli, Window};
use serde::{Deserialize, Deserializer, Serialize};

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

/// A command-line size that cannot be applied.
#[derive(Debug, thiserror::Error)]
#[error("{flag} {reason}")]
pub struct FlagError {
    /// The flag (`--scale`).
    pub flag: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}

/// One gate scenario file.
#[derive(Clone, Debug, Deserialize)]
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
#[derive(Clone, Debug, Deserialize)]
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
    pub think: ThinkTime,
    /// Journey weights (browse, create_project, submit_task, search).
    #[serde(deserialize_with = "journeys")]
    pub journeys: BTreeMap<Journey, u32>,
    /// Protocol weights (rest, grpc).
    #[serde(deserialize_with = "protocols")]
    pub protocols: BTreeMap<Protocol, u32>,
    /// Most users one loadgen process carries; more users start more
    /// processes. When absent, [`Scenario::users_per_process`] sizes it from
    /// the protocol mix.
    #[serde(default)]
    pub users_per_process: Option<usize>,
    /// API key the users log in with.
    #[serde(default = "default_api_key")]
    pub api_key: String,
    /// More users for a while during the hold: `{ users, at, lasts, ramp }`.
    #[serde(default)]
    pub surge: Option<Surge>,
}

fn default_ramp_down() -> Duration {
    Duration::from_secs(5)
}
fn default_think() -> ThinkTime {
    ThinkTime::Exponential(Duration::from_secs(10))
}
/// Most users one loadgen process carries when the scenario does not say:
/// its users run on one thread, and phase2's mix at this many is about 7,000
/// requests/s, 0.35 cores at the 49.5-53.4 CPU-µs per request one process
/// took for 45,000 users (2026-12-06). Its REST connections stay within
/// `q2o_loadgen::journeys::REST_CONNECTIONS` whatever its users.
const MOST_USERS_PER_PROCESS: usize = 50_000;

/// The API key of the demo tenant `acme`, which every default run logs in with.
pub fn default_api_key() -> String {
    "demo-key-acme".into()
}

/// A weight table whose keys parse as `T`; a bad key names itself as `table.key`.
fn weights<'de, D: Deserializer<'de>, T: FromStr<Err = String> + Ord>(
    deserializer: D,
    table: &str,
) -> Result<BTreeMap<T, u32>, D::Error> {
    let raw = BTreeMap::<String, u32>::deserialize(deserializer)?;
    raw.into_iter()
        .map(|(name, weight)| {
            let key = name.parse().map_err(|e| serde::de::Error::custom(format!("`{table}.{name}`: {e}")))?;
            Ok((key, weight))
        })
        .collect()
}

fn journeys<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<Journey, u32>, D::Error> {
    weights(deserializer, "load.journeys")
}

fn protocols<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<Protocol, u32>, D::Error> {
    weights(deserializer, "load.protocols")
}

/// A fault: what happens to which service, when, and what must follow.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// What criteria windows call it (`during:NAME`); `<action>-<service>`
    /// (`kill-gateway-0`) when absent.
    #[serde(default)]
    pub name: Option<String>,
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

impl Fault {
    /// Its name in criteria windows.
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| format!("{}-{}", self.action.as_str(), self.service))
    }
}

/// How long `during:` lasts for a kill that states no recovery time.
const KILL_WINDOW: Duration = Duration::from_secs(10);

impl Scenario {
    /// The span of a criterion's window, from and to (after the load
    /// started); `None` for the hold. During a surge: from its first extra
    /// user to the moment they begin to leave. During a fault: until the
    /// next fault on the same service (`stop` until `start`, `pause` until
    /// `unpause`), or for a `kill` its `recover_within` (10 s without one),
    /// else until the hold ends. After: from its end (a surge's: once its
    /// users left) plus the offset to the end of the hold.
    ///
    /// goose lets a user go only once its journey is over, so the surge's
    /// users leave over tens of seconds, not over its `ramp`: given the
    /// users active each second (`users`), a surge is over once they are
    /// back within 5 % of the hold's; without them, at its planned end.
    pub fn window_span(&self, window: &Window, users: Option<&[u64]>) -> Option<Result<(Duration, Duration), String>> {
        let name = window.event()?;
        let plan = self.user_plan();
        let hold_end = plan.ramp_up() + plan.hold;
        // During, and when it was over (a surge is over once its users left).
        let (during, over) = if name == "surge" {
            let Some(surge) = &plan.surge else { return Some(Err("this scenario has no [load] surge".into())) };
            let planned = surge.ends(&plan);
            let back = (plan.users as f64 * 1.05) as u64;
            let over = match users {
                Some(users) => users
                    .iter()
                    .enumerate()
                    .skip(planned.as_secs() as usize)
                    .find(|(_, active)| **active <= back)
                    .map_or(hold_end, |(second, _)| Duration::from_secs(second as u64)),
                None => planned,
            };
            ((surge.starts(&plan), surge.starts(&plan) + surge.ramp + surge.lasts), over)
        } else {
            let Some((i, fault)) = self.faults.iter().enumerate().find(|(_, f)| f.name() == name) else {
                let names: Vec<String> = self.faults.iter().map(Fault::name).collect();
                let known = if names.is_empty() { "none".to_owned() } else { names.join(", ") };
                return Some(Err(format!("no surge or fault named `{name}` (faults: {known})")));
            };
            let undone = self.faults[i + 1..].iter().find(|f| f.service == fault.service).map(|f| f.at);
            let end = match fault.action {
                FaultAction::Kill => fault.at + fault.recover_within.unwrap_or(KILL_WINDOW),
                _ => undone.unwrap_or(hold_end),
            };
            ((fault.at, end.min(hold_end)), end.min(hold_end))
        };
        Some(match window {
            Window::Hold => unreachable!("the hold names no event"),
            Window::During(_) => Ok(during),
            Window::After(_, offset) if over + *offset >= hold_end => {
                Err(format!("`{window}` starts after the hold ends"))
            }
            Window::After(_, offset) => Ok((over + *offset, hold_end)),
        })
    }

    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ScenarioError::Read { path: path.to_owned(), source })?;
        Scenario::parse(path, &text)
    }

    /// Parses and checks the text of the scenario file `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
        let invalid = |message: String| ScenarioError::Invalid { path: path.to_owned(), message };
        let scenario: Scenario = parse_toml(text).map_err(invalid)?;
        scenario.check().map_err(|(key, reason)| invalid(located(text, &key, &reason)))?;
        Ok(scenario)
    }

    /// Values that parse but make no sense, as (dotted key, reason).
    pub(crate) fn check(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, reason: String| Err((key.to_owned(), reason));
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return bad("name", "use letters, digits, - and _ (it names the report folder)".into());
        }
        if !self.load.journeys.values().any(|w| *w > 0) {
            return bad("load.journeys", "needs a journey with a positive weight".into());
        }
        if !self.load.protocols.values().any(|w| *w > 0) {
            return bad("load.protocols", "needs a protocol with a positive weight".into());
        }
        let plan = self.user_plan();
        plan.validate().map_err(|e| (format!("load.{}", e.field.key()), e.to_string()))?;
        if self.load.users_per_process == Some(0) {
            return bad("load.users_per_process", "must be at least 1".into());
        }
        let t = &self.topology;
        t.check()?;
        if self.load.protocols.get(&Protocol::Grpc).is_some_and(|w| *w > 0) && t.monolith {
            return bad("load.protocols", "the monolith serves REST only (phase0)".into());
        }
        let services = q2o_env::plan::service_names(t);
        for (i, fault) in self.faults.iter().enumerate() {
            if !services.contains(&fault.service) {
                return bad(
                    &format!("faults[{i}].service"),
                    format!("no service `{}` in this topology (one of {})", fault.service, services.join(", ")),
                );
            }
            if fault.at >= self.load.hold + plan.ramp_up() {
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
            if !criterion.window.is_hold() && !Window::supports(criterion.sli) {
                return bad(
                    &format!("criteria[{i}].window"),
                    format!("{} is judged over the hold only", criterion.sli.as_str()),
                );
            }
            if let Some(Err(reason)) = self.window_span(&criterion.window, None) {
                return bad(&format!("criteria[{i}].window"), reason);
            }
            let needs = match criterion.sli {
                Sli::SearchLatencyP95 => (!t.search).then_some("topology.search"),
                Sli::EventsLost => (!t.kafka).then_some("topology.kafka"),
                Sli::RecoverySeconds => {
                    (!self.faults.iter().any(|f| matches!(f.action, FaultAction::Kill | FaultAction::Stop)))
                        .then_some("a [[faults]] entry that kills or stops a service")
                }
                Sli::ErrorBurstSeconds => self.faults.is_empty().then_some("a [[faults]] entry"),
                Sli::TasksUnfinished => self
                    .load
                    .journeys
                    .get(&Journey::SubmitTask)
                    .is_none_or(|w| *w == 0)
                    .then_some("a submit_task journey"),
                _ => None,
            };
            if let Some(what) = needs {
                return bad(&format!("criteria[{i}].sli"), format!("{} needs {what}", criterion.sli.as_str()));
            }
        }
        Ok(())
    }

    /// The load as the loadgen's plan (the users of all processes together).
    pub fn user_plan(&self) -> UserPlan {
        let load = &self.load;
        fn positive<K: Copy>(weights: &BTreeMap<K, u32>) -> Vec<(K, u32)> {
            weights.iter().filter(|(_, w)| **w > 0).map(|(k, w)| (*k, *w)).collect()
        }
        UserPlan {
            users: load.users,
            ramp_rate: load.ramp_rate,
            hold: load.hold,
            ramp_down: load.ramp_down,
            think: load.think,
            journeys: positive(&load.journeys),
            protocols: positive(&load.protocols),
            surge: load.surge,
        }
    }

    /// How many loadgen processes carry the users: enough for
    /// `users_per_process` each and, without a balancer, a multiple of the
    /// gateway replicas (process `i` talks to replica `i mod n`, so fewer
    /// would leave replicas idle, and any other count loads them unevenly:
    /// three processes on two replicas gave one two thirds of the users).
    pub fn loadgen_processes(&self) -> usize {
        let t = &self.topology;
        let addresses = if t.load_balancer || t.monolith { 1 } else { t.host_gateways().0.max(1) };
        let needed = self.load.users.div_ceil(self.users_per_process());
        (needed.div_ceil(addresses) * addresses).min(self.load.users).max(1)
    }

    /// Most users one loadgen process carries: the file's `users_per_process`,
    /// else [`MOST_USERS_PER_PROCESS`]. Fewer, fuller processes cost less per
    /// request: each wakes once for every answer that is ready, not once per
    /// answer. At phase2's mix and 25,000 users (`q2o-bench cost`), four
    /// processes of 6,250 users took 72.7 CPU-µs per request, two of 12,500
    /// took 61.6, one took 51.8; at 45,000 users, one process took 49.5-53.4
    /// against 59.2-59.7 for two (two alternating pairs, 2026-12-06).
    pub fn users_per_process(&self) -> usize {
        self.load.users_per_process.unwrap_or(MOST_USERS_PER_PROCESS)
    }
}

/// `reason` for `key`, with the line where `key`'s last segment is set.
pub(crate) fn located(text: &str, key: &str, reason: &str) -> String {
    let line = line_of(text, key).map(|l| format!("line {l}: ")).unwrap_or_default();
    format!("{line}`{key}`: {reason}")
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

/// Sizes set on the command line (the report's own record of them).
pub use q2o_report::summary::Overrides;

impl Scenario {
    /// Applies `overrides`. The ramp rate stays the file's (a smaller run
    /// ramps up sooner), and a `users_reached` target that asked for the file's
    /// users asks for the users run instead.
    pub fn apply(&mut self, overrides: &Overrides) -> Result<(), FlagError> {
        let (scenario, this) = (self, overrides);
        let original = scenario.load.users;
        let planned = |s: &Scenario| {
            let plan = s.user_plan();
            plan.ramp_up() + plan.hold
        };
        let original_span = planned(scenario);
        if let Some(scale) = this.scale {
            if !(scale.is_finite() && scale > 0.0) {
                return Err(FlagError { flag: "--scale", reason: format!("must be a positive number, got {scale}") });
            }
            scenario.load.users = ((original as f64 * scale).round() as usize).max(1);
        }
        if let Some(users) = this.users {
            if users == 0 {
                return Err(FlagError { flag: "--users", reason: "must be at least 1".into() });
            }
            scenario.load.users = users;
        }
        // A surge keeps its size relative to the users it surges over, and
        // the users it reaches are what `users_reached` asked for.
        let factor = scenario.load.users as f64 / original as f64;
        let original_top = scenario.load.surge.map_or(original, |s| s.users);
        if let Some(surge) = &mut scenario.load.surge {
            surge.users = ((surge.users as f64 * factor).round() as usize).max(scenario.load.users + 1);
        }
        let top = scenario.load.surge.map_or(scenario.load.users, |s| s.users);
        for criterion in &mut scenario.criteria {
            if criterion.sli == Sli::UsersReached && criterion.target == original_top as f64 {
                criterion.target = top as f64;
            }
        }
        if let Some(duration) = this.duration {
            if duration.is_zero() {
                return Err(FlagError { flag: "--duration", reason: "must be positive".into() });
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
                crate::scenario_file::ScenarioFile::load(&path).unwrap_or_else(|e| panic!("{e}"));
                found += 1;
            }
        }
        assert!(found >= 5, "phase0..phase4 at least, found {found}");
    }

    #[test]
    fn windows_span_their_surge_or_fault_and_bad_ones_are_named() {
        let surging = GOOD.replace(
            "protocols = { rest = 1 }",
            "protocols = { rest = 1 }\nsurge = { users = 300, at = \"5s\", lasts = \"10s\", ramp = \"2s\" }",
        );
        let text = format!(
            "{surging}window = \"after:surge+3s\"\n[[faults]]\nat = \"8s\"\naction = \"kill\"\nservice = \"redis\"\n"
        );
        let (_d, path) = write(&text);
        let scenario = Scenario::load(&path).unwrap();
        let secs = |a: u64, b: u64| Some(Ok((Duration::from_secs(a), Duration::from_secs(b))));
        // Ramp-up 2 s (100 users at 50/s): the surge's users arrive from 7 s, all by 9 s, leave from 19 s.
        assert_eq!(scenario.window_span(&"during:surge".parse().unwrap(), None), secs(7, 19));
        let after = &scenario.criteria[0].window;
        assert_eq!(scenario.window_span(after, None), secs(24, 32), "from 3 s after they left");
        // The users lingered: back to the hold's 100 (within 5 %) only at 26 s.
        let mut users = vec![100; 32];
        users[7..26].fill(300);
        users[26] = 105;
        assert_eq!(scenario.window_span(after, Some(&users)), secs(29, 32), "from 3 s after they were gone");
        users[26..].fill(200);
        assert_eq!(
            scenario.window_span(after, Some(&users)),
            Some(Err("`after:surge+3s` starts after the hold ends".into()))
        );
        assert_eq!(scenario.window_span(&"during:kill-redis".parse().unwrap(), None), secs(8, 18), "a kill lasts 10 s");
        assert_eq!(scenario.window_span(&Window::Hold, None), None);
        for (edit, needle) in [
            (format!("{GOOD}window = \"during:surge\"\n"), "no [load] surge"),
            (
                format!("{surging}window = \"during:kill-redis\"\n"),
                "no surge or fault named `kill-redis` (faults: none)",
            ),
            (format!("{surging}window = \"after:surge+30s\"\n"), "starts after the hold ends"),
            (
                format!("{surging}window = \"during:surge\"\n").replace("api_latency_p95", "users_reached"),
                "users_reached is judged over the hold only",
            ),
        ] {
            let (_d, path) = write(&edit);
            let err = Scenario::load(&path).unwrap_err().to_string();
            assert!(err.contains("criteria[0].window") && err.contains(needle), "`{err}` should contain `{needle}`");
        }
    }

    #[test]
    fn bad_files_name_the_file_line_and_key() {
        let (_d, path) = write(GOOD);
        let good = Scenario::load(&path).unwrap();
        assert_eq!(good.load.users, 100);
        assert_eq!(good.load.think, ThinkTime::Exponential(Duration::from_secs(10)), "parsed once, typed");
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
            (GOOD.replace("rest = 1", "soap = 1"), "`load.protocols.soap`"),
            (GOOD.replace("journeys = {", "think = \"gauss:1s\"\njourneys = {"), "--think `gauss:1s`"),
            (GOOD.replace("redis = true", "redis = true\ninter_agent = \"carrier-pigeon\""), "unknown variant"),
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
        scenario.apply(&overrides).unwrap();
        assert_eq!(scenario.load.users, 10);
        assert_eq!(scenario.criteria[1].target, 10.0, "users_reached follows the users run");
        assert_eq!(scenario.load.hold, Duration::from_secs(5));
        let err = scenario.apply(&Overrides { scale: Some(-1.0), ..Default::default() }).unwrap_err();
        assert!(err.to_string().contains("--scale"));
    }

    #[test]
    fn loadgen_processes_come_in_whole_rounds_of_the_gateway_replicas() {
        let (_d, path) = write(&GOOD.replace("redis = true", "redis = true\ngateways = 2"));
        let mut scenario = Scenario::load(&path).unwrap();
        let processes = |scenario: &mut Scenario, users: usize| {
            scenario.load.users = users;
            scenario.loadgen_processes()
        };
        assert_eq!(processes(&mut scenario, 1), 1, "never more processes than users");
        assert_eq!(processes(&mut scenario, 100), 2, "one per replica at least");
        scenario.load.users_per_process = Some(10_000);
        assert_eq!(processes(&mut scenario, 25_000), 4, "three would load one replica twice as much");
        assert_eq!(processes(&mut scenario, 50_000), 6);
        scenario.topology.host_gateways = Some(1);
        assert_eq!(processes(&mut scenario, 25_000), 3, "one gateway process takes any number evenly");
        scenario.topology.host_gateways = None;
        scenario.topology.load_balancer = true;
        assert_eq!(processes(&mut scenario, 25_000), 3, "a balancer spreads any number evenly");
    }

    #[test]
    fn a_process_carries_the_files_users_per_process_or_as_many_as_one_thread_does() {
        let (_d, path) = write(GOOD);
        let mut scenario = Scenario::load(&path).unwrap();
        assert_eq!(scenario.users_per_process(), 50_000, "its REST connections are capped, not its users");
        scenario.load.users_per_process = Some(5_000);
        assert_eq!(scenario.users_per_process(), 5_000, "the file's figure wins");
        let text = GOOD.replace("[load]\n", "[load]\nusers_per_process = 0\n");
        assert!(text.contains("users_per_process = 0"));
        let (_d, path) = write(&text);
        let err = Scenario::load(&path).unwrap_err().to_string();
        assert!(err.contains("load.users_per_process"), "{err}");
    }

    #[test]
    fn a_shorter_run_keeps_its_faults_in_place_and_in_order() {
        let text = format!(
            "{GOOD}[[faults]]\nat = \"10s\"\naction = \"stop\"\nservice = \"redis\"\n\
             [[faults]]\nat = \"20s\"\naction = \"start\"\nservice = \"redis\"\nrecover_within = \"5s\"\n"
        );
        let (_d, path) = write(&text);
        let mut scenario = Scenario::load(&path).unwrap();
        let before = scenario.user_plan();
        let span = (before.ramp_up() + before.hold).as_secs_f64();
        scenario.apply(&Overrides { duration: Some(Duration::from_secs(10)), ..Default::default() }).unwrap();
        let after = scenario.user_plan();
        let factor = (after.ramp_up() + after.hold).as_secs_f64() / span;
        let at: Vec<f64> = scenario.faults.iter().map(|f| f.at.as_secs_f64()).collect();
        assert!((at[0] - 10.0 * factor).abs() < 1e-6 && (at[1] - 20.0 * factor).abs() < 1e-6, "{at:?}");
        assert!(at[0] < at[1]);
    }
}
