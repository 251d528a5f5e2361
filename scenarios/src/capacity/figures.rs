//! What a capacity search found, as `capacity.json`: each rate tried at each
//! replica count, the knees, the Universal Scalability Law through them, and
//! the replicas that 5k, 50k and 100k users need.

use q2o_slo::sli::Criterion;
use serde::Serialize;

use crate::capacity::knee::Knee;
use crate::capacity::usl::{self, Fit};
use q2o_report::summary::Machine;

/// Share of the offered rate a step must answer to hold.
pub const MIN_ANSWERED: f64 = 0.95;
/// Share of planned starts that may be late (dropped) in a step that holds.
pub const MAX_LATE: f64 = 0.01;

/// One rate tried.
#[derive(Clone, Debug, Serialize)]
pub struct StepFigures {
    /// Requests per second offered.
    pub offered_rate: f64,
    /// Requests per second answered `ok`.
    pub ok_rate: f64,
    /// Mean latency, seconds (Little's law's R).
    pub mean_seconds: f64,
    /// 95th percentile latency, seconds.
    pub p95_seconds: f64,
    /// Every criterion held.
    pub held: bool,
    /// What broke, when something did.
    pub broke: Vec<String>,
}

/// The search at one replica count.
#[derive(Clone, Debug, Serialize)]
pub struct ReplicaSearch {
    /// Gateway replicas.
    pub gateways: usize,
    /// Agents processes.
    pub agent_processes: usize,
    /// The highest rate that held, and the lowest that broke.
    pub knee: Knee,
    /// Each step, in the order tried.
    pub steps: Vec<StepFigures>,
    /// Users the knee carries by Little's law, N = X (Z + R).
    pub users_at_knee: Option<f64>,
}

impl ReplicaSearch {
    /// The step at the knee: the highest rate that held.
    pub fn knee_step(&self) -> Option<&StepFigures> {
        self.knee.rate.and_then(|r| self.steps.iter().find(|s| s.offered_rate == r))
    }
}

/// Replicas for a number of users.
#[derive(Clone, Debug, Serialize)]
pub struct Needed {
    /// Concurrent users.
    pub users: f64,
    /// Requests per second they make (Little's law).
    pub rate: f64,
    /// Replicas by the fit through the knees (`None`: no replica count reaches it).
    pub replicas: Option<u64>,
    /// Replicas by the fit through the first rates that broke (the optimistic end).
    pub replicas_optimistic: Option<u64>,
}

/// `capacity.json`.
#[derive(Clone, Debug, Serialize)]
pub struct CapacityReport {
    /// 1.
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
    /// The open-model mix the steps offer (from the scenario's journeys and protocols).
    pub mix: String,
    /// Mean think time Z, seconds.
    pub think_seconds: f64,
    /// Seconds each rate was held.
    pub step_seconds: f64,
    /// The criteria each step is judged by.
    pub criteria: Vec<String>,
    /// Per replica count.
    pub searches: Vec<ReplicaSearch>,
    /// The USL through (replicas, knee rate), with (σ, κ, λ) standard errors when over-determined.
    pub fit: Option<Fit>,
    /// The USL through (replicas, first rate that broke): the other end of the knees' brackets.
    pub fit_optimistic: Option<Fit>,
    /// Where the fitted throughput peaks, replicas, and its rate.
    pub peak: Option<(f64, f64)>,
    /// Replicas for 5k, 50k and 100k users (and the target, if given).
    pub needed: Vec<Needed>,
    /// Users asked for with `--target-users`.
    pub target_users: Option<f64>,
    /// Whether the largest replica count carries the target (true without a target when a knee was found).
    pub met: bool,
    /// One line per finding.
    pub reasons: Vec<String>,
}

/// Users → requests per second, at the mean response time measured at the knees.
fn rate_for_users(users: f64, think: f64, response: f64) -> f64 {
    users / (think + response).max(1e-9)
}

/// What the report is made of, besides the searches.
#[derive(Clone, Debug)]
pub(crate) struct Setting<'a> {
    pub(crate) scenario: &'a str,
    pub(crate) run_id: &'a str,
    pub(crate) mix: String,
    pub(crate) think: f64,
    pub(crate) step_seconds: f64,
    pub(crate) criteria: &'a [Criterion],
    pub(crate) target_users: Option<f64>,
}

impl CapacityReport {
    pub(crate) fn new(setting: Setting<'_>, searches: Vec<ReplicaSearch>) -> CapacityReport {
        let Setting { scenario, run_id, mix, think, step_seconds, criteria, target_users } = setting;
        let knees: Vec<(f64, f64)> =
            searches.iter().filter_map(|s| s.knee.rate.map(|r| (s.gateways as f64, r))).collect();
        let broke: Vec<(f64, f64)> =
            searches.iter().filter_map(|s| s.knee.broke_at.map(|r| (s.gateways as f64, r))).collect();
        let fit = usl::fit(&knees);
        let fit_optimistic = usl::fit(&broke);
        let peak = fit.and_then(|f| f.model.peak_units().map(|n| (n, f.model.throughput(n))));
        // R at the knees (the response time users see at capacity), averaged.
        let at_knees: Vec<f64> = searches.iter().filter_map(ReplicaSearch::knee_step).map(|f| f.mean_seconds).collect();
        let response = if at_knees.is_empty() { 0.0 } else { at_knees.iter().sum::<f64>() / at_knees.len() as f64 };
        let mut wanted = vec![5_000.0, 50_000.0, 100_000.0];
        if let Some(target) = target_users.filter(|t| !wanted.contains(t)) {
            wanted.push(target);
        }
        let needed = wanted
            .into_iter()
            .map(|users| {
                let rate = rate_for_users(users, think, response);
                Needed {
                    users,
                    rate,
                    replicas: fit.and_then(|f| f.model.units_for(rate)),
                    replicas_optimistic: fit_optimistic.and_then(|f| f.model.units_for(rate)),
                }
            })
            .collect();
        let best = searches
            .iter()
            .filter_map(|s| s.users_at_knee)
            .fold(None, |m: Option<f64>, u| Some(m.map_or(u, |m| m.max(u))));
        let met = match (target_users, best) {
            (Some(target), Some(best)) => best >= target,
            (Some(_), None) => false,
            (None, best) => best.is_some(),
        };
        let mut reasons = Vec::new();
        for s in &searches {
            match (s.knee.rate, s.users_at_knee) {
                (Some(rate), Some(users)) => reasons.push(format!(
                    "{} gateway replica{}: knee {rate:.0} req/s = {users:.0} users (Z {think:.1} s)",
                    s.gateways,
                    if s.gateways == 1 { "" } else { "s" }
                )),
                _ => reasons.push(format!(
                    "{} gateway replica{}: no rate held, down to {:.0} req/s",
                    s.gateways,
                    if s.gateways == 1 { "" } else { "s" },
                    s.knee.steps.iter().map(|k| k.rate).fold(f64::INFINITY, f64::min)
                )),
            }
        }
        if let (Some(target), Some(best)) = (target_users, best)
            && best < target
        {
            reasons
                .push(format!("the target of {target:.0} users is not met: at most {best:.0} at the replicas tried"));
        }
        CapacityReport {
            schema_version: 1,
            scenario: scenario.to_owned(),
            run_id: run_id.to_owned(),
            started_at: String::new(),
            finished_at: String::new(),
            environment: Machine::here(String::new()),
            mix,
            think_seconds: think,
            step_seconds,
            criteria: criteria
                .iter()
                .map(|c| format!("{} {} {}", c.sli.as_str(), c.op.as_str(), c.sli.unit().format(c.target)))
                .chain([
                    format!("answered >= {:.0} % of the offered rate", MIN_ANSWERED * 100.0),
                    format!("late starts <= {:.0} %", MAX_LATE * 100.0),
                ])
                .collect(),
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
