/*!
Test support: real servers on free loopback ports, stopped when dropped.

* [`RedisServer`] starts `redis-server` (from the system) on a free port with no
  persistence.
* [`Service`] starts one of our binaries, waits for its `listening:` line (no
  readiness sleep) and exposes the addresses it printed.
* [`eventually`] polls a condition until a deadline.

Every process started here is killed when its handle drops, including when a
test panics.
*/

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub mod docker;

/// A child process killed (SIGKILL) and reaped on drop.
#[derive(Debug)]
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A scratch directory removed on drop.
#[derive(Debug)]
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    /// A fresh empty directory under the system temp dir.
    pub fn new(label: &str) -> anyhow::Result<ScratchDir> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos();
        let path = std::env::temp_dir().join(format!("q2o-{label}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(ScratchDir(path))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port that was free a moment ago. For servers that cannot bind port 0
/// themselves; callers retry if the port was taken in between.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A `redis-server` of our own.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    aof: bool,
    child: ChildGuard,
    dir: ScratchDir,
}

impl RedisServer {
    /// Starts `redis-server` on a free port and waits until it answers PING.
    pub fn start() -> anyhow::Result<RedisServer> {
        Self::start_with(false)
    }

    /// The same with the append-only file on, so that [`RedisServer::restart`] keeps the data.
    pub fn start_with_aof() -> anyhow::Result<RedisServer> {
        Self::start_with(true)
    }

    fn start_with(aof: bool) -> anyhow::Result<RedisServer> {
        let mut last_error = None;
        for _ in 0..5 {
            let attempt = ScratchDir::new("redis").and_then(|dir| {
                let port = free_port()?;
                let child = spawn_redis(port, aof, dir.path())?;
                Ok(RedisServer { port, aof, child, dir })
            });
            match attempt {
                Ok(server) => return Ok(server),
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.expect("at least one attempt was made"))
    }

    /// Stops the server gracefully (SIGTERM: it writes its AOF) and starts it
    /// again on the same port and folder.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.0.id() as libc::pid_t, libc::SIGTERM) };
        self.child.0.wait()?;
        self.child = spawn_redis(self.port, self.aof, self.dir.path())?;
        Ok(())
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }
}

fn spawn_redis(port: u16, aof: bool, dir: &Path) -> anyhow::Result<ChildGuard> {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
        .args(["--appendonly", if aof { "yes" } else { "no" }])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run redis-server (install it: apt-get install redis-server)")?;
    let mut child = ChildGuard(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(status) = child.0.try_wait()? {
            bail!("redis-server exited at start ({status}); port {port} may be taken");
        }
        if ping(port) {
            return Ok(child);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("redis-server did not answer PING on port {port} within 10 s")
}

fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok() && stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

/// The tansu binary: `$Q2O_TANSU`, the copy `scripts/setup.sh` builds, or `tansu` on PATH.
pub fn tansu_path() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("Q2O_TANSU") {
        return Ok(PathBuf::from(path));
    }
    let cached =
        PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/q2o-bench/tansu-0.6.0-q2o1/bin/tansu");
    if cached.exists() {
        return Ok(cached);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("tansu"))
        .find(|p| p.exists());
    on_path.ok_or_else(|| anyhow::anyhow!("tansu is not installed; run ./scripts/setup.sh (it builds tansu 0.6.0)"))
}

/// A tansu Kafka-protocol broker with sqlite storage, restartable on the same
/// port and data.
#[derive(Debug)]
pub struct Broker {
    port: u16,
    child: Option<ChildGuard>,
    dir: ScratchDir,
}

impl Broker {
    /// Starts tansu on a free port with a fresh sqlite store.
    pub fn start() -> anyhow::Result<Broker> {
        let mut last_error = None;
        for _ in 0..5 {
            let mut broker = Broker { port: free_port()?, child: None, dir: ScratchDir::new("tansu")? };
            match broker.launch() {
                Ok(()) => return Ok(broker),
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.expect("at least one attempt was made"))
    }

    fn launch(&mut self) -> anyhow::Result<()> {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let mut child = Command::new(tansu_path()?)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            // tansu resolves sqlite:// paths against its working directory.
            .args(["--storage-engine", "sqlite://broker.db"])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(self.dir.path().join("stderr.log"))?)
            .spawn()
            .context("cannot run tansu")?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut child = ChildGuard(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("ready in") {
                    let _ = tx.send(());
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if rx.recv_timeout(Duration::from_millis(50)).is_ok() {
                break;
            }
            if let Some(status) = child.0.try_wait()? {
                let stderr = std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default();
                bail!("tansu exited at start ({status}):\n{stderr}");
            }
            if Instant::now() > deadline {
                bail!("tansu was not ready within 20 s");
            }
        }
        self.child = Some(child);
        Ok(())
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the broker (SIGTERM, then SIGKILL) and starts it again on the same
    /// port and storage.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.take() {
            // SAFETY: kill(2) with a pid we own and a valid signal number.
            unsafe { libc::kill(child.0.id() as libc::pid_t, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut child = child;
            while Instant::now() < deadline && child.0.try_wait()?.is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.launch()
    }
}

/// Where the workspace's binaries are (`target/<profile>/`), found from the test executable.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/<test> -> target/<profile>
    exe.parent().and_then(Path::parent).expect("tests run from target/<profile>/deps").to_owned()
}

/// One of our binaries, running.
#[derive(Debug)]
pub struct Service {
    name: String,
    addrs: HashMap<String, SocketAddr>,
    child: Option<ChildGuard>,
    log: PathBuf,
    _dir: ScratchDir,
}

impl Service {
    /// Starts `binary` (from [`bin_dir`]) with `args` and `env`, and waits up to
    /// 30 s for its `NAME listening: key=addr ...` line.
    pub fn start(binary: &str, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Service> {
        let path = bin_dir().join(binary);
        if !path.exists() {
            bail!("{} is not built; run `cargo build --bins` first (`just test` does)", path.display());
        }
        let dir = ScratchDir::new(binary)?;
        let log = dir.path().join("stderr.log");
        let mut child = Command::new(&path)
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("cannot run {}", path.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut child = ChildGuard(child);
        let (tx, rx) = mpsc::channel();
        // Keeps draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains(" listening:") {
                    let _ = tx.send(line);
                }
            }
        });
        let line = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => break line,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(status) = child.0.try_wait()? {
                        let stderr = std::fs::read_to_string(&log).unwrap_or_default();
                        bail!("{binary} exited at start ({status}):\n{stderr}");
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
                    bail!("{binary} closed stdout before listening:\n{stderr}");
                }
            }
            if dir_age(&dir) > Duration::from_secs(30) {
                bail!("{binary} did not print its listening line within 30 s");
            }
        };
        let addrs = line
            .split_whitespace()
            .filter_map(|pair| pair.split_once('='))
            .filter_map(|(key, addr)| Some((key.to_owned(), addr.parse().ok()?)))
            .collect();
        Ok(Service { name: binary.to_owned(), addrs, child: Some(child), log, _dir: dir })
    }

    /// An address the service announced (`http`, `grpc` ...).
    pub fn addr(&self, key: &str) -> SocketAddr {
        *self.addrs.get(key).unwrap_or_else(|| panic!("{} announced no `{key}` address: {:?}", self.name, self.addrs))
    }

    /// `http://ADDR` for an announced address.
    pub fn url(&self, key: &str) -> String {
        format!("http://{}", self.addr(key))
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.0.id())
    }

    /// SIGKILLs it (a crash: no cleanup, no graceful shutdown).
    pub fn kill(&mut self) {
        self.child = None;
    }

    /// SIGTERMs it and waits up to `timeout` for it to exit; returns its exit code.
    pub fn terminate(&mut self, timeout: Duration) -> anyhow::Result<Option<i32>> {
        let Some(mut child) = self.child.take() else { bail!("{} is not running", self.name) };
        // SAFETY: kill(2) with a pid we own and a valid signal number.
        unsafe { libc::kill(child.0.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = child.0.try_wait()? {
                return Ok(status.code());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("{} did not exit within {timeout:?} of SIGTERM", self.name)
    }

    /// What it wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn dir_age(dir: &ScratchDir) -> Duration {
    std::fs::metadata(dir.path()).and_then(|m| m.created()).ok().and_then(|t| t.elapsed().ok()).unwrap_or_default()
}

/// Polls `check` every 50 ms until it returns `Some`, or fails after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads one sample of a Prometheus text exposition: the value of the series
/// `name` whose labels include every `label=value` pair given.
pub fn metric_value(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            (metric == name && labels.iter().all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\""))))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .reduce(|a, b| a + b)
}

/// Sums [`metric_value`] over the expositions of several processes.
pub fn metric_sum(expositions: &[String], name: &str, labels: &[(&str, &str)]) -> f64 {
    expositions.iter().filter_map(|e| metric_value(e, name, labels)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_values_are_summed_over_matching_series() {
        let text = "# HELP x\nhttp_requests_total{method=\"GET\",route=\"/a\",status=\"200\"} 3\n\
                    http_requests_total{method=\"POST\",route=\"/a\",status=\"200\"} 4\n\
                    http_requests_total{method=\"GET\",route=\"/b\",status=\"200\"} 5\n";
        assert_eq!(metric_value(text, "http_requests_total", &[("route", "/a")]), Some(7.0));
        assert_eq!(metric_value(text, "http_requests_total", &[]), Some(12.0));
        assert_eq!(metric_value(text, "http_requests_total", &[("route", "/c")]), None);
    }

    #[test]
    fn redis_starts_answers_and_stops() {
        let redis = RedisServer::start().unwrap();
        assert!(ping(redis.port()));
        let port = redis.port();
        drop(redis);
        assert!(!ping(port));
    }
}
