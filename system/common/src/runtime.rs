//! The services' tokio runtime, sized for a machine they share.
//!
//! tokio's default is one worker thread per core in every process. A stack
//! of eight processes on two cores then runs sixteen workers that steal work
//! from each other and wake each other across threads; on such a box one
//! worker per service does the same work with fewer context switches. How
//! many is the operator's call, so it is configuration, not a constant:
//! `Q2O_WORKER_THREADS` is a count, or `current` for a single-threaded
//! runtime (the request and its connection's driver on one thread).

use std::fmt;

/// The environment variable every service reads.
pub const WORKER_THREADS_VAR: &str = "Q2O_WORKER_THREADS";

/// A runtime's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Everything on the thread that calls `block_on`.
    CurrentThread,
    /// A work-stealing pool of this many workers.
    MultiThread(usize),
    /// tokio's default: one worker per core.
    PerCore,
}

/// `Q2O_WORKER_THREADS` holds something that is neither a count nor `current`.
#[derive(Debug, thiserror::Error)]
#[error("{WORKER_THREADS_VAR}={value}: expected a worker count of at least 1, `current` or `per-core`")]
pub struct FlavorError {
    value: String,
}

impl Flavor {
    /// Parses a `Q2O_WORKER_THREADS` value.
    pub fn parse(value: &str) -> Result<Flavor, FlavorError> {
        match value.trim() {
            "current" | "current_thread" => Ok(Flavor::CurrentThread),
            "per-core" => Ok(Flavor::PerCore),
            n => match n.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(Flavor::MultiThread(n)),
                _ => Err(FlavorError { value: value.to_owned() }),
            },
        }
    }

    /// From the environment; [`Flavor::PerCore`] when unset.
    pub fn from_env() -> Result<Flavor, FlavorError> {
        Flavor::from_env_or(Flavor::PerCore)
    }

    /// From the environment; `unset` when it says nothing.
    pub fn from_env_or(unset: Flavor) -> Result<Flavor, FlavorError> {
        match std::env::var(WORKER_THREADS_VAR) {
            Ok(value) if !value.trim().is_empty() => Flavor::parse(&value),
            _ => Ok(unset),
        }
    }

    /// [`Flavor::build`], its error naming the flavor.
    pub fn start(self) -> anyhow::Result<tokio::runtime::Runtime> {
        self.build().map_err(|err| anyhow::Error::new(err).context(format!("cannot start a {self} runtime")))
    }

    /// A runtime of this shape, with I/O and time enabled.
    pub fn build(self) -> std::io::Result<tokio::runtime::Runtime> {
        let mut builder = match self {
            Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
            Flavor::MultiThread(n) => {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                builder.worker_threads(n);
                builder
            }
            Flavor::PerCore => tokio::runtime::Builder::new_multi_thread(),
        };
        builder.enable_all().build()
    }
}

impl Flavor {
    /// The most cores a process of this flavor uses at once (`None`: every core).
    pub fn cores(self) -> Option<f64> {
        match self {
            Flavor::CurrentThread => Some(1.0),
            Flavor::MultiThread(n) => Some(n as f64),
            Flavor::PerCore => None,
        }
    }
}

/// In a file: `"current"`, `"per-core"` or a worker count.
impl<'de> serde::Deserialize<'de> for Flavor {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Flavor, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(u64),
            Text(String),
        }
        let text = match Raw::deserialize(deserializer)? {
            Raw::Count(n) => n.to_string(),
            Raw::Text(text) => text,
        };
        Flavor::parse(&text).map_err(|_| {
            serde::de::Error::custom(format!(
                "`{text}`: expected a worker count of at least 1, \"current\" or \"per-core\""
            ))
        })
    }
}

impl serde::Serialize for Flavor {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Flavor::MultiThread(n) => serializer.serialize_u64(*n as u64),
            _ => serializer.collect_str(self),
        }
    }
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Flavor::CurrentThread => f.write_str("current"),
            Flavor::MultiThread(n) => write!(f, "{n}"),
            Flavor::PerCore => f.write_str("per-core"),
        }
    }
}

/// Runs a service's `main` future on the runtime `Q2O_WORKER_THREADS` asks
/// for; a bad value or a runtime that cannot start is `name`'s exit 2.
pub fn run<F>(name: &str, main: F) -> std::process::ExitCode
where
    F: Future<Output = std::process::ExitCode>,
{
    match Flavor::from_env().map_err(anyhow::Error::new).and_then(Flavor::start) {
        Ok(runtime) => runtime.block_on(main),
        Err(err) => crate::telemetry::exit_code(name, Err(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_counts_and_current_parse_and_the_rest_is_refused_by_name() {
        assert_eq!(Flavor::parse("current").unwrap(), Flavor::CurrentThread);
        assert_eq!(Flavor::parse(" 2 ").unwrap(), Flavor::MultiThread(2));
        assert_eq!(Flavor::parse("per-core").unwrap(), Flavor::PerCore);
        for bad in ["0", "-1", "two", ""] {
            let err = Flavor::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with("Q2O_WORKER_THREADS="), "{err}");
        }
    }

    #[test]
    fn a_file_names_a_flavor_by_word_or_count_and_a_bad_one_is_quoted() {
        #[derive(serde::Deserialize)]
        struct File {
            worker_threads: Flavor,
        }
        let read = |text: &str| toml::from_str::<File>(text).map(|f| f.worker_threads);
        assert_eq!(read("worker_threads = \"current\"").unwrap(), Flavor::CurrentThread);
        assert_eq!(read("worker_threads = 3").unwrap(), Flavor::MultiThread(3));
        let err = read("worker_threads = \"many\"").unwrap_err().to_string();
        assert!(err.contains("`many`: expected a worker count"), "{err}");
        for flavor in [Flavor::CurrentThread, Flavor::MultiThread(2), Flavor::PerCore] {
            assert_eq!(Flavor::parse(&flavor.to_string()).unwrap(), flavor);
        }
    }

    #[test]
    fn each_flavor_builds_a_runtime_that_runs() {
        for flavor in [Flavor::CurrentThread, Flavor::MultiThread(1), Flavor::PerCore] {
            let runtime = flavor.build().unwrap();
            assert_eq!(runtime.block_on(async { tokio::task::spawn(async { 7 }).await.unwrap() }), 7, "{flavor}");
        }
    }
}
