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
use q2o_scenarios::scenario::Overrides;
use q2o_scenarios::scenario_file::ScenarioFile;
use q2o_scenarios::session::Interrupt;
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
        Cli::Run { scenario, env, users, duration, scale, reports, rules_dir, dashboards_dir } => {
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
