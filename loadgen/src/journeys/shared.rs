//! What every simulated user of one run shares: the recorder, the client-side
//! metrics, the gRPC channel pool and the signal that the run is over.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::grpc_channel::GrpcChannel;
use goose::goose::GooseUser;
use rand::RngExt;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::http1::Pool;
use crate::journeys::plan::ThinkTime;
use crate::metrics::ClientMetrics;
use crate::outcome::Outcome;
use crate::recorder::{Protocol, Recorder, StepKey};
use crate::step::Step;

/// The steps a closed-model user takes over `protocol`: every journey's but
/// the open model's own (`review`, `get`), and over gRPC only those with a
/// gRPC route (users poll and search over REST). `await_task` is the time
/// from submitting a task until the user sees it finished (polls or stream).
fn closed_steps(protocol: Protocol) -> impl Iterator<Item = Step> {
    Step::ALL
        .into_iter()
        .filter(|s| !matches!(s, Step::Review | Step::Get))
        .filter(move |s| protocol == Protocol::Rest || s.has_grpc())
}

/// The step keys of a run over `protocols`, in recorder order.
pub fn step_keys(protocols: &[Protocol]) -> Vec<StepKey> {
    let mut keys: Vec<StepKey> = Vec::new();
    if protocols.contains(&Protocol::Rest) {
        keys.extend(closed_steps(Protocol::Rest).map(|s| (Protocol::Rest, s)));
    } else {
        // Search goes over REST for every user.
        keys.push((Protocol::Rest, Step::Search));
    }
    if protocols.contains(&Protocol::Grpc) {
        keys.extend(closed_steps(Protocol::Grpc).map(|s| (Protocol::Grpc, s)));
    }
    keys
}

/// How long one task may take to finish before the user gives up on it.
pub const TASK_DEADLINE: Duration = Duration::from_secs(30);

/// How long a user whose run is over idles per journey goose still gives it.
pub const STOPPED_IDLE: Duration = Duration::from_millis(100);

/// Longest a shed request's `Retry-After` or pushback makes a user wait: a
/// server asking for minutes is not followed past the point where the user
/// would have given up anyway.
pub const LONGEST_BACKOFF: Duration = Duration::from_secs(10);

/// What a user shed with `asked` waits: what it was told, and up to half as
/// much again. `Retry-After` counts whole seconds, so without the spread every
/// user shed in one second comes back in the same instant, a wave the server
/// sheds again (the thundering herd that jittered back-off is for). The
/// server's figure stays the floor: a client that honours it never returns
/// sooner. `unit` is a uniform draw from [0, 1).
pub(crate) fn backoff_with_jitter(asked: Duration, unit: f64) -> Duration {
    let asked = asked.min(LONGEST_BACKOFF);
    asked + asked.mul_f64(unit.clamp(0.0, 1.0) / 2.0)
}

/// How many retries of shed requests the users may make: a tenth of their
/// first attempts, in the manner of Finagle's retry budget and gRPC's retry
/// throttling, so that users do not send a shedding system its own load
/// again. Kept in tenths of a retry: each first attempt deposits one, a retry
/// costs ten, and at most [`RetryBudget::MOST`] retries are saved up.
#[derive(Debug, Default)]
pub(crate) struct RetryBudget {
    tenths: AtomicI64,
}

impl RetryBudget {
    /// Retries saved up at most, in tenths.
    const MOST: i64 = 1000;

    /// A first attempt was made.
    pub(crate) fn deposit(&self) {
        let _ = self.tenths.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| (t < Self::MOST).then_some(t + 1));
    }

    /// Takes one retry from the budget, if it holds one.
    pub(crate) fn withdraw(&self) -> bool {
        self.tenths.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| (t >= 10).then_some(t - 10)).is_ok()
    }
}

/// How the users reach the gateway.
#[derive(Debug)]
pub(crate) struct Gateway {
    /// The REST API: one pool of connections for every REST request.
    pub(crate) rest: Pool,
    /// The gRPC API: channels the users take in turn.
    pub(crate) grpc: Vec<GrpcChannel>,
}

/// State shared by all users of a run.
#[derive(Debug)]
pub struct Shared {
    pub(crate) recorder: Arc<Recorder>,
    pub(crate) metrics: Option<ClientMetrics>,
    keys: Vec<StepKey>,
    pub(crate) gateway: Gateway,
    next_channel: AtomicUsize,
    pub(crate) api_key: String,
    pub(crate) think: ThinkTime,
    started: Instant,
    stop: watch::Receiver<bool>,
    pub(crate) retries: RetryBudget,
}

impl Shared {
    pub(crate) fn new(
        recorder: Arc<Recorder>,
        metrics: Option<ClientMetrics>,
        keys: Vec<StepKey>,
        gateway: Gateway,
        api_key: String,
        think: ThinkTime,
        stop: watch::Receiver<bool>,
    ) -> Shared {
        Shared {
            recorder,
            metrics,
            keys,
            gateway,
            next_channel: AtomicUsize::new(0),
            api_key,
            think,
            started: Instant::now(),
            stop,
            retries: RetryBudget::default(),
        }
    }

    /// The next gRPC channel, round robin: streams spread over the pool's connections.
    pub(crate) fn channel(&self) -> GrpcChannel {
        let channels = &self.gateway.grpc;
        let i = self.next_channel.fetch_add(1, Ordering::Relaxed) % channels.len();
        channels[i].clone()
    }

    /// Records one finished step into the HDR recorder and the client metrics.
    pub(crate) fn record(&self, protocol: Protocol, step: Step, outcome: Outcome, latency: Duration) {
        let slot = self
            .keys
            .iter()
            .position(|(p, s)| *p == protocol && *s == step)
            .expect("every step a journey takes is in step_keys");
        self.recorder.record(slot, outcome, latency, self.started.elapsed());
        if let Some(metrics) = &self.metrics {
            metrics.record(slot, outcome, latency);
        }
    }

    /// Whether the run has ended (its planned end, or Ctrl-C).
    pub(crate) fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sleeps for `pause`, or less if the run ends first; says whether the run goes on.
    pub(crate) async fn pause(&self, pause: Duration) -> bool {
        if pause.is_zero() {
            return !self.stopping();
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => !self.stopping(),
            () = self.stopped() => false,
        }
    }

    /// Resolves when the run ends.
    pub(crate) async fn stopped(&self) {
        let mut stop = self.stop.clone();
        // An error means the sender is gone: the run is over either way.
        let _ = stop.wait_for(|stopped| *stopped).await;
    }

    /// Waits as a shed answer asked (at most [`LONGEST_BACKOFF`]), and a
    /// little more ([`backoff_with_jitter`]); says whether the run goes on.
    pub(crate) async fn back_off(&self, asked: Duration) -> bool {
        let wait = backoff_with_jitter(asked, rand::rng().random());
        self.pause(wait).await
    }

    /// A user's think time between two steps.
    pub(crate) async fn think(&self) -> bool {
        self.pause(self.think.sample()).await
    }
}

/// What one user keeps between steps: its session and its own project.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub(crate) token: String,
    pub(crate) project: String,
}

/// The user's session, if its login (at start) worked.
pub(crate) fn session(user: &GooseUser) -> Option<(String, String)> {
    user.get_session_data::<Session>().map(|s| (s.token.clone(), s.project.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_budget_allows_one_retry_per_ten_attempts_and_saves_up_a_hundred() {
        let budget = RetryBudget::default();
        assert!(!budget.withdraw(), "nothing saved at the start");
        for _ in 0..25 {
            budget.deposit();
        }
        assert!(budget.withdraw() && budget.withdraw());
        assert!(!budget.withdraw(), "25 attempts pay for two retries");
        for _ in 0..100_000 {
            budget.deposit();
        }
        assert_eq!((0..1000).filter(|_| budget.withdraw()).count(), 100);
    }

    #[test]
    fn a_shed_user_waits_what_it_was_told_and_at_most_half_as_much_again() {
        let second = Duration::from_secs(1);
        assert_eq!(backoff_with_jitter(second, 0.0), second, "never sooner than told");
        assert_eq!(backoff_with_jitter(second, 0.5), Duration::from_millis(1250));
        assert!(backoff_with_jitter(second, 0.999_999) < Duration::from_millis(1500));
        assert_eq!(backoff_with_jitter(Duration::from_secs(600), 0.0), LONGEST_BACKOFF, "capped");
        // Users shed in the same instant come back spread over the half second.
        let waits: Vec<Duration> = (0..1000).map(|_| backoff_with_jitter(second, rand::rng().random())).collect();
        let early = waits.iter().filter(|w| **w < Duration::from_millis(1250)).count();
        assert!((350..650).contains(&early), "{early} of 1000 in the first half of the spread");
    }

    #[test]
    fn step_keys_cover_rest_search_for_grpc_only_runs() {
        let keys = step_keys(&[Protocol::Grpc]);
        assert!(keys.contains(&(Protocol::Rest, Step::Search)));
        assert!(keys.contains(&(Protocol::Grpc, Step::AwaitTask)));
        assert!(!keys.contains(&(Protocol::Rest, Step::PollTask)), "no REST polling in a gRPC run");
    }
}
