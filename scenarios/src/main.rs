use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use q2o_common::config::parse_duration;
use q2o_common::telemetry::{init_tracing, shutdown_signal};
use q2o_scenarios::capacity::plan::{CapacityOptions, Search, capacity};
use q2o_scenarios::compare::{CompareOptions, Comparison, compare};
use q2o_scenarios::local::{Binaries, EnvKind};
use q2o_scenarios::regression::{self, RunSummary};
use q2o_scenarios::run::{RunFailed, RunOptions, run};
use q2o_scenarios::scenario::{Overrides, Scenario};
use q2o_scenarios::{dashboards, rules, slo};

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
    match Cli::parse() {
        Cli::Run { scenario, env, users, duration, scale, reports, .. }
            if std::fs::read_to_string(&scenario).is_ok_and(|text| Comparison::is_comparison(&text)) =>
        {
            if env != EnvKind::Local || users.is_some() || duration.is_some() {
                eprintln!(
                    "q2o-bench: a comparison runs locally at its file's rates: --env, --users and --duration do not apply (--scale shortens the rounds)"
                );
                return ExitCode::from(2);
            }
            let options = CompareOptions {
                file: scenario,
                reports,
                binaries: Binaries::discover(),
                time_scale: scale,
                progress: true,
            };
            match compare(options, shutdown_signal()).await {
                Ok(done) => {
                    println!("{}: {}", done.report.name, if done.valid { "VALID" } else { "INVALID" });
                    println!("  {}", done.report.verdict);
                    for reason in &done.report.reasons {
                        println!("  {reason}");
                    }
                    println!("report: {}", done.dir.join("report.html").display());
                    if done.valid { ExitCode::SUCCESS } else { ExitCode::from(1) }
                }
                Err(failed) => run_failed(&failed),
            }
        }
        Cli::Run { scenario, env, users, duration, scale, reports, rules_dir, dashboards_dir } => {
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
            match run(options, shutdown_signal()).await {
                Ok(finished) => {
                    let verdict = if finished.go { "GO" } else { "NO-GO" };
                    println!("{}: {verdict}", finished.summary.scenario);
                    for reason in &finished.summary.reasons {
                        println!("  {reason}");
                    }
                    println!("report: {}", finished.dir.join("report.html").display());
                    if finished.go { ExitCode::SUCCESS } else { ExitCode::from(1) }
                }
                Err(failed) => run_failed(&failed),
            }
        }
        Cli::Capacity { scenario, search, reports } => {
            let options = CapacityOptions { scenario, search, reports, binaries: Binaries::discover(), progress: true };
            match capacity(options, shutdown_signal()).await {
                Ok((report, dir)) => {
                    println!("{} capacity: {}", report.scenario, if report.met { "MET" } else { "NOT MET" });
                    for reason in &report.reasons {
                        println!("  {reason}");
                    }
                    println!("report: {}", dir.join("report.html").display());
                    if report.met { ExitCode::SUCCESS } else { ExitCode::from(1) }
                }
                Err(failed) => run_failed(&failed),
            }
        }
        Cli::Report { run, baseline, tolerance } => match report(&run, baseline.as_deref(), tolerance) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(err) => {
                eprintln!("q2o-bench: {err}");
                ExitCode::from(2)
            }
        },
        Cli::Rules { scenarios, out, dashboards, check } => match write_rules(scenarios, &out, &dashboards, check) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(err) => {
                eprintln!("q2o-bench: {err:#}");
                ExitCode::from(2)
            }
        },
    }
}

/// Prints the run's verdict and report; against a baseline, whether anything
/// regressed (`Ok(false)`).
fn report(run: &std::path::Path, baseline: Option<&std::path::Path>, tolerance: f64) -> Result<bool, String> {
    if !(0.0..10.0).contains(&tolerance) {
        return Err(format!("--tolerance must be a fraction such as 0.1, got {tolerance}"));
    }
    let current = RunSummary::read(run)?;
    println!("{} run {}: {}", current.scenario, current.run_id, current.verdict);
    println!("report: {}", run.join("report.html").display());
    let Some(baseline_dir) = baseline else { return Ok(true) };
    let baseline = RunSummary::read(baseline_dir)?;
    if baseline.scenario != current.scenario {
        return Err(format!(
            "--baseline {} is a run of {}, not of {}",
            baseline_dir.display(),
            baseline.scenario,
            current.scenario
        ));
    }
    let comparison = regression::compare(&baseline, &current, tolerance);
    let markdown = comparison.markdown(&baseline, &current, tolerance);
    let path = run.join("baseline.md");
    std::fs::write(&path, &markdown).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    print!("{markdown}");
    println!("written to {}", path.display());
    Ok(!comparison.regressed())
}

fn run_failed(failed: &RunFailed) -> ExitCode {
    eprintln!("q2o-bench: the run failed: {}", failed.reason);
    if let Some(dir) = &failed.dir {
        eprintln!("logs and summary: {}", dir.display());
    }
    ExitCode::from(2)
}

fn write_rules(
    mut files: Vec<PathBuf>,
    out: &std::path::Path,
    dashboards_dir: &std::path::Path,
    check: bool,
) -> anyhow::Result<bool> {
    if files.is_empty() {
        for entry in std::fs::read_dir("scenarios").context("cannot list scenarios/")? {
            let path = entry?.path();
            let comparison = std::fs::read_to_string(&path).is_ok_and(|text| Comparison::is_comparison(&text));
            if path.extension().is_some_and(|e| e == "toml")
                && path.file_name().is_some_and(|n| n != "Cargo.toml")
                && !comparison
            {
                files.push(path);
            }
        }
        files.sort();
    }
    let scenarios = files.iter().map(|f| Scenario::load(f)).collect::<Result<Vec<_>, _>>()?;
    let mut up_to_date = true;
    let (slis, slos, gates) = (rules::sli_rules(), slo::slo_rules(rules::HEADER), rules::gate_rules(&scenarios));
    let manifest = slo::prometheus_rule(rules::HEADER, &[slis.clone(), slos.clone(), gates.clone()]);
    let mut files = vec![
        (out.join(rules::SLIS_FILE), slis),
        (out.join(rules::SLOS_FILE), slos),
        (out.join(rules::GATES_FILE), gates),
        (out.join(rules::GATE_TESTS_FILE), rules::gate_rule_tests(&scenarios)),
        (out.join(rules::SLO_TESTS_FILE), slo::slo_rule_tests(rules::HEADER, rules::SLOS_FILE)),
        (PathBuf::from("deploy/kubernetes/prometheus-rules.yaml"), manifest),
    ];
    for (name, dashboard) in dashboards::dashboards() {
        let json = serde_json::to_string_pretty(&dashboard).expect("dashboards serialize") + "\n";
        files.push((dashboards_dir.join(name), json));
    }
    for (name, text) in dashboards::provisioning() {
        files.push((dashboards_dir.join(name), text.to_owned()));
    }
    for (path, text) in files {
        if check {
            let current = std::fs::read_to_string(&path).unwrap_or_default();
            if current != text {
                println!("{} is out of date: run `just rules`", path.display());
                up_to_date = false;
            }
        } else {
            std::fs::create_dir_all(path.parent().unwrap_or(out))?;
            std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
            println!("wrote {}", path.display());
        }
    }
    Ok(up_to_date)
}
