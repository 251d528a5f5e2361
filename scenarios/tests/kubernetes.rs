//! `deploy/kubernetes/`: every phase's overlay renders with `kubectl
//! kustomize` and its built-in kinds validate with `kubernetes-validate
//! --strict` (PyPI, in the project's `.venv`). What no schema checks is checked
//! here: the Prometheus Operator's resources find the Services and ports they
//! name, every Secret and ConfigMap a pod mounts exists, every image is one
//! `just images` builds, and each overlay runs its scenario's replica counts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use q2o_testkit::ScratchDir;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn venv_tool(name: &str) -> PathBuf {
    let tool = repo().join(".venv/bin").join(name);
    assert!(tool.exists(), "{} is missing: run scripts/setup.sh, which installs it", tool.display());
    tool
}

/// `kubectl kustomize <dir>`, whose output must pass `kubernetes-validate`.
pub(crate) fn kustomize(dir: &Path) -> String {
    let output = Command::new("kubectl").arg("kustomize").arg(dir).output().expect("kubectl runs");
    assert!(
        output.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Fails with kubernetes-validate's own words unless every built-in kind in
/// `yaml` validates strictly against Kubernetes 1.32.
pub(crate) fn validate(yaml: &str, what: &str) {
    let scratch = ScratchDir::new("k8s").unwrap();
    let file = scratch.path().join("manifests.yaml");
    std::fs::write(&file, yaml).unwrap();
    let output = Command::new(venv_tool("kubernetes-validate"))
        .args(["--strict", "--kubernetes-version", "1.32.0", "--quiet", "--no-warn"])
        .arg(&file)
        .output()
        .expect("kubernetes-validate runs");
    assert!(
        output.status.success(),
        "{what} does not validate:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The documents of `yaml` as JSON values (PyYAML of the project's `.venv`).
pub(crate) fn documents(yaml: &str) -> Vec<Value> {
    let script = "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))";
    let mut child = Command::new(venv_tool("python"))
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python runs");
    child.stdin.take().unwrap().write_all(yaml.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "the manifests are not YAML");
    serde_json::from_slice(&output.stdout).unwrap()
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> impl Iterator<Item = &'a Value> {
    let kind = kind.to_owned();
    docs.iter().filter(move |d| d["kind"] == kind.as_str())
}

fn named<'a>(docs: &'a [Value], kind_: &str, name: &str) -> Option<&'a Value> {
    kind(docs, kind_).find(|d| d["metadata"]["name"] == name)
}

fn app(doc: &Value) -> &str {
    doc["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"].as_str().unwrap_or_default()
}

fn workloads(docs: &[Value]) -> impl Iterator<Item = &Value> {
    docs.iter().filter(|d| matches!(d["kind"].as_str(), Some("Deployment" | "StatefulSet" | "Job")))
}

/// `[topology] key` of a scenario file.
fn topology_value(phase: &str, key: &str) -> Option<toml::Value> {
    let text = std::fs::read_to_string(repo().join(format!("scenarios/{phase}.toml"))).unwrap();
    let scenario: toml::Table = toml::from_str(&text).unwrap();
    scenario["topology"].get(key).cloned()
}

/// A count of `[topology]` (1 when left out, the topology's default).
fn topology(phase: &str, key: &str) -> u64 {
    topology_value(phase, key).and_then(|v| v.as_integer()).map_or(1, |v| v as u64)
}

/// The images `scripts/images.sh` builds, by name.
fn buildable_images() -> Vec<String> {
    let script = std::fs::read_to_string(repo().join("scripts/images.sh")).unwrap();
    let line = script.lines().find(|l| l.contains("names=(gateway")).expect("images.sh lists its images");
    let list = line.split_once("names=(").unwrap().1.trim_end_matches(')');
    list.split_whitespace().map(|n| format!("q2o/{n}")).collect()
}

/// The checks no schema makes, over one rendered overlay.
pub(crate) fn check_references(docs: &[Value], what: &str) {
    let images = buildable_images();
    for workload in workloads(docs) {
        let name = workload["metadata"]["name"].as_str().unwrap();
        let pod = &workload["spec"]["template"]["spec"];
        for container in pod["containers"].as_array().unwrap() {
            let image = container["image"].as_str().unwrap();
            let repository = image.rsplit_once(':').map_or(image, |(r, _)| r);
            assert!(
                images.iter().any(|i| i == repository) || repository == "apache/kafka",
                "{what}: {name} runs {image}, which `just images` does not build"
            );
            if workload["kind"] != "Job" {
                assert!(container["readinessProbe"].is_object(), "{what}: {name} has no readiness probe");
                assert!(container["livenessProbe"].is_object(), "{what}: {name} has no liveness probe");
                if repository.starts_with("q2o/") && container["livenessProbe"]["httpGet"].is_object() {
                    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/health", "{what}: {name}");
                    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/ready", "{what}: {name}");
                }
            }
            assert!(container["resources"]["limits"]["cpu"].is_string(), "{what}: {name} has no CPU limit");
            assert!(container["resources"]["requests"]["memory"].is_string(), "{what}: {name} has no memory request");
            for env in container["env"].as_array().into_iter().flatten() {
                if let Some(secret) = env["valueFrom"]["secretKeyRef"]["name"].as_str() {
                    assert!(named(docs, "Secret", secret).is_some(), "{what}: {name} reads a missing Secret {secret}");
                }
            }
        }
        for volume in pod["volumes"].as_array().into_iter().flatten() {
            if let Some(secret) = volume["secret"]["secretName"].as_str() {
                assert!(named(docs, "Secret", secret).is_some(), "{what}: {name} mounts a missing Secret {secret}");
            }
            if let Some(map) = volume["configMap"]["name"].as_str() {
                assert!(named(docs, "ConfigMap", map).is_some(), "{what}: {name} mounts a missing ConfigMap {map}");
            }
        }
    }
    // A ServiceMonitor scrapes a port of a Service it selects.
    for monitor in kind(docs, "ServiceMonitor") {
        let app = monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"].as_str().unwrap();
        let service = kind(docs, "Service")
            .find(|s| s["metadata"]["labels"]["app.kubernetes.io/name"] == app)
            .unwrap_or_else(|| panic!("{what}: ServiceMonitor {app} selects no Service"));
        let port = monitor["spec"]["endpoints"][0]["port"].as_str().unwrap();
        let ports = service["spec"]["ports"].as_array().unwrap();
        assert!(ports.iter().any(|p| p["name"] == port), "{what}: Service {app} has no port {port}");
        assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    }
    // Every service the stack runs is scraped.
    for workload in workloads(docs).filter(|w| matches!(app(w), "gateway" | "agents" | "search")) {
        let app = app(workload);
        let scraped =
            kind(docs, "ServiceMonitor").any(|m| m["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == app);
        assert!(scraped, "{what}: nothing scrapes {app}");
    }
    // Only the gateway reaches search's API (Prometheus its /metrics, on the same port).
    if let Some(policy) = named(docs, "NetworkPolicy", "search") {
        let peers = policy["spec"]["ingress"][0]["from"].as_array().unwrap();
        let pods: Vec<&Value> = peers.iter().filter_map(|p| p.get("podSelector")).collect();
        assert_eq!(pods.len(), 1, "{what}: {peers:?}");
        assert_eq!(pods[0]["matchLabels"]["app.kubernetes.io/name"], "gateway");
    }
}

fn env_value<'a>(workload: &'a Value, var: &str) -> Option<&'a str> {
    workload["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == var)
        .and_then(|e| e["value"].as_str())
}

#[test]
fn every_phase_overlay_renders_validates_and_runs_its_scenarios_topology() {
    for phase in ["phase1", "phase2", "phase3", "phase4"] {
        let yaml = kustomize(&repo().join("deploy/kubernetes/overlays").join(phase));
        validate(&yaml, phase);
        let docs = documents(&yaml);
        check_references(&docs, phase);

        let gateway = named(&docs, "Deployment", "gateway").expect("a gateway Deployment");
        assert_eq!(gateway["spec"]["replicas"], topology(phase, "gateways"), "{phase}: gateway replicas");
        let hpa = named(&docs, "HorizontalPodAutoscaler", "gateway").expect("the gateways autoscale");
        assert_eq!(hpa["spec"]["minReplicas"], gateway["spec"]["replicas"], "{phase}: the autoscaler's floor");
        let agents = named(&docs, "Deployment", "agents").expect("an agents Deployment");
        assert_eq!(agents["spec"]["replicas"], topology(phase, "agent_processes"), "{phase}: agents replicas");
        assert!(named(&docs, "PodDisruptionBudget", "gateway").is_some(), "{phase}");
        assert!(
            named(&docs, "NetworkPolicy", "default-deny-ingress").is_some(),
            "{phase}: nothing is denied by default"
        );
        assert!(named(&docs, "PrometheusRule", "q2o-slos").is_some(), "{phase}: the SLO rules");
        let dashboards = kind(&docs, "ConfigMap").filter(|m| m["metadata"]["labels"]["grafana_dashboard"] == "1");
        assert_eq!(dashboards.count(), 5, "{phase}: every Grafana dashboard, labelled for the sidecar");

        // Search and the event log come together, from phase 2 on, as in the scenario files.
        let search = topology_value(phase, "search").and_then(|v| v.as_bool()).unwrap_or(false);
        assert_eq!(topology_value(phase, "kafka").and_then(|v| v.as_bool()).unwrap_or(false), search, "{phase}");
        assert_eq!(named(&docs, "StatefulSet", "search").is_some(), search, "{phase}: search");
        assert_eq!(named(&docs, "StatefulSet", "kafka").is_some(), search, "{phase}: the event log");
        assert_eq!(env_value(gateway, "Q2O_SEARCH_URL").is_some(), search, "{phase}: the gateway's search URL");
        let redis = named(&docs, "StatefulSet", "redis").expect("Redis");
        let args: Vec<&str> = redis["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(args.windows(2).any(|w| w == ["--appendonly", "yes"]), "{phase}: Redis keeps an AOF");
        assert!(redis["spec"]["volumeClaimTemplates"].is_array(), "{phase}: Redis's AOF on a volume");
    }
}

#[test]
fn a_manifest_with_a_wrong_field_does_not_validate() {
    // The check above can fail: a misspelt field is refused.
    let yaml = kustomize(&repo().join("deploy/kubernetes/overlays/phase1")).replace("minReplicas:", "minReplica:");
    let scratch = ScratchDir::new("k8s-bad").unwrap();
    let file = scratch.path().join("bad.yaml");
    std::fs::write(&file, yaml).unwrap();
    let status = Command::new(venv_tool("kubernetes-validate"))
        .args(["--strict", "--kubernetes-version", "1.32.0", "--quiet", "--no-warn"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success());
}

#[derive(Debug, clap::Parser)]
enum LoadgenCli {
    Users(q2o_loadgen::command::UsersCommand),
}

#[test]
fn a_rendered_cluster_run_validates_and_splits_the_users_over_an_indexed_job() {
    let scratch = ScratchDir::new("k8s-run").unwrap();
    let out = scratch.path().join("run");
    let (code, stdout, stderr) = crate::runner::bench(
        &["render", "scenarios/phase2.toml", "--env", "kubernetes", "--users", "25001", "--out", out.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("3 loadgen pods"), "{stdout}");
    let yaml = kustomize(&out);
    validate(&yaml, "the rendered run");
    let docs = documents(&yaml);
    let job = kind(&docs, "Job").next().expect("a Job");
    assert_eq!(job["metadata"]["namespace"], "q2o");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!((&spec["completions"], &spec["parallelism"]), (&Value::from(3), &Value::from(3)));
    assert_eq!(spec["backoffLimit"], 0, "a shard must not run twice");
    let rules = kind(&docs, "PrometheusRule").next().expect("the gate rules");
    assert_eq!(rules["metadata"]["name"], "q2o-gate-phase2");
    check_references(&docs, "the rendered run");
    // The stack's PodMonitor scrapes the pods' port.
    let container = &spec["template"]["spec"]["containers"][0];
    assert_eq!(container["ports"][0]["name"], "metrics");
    assert_eq!(spec["template"]["metadata"]["labels"]["app.kubernetes.io/name"], "loadgen");

    // Each pod, with the index the Job controller gives it, runs its share.
    let args: Vec<String> =
        container["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect();
    assert!(!args.iter().any(|a| a == "--shard-index"), "the index comes from JOB_COMPLETION_INDEX: {args:?}");
    let parse = |args: &[String]| {
        use clap::Parser;
        match LoadgenCli::try_parse_from(std::iter::once("q2o-loadgen".to_owned()).chain(args.iter().cloned())) {
            Ok(LoadgenCli::Users(command)) => command,
            Err(e) => panic!("{e}"),
        }
    };
    let command = parse(&args);
    assert_eq!((command.users, command.common.shards), (25_001, 3));
    assert!(command.common.start_at.is_some() && command.common.serve_results.is_some());
    let shares: Vec<usize> = (0..3).map(|i| command.share(i, 3).users).collect();
    assert_eq!(shares, [8334, 8334, 8333]);
}

#[test]
fn rendering_a_scenario_with_faults_for_a_cluster_is_refused() {
    let (code, _, stderr) =
        crate::runner::bench(&["render", "scenarios/failover.toml", "--out", "/nonexistent/x"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("faults"), "{stderr}");
}
