//! The loadgen's command line as types: `q2o-loadgen users` is a
//! [`UsersCommand`], `q2o-loadgen run` a [`RunCommand`]. The binary parses
//! them with clap; the runner (and `--processes`) builds them and renders them
//! with `to_args`, so that a command line is written in one place and reads
//! back as the same command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use q2o_common::config::parse_duration;

use crate::journeys::plan::{Journey, PlanError, Surge, ThinkTime, UserPlan, format_duration};
use crate::recorder::Protocol;
use crate::step::Mix;
use crate::weights::Weights;

/// Flags both models take.
#[derive(Clone, Debug, PartialEq, clap::Args)]
pub struct CommonArgs {
    /// gRPC channels (HTTP/2 connections) the requests share.
    #[arg(long, default_value_t = 4)]
    pub grpc_channels: usize,
    /// Directory for results.json and latency.hlog.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Serve client-side metrics on this address (port 0 picks one).
    #[arg(long)]
    pub metrics_addr: Option<SocketAddr>,
    /// Split the run over this many processes (each with 1/N of the rate or the
    /// users) and merge their results exactly into --out. Needs --out.
    #[arg(long, default_value_t = 1)]
    pub processes: u32,
    /// This process is one of this many shards of one run (the pods of a
    /// Kubernetes Indexed Job): it runs its share, 1/N of the users or the rate.
    #[arg(long, default_value_t = 1)]
    pub shards: u32,
    /// Which shard this is, from 0 (a Job's pods have it in JOB_COMPLETION_INDEX).
    #[arg(long, env = "JOB_COMPLETION_INDEX", default_value_t = 0)]
    pub shard_index: u32,
    /// Start the load at this wall-clock time (RFC 3339, e.g.
    /// 2026-12-01T10:00:00Z), so that every shard's ramp lines up.
    #[arg(long, value_parser = parse_start_at)]
    pub start_at: Option<StartAt>,
    /// Once the run is over, serve results.json and latency.hlog under
    /// /results/ on --metrics-addr until both were fetched, for at most this long.
    #[arg(long, value_parser = parse_duration)]
    pub serve_results: Option<Duration>,
}

impl Default for CommonArgs {
    fn default() -> CommonArgs {
        CommonArgs {
            grpc_channels: 4,
            out: None,
            metrics_addr: None,
            processes: 1,
            shards: 1,
            shard_index: 0,
            start_at: None,
            serve_results: None,
        }
    }
}

/// A wall-clock instant, written in RFC 3339.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartAt(pub time::OffsetDateTime);

impl StartAt {
    /// The instant as the system clock counts it.
    pub fn system_time(self) -> std::time::SystemTime {
        self.0.into()
    }
}

impl std::fmt::Display for StartAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.0.format(&time::format_description::well_known::Rfc3339).map_err(|_| std::fmt::Error)?;
        f.write_str(&text)
    }
}

fn parse_start_at(text: &str) -> Result<StartAt, String> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(StartAt)
        .map_err(|e| format!("`{text}` is not an RFC 3339 time such as 2026-12-01T10:00:00Z ({e})"))
}

/// Share `index` of `count` of `total` things, the remainder spread over the first shares.
pub fn share_of(total: usize, index: usize, count: usize) -> usize {
    total / count + usize::from(index < total % count)
}

impl CommonArgs {
    /// The flags of child `i` of a `--processes` run whose results go to
    /// `out/part-<i>`: one process each, its metrics (if any) on a port of its own.
    pub fn child(&self, out: &std::path::Path, i: usize) -> CommonArgs {
        CommonArgs {
            processes: 1,
            out: Some(crate::fanout::part_dir(out, i)),
            metrics_addr: self.metrics_addr.map(|_| SocketAddr::from(([127, 0, 0, 1], 0))),
            ..self.clone()
        }
    }

    fn push_args(&self, args: &mut Vec<String>) {
        args.extend(["--grpc-channels".into(), self.grpc_channels.to_string()]);
        if let Some(out) = &self.out {
            args.extend(["--out".into(), out.display().to_string()]);
        }
        if let Some(addr) = self.metrics_addr {
            args.extend(["--metrics-addr".into(), addr.to_string()]);
        }
        args.extend(["--processes".into(), self.processes.to_string()]);
        if self.shards != 1 {
            args.extend(["--shards".into(), self.shards.to_string()]);
        }
        // Left out at 0, so that a Job's pods read theirs from JOB_COMPLETION_INDEX.
        if self.shard_index != 0 {
            args.extend(["--shard-index".into(), self.shard_index.to_string()]);
        }
        if let Some(at) = self.start_at {
            args.extend(["--start-at".into(), at.to_string()]);
        }
        if let Some(linger) = self.serve_results {
            args.extend(["--serve-results".into(), format_duration(linger)]);
        }
    }

    /// The shard this process is, checked: `(index, count)`.
    pub fn shard(&self) -> Result<(usize, usize), String> {
        match self.shards {
            0 => return Err("--shards must be at least 1".into()),
            // One shard is the whole run, whatever the environment says.
            1 => return Ok((0, 1)),
            _ => {}
        }
        if self.shard_index >= self.shards {
            return Err(format!(
                "--shard-index (JOB_COMPLETION_INDEX) {} is not below --shards {}",
                self.shard_index, self.shards
            ));
        }
        Ok((self.shard_index as usize, self.shards as usize))
    }
}

/// `q2o-loadgen users`: goose users log in, then walk journeys with think time.
#[derive(Clone, Debug, PartialEq, clap::Args)]
pub struct UsersCommand {
    /// Gateway REST base URL (e.g. http://127.0.0.1:8080).
    #[arg(long)]
    pub rest_url: String,
    /// Gateway gRPC URL (needed when --protocols has grpc).
    #[arg(long)]
    pub grpc_url: Option<String>,
    /// API key users log in with.
    #[arg(long, default_value = "demo-key-acme", env = "Q2O_LOADGEN_API_KEY")]
    pub api_key: String,
    /// Users at the top of the ramp.
    #[arg(long)]
    pub users: usize,
    /// Users started per second while ramping up.
    #[arg(long, default_value_t = 100.0, allow_negative_numbers = true)]
    pub ramp_rate: f64,
    /// How long all users stay (e.g. 60s, 5m).
    #[arg(long, value_parser = parse_duration)]
    pub hold: Duration,
    /// How long users take to leave at the end.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub ramp_down: Duration,
    /// Pause between steps: exp:MEAN, uniform:LOW..HIGH, const:D or none.
    #[arg(long, default_value = "exp:10s")]
    pub think: ThinkTime,
    /// Journeys and weights (browse, create_project, submit_task, search).
    #[arg(long, default_value = "browse=5,submit_task=3,search=2,create_project=1")]
    pub journeys: Weights<Journey>,
    /// Protocols and weights, e.g. rest=1,grpc=1.
    #[arg(long, default_value = "rest=1")]
    pub protocols: Weights<Protocol>,
    /// A surge during the hold: this many users in all ...
    #[arg(long, requires_all = ["surge_at", "surge_lasts"])]
    pub surge_users: Option<usize>,
    /// ... starting this long after the hold started ...
    #[arg(long, value_parser = parse_duration, requires = "surge_users")]
    pub surge_at: Option<Duration>,
    /// ... staying this long once all arrived ...
    #[arg(long, value_parser = parse_duration, requires = "surge_users")]
    pub surge_lasts: Option<Duration>,
    /// ... arriving, and leaving again, over this long.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub surge_ramp: Duration,
    /// Requests finishing in the first stretch of the run (e.g. the ramp and
    /// a few seconds) are counted per second but left out of the results'
    /// latencies and outcomes: a capacity step judges the steady state.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub warm_up: Duration,
    #[command(flatten)]
    pub common: CommonArgs,
}

impl UsersCommand {
    /// A command for `plan` against `rest_url`, the other flags at their defaults.
    pub fn new(rest_url: String, plan: &UserPlan) -> UsersCommand {
        UsersCommand {
            rest_url,
            grpc_url: None,
            api_key: "demo-key-acme".into(),
            users: plan.users,
            ramp_rate: plan.ramp_rate,
            hold: plan.hold,
            ramp_down: plan.ramp_down,
            think: plan.think,
            journeys: Weights(plan.journeys.clone()),
            protocols: Weights(plan.protocols.clone()),
            surge_users: plan.surge.map(|s| s.users),
            surge_at: plan.surge.map(|s| s.at),
            surge_lasts: plan.surge.map(|s| s.lasts),
            surge_ramp: plan.surge.map_or(Duration::from_secs(5), |s| s.ramp),
            warm_up: Duration::ZERO,
            common: CommonArgs::default(),
        }
    }

    /// The users' plan, checked.
    pub fn plan(&self) -> Result<UserPlan, PlanError> {
        let plan = UserPlan {
            users: self.users,
            ramp_rate: self.ramp_rate,
            hold: self.hold,
            ramp_down: self.ramp_down,
            think: self.think,
            journeys: self.journeys.0.clone(),
            protocols: self.protocols.0.clone(),
            surge: match (self.surge_users, self.surge_at, self.surge_lasts) {
                (Some(users), Some(at), Some(lasts)) => Some(Surge { users, at, lasts, ramp: self.surge_ramp }),
                _ => None,
            },
        };
        plan.validate()?;
        Ok(plan)
    }

    /// Share `index` of `count` of these users: as many users (the remainder
    /// on the first shares), of the surge too, started at 1/`count` of the
    /// rate, so that all shares together are this command. A share is one
    /// process, no longer a shard.
    pub fn share(&self, index: usize, count: usize) -> UsersCommand {
        let mut share = self.clone();
        share.users = share_of(self.users, index, count);
        share.ramp_rate = self.ramp_rate / count as f64;
        share.surge_users = self.surge_users.map(|users| share_of(users, index, count));
        share.common.shards = 1;
        share.common.shard_index = 0;
        share
    }

    /// The command line after `q2o-loadgen`, starting with `users`.
    pub fn to_args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec!["users".into(), "--rest-url".into(), self.rest_url.clone()];
        if let Some(grpc) = &self.grpc_url {
            args.extend(["--grpc-url".into(), grpc.clone()]);
        }
        args.extend([
            "--api-key".into(),
            self.api_key.clone(),
            "--users".into(),
            self.users.to_string(),
            "--ramp-rate".into(),
            self.ramp_rate.to_string(),
            "--hold".into(),
            format_duration(self.hold),
            "--ramp-down".into(),
            format_duration(self.ramp_down),
            "--think".into(),
            self.think.to_string(),
            "--journeys".into(),
            self.journeys.to_string(),
            "--protocols".into(),
            self.protocols.to_string(),
            "--warm-up".into(),
            format_duration(self.warm_up),
        ]);
        if let (Some(users), Some(at), Some(lasts)) = (self.surge_users, self.surge_at, self.surge_lasts) {
            args.extend([
                "--surge-users".into(),
                users.to_string(),
                "--surge-at".into(),
                format_duration(at),
                "--surge-lasts".into(),
                format_duration(lasts),
                "--surge-ramp".into(),
                format_duration(self.surge_ramp),
            ]);
        }
        self.common.push_args(&mut args);
        args
    }
}

/// `q2o-loadgen run`: requests arrive at a planned rate, latency from the planned start.
#[derive(Clone, Debug, PartialEq, clap::Args)]
pub struct RunCommand {
    /// Gateway REST base URL (e.g. http://127.0.0.1:8080).
    #[arg(long, conflicts_with = "url")]
    pub rest_url: Option<String>,
    /// Gateway gRPC URL (needed when the mix has grpc: steps).
    #[arg(long)]
    pub grpc_url: Option<String>,
    /// GET this URL instead of the gateway's operations (step `get`).
    #[arg(long)]
    pub url: Option<String>,
    /// An agents process's REST base URL, for `rest:review` steps (the inter-agent call).
    #[arg(long, conflicts_with = "url")]
    pub agent_url: Option<String>,
    /// An agents process's gRPC URL, for `grpc:review` steps.
    #[arg(long, conflicts_with = "url")]
    pub agent_grpc_url: Option<String>,
    /// API key to log in with.
    #[arg(long, default_value = "demo-key-acme", env = "Q2O_LOADGEN_API_KEY")]
    pub api_key: String,
    /// Steps and weights, e.g. rest:list_projects=8,grpc:submit_task=2.
    #[arg(long, default_value = "rest:list_projects=6,rest:get_project=2,rest:submit_task=1,rest:project_status=1")]
    pub mix: Mix,
    /// Arrival rate in requests per second (at the start, with --ramp-to).
    #[arg(long, allow_negative_numbers = true)]
    pub rate: f64,
    /// Ramp linearly to this rate by the end of the run.
    #[arg(long, allow_negative_numbers = true)]
    pub ramp_to: Option<f64>,
    /// How long to run (e.g. 30s, 5m).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Duration,
    /// Most requests in flight; planned starts beyond it are dropped and counted.
    #[arg(long, default_value_t = 10_000)]
    pub max_in_flight: u64,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Where an open-model run sends its requests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// The gateway's REST base URL.
    pub rest_url: Option<String>,
    /// The gateway's gRPC URL.
    pub grpc_url: Option<String>,
    /// An agents process's REST base URL.
    pub agent_url: Option<String>,
    /// An agents process's gRPC URL.
    pub agent_grpc_url: Option<String>,
}

impl RunCommand {
    /// `mix` at `rate` for `duration` against `endpoints`, the other flags at their defaults.
    pub fn new(endpoints: Endpoints, mix: Mix, rate: f64, duration: Duration) -> RunCommand {
        RunCommand {
            rest_url: endpoints.rest_url,
            grpc_url: endpoints.grpc_url,
            url: None,
            agent_url: endpoints.agent_url,
            agent_grpc_url: endpoints.agent_grpc_url,
            api_key: "demo-key-acme".into(),
            mix,
            rate,
            ramp_to: None,
            duration,
            max_in_flight: 10_000,
            common: CommonArgs::default(),
        }
    }

    /// Share `index` of `count` of this load: 1/`count` of the rate (and of
    /// the rate ramped to), so that all shares together are this command.
    pub fn share(&self, _index: usize, count: usize) -> RunCommand {
        let mut share = self.clone();
        share.rate = self.rate / count as f64;
        share.ramp_to = self.ramp_to.map(|end| end / count as f64);
        share.common.shards = 1;
        share.common.shard_index = 0;
        share
    }

    /// The command line after `q2o-loadgen`, starting with `run`.
    pub fn to_args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec!["run".into()];
        for (flag, value) in [
            ("--rest-url", &self.rest_url),
            ("--grpc-url", &self.grpc_url),
            ("--url", &self.url),
            ("--agent-url", &self.agent_url),
            ("--agent-grpc-url", &self.agent_grpc_url),
        ] {
            if let Some(value) = value {
                args.extend([flag.to_owned(), value.clone()]);
            }
        }
        args.extend(["--api-key".into(), self.api_key.clone(), "--mix".into(), self.mix.to_string()]);
        args.extend(["--rate".into(), self.rate.to_string()]);
        if let Some(end) = self.ramp_to {
            args.extend(["--ramp-to".into(), end.to_string()]);
        }
        args.extend(["--duration".into(), format_duration(self.duration)]);
        args.extend(["--max-in-flight".into(), self.max_in_flight.to_string()]);
        self.common.push_args(&mut args);
        args
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    enum Cli {
        Users(UsersCommand),
        Run(RunCommand),
    }

    #[test]
    fn commands_read_back_as_they_were_written() {
        let plan = UserPlan {
            users: 1234,
            ramp_rate: 12.5,
            hold: Duration::from_millis(90_500),
            ramp_down: Duration::from_secs(5),
            think: "uniform:1s..3s".parse().unwrap(),
            journeys: vec![(Journey::Browse, 5), (Journey::Search, 2)],
            protocols: vec![(Protocol::Rest, 1), (Protocol::Grpc, 3)],
            surge: Some(Surge {
                users: 3000,
                at: Duration::from_secs(20),
                lasts: Duration::from_secs(30),
                ramp: Duration::from_secs(4),
            }),
        };
        let mut users = UsersCommand::new("http://127.0.0.1:1".into(), &plan);
        users.grpc_url = Some("http://127.0.0.1:2".into());
        users.common.out = Some("/tmp/x y".into());
        users.common.metrics_addr = Some("127.0.0.1:9100".parse().unwrap());
        let parsed = Cli::try_parse_from(std::iter::once("q2o-loadgen".to_owned()).chain(users.to_args())).unwrap();
        assert!(matches!(&parsed, Cli::Users(u) if *u == users), "{parsed:?}");
        assert_eq!(users.plan().unwrap(), plan);

        let endpoints = Endpoints {
            rest_url: Some("http://127.0.0.1:1".into()),
            agent_grpc_url: Some("http://127.0.0.1:3".into()),
            ..Endpoints::default()
        };
        let mix: Mix = "rest:list_projects=3,grpc:review=1".parse().unwrap();
        let mut run = RunCommand::new(endpoints, mix, 250.5, Duration::from_millis(1500));
        run.ramp_to = Some(900.0);
        run.common.processes = 3;
        run.common.shards = 4;
        run.common.shard_index = 3;
        run.common.start_at = Some(parse_start_at("2026-12-01T10:00:00.5Z").unwrap());
        run.common.serve_results = Some(Duration::from_secs(600));
        let parsed = Cli::try_parse_from(std::iter::once("q2o-loadgen".to_owned()).chain(run.to_args())).unwrap();
        assert!(matches!(&parsed, Cli::Run(r) if *r == run), "{parsed:?}");
    }

    #[test]
    fn shares_add_up_to_the_whole() {
        let plan = UserPlan {
            users: 1001,
            ramp_rate: 30.0,
            hold: Duration::from_secs(60),
            ramp_down: Duration::from_secs(5),
            think: "const:1s".parse().unwrap(),
            journeys: vec![(Journey::Browse, 1)],
            protocols: vec![(Protocol::Rest, 1)],
            surge: Some(Surge {
                users: 3002,
                at: Duration::from_secs(5),
                lasts: Duration::from_secs(5),
                ramp: Duration::from_secs(1),
            }),
        };
        let users = UsersCommand::new("http://127.0.0.1:1".into(), &plan);
        let shares: Vec<UsersCommand> = (0..3).map(|i| users.share(i, 3)).collect();
        assert_eq!(shares.iter().map(|s| s.users).sum::<usize>(), 1001);
        assert_eq!(shares.iter().map(|s| s.surge_users.unwrap()).sum::<usize>(), 3002);
        assert_eq!(shares.iter().map(|s| s.ramp_rate).sum::<f64>(), 30.0);
        assert_eq!([shares[0].users, shares[2].users], [334, 333]);
        let mut run = RunCommand::new(
            Endpoints::default(),
            "rest:list_projects=1".parse().unwrap(),
            90.0,
            Duration::from_secs(1),
        );
        run.ramp_to = Some(300.0);
        assert_eq!((run.share(1, 3).rate, run.share(1, 3).ramp_to), (30.0, Some(100.0)));
    }

    #[test]
    fn a_shard_beyond_the_count_and_a_bad_start_time_are_refused() {
        let common = CommonArgs { shards: 2, shard_index: 2, ..CommonArgs::default() };
        assert!(common.shard().unwrap_err().contains("JOB_COMPLETION_INDEX"));
        assert_eq!(CommonArgs { shards: 2, shard_index: 1, ..CommonArgs::default() }.shard(), Ok((1, 2)));
        assert!(parse_start_at("10:00").unwrap_err().contains("RFC 3339"));
    }
}
