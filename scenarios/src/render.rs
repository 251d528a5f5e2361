//! `q2o-bench render <scenario> --env kubernetes`: a cluster run's own
//! manifests, beside the stack of `deploy/kubernetes/overlays/<phase>`: the
//! load generator as an Indexed Job whose pods each run their share of the
//! scenario's users (by `JOB_COMPLETION_INDEX`) from one wall-clock start,
//! and the scenario's gate rules as a `PrometheusRule`. The run is judged
//! afterwards by `q2o-bench judge` from the pods' results and the cluster's
//! Prometheus, exactly as a local run.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use q2o_loadgen::command::{StartAt, UsersCommand};
use q2o_slo::gates::{Gate, gate_rules};
use q2o_slo::rule_files::HEADER;
use q2o_slo::slos::prometheus_rule_named;
use serde_json::{Value, json};

use crate::error::RunError;
use crate::scenario::Scenario;

/// Where a pod serves its metrics and, once done, its results.
pub const METRICS_PORT: u16 = 9100;

/// Where a pod writes its results.
pub const RESULTS_DIR: &str = "/results";

/// Users one pod carries by default. Fewer than a local process carries
/// ([`Scenario::users_per_process`]): a cluster spreads pods over nodes, so
/// more, smaller pods spread the load generator's CPU and connections too.
pub const USERS_PER_POD: usize = 10_000;

/// What to render, besides the scenario.
#[derive(Clone, Debug)]
pub struct RenderOptions {
    /// Loadgen pods (the Job's completions and parallelism); from the users when `None`.
    pub pods: Option<usize>,
    /// The loadgen image.
    pub image: String,
    /// The gateway's REST URL as the pods reach it.
    pub rest_url: String,
    /// The gateway's gRPC URL as the pods reach it.
    pub grpc_url: String,
    /// The namespace of the stack.
    pub namespace: String,
    /// When the pods start their load.
    pub start_at: SystemTime,
    /// How long a finished pod serves its results for collection.
    pub serve_results: Duration,
}

/// What `render` wrote.
#[derive(Debug)]
pub struct Rendered {
    /// The folder: `kubectl apply -k` it.
    pub dir: PathBuf,
    /// The Job's pods.
    pub pods: usize,
    /// The Job's name.
    pub job: String,
    /// When the pods start their load (RFC 3339).
    pub start_at: String,
}

/// The pods a scenario needs at `USERS_PER_POD` each, at its most users (a surge's top).
pub fn default_pods(scenario: &Scenario) -> usize {
    let plan = scenario.user_plan();
    let top = plan.surge.map_or(plan.users, |s| s.users.max(plan.users));
    top.div_ceil(USERS_PER_POD).max(1)
}

/// The name of a run's Job: `loadgen-<scenario>-<run id>`, as Kubernetes spells names.
pub fn job_name(scenario: &str, run_id: &str) -> String {
    let name: String = format!("loadgen-{scenario}-{run_id}")
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    name.chars().take(63).collect::<String>().trim_end_matches('-').to_owned()
}

/// The load generator's Indexed Job for `scenario`.
pub fn loadgen_job(scenario: &Scenario, options: &RenderOptions, pods: usize, job: &str) -> Result<Value, RunError> {
    let plan = scenario.user_plan();
    let mut command = UsersCommand::new(options.rest_url.clone(), &plan);
    command.grpc_url = Some(options.grpc_url.clone());
    command.api_key = scenario.load.api_key.clone();
    // goose lets its users go in whole seconds.
    command.ramp_down = plan.ramp_down.max(Duration::from_secs(1));
    command.common.out = Some(RESULTS_DIR.into());
    command.common.metrics_addr = Some(([0, 0, 0, 0], METRICS_PORT).into());
    command.common.shards = u32::try_from(pods).map_err(|_| too_many(pods))?;
    // The index comes from the Job controller, in JOB_COMPLETION_INDEX.
    command.common.shard_index = 0;
    command.common.start_at = Some(StartAt(time::OffsetDateTime::from(options.start_at)));
    command.common.serve_results = Some(options.serve_results);
    if plan.users < pods {
        return Err(RunError::Unsupported {
            key: "--pods".into(),
            reason: format!("{pods} pods for {} users leaves some without any", plan.users),
        });
    }
    // A goose user takes 18-23 KiB (issue 16's measurement); a pod gets
    // twice that for its largest share, and a core to request.
    let top = plan.surge.map_or(plan.users, |s| s.users.max(plan.users));
    let memory_mib = (top.div_ceil(pods) * 2 * 23).div_ceil(1024) + 128;
    let labels = json!({
        "app.kubernetes.io/name": "loadgen",
        "app.kubernetes.io/part-of": "q2o",
        "q2o.scenario": scenario.name,
        "q2o.job": job,
    });
    // The runner's plan plus the time a pod may wait for its start and for its results to be fetched.
    let deadline = (options.start_at.duration_since(SystemTime::now()).unwrap_or_default()
        + plan.total()
        + options.serve_results
        + Duration::from_secs(300))
    .as_secs();
    Ok(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": { "name": job, "labels": labels },
        "spec": {
            "completionMode": "Indexed",
            "completions": pods,
            "parallelism": pods,
            // A shard run twice would offer its share twice: no retries.
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline,
            "ttlSecondsAfterFinished": 86_400,
            "template": {
                "metadata": { "labels": labels },
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 30,
                    "topologySpreadConstraints": [{
                        "maxSkew": 1,
                        "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": { "matchLabels": { "q2o.job": job } },
                    }],
                    "containers": [{
                        "name": "loadgen",
                        "image": options.image,
                        "args": command.to_args(),
                        "env": [
                            { "name": "Q2O_LOG", "value": "warn" },
                            { "name": "Q2O_WORKER_THREADS", "value": "per-core" },
                        ],
                        "ports": [{ "name": "metrics", "containerPort": METRICS_PORT }],
                        "resources": {
                            "requests": { "cpu": "1", "memory": format!("{memory_mib}Mi") },
                            "limits": { "cpu": "2", "memory": format!("{}Mi", memory_mib * 2) },
                        },
                        "volumeMounts": [{ "name": "results", "mountPath": RESULTS_DIR }],
                    }],
                    "volumes": [{ "name": "results", "emptyDir": {} }],
                },
            },
        },
    }))
}

fn too_many(pods: usize) -> RunError {
    RunError::Unsupported { key: "--pods".into(), reason: format!("{pods} is more pods than a Job runs") }
}

/// Writes the run's manifests into `dir`: the Job, the gate rules, and a
/// `kustomization.yaml` that puts both into the stack's namespace.
pub fn render(scenario: &Scenario, options: &RenderOptions, dir: &Path, run_id: &str) -> Result<Rendered, RunError> {
    if !scenario.faults.is_empty() {
        return Err(RunError::Unsupported {
            key: "faults".into(),
            reason: "the runner injects faults in local and docker runs only; on a cluster, inject them with the \
                     cluster's own tools and judge the run without fault criteria"
                .into(),
        });
    }
    let pods = options.pods.unwrap_or_else(|| default_pods(scenario));
    if pods == 0 {
        return Err(RunError::Unsupported { key: "--pods".into(), reason: "must be at least 1".into() });
    }
    let job = job_name(&scenario.name, run_id);
    let manifest = loadgen_job(scenario, options, pods, &job)?;
    std::fs::create_dir_all(dir).map_err(RunError::io(dir))?;
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(RunError::io(&path))
    };
    write("loadgen-job.json", serde_json::to_string_pretty(&manifest).expect("JSON serializes") + "\n")?;
    let gate = Gate { phase: &scenario.name, description: &scenario.description, criteria: &scenario.criteria };
    let rules_name = format!("q2o-gate-{}", scenario.name.to_ascii_lowercase().replace('_', "-"));
    write("gate-rules.yaml", prometheus_rule_named(&rules_name, HEADER, &[gate_rules(&[gate])]))?;
    write(
        "kustomization.yaml",
        format!(
            "# A cluster run of {name} (run {run_id}), from `q2o-bench render`: apply with\n\
             #   kubectl apply -k {dir}\n\
             apiVersion: kustomize.config.k8s.io/v1beta1\n\
             kind: Kustomization\n\
             namespace: {namespace}\n\
             resources:\n  - loadgen-job.json\n  - gate-rules.yaml\n",
            name = scenario.name,
            dir = dir.display(),
            namespace = options.namespace,
        ),
    )?;
    let start_at = StartAt(time::OffsetDateTime::from(options.start_at)).to_string();
    Ok(Rendered { dir: dir.to_owned(), pods, job, start_at })
}
