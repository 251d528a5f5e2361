//! The comparison file (`scenarios/rest-vs-grpc.toml`): the topology, and
//! the rounds' rate, length and operations. A scenario file has `[load]`; a
//! comparison file has `[compare]` instead, and `q2o-bench run` takes either
//! (`ScenarioFile` tells them apart by parsing).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use q2o_common::config::{duration, parse_toml};
use q2o_env::topology::Topology;
use q2o_loadgen::recorder::Protocol;
use q2o_loadgen::step::{Call, Mix, Step};
use q2o_loadgen::weights::Weights;
use serde::{Deserialize, Deserializer};

use crate::scenario::{FlagError, ScenarioError, located};

/// One comparison file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComparisonFile {
    /// Short name: the report folder.
    pub name: String,
    /// One line for the report.
    pub description: String,
    /// The rounds.
    pub compare: Rounds,
    /// What runs (local processes).
    pub topology: Topology,
}

/// How the protocols are driven.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rounds {
    /// Requests per second offered in every round, to either protocol.
    pub rate: f64,
    /// Rounds per protocol.
    pub rounds: usize,
    /// Length of one round.
    #[serde(with = "duration")]
    pub round: Duration,
    /// One unmeasured round per protocol first.
    #[serde(with = "duration", default = "default_warmup")]
    pub warmup: Duration,
    /// Operation weights: the gateway's steps and `review` (the inter-agent call).
    #[serde(deserialize_with = "operations")]
    pub operations: BTreeMap<Step, u32>,
    /// Rate offered in the saturation rounds: well above what either protocol carries.
    pub saturation_rate: f64,
    /// Length of each saturation round.
    #[serde(with = "duration")]
    pub saturation: Duration,
    /// Most requests in flight in the saturation rounds (the offered
    /// concurrency; starts beyond it are dropped and counted).
    #[serde(default = "default_in_flight")]
    pub saturation_in_flight: u64,
    /// Loadgen processes sharing each round's rate.
    #[serde(default = "one")]
    pub loadgen_processes: u32,
    /// Largest share of failed requests, or of late (dropped) starts, in a
    /// measured round for the comparison to count.
    #[serde(default = "default_max_error_ratio")]
    pub max_error_ratio: f64,
}

fn default_warmup() -> Duration {
    Duration::from_secs(3)
}
fn default_in_flight() -> u64 {
    256
}
fn one() -> u32 {
    1
}
fn default_max_error_ratio() -> f64 {
    0.01
}

/// Operations that exist over both protocols; a bad one names itself as `compare.operations.<name>`.
fn operations<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<Step, u32>, D::Error> {
    let raw = BTreeMap::<String, u32>::deserialize(deserializer)?;
    let open: Vec<&str> = Step::OPEN.iter().map(|s| s.as_label()).collect();
    raw.into_iter()
        .map(|(name, weight)| {
            let bad = |why: String| serde::de::Error::custom(format!("`compare.operations.{name}`: {why}"));
            let step: Step = name
                .parse()
                .ok()
                .filter(|s: &Step| s.is_open())
                .ok_or_else(|| bad(format!("unknown operation (one of {})", open.join(", "))))?;
            if !step.has_grpc() {
                return Err(bad(format!("{step} has no gRPC route on the gateway, so it cannot be compared")));
            }
            Ok((step, weight))
        })
        .collect()
}

impl ComparisonFile {
    /// Parses and checks the text of the comparison file `path`.
    pub fn parse(path: &Path, text: &str) -> Result<ComparisonFile, ScenarioError> {
        let invalid = |message: String| ScenarioError::Invalid { path: path.to_owned(), message };
        let comparison: ComparisonFile = parse_toml(text).map_err(invalid)?;
        comparison.check().map_err(|(key, reason)| invalid(located(text, &key, &reason)))?;
        Ok(comparison)
    }

    fn check(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, reason: &str| Err((key.to_owned(), reason.to_owned()));
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return bad("name", "use letters, digits, - and _ (it names the report folder)");
        }
        self.topology.check()?;
        if self.topology.monolith {
            return bad("topology.monolith", "the monolith serves REST only: nothing to compare");
        }
        let c = &self.compare;
        for (key, rate) in [("compare.rate", c.rate), ("compare.saturation_rate", c.saturation_rate)] {
            if !(rate.is_finite() && rate > 0.0) {
                return bad(key, "must be a positive number of requests per second");
            }
        }
        if c.saturation_rate <= c.rate {
            return bad("compare.saturation_rate", "must be above compare.rate (it looks for the most either carries)");
        }
        if c.rounds == 0 {
            return bad("compare.rounds", "must be at least 1");
        }
        if c.round.is_zero() || c.saturation.is_zero() {
            return bad("compare.round", "rounds must last more than zero seconds");
        }
        if c.saturation_in_flight == 0 || c.loadgen_processes == 0 {
            return bad("compare.saturation_in_flight", "must be at least 1 (and loadgen_processes too)");
        }
        if !(0.0..1.0).contains(&c.max_error_ratio) {
            return bad("compare.max_error_ratio", "must be in [0, 1)");
        }
        if !c.operations.values().any(|w| *w > 0) {
            return bad("compare.operations", "needs an operation with a positive weight");
        }
        Ok(())
    }
}

impl Rounds {
    /// The loadgen's mix for `protocol`: every operation over it.
    pub fn mix(&self, protocol: Protocol) -> Mix {
        Weights(self.operations.iter().filter(|(_, w)| **w > 0).map(|(op, w)| (Call::new(protocol, *op), *w)).collect())
    }

    /// Multiplies every length by `scale` (a quick run keeps the rounds' count and rates).
    pub fn scale_time(&mut self, scale: f64) -> Result<(), FlagError> {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(FlagError { flag: "--scale", reason: format!("must be a positive number, got {scale}") });
        }
        let scaled = |d: Duration| Duration::from_secs_f64((d.as_secs_f64() * scale).max(1.0));
        self.round = scaled(self.round);
        self.warmup = scaled(self.warmup);
        self.saturation = scaled(self.saturation);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ComparisonFile, String> {
        ComparisonFile::parse(Path::new("c.toml"), text).map_err(|e| e.to_string())
    }

    fn load(path: &Path) -> ComparisonFile {
        match crate::scenario_file::ScenarioFile::load(path).unwrap() {
            crate::scenario_file::ScenarioFile::Comparison(c) => c,
            crate::scenario_file::ScenarioFile::Gate(_) => panic!("{} is a comparison", path.display()),
        }
    }

    const GOOD: &str = r#"
name = "rvg"
description = "x"
[compare]
rate = 100
rounds = 2
round = "5s"
operations = { list_projects = 3, review = 1 }
saturation_rate = 5000
saturation = "5s"
[topology]
redis = true
"#;

    #[test]
    fn the_committed_file_and_a_small_one_load_and_mix_per_protocol() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.compare.mix(Protocol::Grpc).to_string(), "grpc:list_projects=3,grpc:review=1");
        assert_eq!(c.compare.warmup, Duration::from_secs(3));
        let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("rest-vs-grpc.toml");
        let c = load(&committed);
        assert!(c.compare.operations.contains_key(&Step::Review), "the inter-agent call is compared");
        let phase2 = committed.with_file_name("phase2.toml");
        assert!(matches!(
            crate::scenario_file::ScenarioFile::load(&phase2).unwrap(),
            crate::scenario_file::ScenarioFile::Gate(_)
        ));
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            ("rate = 100", "rate = 0", "compare.rate"),
            ("saturation_rate = 5000", "saturation_rate = 50", "compare.saturation_rate"),
            ("list_projects = 3", "search = 3", "compare.operations.search"),
            ("list_projects = 3", "dance = 3", "compare.operations.dance"),
            ("rounds = 2", "rounds = 0", "compare.rounds"),
            ("redis = true", "redis = true\nmonolith = true", "topology.monolith"),
        ];
        for (from, to, key) in cases {
            let err = parse(&GOOD.replace(from, to)).unwrap_err();
            assert!(err.contains(&format!("`{key}`")), "{to}: {err}");
        }
        assert!(parse(&GOOD.replace("rounds = 2", "rounds = 2\nspeed = 1")).unwrap_err().contains("speed"));
    }
}
