//! What a capacity search found, as `capacity.json`: each user count tried at
//! each replica count, the knees in users, the Universal Scalability Law
//! through them, and the replicas that 5k, 50k and 100k users need.

use serde::Serialize;

use crate::capacity::knee::Knee;
use crate::capacity::usl::{self, Fit};
use q2o_report::summary::Machine;

/// Share of a step's users that must be active at once for it to hold: a
/// loadgen that cannot start them all has not offered the load.
pub const MIN_REACHED: f64 = 0.99;

/// One user count tried.
#[derive(Clone, Debug, Serialize)]
pub struct StepFigures {
    /// Users the step started.
    pub users: u64,
    /// The most that were active at once.
    pub users_reached: u64,
    /// API requests finished (every step but the wait for a task).
    pub requests: u64,
    /// Of which failed.
    pub failed: u64,
    /// API requests per second over the step.
    pub requests_per_second: f64,
    /// API requests per active user per second (requests over user-seconds):
    /// what one user of these journeys costs.
    pub requests_per_user_per_second: f64,
    /// API p95 latency, seconds (`None`: no request finished).
    pub p95_seconds: Option<f64>,
    /// Share of the machine's CPU busy from the step's start to its end.
    pub machine_cpu_busy: Option<f64>,
    /// Tasks waiting or running in the queues at the end of the warm-up and
    /// at the end of the hold (`None`: the topology has no Redis).
    pub tasks_queued: Option<(u64, u64)>,
    /// Seconds until the tasks' queues were empty and the services quiet
    /// after the step (`None`: not within two minutes, and the next step
    /// started on this one's backlog).
    pub settled_seconds: Option<f64>,
    /// Every criterion a step judges held.
    pub held: bool,
    /// What broke, when something did.
    pub broke: Vec<String>,
}

/// The search at one replica count.
#[derive(Clone, Debug, Serialize)]
pub struct ReplicaSearch {
    /// Gateway replicas.
    pub gateways: usize,
    /// Gateway processes: the replicas, or fewer on one machine
    /// (`[topology] host_gateways`).
    pub gateway_processes: usize,
    /// Agents processes.
    pub agent_processes: usize,
    /// The most users that held, and the fewest that broke.
    #[serde(flatten)]
    pub knee: Knee,
    /// Each step, in the order tried.
    pub steps: Vec<StepFigures>,
}

/// A criterion of the scenario that a step does not judge, and why.
#[derive(Clone, Debug, Serialize)]
pub struct NotJudged {
    /// The criterion's name in the scenario.
    pub criterion: String,
    /// Why a step cannot judge it.
    pub reason: String,
}

/// Replicas for a number of users.
#[derive(Clone, Debug, Serialize)]
pub struct Needed {
    /// Concurrent users.
    pub users: f64,
    /// Replicas by the fit through the knees (`None`: no replica count reaches it).
    pub replicas: Option<u64>,
    /// Replicas by the fit through the fewest users that broke (the optimistic end).
    pub replicas_optimistic: Option<u64>,
}

/// How each step loads the system: the scenario's own users.
#[derive(Clone, Debug, Serialize)]
pub struct StepLoad {
    /// `closed`: goose users walking the scenario's journeys with its think time.
    pub model: &'static str,
    /// The scenario's journeys and weights.
    pub journeys: String,
    /// The scenario's protocols and weights.
    pub protocols: String,
    /// The scenario's think time.
    pub think: String,
    /// Users started per second, at least (the scenario's ramp rate).
    pub ramp_rate: f64,
    /// The longest a step's ramp takes: faster than `ramp_rate` when that would take longer.
    pub ramp_seconds_at_most: f64,
    /// Seconds all users stay.
    pub hold_seconds: f64,
    /// What a step does not judge: its ramp, then one mean think time (at most half the hold).
    pub warm_up: &'static str,
}

/// `capacity.json`.
#[derive(Clone, Debug, Serialize)]
pub struct CapacityReport {
    /// 2: knees in users.
    pub schema_version: u32,
    /// The scenario.
    pub scenario: String,
    /// Run folder name.
    pub run_id: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub finished_at: String,
    /// Where it ran.
    pub environment: Machine,
    /// What each step runs.
    pub load: StepLoad,
    /// The criteria each step is judged by.
    pub criteria: Vec<String>,
    /// The scenario's criteria a step cannot judge.
    pub not_judged: Vec<NotJudged>,
    /// Per replica count.
    pub searches: Vec<ReplicaSearch>,
    /// The USL through (replicas, knee users), with (σ, κ, λ) standard errors when over-determined.
    pub fit: Option<Fit>,
    /// The USL through (replicas, fewest users that broke): the other end of the knees' brackets.
    pub fit_optimistic: Option<Fit>,
    /// Where the fitted curve peaks, replicas, and its users.
    pub peak: Option<(f64, f64)>,
    /// Replicas for 5k, 50k and 100k users (and the target, if given).
    pub needed: Vec<Needed>,
    /// Users asked for with `--target-users`.
    pub target_users: Option<f64>,
    /// Whether the largest knee carries the target (true without a target when a knee was found).
    pub met: bool,
    /// One line per finding.
    pub reasons: Vec<String>,
}

/// What the report is made of, besides the searches.
#[derive(Clone, Debug)]
pub(crate) struct Setting {
    pub(crate) scenario: String,
    pub(crate) run_id: String,
    pub(crate) load: StepLoad,
    pub(crate) criteria: Vec<String>,
    pub(crate) not_judged: Vec<NotJudged>,
    pub(crate) target_users: Option<f64>,
}

fn replicas_word(n: usize) -> &'static str {
    if n == 1 { "replica" } else { "replicas" }
}

impl CapacityReport {
    pub(crate) fn new(setting: Setting, searches: Vec<ReplicaSearch>) -> CapacityReport {
        let Setting { scenario, run_id, load, criteria, not_judged, target_users } = setting;
        let points = |of: fn(&Knee) -> Option<u64>| -> Vec<(f64, f64)> {
            searches.iter().filter_map(|s| of(&s.knee).map(|u| (s.gateways as f64, u as f64))).collect()
        };
        let fit = usl::fit(&points(|k| k.knee_users));
        let fit_optimistic = usl::fit(&points(|k| k.broke_users));
        let peak = fit.and_then(|f| f.model.peak_units().map(|n| (n, f.model.throughput(n))));
        let mut wanted = vec![5_000.0, 50_000.0, 100_000.0];
        if let Some(target) = target_users.filter(|t| !wanted.contains(t)) {
            wanted.push(target);
        }
        let needed = wanted
            .into_iter()
            .map(|users| Needed {
                users,
                replicas: fit.and_then(|f| f.model.units_for(users)),
                replicas_optimistic: fit_optimistic.and_then(|f| f.model.units_for(users)),
            })
            .collect();
        let best = searches.iter().filter_map(|s| s.knee.knee_users).max();
        let met = match (target_users, best) {
            (Some(target), Some(best)) => best as f64 >= target,
            (Some(_), None) => false,
            (None, best) => best.is_some(),
        };
        let mut reasons: Vec<String> = searches.iter().map(knee_line).collect();
        if let (Some(target), Some(best)) = (target_users, best)
            && (best as f64) < target
        {
            reasons.push(format!("the target of {target:.0} users is not met: at most {best} at the replicas tried"));
        }
        CapacityReport {
            schema_version: 2,
            scenario,
            run_id,
            started_at: String::new(),
            finished_at: String::new(),
            environment: Machine::here(String::new()),
            load,
            criteria,
            not_judged,
            searches,
            fit,
            fit_optimistic,
            peak,
            needed,
            target_users,
            met,
            reasons,
        }
    }
}

/// "2 gateway replicas: knee 18000 users; 20000 broke (api_p95 ...)".
fn knee_line(s: &ReplicaSearch) -> String {
    let at = format!("{} gateway {}", s.gateways, replicas_word(s.gateways));
    let broke = s.knee.broke_users.map(|b| {
        let why = s.steps.iter().find(|f| f.users == b).map(|f| f.broke.join("; ")).unwrap_or_default();
        if why.is_empty() { format!("{b} broke") } else { format!("{b} broke ({why})") }
    });
    match (s.knee.knee_users, broke) {
        (Some(knee), Some(broke)) => format!("{at}: knee {knee} users; {broke}"),
        (Some(knee), None) => format!("{at}: knee {knee} users, the most tried; none broke"),
        (None, Some(broke)) => format!("{at}: no user count held; {broke}"),
        (None, None) => format!("{at}: no step ran"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn searched(gateways: usize, knee_users: u64, broke_users: u64) -> ReplicaSearch {
        ReplicaSearch {
            gateways,
            gateway_processes: gateways,
            agent_processes: gateways,
            knee: Knee { knee_users: Some(knee_users), broke_users: Some(broke_users) },
            steps: Vec::new(),
        }
    }

    fn setting(target_users: Option<f64>) -> Setting {
        Setting {
            scenario: "s".into(),
            run_id: "r".into(),
            load: StepLoad {
                model: "closed",
                journeys: "browse=1".into(),
                protocols: "rest=1".into(),
                think: "exp:10s".into(),
                ramp_rate: 100.0,
                ramp_seconds_at_most: 10.0,
                hold_seconds: 20.0,
                warm_up: "the ramp",
            },
            criteria: Vec::new(),
            not_judged: Vec::new(),
            target_users,
        }
    }

    #[test]
    fn knees_at_three_replica_counts_size_the_replicas_in_users() {
        let searches = vec![searched(1, 1000, 1100), searched(2, 1900, 2100), searched(3, 2700, 3000)];
        let report = CapacityReport::new(setting(Some(2500.0)), searches);
        let fit = report.fit.expect("three knees fit the USL");
        assert!((fit.model.throughput(2.0) - 1900.0).abs() < 100.0, "{fit:?}");
        let at = |users: f64| report.needed.iter().find(|n| n.users == users).unwrap();
        assert_eq!(at(2500.0).replicas, Some(3), "{:?}", report.needed);
        // The optimistic fit, through the first breaks, never needs more.
        assert!(at(2500.0).replicas_optimistic.unwrap() <= 3);
        assert!(report.met, "2,700 users held at 3 replicas: {:?}", report.reasons);
        assert_eq!(report.reasons[0], "1 gateway replica: knee 1000 users; 1100 broke");
    }

    #[test]
    fn a_target_beyond_every_knee_is_not_met_and_says_by_how_much() {
        let report = CapacityReport::new(setting(Some(5000.0)), vec![searched(2, 1900, 2100)]);
        assert!(report.fit.is_none() && !report.met);
        assert_eq!(
            report.reasons.last().unwrap(),
            "the target of 5000 users is not met: at most 1900 at the replicas tried"
        );
    }
}
