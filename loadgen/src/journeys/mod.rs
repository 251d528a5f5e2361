//! The closed model: simulated users on goose, each logging in once and then
//! walking weighted journeys (browse, create a project, submit a task and
//! follow it, search) with think time between steps, over REST or gRPC.
//!
//! goose runs the users: their ramp and hold (its test plan), their
//! scenarios and transactions. Users share one HTTP/1.1 connection pool (the
//! loadgen's own client, see `rest`) and one pool of gRPC channels, so a user
//! costs memory, not an open file. Every step is recorded into the run's HDR
//! recorder, whose results (`results.json`, model `closed`) merge exactly
//! with other processes' like the open model's.

pub mod plan;
pub mod shared;

mod grpc;
mod rest;
mod work;

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use goose::config::GooseConfiguration;
use goose::config::{GooseDefault, GooseDefaultType};
use goose::goose::{GooseUser, Scenario, Transaction, TransactionResult};
use goose::{GooseAttack, GooseError};
use tokio::sync::watch;

use crate::connect::connect_channels;
use crate::http1::Pool;
use crate::journeys::plan::{Journey, UserPlan};
use crate::journeys::shared::{Gateway, Shared, step_keys};
use crate::metrics::ClientMetrics;
use crate::recorder::{Protocol, Recorder};
use crate::results::{RateSpan, ResultsError, RunResults, write_interval_log};

/// A closed-model run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum ClosedError {
    /// The plan or a URL is wrong.
    #[error("{0}")]
    Invalid(String),
    /// The gateway could not be reached before the run.
    #[error("{0}")]
    Unreachable(String),
    /// goose refused the attack.
    #[error("goose: {0}")]
    Goose(#[from] Box<GooseError>),
    /// Results could not be written.
    #[error(transparent)]
    Results(#[from] ResultsError),
}

/// REST connections one process holds at most: a REST user holds one while
/// its request is out, all of them at once if the system stalls, and a
/// process may hold at most 20,000 open files here (the rest are for its gRPC
/// channels, which every gRPC user of the process shares, and its metrics).
/// A user beyond them waits for a connection, and its step's time includes
/// the wait.
pub const REST_CONNECTIONS: usize = 16_000;

/// One closed-model run.
#[derive(Debug)]
pub struct ClosedRun {
    /// The gateway's REST base URL.
    pub rest_url: String,
    /// The gateway's gRPC URL, needed when the plan has gRPC users.
    pub grpc_url: Option<String>,
    /// API key users log in with.
    pub api_key: String,
    /// Users, ramp, journeys, think time.
    pub plan: UserPlan,
    /// HTTP/2 connections gRPC users share.
    pub grpc_channels: usize,
    /// Where results go (`results.json`, `latency.hlog`); `None` writes nothing.
    pub out: Option<PathBuf>,
    /// Client-side metrics, when served.
    pub metrics: Option<ClientMetrics>,
    /// Whether to draw a progress bar.
    pub progress: bool,
    /// Requests finishing this soon after the start stay out of the results' steps.
    pub warm_up: Duration,
    /// When the users start (`--start-at`); at once when `None`.
    pub start_at: Option<SystemTime>,
}

/// What goose saw, to set beside the recorder's numbers. goose keeps no
/// per-request metrics here (`NoMetrics`): the recorder has every request,
/// and goose's copy cost a clone and a channel send per request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GooseCounts {
    /// Most users running at once.
    pub max_users: usize,
    /// Whether the run was cut short (Ctrl-C or a signal).
    pub interrupted: bool,
}

type JourneyFuture<'r> = Pin<Box<dyn Future<Output = TransactionResult> + Send + 'r>>;

fn transaction(
    function: impl for<'r> Fn(&'r mut GooseUser) -> JourneyFuture<'r> + Send + Sync + 'static,
) -> Transaction {
    Transaction::new(Arc::new(function))
}

impl ClosedRun {
    /// Runs the plan to its end, or until `stop` resolves (partial results are
    /// kept), then writes the results.
    pub async fn run(self, stop: impl Future<Output = ()>) -> Result<(RunResults, GooseCounts), ClosedError> {
        self.plan.validate().map_err(|e| ClosedError::Invalid(e.to_string()))?;
        if self.warm_up >= self.plan.total() {
            let total = plan::format_duration(self.plan.total());
            return Err(ClosedError::Invalid(format!("--warm-up must be shorter than the run ({total})")));
        }
        let rest_url = self.rest_url.trim_end_matches('/').to_owned();
        check_reachable(&rest_url).await?;
        let protocols: Vec<Protocol> = self.plan.protocols.iter().map(|(p, _)| *p).collect();
        let channels = match (&self.grpc_url, protocols.contains(&Protocol::Grpc)) {
            (Some(url), true) => connect_channels("--grpc-url", "the gateway's gRPC", url, self.grpc_channels)
                .await
                .map_err(|e| ClosedError::Unreachable(e.to_string()))?,
            (None, true) => {
                return Err(ClosedError::Invalid("the protocol mix has grpc users; give --grpc-url".into()));
            }
            (_, false) => Vec::new(),
        };
        // Its path is not used: the journeys' paths are absolute, as they were under goose.
        let (rest, _) = Pool::new("--rest-url", &rest_url).map_err(ClosedError::Invalid)?;
        let rest = rest.at_most(REST_CONNECTIONS);
        let keys = step_keys(&protocols);
        let recorder = Arc::new(Recorder::new(&keys).with_warm_up(self.warm_up));
        let metrics = self.metrics.as_ref().map(|m| m.with_steps(&keys));
        let (stop_tx, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared::new(
            Arc::clone(&recorder),
            metrics.clone(),
            keys,
            Gateway { rest, grpc: channels },
            self.api_key.clone(),
            self.plan.think,
            stop_rx,
        ));
        let active = Arc::new(AtomicU64::new(0));
        let attack = self.attack(&rest_url, &shared, &active)?;

        crate::start_barrier(self.start_at).await;
        let started_at = SystemTime::now();
        let started = tokio::time::Instant::now();
        let total = self.plan.total();
        let bar = self.progress.then(|| crate::progress_bar(total));
        let ticker = {
            let (recorder, active, metrics, bar) = (Arc::clone(&recorder), Arc::clone(&active), metrics, bar.clone());
            tokio::spawn(async move {
                let mut every = tokio::time::interval_at(started + Duration::from_secs(1), Duration::from_secs(1));
                loop {
                    every.tick().await;
                    let elapsed = started.elapsed();
                    let users = active.load(Ordering::Relaxed);
                    recorder.users(elapsed - Duration::from_millis(1), users);
                    recorder.close_interval(elapsed);
                    if let Some(metrics) = &metrics {
                        metrics.set_active_users(users);
                    }
                    if let Some(bar) = &bar {
                        crate::show_progress(bar, &recorder, elapsed, &format!("{users} users, "));
                    }
                }
            })
        };
        // Ends the users' pauses when the plan is over or the run is stopped;
        // goose stops scheduling them (its own Ctrl-C handler, or the killswitch).
        let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopper = {
            let interrupted = Arc::clone(&interrupted);
            async move {
                tokio::pin!(stop);
                let mut poll = tokio::time::interval(Duration::from_millis(250));
                let planned_end = tokio::time::sleep_until(started + total);
                tokio::pin!(planned_end);
                loop {
                    tokio::select! {
                        () = &mut stop => {
                            interrupted.store(true, Ordering::Relaxed);
                            goose::trigger_killswitch("q2o-loadgen was asked to stop");
                            break;
                        }
                        () = &mut planned_end => break,
                        _ = poll.tick() => if goose::is_killswitch_triggered() {
                            interrupted.store(true, Ordering::Relaxed);
                            break;
                        },
                    }
                }
                let _ = stop_tx.send(true);
                // Keep the sender alive until the attack is over.
                std::future::pending::<()>().await;
            }
        };
        let goose = tokio::select! {
            result = attack.execute() => result.map_err(Box::new)?,
            () = stopper => unreachable!("the stopper never finishes"),
        };
        ticker.abort();
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        recorder.close_interval(started.elapsed());
        let snapshot = recorder.snapshot();
        let mut results =
            RunResults::from_snapshot(&snapshot, started.elapsed().as_secs_f64(), RateSpan { start: 0.0, end: 0.0 });
        results.model = "closed".into();
        results.users = Some(self.plan.users as u64);
        results.started_at = Some(crate::unix_seconds(started_at));
        results.warm_up_seconds = self.warm_up.as_secs_f64().min(results.duration_seconds);
        results.achieved_rate =
            results.steps.iter().map(|s| s.count).sum::<u64>() as f64 / results.measured_seconds().max(1e-9);
        if let Some(dir) = &self.out {
            results.write(dir)?;
            write_interval_log(dir, &snapshot, started_at)?;
        }
        let counts = GooseCounts { max_users: goose.maximum_users, interrupted: interrupted.load(Ordering::Relaxed) };
        Ok((results, counts))
    }

    /// goose's attack: one scenario per (protocol, journey), weighted by the
    /// product of their weights; every scenario starts with the user's login.
    fn attack(
        &self,
        rest_url: &str,
        shared: &Arc<Shared>,
        active: &Arc<AtomicU64>,
    ) -> Result<GooseAttack, ClosedError> {
        let mut attack = GooseAttack::initialize_with_config(GooseConfiguration::default()).map_err(Box::new)?;
        for (protocol, protocol_weight) in &self.plan.protocols {
            for (journey, journey_weight) in &self.plan.journeys {
                attack = attack.register_scenario(self.scenario(
                    *protocol,
                    *journey,
                    protocol_weight * journey_weight,
                    shared,
                    active,
                )?);
            }
        }
        // No request goes through goose's client (see `rest`), but without a
        // shared one goose would build a client for every user.
        let client = goose::client::GooseClientBuilder::new()
            .without_cookies()
            .timeout(crate::connect::REQUEST_TIMEOUT)
            .user_agent(concat!("q2o-loadgen/", env!("CARGO_PKG_VERSION")));
        let plan = self.plan.goose_test_plan();
        let attack = attack
            .set_client_builder_without_cookies(client)
            .map_err(Box::new)?
            .set_default(GooseDefault::Host, rest_url)
            .and_then(|a| a.set_default(GooseDefault::TestPlan, plan.as_str()))
            .and_then(|a| a.set_default(GooseDefault::NoMetrics, true))
            .and_then(|a| a.set_default(GooseDefault::NoTelnet, true))
            .and_then(|a| a.set_default(GooseDefault::Quiet, 1))
            .map_err(Box::new)?;
        Ok(*attack)
    }

    fn scenario(
        &self,
        protocol: Protocol,
        journey: Journey,
        weight: u32,
        shared: &Arc<Shared>,
        active: &Arc<AtomicU64>,
    ) -> Result<Scenario, ClosedError> {
        let start = {
            let (shared, active) = (Arc::clone(shared), Arc::clone(active));
            transaction(move |user| {
                active.fetch_add(1, Ordering::Relaxed);
                let shared = Arc::clone(&shared);
                Box::pin(async move {
                    match protocol {
                        Protocol::Rest => rest::start(user, &shared).await,
                        Protocol::Grpc => grpc::start(user, &shared).await,
                    }
                })
            })
        };
        // A user thinks inside this future, so its size is held per user all
        // run long. The requests in it are boxed (`rest::call`, `grpc::timed`,
        // the larger sub-journeys): heaptrack at 2,500 users per process put
        // it at 5.3 KiB a user with them inline; `future_sizes` below keeps
        // each journey's under 2 KiB (992 bytes over REST, 1,552 over gRPC).
        let walk = {
            let shared = Arc::clone(shared);
            transaction(move |user| {
                let shared = Arc::clone(&shared);
                Box::pin(async move {
                    match protocol {
                        Protocol::Rest => rest::journey(user, &shared, journey).await,
                        Protocol::Grpc => grpc::journey(user, &shared, journey).await,
                    }
                })
            })
        };
        let leave = {
            let active = Arc::clone(active);
            transaction(move |_user| {
                active.fetch_sub(1, Ordering::Relaxed);
                Box::pin(async { Ok(()) })
            })
        };
        Scenario::new(&format!("{}_{}", protocol.as_str(), journey.as_str()))
            .set_weight(weight as usize)
            .map_err(|e| ClosedError::Invalid(e.to_string()))
            .map(|s| {
                s.register_transaction(start.set_name("start").set_on_start())
                    .register_transaction(walk.set_name(journey.as_str()))
                    .register_transaction(leave.set_name("leave").set_on_stop())
            })
    }
}

/// One `GET /health` before the users start, so that a wrong URL is one clear
/// error and not thousands of failed requests.
async fn check_reachable(rest_url: &str) -> Result<(), ClosedError> {
    let url = format!("{rest_url}/health");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| ClosedError::Invalid(format!("HTTP client: {e}")))?;
    match client.get(&url).send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => {
            Err(ClosedError::Unreachable(format!("the gateway at {rest_url} answered {}", response.status())))
        }
        Err(err) if err.is_builder() => Err(ClosedError::Invalid(format!("--rest-url `{rest_url}` is not a URL"))),
        Err(_) => Err(ClosedError::Unreachable(format!("cannot reach the gateway at {rest_url}"))),
    }
}

#[cfg(test)]
mod future_sizes {
    use std::sync::Arc;

    use goose::config::GooseConfiguration;
    use goose::prelude::GooseUser;
    use tokio::sync::watch;

    use super::plan::ThinkTime;
    use super::shared::{Gateway, Shared, step_keys};
    use super::{Journey, grpc, rest};
    use crate::http1::Pool;
    use crate::recorder::{Protocol, Recorder};

    /// A user spends its think times inside its journey's future, so that
    /// future's size is memory held per user for the whole run. With its
    /// requests inline it was 2,776 bytes over REST and 5,264 over gRPC.
    const BUDGET: usize = 2048;

    #[tokio::test]
    async fn a_journey_future_holds_no_request_inline() {
        let protocols = [Protocol::Rest, Protocol::Grpc];
        let channel = crate::grpc_channel::GrpcChannel::lazy("http://127.0.0.1:9").expect("a URL");
        let (_stop, stop) = watch::channel(false);
        let shared = Shared::new(
            Arc::new(Recorder::new(&step_keys(&protocols))),
            None,
            step_keys(&protocols),
            Gateway { rest: Pool::new("--rest-url", "http://127.0.0.1:9").expect("a URL").0, grpc: vec![channel] },
            "key".into(),
            ThinkTime::None,
            stop,
        );
        let url = "http://127.0.0.1:9".parse().expect("a URL");
        let mut user = GooseUser::single(url, &GooseConfiguration::default()).expect("a user");
        for journey in [Journey::Browse, Journey::SubmitTask, Journey::Search, Journey::CreateProject] {
            let rest = std::mem::size_of_val(&rest::journey(&mut user, &shared, journey));
            assert!(rest <= BUDGET, "{journey:?} over REST: {rest} bytes");
            let grpc = std::mem::size_of_val(&grpc::journey(&mut user, &shared, journey));
            assert!(grpc <= BUDGET, "{journey:?} over gRPC: {grpc} bytes");
        }
    }
}
