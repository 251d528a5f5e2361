//! Child processes of a run: started with their output in the run's logs,
//! waited on until ready, restarted when they die (as Kubernetes would), and
//! all stopped at the end. The stop is a guard, not best effort: every child
//! is spawned with `kill_on_drop` and with the parent-death signal set, so an
//! error, a panic or a killed runner still takes them down.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::time::Instant;

use q2o_common::runtime::Flavor;

use crate::backend::Recovery;
use crate::error::EnvError;
use crate::priority;

/// How to tell that a service is ready.
#[derive(Clone, Debug)]
pub enum Readiness {
    /// `GET` answers 2xx.
    Http(String),
    /// A TCP connection is accepted.
    Tcp(std::net::SocketAddr),
    /// The log contains this text (since this start).
    LogLine(&'static str),
}

/// What to run.
#[derive(Clone, Debug)]
pub struct ServiceSpec {
    /// Name in logs and reports (`gateway-0`).
    pub name: String,
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Working directory, if not the runner's.
    pub cwd: Option<PathBuf>,
    /// When it counts as started.
    pub ready: Readiness,
    /// Whether a death is answered with a restart.
    pub restart: bool,
    /// Its nice value ([`crate::priority`]); 0 leaves it at the harness's.
    pub nice: i32,
}

#[derive(Debug)]
struct Supervised {
    spec: ServiceSpec,
    log: PathBuf,
    child: tokio::sync::Mutex<Option<Child>>,
    pid: AtomicU32,
    restarts: AtomicU32,
    /// Stopped on purpose (a `stop` fault): not restarted until `start`.
    held: AtomicBool,
}

/// The run's processes.
#[derive(Debug)]
pub struct Supervisor {
    logs: PathBuf,
    services: Mutex<Vec<Arc<Supervised>>>,
    recoveries: Arc<Mutex<Vec<Recovery>>>,
    stopping: Arc<AtomicBool>,
    started: Instant,
    watchers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// How long a service gets to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a service gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

impl Supervisor {
    /// A supervisor writing logs into `logs`, timing recoveries from `epoch`.
    pub fn new(logs: PathBuf, epoch: Instant) -> Result<Supervisor, EnvError> {
        std::fs::create_dir_all(&logs).map_err(EnvError::io(&logs))?;
        Ok(Supervisor {
            logs,
            services: Mutex::default(),
            recoveries: Arc::default(),
            stopping: Arc::default(),
            started: epoch,
            watchers: Mutex::default(),
        })
    }

    /// Starts `spec`, waits until it is ready, and watches it from then on.
    pub async fn start(&self, spec: ServiceSpec) -> Result<(), EnvError> {
        let log = self.logs.join(format!("{}.log", spec.name));
        let child = spawn(&spec, &log)?;
        let service = Arc::new(Supervised {
            pid: AtomicU32::new(child.id().unwrap_or(0)),
            spec,
            log,
            child: tokio::sync::Mutex::new(Some(child)),
            restarts: AtomicU32::new(0),
            held: AtomicBool::new(false),
        });
        self.services.lock().expect("never poisoned").push(Arc::clone(&service));
        wait_ready(&service, 0).await?;
        if service.spec.restart {
            let watcher = tokio::spawn(watch(
                Arc::clone(&service),
                Arc::clone(&self.stopping),
                Arc::clone(&self.recoveries),
                self.started,
            ));
            self.watchers.lock().expect("never poisoned").push(watcher);
        }
        Ok(())
    }

    fn find(&self, name: &str) -> Option<Arc<Supervised>> {
        self.services.lock().expect("never poisoned").iter().find(|s| s.spec.name == name).cloned()
    }

    /// Sends `signal` to a service's current process; false if none runs.
    fn signal(&self, name: &str, signal: libc::c_int) -> bool {
        let pid = self.find(name).map_or(0, |s| s.pid.load(Ordering::Relaxed));
        // SAFETY: kill(2) on the pid of a child we spawned and still hold.
        pid != 0 && unsafe { libc::kill(pid as libc::pid_t, signal) } == 0
    }

    /// Sends SIGKILL to a service (a fault); its watcher restarts it.
    pub fn kill(&self, name: &str) -> bool {
        self.signal(name, libc::SIGKILL)
    }

    /// Freezes a service (SIGSTOP): it holds its sockets but answers nothing.
    pub fn pause(&self, name: &str) -> bool {
        self.signal(name, libc::SIGSTOP)
    }

    /// Thaws a paused service (SIGCONT).
    pub fn unpause(&self, name: &str) -> bool {
        self.signal(name, libc::SIGCONT)
    }

    /// Stops a service gracefully (SIGTERM) and keeps it down until [`Supervisor::resume`].
    pub fn hold(&self, name: &str) -> bool {
        let Some(service) = self.find(name) else { return false };
        service.held.store(true, Ordering::SeqCst);
        self.signal(name, libc::SIGTERM)
    }

    /// Lets a held service start again; its watcher restarts it.
    pub fn resume(&self, name: &str) -> bool {
        self.find(name).is_some_and(|s| s.held.swap(false, Ordering::SeqCst))
    }

    /// Waits until a service that is not restarted has exited, up to `within`;
    /// `None` if it had not (it is still running).
    pub async fn wait_exit(&self, name: &str, within: Duration) -> Option<std::process::ExitStatus> {
        let service = self.find(name)?;
        let deadline = Instant::now() + within;
        loop {
            {
                let mut slot = service.child.lock().await;
                match slot.as_mut().map(Child::try_wait) {
                    Some(Ok(Some(status))) => return Some(status),
                    Some(Err(_)) | None => return None,
                    Some(Ok(None)) => {}
                }
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Asks a service to stop (SIGTERM) without restarting it.
    pub fn terminate(&self, name: &str) {
        self.signal(name, libc::SIGTERM);
    }

    /// Restarts so far, by service.
    pub fn restarts(&self) -> Vec<(String, u32)> {
        let services = self.services.lock().expect("never poisoned");
        services.iter().map(|s| (s.spec.name.clone(), s.restarts.load(Ordering::Relaxed))).collect()
    }

    /// Seconds since its epoch: the clock of [`Recovery::died_at`].
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Every restart so far.
    pub fn recoveries(&self) -> Vec<Recovery> {
        self.recoveries.lock().expect("never poisoned").clone()
    }

    /// Stops every service, last started first: SIGTERM, then SIGKILL after a grace period.
    pub async fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for watcher in self.watchers.lock().expect("never poisoned").drain(..) {
            watcher.abort();
        }
        let services: Vec<_> = self.services.lock().expect("never poisoned").iter().rev().cloned().collect();
        for service in services {
            let mut slot = service.child.lock().await;
            if let Some(child) = slot.as_mut() {
                terminate(child).await;
            }
            *slot = None;
            service.pid.store(0, Ordering::Relaxed);
        }
    }

    /// The services now running, by name, with their pids.
    pub fn named_pids(&self) -> Vec<(String, u32)> {
        let services = self.services.lock().expect("never poisoned");
        services
            .iter()
            .map(|s| (s.spec.name.clone(), s.pid.load(Ordering::Relaxed)))
            .filter(|(_, pid)| *pid != 0)
            .collect()
    }

    /// The most cores each service's runtime uses, where its environment
    /// sets `Q2O_WORKER_THREADS` to a bounded runtime.
    pub fn core_limits(&self) -> HashMap<String, f64> {
        let services = self.services.lock().expect("never poisoned");
        services
            .iter()
            .filter_map(|s| {
                let (_, value) = s.spec.env.iter().find(|(k, _)| k == q2o_common::runtime::WORKER_THREADS_VAR)?;
                Some((s.spec.name.clone(), Flavor::parse(value).ok()?.cores()?))
            })
            .collect()
    }

    /// The pids of the services now running.
    pub fn pids(&self) -> Vec<u32> {
        let services = self.services.lock().expect("never poisoned");
        services.iter().map(|s| s.pid.load(Ordering::Relaxed)).filter(|p| *p != 0).collect()
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // The guard: whatever is still running dies with us.
        for pid in self.pids() {
            // SAFETY: kill(2) on our own children.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
    }
}

fn spawn(spec: &ServiceSpec, log: &PathBuf) -> Result<Child, EnvError> {
    let spawn_error =
        |source| EnvError::Spawn { name: spec.name.clone(), program: spec.program.display().to_string(), source };
    let file = std::fs::OpenOptions::new().create(true).append(true).open(log).map_err(spawn_error)?;
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(file.try_clone().map_err(spawn_error)?)
        .stderr(file)
        .kill_on_drop(true);
    if let Some(dir) = &spec.cwd {
        command.current_dir(dir);
    }
    // SAFETY: prctl in the child between fork and exec touches no shared state.
    unsafe {
        command.pre_exec(|| {
            // The child dies with the runner, even if the runner is SIGKILLed.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    priority::start_at(&mut command, spec.nice);
    let child = command.spawn().map_err(spawn_error)?;
    if let Some(pid) = child.id() {
        priority::spawned(&spec.name, pid, spec.nice);
    }
    Ok(child)
}

async fn wait_ready(service: &Supervised, log_offset: u64) -> Result<(), EnvError> {
    let started = Instant::now();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(1)).build().expect("static client config");
    loop {
        {
            let mut slot = service.child.lock().await;
            if let Some(child) = slot.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(not_ready(service, started, format!("exited with {status}")));
            }
        }
        let ready = match &service.spec.ready {
            Readiness::Http(url) => client.get(url).send().await.is_ok_and(|r| r.status().is_success()),
            Readiness::Tcp(addr) => tokio::net::TcpStream::connect(addr).await.is_ok(),
            Readiness::LogLine(text) => log_since(&service.log, log_offset).contains(text),
        };
        if ready {
            return Ok(());
        }
        if started.elapsed() > READY_TIMEOUT {
            return Err(not_ready(service, started, "timed out".into()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn not_ready(service: &Supervised, started: Instant, why: String) -> EnvError {
    let text = std::fs::read_to_string(&service.log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(10)..].join("\n");
    EnvError::NotReady { name: service.spec.name.clone(), seconds: started.elapsed().as_secs(), why, tail }
}

fn log_since(log: &PathBuf, offset: u64) -> String {
    let bytes = std::fs::read(log).unwrap_or_default();
    String::from_utf8_lossy(bytes.get(offset as usize..).unwrap_or_default()).into_owned()
}

/// Waits for the service to die and restarts it, until the run stops.
async fn watch(
    service: Arc<Supervised>,
    stopping: Arc<AtomicBool>,
    recoveries: Arc<Mutex<Vec<Recovery>>>,
    epoch: Instant,
) {
    loop {
        // Poll rather than hold the lock across wait(): stop() needs the child too.
        let status = loop {
            {
                let mut slot = service.child.lock().await;
                match slot.as_mut().map(Child::try_wait) {
                    Some(Ok(Some(status))) => break Some(status),
                    None => return,
                    _ => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let died = Instant::now();
        while service.held.load(Ordering::SeqCst) {
            if stopping.load(Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // A held service's recovery counts from its `start`, not from its stop.
        let restarting = Instant::now();
        tracing::warn!(service = %service.spec.name, ?status, "service died; restarting");
        let offset = std::fs::metadata(&service.log).map(|m| m.len()).unwrap_or(0);
        let recovered_after = match spawn(&service.spec, &service.log) {
            Ok(child) => {
                service.pid.store(child.id().unwrap_or(0), Ordering::Relaxed);
                *service.child.lock().await = Some(child);
                service.restarts.fetch_add(1, Ordering::Relaxed);
                wait_ready(&service, offset).await.ok().map(|()| restarting.elapsed().as_secs_f64())
            }
            Err(err) => {
                tracing::error!(%err, "restart failed");
                None
            }
        };
        recoveries.lock().expect("never poisoned").push(Recovery {
            service: service.spec.name.clone(),
            died_at: (died - epoch).as_secs_f64(),
            recovered_after,
        });
        if recovered_after.is_none() {
            return;
        }
    }
}

async fn terminate(child: &mut Child) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_ok() {
            return;
        }
    }
    let _ = child.kill().await;
}
