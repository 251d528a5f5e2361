//! One conformance suite for every backend, as `system/common/tests/store.rs`
//! is for every store: start a topology, every endpoint answers, a killed
//! service is restarted and timed, a paused one answers again once thawed,
//! and stopping leaves nothing behind. The docker half skips, saying so,
//! where no engine runs.

use std::path::Path;
use std::time::Duration;

use q2o_env::backend::Recovery;
use q2o_env::binaries::Binaries;
use q2o_env::topology::{FaultAction, Topology};
use q2o_env::{EnvKind, Environment};
use q2o_testkit::{ScratchDir, docker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Redis, the broker, one agents process, two gateways behind the balancer.
fn topology() -> Topology {
    toml::from_str("redis = true\nkafka = true\nagent_processes = 1\ngateways = 2\nload_balancer = true").unwrap()
}

fn binaries() -> Binaries {
    Binaries { q2o: q2o_testkit::bin_dir(), ..Binaries::discover() }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(1)).build().unwrap()
}

async fn answers(url: &str) -> bool {
    client().get(url).send().await.is_ok_and(|r| r.status().is_success())
}

async fn redis_pong(url: &str) -> bool {
    let addr = url.trim_start_matches("redis://");
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else { return false };
    let mut answer = [0u8; 7];
    stream.write_all(b"PING\r\n").await.is_ok()
        && stream.read_exact(&mut answer).await.is_ok()
        && &answer == b"+PONG\r\n"
}

async fn tcp(url: &str) -> bool {
    tokio::net::TcpStream::connect(url.trim_start_matches("http://")).await.is_ok()
}

/// Waits up to 30 s for `service`'s first recovery.
async fn recovery_of(env: &Environment, service: &str) -> Recovery {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(r) = env.recoveries().into_iter().find(|r| r.service == service && r.recovered_after.is_some()) {
            return r;
        }
        assert!(tokio::time::Instant::now() < deadline, "{service} was not restarted: {:?}", env.recoveries());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Processes whose command line mentions `dir`.
fn processes_mentioning(dir: &Path) -> Vec<String> {
    let needle = dir.to_str().unwrap();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = String::from_utf8_lossy(&std::fs::read(entry.path().join("cmdline")).unwrap_or_default())
            .replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(cmdline);
        }
    }
    found
}

/// The suite, on one backend. Returns the run folder and id for the backend's own leak checks.
async fn conforms(kind: EnvKind) -> (ScratchDir, String) {
    let dir = ScratchDir::new(&format!("env-{}", kind.as_str())).unwrap();
    let run_id = format!("conformance{}{}", std::process::id(), kind.as_str());
    let env = Environment::start(&topology(), kind, &binaries(), dir.path(), &run_id)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", kind.as_str()));
    let e = &env.endpoints;

    // Every endpoint answers.
    assert_eq!(e.rest_urls.len(), 1, "the users go through the balancer");
    assert!(answers(&format!("{}/ready", e.rest_urls[0])).await, "{e:?}");
    assert!(tcp(&e.grpc_urls[0]).await, "{e:?}");
    assert!(redis_pong(e.redis_url.as_deref().unwrap()).await, "{e:?}");
    assert_eq!(e.agents.len(), 1);
    assert!(answers(&format!("{}/ready", e.agents[0].rest)).await && tcp(&e.agents[0].grpc).await, "{e:?}");
    let jobs: Vec<&str> = e.targets.iter().map(|t| t.job.as_str()).collect();
    assert_eq!(jobs, ["agents", "gateway", "gateway"]);
    for target in &e.targets {
        let exposition = client().get(format!("http://{}/metrics", target.addr)).send().await.unwrap();
        assert!(exposition.text().await.unwrap().contains("# TYPE"), "{target:?}");
    }
    let pids = env.service_pids().await;
    let names: Vec<&str> = pids.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["redis", "broker", "agents-0", "gateway-0", "gateway-1", "load-balancer"]);
    for (name, pid) in &pids {
        assert!(Path::new(&format!("/proc/{pid}")).exists(), "{name}: pid {pid} is not a host process");
        // A container is measured by its control group, as its limits are.
        if kind == EnvKind::Docker {
            let own = q2o_env::resources::cgroup_sample(*pid);
            let (cpu, rss) = own.unwrap_or_else(|| panic!("{name}: no readable cgroup"));
            assert!(cpu > 0.0 && rss > 0, "{name}: cgroup says {cpu} CPU-s, {rss} B");
        }
    }

    // A killed service is restarted, and the restart is timed; the broker's
    // readiness is a log line, which its first start already printed.
    for service in ["gateway-0", "broker"] {
        assert!(env.inject(FaultAction::Kill, service).await.unwrap(), "{service}");
        let recovery = recovery_of(&env, service).await;
        assert!(recovery.recovered_after.unwrap() < 10.0, "{recovery:?}");
    }
    assert!(answers(&format!("{}/ready", e.rest_urls[0])).await);

    // A paused replica answers nothing, and answers again once thawed.
    let replica = format!("http://{}/ready", e.targets.iter().rfind(|t| t.job == "gateway").unwrap().addr);
    assert!(env.inject(FaultAction::Pause, "gateway-1").await.unwrap());
    assert!(!answers(&replica).await, "a paused replica answered");
    assert!(env.inject(FaultAction::Unpause, "gateway-1").await.unwrap());
    assert!(answers(&replica).await, "a thawed replica did not answer");
    assert!(!env.inject(FaultAction::Kill, "nonexistent").await.unwrap(), "no such service");

    env.stop().await;
    assert!(!answers(&format!("{}/ready", e.rest_urls[0])).await, "the balancer outlived stop");
    assert!(!redis_pong(e.redis_url.as_deref().unwrap()).await, "redis outlived stop");
    assert!(dir.path().join("logs/gateway-0.log").is_file(), "logs are kept");
    (dir, run_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_backend_conforms() {
    let (dir, _) = conforms(EnvKind::Local).await;
    assert!(processes_mentioning(dir.path()).is_empty(), "left running: {:?}", processes_mentioning(dir.path()));
}

#[tokio::test]
async fn network_faults_are_refused_locally_naming_the_fault() {
    let dir = ScratchDir::new("env-netfault").unwrap();
    let topology: Topology = toml::from_str("redis = true").unwrap();
    let env = Environment::start(&topology, EnvKind::Local, &binaries(), dir.path(), "netfault").await.unwrap();
    let refused = env.inject(FaultAction::Disconnect, "redis").await.unwrap_err().to_string();
    env.stop().await;
    assert_eq!(refused, "fault `disconnect` of redis needs the docker environment");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docker_backend_conforms() {
    if !docker::available() {
        eprintln!("skipping the docker backend: /var/run/docker.sock is absent (no docker engine here)");
        return;
    }
    // The images, from the binaries under test (a no-op when they are current).
    docker::build_images(&["redis", "broker", "agents", "gateway", "load-balancer"]);
    let (_dir, run_id) = conforms(EnvKind::Docker).await;
    assert_eq!(docker::cli(&["ps", "-a", "-q", "--filter", &format!("label=q2o.run={run_id}")]), "", "containers left");
    let network = format!("q2o-{}", run_id.to_lowercase());
    assert_eq!(docker::cli(&["network", "ls", "-q", "--filter", &format!("name={network}")]), "", "network left");
}
