//! What a closed-model run does: how many users, how fast they arrive and
//! leave, which journeys they walk and how long they think between steps.

use std::str::FromStr;
use std::time::Duration;

use q2o_common::config::parse_duration;
use rand::RngExt;
use rand_distr::{Distribution, Exp};

use crate::recorder::Protocol;

/// A user's way through the platform; each runs after the user logged in and
/// created a project of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Journey {
    /// List projects, open one, read its status.
    Browse,
    /// Create a project and read it back.
    CreateProject,
    /// Submit a task and follow it to the end: polling over REST, a
    /// `StreamProjectUpdates` stream over gRPC.
    SubmitTask,
    /// Full-text search (REST: the gateway has no gRPC search route).
    Search,
}

impl Journey {
    /// Every journey, in the order the CLI lists them.
    pub const ALL: [Journey; 4] = [Journey::Browse, Journey::CreateProject, Journey::SubmitTask, Journey::Search];

    /// The name used in mixes and goose scenario names.
    pub fn as_str(self) -> &'static str {
        match self {
            Journey::Browse => "browse",
            Journey::CreateProject => "create_project",
            Journey::SubmitTask => "submit_task",
            Journey::Search => "search",
        }
    }
}

impl FromStr for Journey {
    type Err = String;

    fn from_str(s: &str) -> Result<Journey, String> {
        Journey::ALL.into_iter().find(|j| j.as_str() == s).ok_or_else(|| {
            let names: Vec<_> = Journey::ALL.iter().map(|j| j.as_str()).collect();
            format!("unknown journey `{s}` (one of {})", names.join(", "))
        })
    }
}

/// Parses `NAME=WEIGHT,NAME=WEIGHT` (a name without `=N` weighs 1) for `flag`,
/// keeping only positive weights.
pub fn parse_weights<T: FromStr<Err = String>>(flag: &str, text: &str) -> Result<Vec<(T, u32)>, String> {
    let mut weights = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, weight) = part.split_once('=').unwrap_or((part, "1"));
        let weight: u32 = weight
            .trim()
            .parse()
            .map_err(|_| format!("{flag}: weight `{weight}` of `{name}` is not a whole number"))?;
        let item = name.trim().parse().map_err(|e| format!("{flag}: {e}"))?;
        if weight > 0 {
            weights.push((item, weight));
        }
    }
    if weights.is_empty() {
        return Err(format!("{flag}: nothing with a positive weight in `{text}`"));
    }
    Ok(weights)
}

/// Parses a protocol name for [`parse_weights`].
pub fn parse_protocol(s: &str) -> Result<Protocol, String> {
    match s {
        "rest" => Ok(Protocol::Rest),
        "grpc" => Ok(Protocol::Grpc),
        other => Err(format!("unknown protocol `{other}` (rest or grpc)")),
    }
}

/// A protocol that parses with [`FromStr`], for weight lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtocolName(pub Protocol);

impl FromStr for ProtocolName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        parse_protocol(s).map(ProtocolName)
    }
}

/// How long a user pauses between two steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ThinkTime {
    /// No pause.
    None,
    /// Always the same pause.
    Constant(Duration),
    /// Uniform between two bounds.
    Uniform(Duration, Duration),
    /// Exponential with this mean (people's pauses: memoryless, mostly short),
    /// cut at [`ThinkTime::EXP_CAP`] means so that one pause cannot outlast a run.
    Exponential(Duration),
}

impl ThinkTime {
    /// Longest exponential pause, in means (0.7 % of the mass lies beyond).
    pub const EXP_CAP: f64 = 5.0;

    /// One pause.
    pub fn sample(&self) -> Duration {
        match *self {
            ThinkTime::None => Duration::ZERO,
            ThinkTime::Constant(d) => d,
            ThinkTime::Uniform(low, high) => {
                Duration::from_secs_f64(rand::rng().random_range(low.as_secs_f64()..=high.as_secs_f64()))
            }
            ThinkTime::Exponential(mean) => {
                let mean = mean.as_secs_f64();
                let exp = Exp::new(1.0 / mean).expect("a positive mean is validated at parse time");
                Duration::from_secs_f64(exp.sample(&mut rand::rng()).min(mean * Self::EXP_CAP))
            }
        }
    }

    /// The mean pause.
    pub fn mean(&self) -> Duration {
        match *self {
            ThinkTime::None => Duration::ZERO,
            ThinkTime::Constant(d) | ThinkTime::Exponential(d) => d,
            ThinkTime::Uniform(low, high) => (low + high) / 2,
        }
    }
}

impl FromStr for ThinkTime {
    type Err = String;

    /// `exp:10s`, `uniform:5s..15s`, `const:2s`, or `none`.
    fn from_str(s: &str) -> Result<ThinkTime, String> {
        let duration = |text: &str| parse_duration(text).map_err(|e| format!("--think `{s}`: {e}"));
        if s == "none" {
            return Ok(ThinkTime::None);
        }
        let (kind, value) = s
            .split_once(':')
            .ok_or_else(|| format!("--think `{s}`: expected exp:MEAN, uniform:LOW..HIGH, const:D or none"))?;
        match kind {
            "exp" => {
                let mean = duration(value)?;
                if mean.is_zero() {
                    return Err(format!("--think `{s}`: the mean must be positive (or use none)"));
                }
                Ok(ThinkTime::Exponential(mean))
            }
            "const" => Ok(ThinkTime::Constant(duration(value)?)),
            "uniform" => {
                let (low, high) =
                    value.split_once("..").ok_or_else(|| format!("--think `{s}`: expected uniform:LOW..HIGH"))?;
                let (low, high) = (duration(low)?, duration(high)?);
                if low > high {
                    return Err(format!("--think `{s}`: LOW is above HIGH"));
                }
                Ok(ThinkTime::Uniform(low, high))
            }
            other => Err(format!("--think `{s}`: unknown distribution `{other}` (exp, uniform, const, none)")),
        }
    }
}

/// The shape of a closed-model run.
#[derive(Clone, Debug, PartialEq)]
pub struct UserPlan {
    /// Users at the top of the ramp.
    pub users: usize,
    /// Users started per second while ramping up.
    pub ramp_rate: f64,
    /// How long all users stay once started.
    pub hold: Duration,
    /// How long the users take to leave.
    pub ramp_down: Duration,
    /// Pause between steps.
    pub think: ThinkTime,
    /// Journeys and their weights: users are assigned to them in proportion.
    pub journeys: Vec<(Journey, u32)>,
    /// Protocols and their weights.
    pub protocols: Vec<(Protocol, u32)>,
}

impl UserPlan {
    /// Checks the numbers a user could get wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.users == 0 {
            return Err("--users must be at least 1".into());
        }
        if !(self.ramp_rate.is_finite() && self.ramp_rate > 0.0) {
            return Err(format!("--ramp-rate must be a positive number of users per second, got {}", self.ramp_rate));
        }
        if self.hold.is_zero() {
            return Err("--hold must be positive".into());
        }
        Ok(())
    }

    /// Time to start every user, whole seconds (goose's test plans count in seconds).
    pub fn ramp_up(&self) -> Duration {
        Duration::from_secs((self.users as f64 / self.ramp_rate).ceil().max(1.0) as u64)
    }

    /// Ramp-up, hold and ramp-down together.
    pub fn total(&self) -> Duration {
        self.ramp_up() + self.hold + self.ramp_down
    }

    /// The plan as goose's `--test-plan`: `users,time;users,time;0,time`.
    pub fn goose_test_plan(&self) -> String {
        let secs = |d: Duration| d.as_secs().max(1);
        format!(
            "{users},{}s;{users},{}s;0,{}s",
            secs(self.ramp_up()),
            secs(self.hold),
            secs(self.ramp_down),
            users = self.users
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn think_times_parse_and_bad_ones_name_the_flag() {
        assert_eq!("exp:10s".parse::<ThinkTime>().unwrap(), ThinkTime::Exponential(Duration::from_secs(10)));
        assert_eq!("none".parse::<ThinkTime>().unwrap(), ThinkTime::None);
        assert_eq!(
            "uniform:1s..3s".parse::<ThinkTime>().unwrap().mean(),
            Duration::from_secs(2),
            "uniform mean is the midpoint"
        );
        for bad in ["exp:0s", "uniform:3s..1s", "gauss:1s", "10"] {
            assert!(bad.parse::<ThinkTime>().unwrap_err().starts_with("--think"), "{bad}");
        }
    }

    #[test]
    fn exponential_think_times_have_their_mean_and_stay_under_the_cap() {
        let think = ThinkTime::Exponential(Duration::from_millis(100));
        let samples: Vec<f64> = (0..20_000).map(|_| think.sample().as_secs_f64()).collect();
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        // The cap at 5 means removes e^-5 * 5 ≈ 3 % of the mean.
        assert!((0.093..0.101).contains(&mean), "mean {mean}");
        assert!(samples.iter().all(|s| *s <= 0.5 + 1e-9));
    }

    #[test]
    fn weights_parse_and_the_plan_becomes_a_goose_test_plan() {
        let journeys: Vec<(Journey, u32)> = parse_weights("--journeys", "browse=5,submit_task=2,search").unwrap();
        assert_eq!(journeys, vec![(Journey::Browse, 5), (Journey::SubmitTask, 2), (Journey::Search, 1)]);
        assert!(parse_weights::<Journey>("--journeys", "dance=1").unwrap_err().contains("unknown journey `dance`"));
        assert!(parse_weights::<Journey>("--journeys", "browse=0").unwrap_err().contains("positive weight"));
        let plan = UserPlan {
            users: 250,
            ramp_rate: 100.0,
            hold: Duration::from_secs(30),
            ramp_down: Duration::from_secs(2),
            think: ThinkTime::None,
            journeys,
            protocols: vec![(Protocol::Rest, 1)],
        };
        assert_eq!(plan.goose_test_plan(), "250,3s;250,30s;0,2s");
        assert_eq!(plan.total(), Duration::from_secs(35));
        assert!(UserPlan { users: 0, ..plan.clone() }.validate().unwrap_err().contains("--users"));
        assert!(UserPlan { ramp_rate: 0.0, ..plan }.validate().unwrap_err().contains("--ramp-rate"));
    }
}
