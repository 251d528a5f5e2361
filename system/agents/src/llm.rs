//! The simulated LLM.
//!
//! **This is a simulator, not a model.** A call sleeps for a latency drawn from a
//! log-normal distribution fitted to the profile's median and p99, and reports
//! the tokens and cost a real call of that size would. It exists so that the
//! stack's load, latency and cost metrics behave like production without an LLM
//! provider (none can be reached from a benchmark machine, and a real one would
//! make runs costly and unrepeatable).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use prometheus::{CounterVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use q2o_common::metrics::{TASK_BUCKETS, names, register};
use rand::RngExt;
use rand_distr::{Distribution, LogNormal, Normal};

use crate::config::ModelProfile;

/// z-score of the 99th percentile of a standard normal distribution.
const Z_P99: f64 = 2.326_347_874;

/// What one simulated call cost.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Completion {
    /// Tokens sent.
    pub prompt_tokens: u64,
    /// Tokens received.
    pub completion_tokens: u64,
    /// What the call would have cost.
    pub cost_dollars: f64,
    /// How long it took.
    pub latency: Duration,
}

#[derive(Debug)]
struct Model {
    profile: ModelProfile,
    latency: LogNormal<f64>,
    completion: Normal<f64>,
}

/// The simulated models of this process and their metrics.
#[derive(Debug)]
pub struct LlmSimulator {
    models: HashMap<String, Model>,
    tokens: IntCounterVec,
    cost: CounterVec,
    duration: HistogramVec,
}

impl LlmSimulator {
    /// Simulators for `profiles`, exporting `q2o_llm_*` into `registry`.
    pub fn new(profiles: &[ModelProfile], registry: &Registry) -> Self {
        let models = profiles
            .iter()
            .map(|profile| {
                let median = profile.latency_median.as_secs_f64().max(1e-6);
                let p99 = profile.latency_p99.as_secs_f64().max(median);
                let sigma = (p99 / median).ln() / Z_P99;
                let mean = profile.completion_tokens_mean as f64;
                let model = Model {
                    profile: profile.clone(),
                    latency: LogNormal::new(median.ln(), sigma).expect("sigma is finite and non-negative"),
                    completion: Normal::new(mean, mean / 4.0).expect("spread is finite and non-negative"),
                };
                (profile.name.clone(), model)
            })
            .collect();
        LlmSimulator {
            models,
            tokens: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        names::LLM_TOKENS_USED_TOTAL,
                        "Simulated LLM tokens, by model and kind (prompt, completion).",
                    ),
                    &["model", "kind"],
                )
                .expect("valid metric"),
            ),
            cost: register(
                registry,
                CounterVec::new(
                    Opts::new(names::LLM_COST_DOLLARS_TOTAL, "Simulated LLM spend in US dollars."),
                    &["model"],
                )
                .expect("valid metric"),
            ),
            duration: register(
                registry,
                HistogramVec::new(
                    HistogramOpts::new(names::LLM_REQUEST_DURATION_SECONDS, "Simulated LLM call latency.")
                        .buckets(TASK_BUCKETS.to_vec()),
                    &["model"],
                )
                .expect("valid metric"),
            ),
        }
    }

    /// Simulates one call of `model` with `prompt`.
    ///
    /// # Panics
    /// If `model` is not configured; configuration validation rules that out.
    pub async fn complete(&self, model: &str, prompt: &str) -> Completion {
        let m = self.models.get(model).expect("validated: pools name configured models");
        let (latency, completion_tokens) = {
            let mut rng = rand::rng();
            let latency = Duration::from_secs_f64(m.latency.sample(&mut rng).min(120.0));
            let completion = m.completion.sample(&mut rng).round().max(1.0) as u64;
            // A little jitter so that identical prompts do not cost identically.
            (latency, completion + rng.random_range(0..8))
        };
        let started = Instant::now();
        tokio::time::sleep(latency).await;
        // Roughly four characters per token, as for English text.
        let prompt_tokens = m.profile.prompt_overhead_tokens + prompt.len().div_ceil(4) as u64;
        let cost_dollars = prompt_tokens as f64 / 1000.0 * m.profile.usd_per_1k_prompt
            + completion_tokens as f64 / 1000.0 * m.profile.usd_per_1k_completion;
        self.tokens.with_label_values(&[model, "prompt"]).inc_by(prompt_tokens);
        self.tokens.with_label_values(&[model, "completion"]).inc_by(completion_tokens);
        self.cost.with_label_values(&[model]).inc_by(cost_dollars);
        let latency = started.elapsed();
        self.duration.with_label_values(&[model]).observe(latency.as_secs_f64());
        Completion { prompt_tokens, completion_tokens, cost_dollars, latency }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(median_ms: u64, p99_ms: u64) -> ModelProfile {
        ModelProfile {
            name: "m".into(),
            latency_median: Duration::from_millis(median_ms),
            latency_p99: Duration::from_millis(p99_ms),
            prompt_overhead_tokens: 100,
            completion_tokens_mean: 200,
            usd_per_1k_prompt: 0.01,
            usd_per_1k_completion: 0.02,
        }
    }

    #[test]
    fn latency_distribution_matches_the_profile() {
        let sim = LlmSimulator::new(&[profile(100, 400)], &Registry::new());
        let model = &sim.models["m"];
        let mut rng = rand::rng();
        let mut samples: Vec<f64> = (0..20_000).map(|_| model.latency.sample(&mut rng)).collect();
        samples.sort_by(f64::total_cmp);
        let median = samples[samples.len() / 2];
        let p99 = samples[samples.len() * 99 / 100];
        assert!((median - 0.100).abs() < 0.008, "median {median}");
        assert!((p99 - 0.400).abs() < 0.06, "p99 {p99}");
    }

    #[tokio::test]
    async fn a_call_counts_tokens_and_cost() {
        let registry = Registry::new();
        let sim = LlmSimulator::new(&[profile(1, 2)], &registry);
        let c = sim.complete("m", &"x".repeat(400)).await;
        assert_eq!(c.prompt_tokens, 200);
        let expected = 0.2 * 0.01 + c.completion_tokens as f64 / 1000.0 * 0.02;
        assert!((c.cost_dollars - expected).abs() < 1e-12);
        assert_eq!(sim.tokens.with_label_values(&["m", "prompt"]).get(), 200);
    }
}
