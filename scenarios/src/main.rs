use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use q2o_common::config::parse_duration;
use q2o_common::telemetry::{init_tracing, shutdown_signal};
use q2o_env::EnvKind;
use q2o_env::binaries::Binaries;
use q2o_scenarios::capacity::search::{self, CapacityOptions, Search};
use q2o_scenarios::compare::{self, CompareOptions};
use q2o_scenarios::cost;
use q2o_scenarios::error::{RunError, RunFailed};
use q2o_scenarios::gate_run::{self, RunOptions};
use q2o_scenarios::regression::{self, RunSummary};
use q2o_scenarios::rules;
use q2o_scenarios::scenario::{Overrides, Scenario};
use q2o_scenarios::scenario_file::ScenarioFile;
use q2o_scenarios::session::Interrupt;
use q2o_scenarios::{judge, render};
use q2o_slo::generate::{self, Destinations};
use q2o_slo::rule_files::MANIFEST_FILE;

/// The q2o scenario runner: exit 0 GO, 1 NO-GO, 2 the run itself failed.
#[derive(Debug, Parser)]
#[command(name = "q2o-bench", version)]
enum Cli {
    /// Run a scenario and write its gate report (or a comparison file, such as
    /// scenarios/rest-vs-grpc.toml, and its comparison report).
    Run {
        /// The scenario file (scenarios/phase2.toml).
        scenario: PathBuf,
        /// Where the services run: `local` processes, or `docker` containers
        /// (images from `just images`).
        #[arg(long = "env", value_enum, default_value = "local")]
        env: EnvKind,
        #[command(flatten)]
        sizes: SizeFlags,
        /// Where reports go.
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
        /// Rule files for Prometheus.
        #[arg(long, default_value = "alerts")]
        rules_dir: PathBuf,
        /// Grafana dashboards whose queries are checked against the run.
        #[arg(long, default_value = "dashboards/grafana")]
        dashboards_dir: PathBuf,
    },
    /// Find the knee (the highest rate meeting every SLO) at 1, 2, 3 gateway
    /// replicas, fit the Universal Scalability Law, and say how many replicas
    /// 5k, 50k and 100k users need. Exit 0 when --target-users is carried (or,
    /// without it, when a knee was found), 1 when not, 2 when the run failed.
    Capacity {
        /// The scenario file (scenarios/phase2.toml): its topology, journeys and criteria.
        scenario: PathBuf,
        #[command(flatten)]
        search: Search,
        /// Where reports go.
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
    },
    /// Measure what each process spends per request (CPU-µs, RSS) under a
    /// fixed count of the scenario's users, and what the idle stack uses;
    /// writes cost.json and cost.md. Judges nothing: exit 0 once measured.
    Cost {
        /// The scenario file (scenarios/phase2.toml): its topology and journeys.
        scenario: PathBuf,
        #[command(flatten)]
        load: q2o_scenarios::cost::Load,
        /// Where reports go.
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
    },
    /// Print a run's verdict and where its report is; with --baseline, hold it
    /// against a baseline run of the same scenario and write baseline.md into
    /// its folder. Exit 1 when something regressed.
    Report {
        /// The run's folder (reports/phase2/latest).
        run: PathBuf,
        /// A baseline run's folder.
        #[arg(long)]
        baseline: Option<PathBuf>,
        /// How much worse a figure may get before it is a regression (0.1 = 10 %).
        #[arg(long, default_value_t = 0.1)]
        tolerance: f64,
    },
    /// Write a cluster run's manifests: the load generator as an Indexed Job
    /// (each pod its share of the users, all from one start time) and the
    /// scenario's gate rules, beside the stack of deploy/kubernetes/overlays.
    Render {
        /// The scenario file (scenarios/phase2.toml).
        scenario: PathBuf,
        /// Where the run goes; only `kubernetes` is rendered.
        #[arg(long = "env", value_enum, default_value = "kubernetes")]
        env: RenderEnv,
        #[command(flatten)]
        sizes: SizeFlags,
        /// Loadgen pods (10,000 users each by default).
        #[arg(long)]
        pods: Option<usize>,
        /// The loadgen image (`just images` builds q2o/loadgen:local; push it where the cluster pulls).
        #[arg(long, default_value = "q2o/loadgen:local")]
        image: String,
        /// The gateway's REST URL as the pods reach it.
        #[arg(long, default_value = "http://gateway:8080")]
        rest_url: String,
        /// The gateway's gRPC URL as the pods reach it.
        #[arg(long, default_value = "http://gateway:9090")]
        grpc_url: String,
        /// The stack's namespace.
        #[arg(long, default_value = "q2o")]
        namespace: String,
        /// How long from now the pods start their load: apply the manifests before.
        #[arg(long, value_parser = parse_duration, default_value = "2m")]
        start_in: Duration,
        /// How long a finished pod serves its results for `q2o-bench collect`.
        #[arg(long, value_parser = parse_duration, default_value = "30m")]
        serve_results: Duration,
        /// Where the manifests go (reports/<scenario>/cluster-<run id> by default).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Fetch the results each loadgen pod serves once it is done (one URL per
    /// pod, e.g. a `kubectl port-forward` to it) into DIR/part-<i>/.
    Collect {
        /// The pods' metrics URLs (http://127.0.0.1:9100).
        #[arg(required = true, num_args = 1..)]
        urls: Vec<String>,
        /// Where the results go.
        #[arg(long)]
        out: PathBuf,
        /// How long to wait for pods still running.
        #[arg(long, value_parser = parse_duration, default_value = "30m")]
        wait: Duration,
    },
    /// Judge a run whose load came from elsewhere (a cluster's loadgen Job):
    /// the collected results merged exactly, Prometheus asked for the rest;
    /// the same report, JUnit and exit code as `run`.
    Judge {
        /// The scenario file, with the sizes the run was rendered with.
        scenario: PathBuf,
        #[command(flatten)]
        sizes: SizeFlags,
        /// The collected results (`q2o-bench collect --out`).
        #[arg(long)]
        results: PathBuf,
        /// The Prometheus that scraped the run.
        #[arg(long)]
        prometheus: String,
        /// The run's Redis, if reachable from here: judges `tasks_unfinished`.
        #[arg(long)]
        redis_url: Option<String>,
        /// The run's Kafka bootstrap, if reachable from here: the census behind `events_lost`.
        #[arg(long)]
        kafka: Option<String>,
        /// The environment the report names.
        #[arg(long = "env", value_enum, default_value = "kubernetes")]
        env: RenderEnv,
        /// Where reports go.
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
        /// Grafana dashboards whose queries are checked against the run.
        #[arg(long, default_value = "dashboards/grafana")]
        dashboards_dir: PathBuf,
    },
    /// Write alerts/ (recording rules, gate alerts, their promtool tests) and
    /// dashboards/grafana/ (dashboards, provisioning) from the scenarios.
    Rules {
        /// Scenario files (every scenarios/*.toml when none).
        scenarios: Vec<PathBuf>,
        /// Where the rule files go.
        #[arg(long, default_value = "alerts")]
        out: PathBuf,
        /// Where the dashboards go.
        #[arg(long, default_value = "dashboards/grafana")]
        dashboards: PathBuf,
        /// Only check that the files are up to date; exit 1 if not.
        #[arg(long)]
        check: bool,
    },
}

/// Where a rendered or judged run's load came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum RenderEnv {
    /// A Kubernetes cluster (deploy/kubernetes).
    Kubernetes,
    /// Loadgen containers beside the docker environment (the Job's contract, tested here).
    Docker,
}

impl RenderEnv {
    fn as_str(self) -> &'static str {
        match self {
            RenderEnv::Kubernetes => "kubernetes",
            RenderEnv::Docker => "docker",
        }
    }
}

/// The sizes a scenario runs at, as `run` takes them.
#[derive(Clone, Debug, clap::Args)]
struct SizeFlags {
    /// Users at the top of the ramp, instead of the file's.
    #[arg(long)]
    users: Option<usize>,
    /// Hold, instead of the file's (e.g. 30s).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Multiply the file's users by this (0.01 runs 1 %); in a comparison,
    /// the rounds' lengths.
    #[arg(long)]
    scale: Option<f64>,
}

impl SizeFlags {
    fn overrides(&self) -> Overrides {
        Overrides { users: self.users, duration: self.duration, scale: self.scale }
    }
}

/// A gate scenario with `sizes` applied, and its users before them.
fn sized_scenario(path: &std::path::Path, sizes: &SizeFlags) -> Result<(Scenario, usize), RunFailed> {
    let ScenarioFile::Gate(mut scenario) = ScenarioFile::load(path).map_err(RunError::from)? else {
        let reason = "is a comparison file; a cluster run is of a gate scenario".to_owned();
        return Err(RunError::Unsupported { key: path.display().to_string(), reason }.into());
    };
    let users_in_file = scenario.load.users;
    scenario.apply(&sizes.overrides()).map_err(RunError::from)?;
    Ok((scenario, users_in_file))
}

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing("warn");
    let interrupt = Interrupt::new(shutdown_signal());
    match run(Cli::parse(), &interrupt).await {
        Ok(code) => code,
        Err(failed) => {
            eprintln!("q2o-bench: {}", failed.error);
            if let Some(dir) = &failed.dir {
                eprintln!("logs and summary: {}", dir.display());
            }
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli, interrupt: &Interrupt) -> Result<ExitCode, RunFailed> {
    let verdict = |passed: bool| if passed { ExitCode::SUCCESS } else { ExitCode::from(1) };
    match cli {
        Cli::Run { scenario, env, sizes, reports, rules_dir, dashboards_dir } => {
            let SizeFlags { users, duration, scale } = sizes;
            match ScenarioFile::load(&scenario).map_err(RunError::from)? {
                ScenarioFile::Comparison(file) => {
                    if env != EnvKind::Local || users.is_some() || duration.is_some() {
                        let reason = "a comparison runs locally at its file's rates: --env, --users and --duration \
                                      do not apply (--scale shortens the rounds)";
                        return Err(RunError::Unsupported { key: "q2o-bench run".into(), reason: reason.into() }.into());
                    }
                    let options = CompareOptions {
                        file,
                        reports,
                        binaries: Binaries::discover(),
                        time_scale: scale,
                        progress: true,
                    };
                    let done = compare::run(options, interrupt).await?;
                    println!("{}: {}", done.report.name, if done.valid { "VALID" } else { "INVALID" });
                    println!("  {}", done.report.verdict);
                    for reason in &done.report.reasons {
                        println!("  {reason}");
                    }
                    println!("report: {}", done.dir.join("report.html").display());
                    Ok(verdict(done.valid))
                }
                ScenarioFile::Gate(scenario) => {
                    let options = RunOptions {
                        scenario,
                        env,
                        overrides: Overrides { users, duration, scale },
                        reports,
                        rules_dir,
                        dashboards_dir,
                        binaries: Binaries::discover(),
                        progress: true,
                    };
                    let finished = gate_run::run(options, interrupt).await?;
                    println!("{}: {}", finished.summary.scenario, finished.summary.verdict);
                    for reason in &finished.summary.reasons {
                        println!("  {reason}");
                    }
                    println!("report: {}", finished.dir.join("report.html").display());
                    Ok(verdict(finished.go))
                }
            }
        }
        Cli::Capacity { scenario, search, reports } => {
            let ScenarioFile::Gate(scenario) = ScenarioFile::load(&scenario).map_err(RunError::from)? else {
                let reason = "is a comparison file; capacity searches a gate scenario".to_owned();
                return Err(RunError::Unsupported { key: scenario.display().to_string(), reason }.into());
            };
            let options = CapacityOptions { scenario, search, reports, binaries: Binaries::discover(), progress: true };
            let (report, dir) = search::run(options, interrupt).await?;
            println!("{} capacity: {}", report.scenario, if report.met { "MET" } else { "NOT MET" });
            for reason in &report.reasons {
                println!("  {reason}");
            }
            println!("report: {}", dir.join("report.html").display());
            Ok(verdict(report.met))
        }
        Cli::Cost { scenario, load, reports } => {
            let ScenarioFile::Gate(scenario) = ScenarioFile::load(&scenario).map_err(RunError::from)? else {
                let reason = "is a comparison file; cost measures a gate scenario's users".to_owned();
                return Err(RunError::Unsupported { key: scenario.display().to_string(), reason }.into());
            };
            let options = cost::CostOptions { scenario, load, reports, binaries: Binaries::discover(), progress: true };
            let measured = cost::run(options, interrupt).await?;
            print!("{}", measured.report.markdown());
            println!("report: {}", measured.dir.join("cost.md").display());
            Ok(ExitCode::SUCCESS)
        }
        Cli::Render {
            scenario,
            env,
            sizes,
            pods,
            image,
            rest_url,
            grpc_url,
            namespace,
            start_in,
            serve_results,
            out,
        } => {
            if env != RenderEnv::Kubernetes {
                let reason = "a docker run is started by `q2o-bench run --env docker`".to_owned();
                return Err(RunError::Unsupported { key: "--env".into(), reason }.into());
            }
            let (scenario, _) = sized_scenario(&scenario, &sizes)?;
            let run_id = q2o_scenarios::run_folder::run_id(std::time::SystemTime::now());
            let dir =
                out.unwrap_or_else(|| PathBuf::from("reports").join(&scenario.name).join(format!("cluster-{run_id}")));
            let options = render::RenderOptions {
                pods,
                image,
                rest_url,
                grpc_url,
                namespace,
                start_at: std::time::SystemTime::now() + start_in,
                serve_results,
            };
            let rendered = render::render(&scenario, &options, &dir, &run_id)?;
            println!(
                "{}: {} loadgen pods (Job {}) start at {}",
                scenario.name, rendered.pods, rendered.job, rendered.start_at
            );
            println!("apply before then: kubectl apply -k {}", rendered.dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Cli::Collect { urls, out, wait } => {
            let parts = judge::collect(&urls, &out, wait).await?;
            println!("collected {} pods' results into {}", parts.len(), out.display());
            Ok(ExitCode::SUCCESS)
        }
        Cli::Judge { scenario, sizes, results, prometheus, redis_url, kafka, env, reports, dashboards_dir } => {
            let (scenario, users_in_file) = sized_scenario(&scenario, &sizes)?;
            let options = judge::JudgeOptions {
                scenario,
                overrides: sizes.overrides(),
                users_in_file,
                results,
                prometheus,
                redis_url,
                kafka,
                reports,
                dashboards_dir,
                env: env.as_str(),
            };
            let judged = judge::judge(options).await?;
            println!("{}: {} ({} loadgen parts merged)", judged.summary.scenario, judged.summary.verdict, judged.parts);
            for reason in &judged.summary.reasons {
                println!("  {reason}");
            }
            println!("report: {}", judged.dir.join("report.html").display());
            Ok(verdict(judged.go))
        }
        Cli::Report { run, baseline, tolerance } => {
            let current = RunSummary::read(&run)?;
            println!("{} run {}: {}", current.scenario, current.run_id, current.verdict);
            println!("report: {}", run.join("report.html").display());
            let Some(baseline) = baseline else { return Ok(ExitCode::SUCCESS) };
            let held = regression::hold(&run, &baseline, tolerance)?;
            print!("{}", held.markdown);
            println!("written to {}", held.path.display());
            Ok(verdict(!held.regressed))
        }
        Cli::Rules { scenarios, out, dashboards, check } => {
            let gates = rules::gate_scenarios(&scenarios, "scenarios".as_ref())?;
            let to = Destinations { alerts: out, dashboards, manifest: MANIFEST_FILE.into() };
            let files = rules::files(&gates, &to);
            if check {
                let stale = generate::stale(&files);
                for path in &stale {
                    println!("{} is out of date: run `just rules`", path.display());
                }
                return Ok(verdict(stale.is_empty()));
            }
            generate::write(&files).map_err(RunError::io(&to.alerts))?;
            for (path, _) in &files {
                println!("wrote {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
