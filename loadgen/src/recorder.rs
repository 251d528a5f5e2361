//! What a run measured: one HDR histogram per (protocol, step), outcome counters,
//! and a per-second series, shared by every request task.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Highest latency a histogram tracks: an hour, in microseconds.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// A new latency histogram: microsecond resolution, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("static bounds are valid")
}

/// Which API a request used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// JSON over HTTP/1.1.
    Rest,
    /// Protobuf over HTTP/2.
    Grpc,
}

impl Protocol {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Rest => "rest",
            Protocol::Grpc => "grpc",
        }
    }
}

/// How a request ended: `ok`, an HTTP status (`http_429`), a gRPC code
/// (`grpc_unavailable`), or a transport error (`error_connect`, `error_timeout`).
pub type Outcome = String;

/// Measurements of one (protocol, step).
#[derive(Clone, Debug)]
pub struct StepRecord {
    /// Latency from the planned start, microseconds.
    pub latency: Histogram<u64>,
    /// Requests by outcome.
    pub outcomes: BTreeMap<Outcome, u64>,
}

impl StepRecord {
    fn new() -> Self {
        StepRecord { latency: latency_histogram(), outcomes: BTreeMap::new() }
    }
}

/// Which series a measurement belongs to: (protocol, step).
pub type StepKey = (Protocol, String);

/// The histograms of one interval of the interval log: its end (seconds into the
/// run) and a histogram per step.
pub type Interval = (f64, BTreeMap<StepKey, Histogram<u64>>);

/// One second of the run.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Second {
    /// Requests that finished in this second.
    pub requests: u64,
    /// Of which failed (any outcome but `ok`).
    pub errors: u64,
    /// Starts dropped or late in this second.
    pub dropped: u64,
    /// Requests in flight at the end of the second.
    pub in_flight: u64,
}

#[derive(Debug, Default)]
struct Inner {
    steps: BTreeMap<StepKey, StepRecord>,
    seconds: Vec<Second>,
    /// Latencies finished in the current interval (for the interval log).
    interval: BTreeMap<StepKey, Histogram<u64>>,
    intervals: Vec<Interval>,
    dropped: u64,
}

/// Thread-safe recorder for one run.
#[derive(Debug, Default)]
pub struct Recorder {
    inner: Mutex<Inner>,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Recorder {
        Recorder::default()
    }

    fn second(inner: &mut Inner, at: Duration) -> &mut Second {
        let index = at.as_secs() as usize;
        if inner.seconds.len() <= index {
            inner.seconds.resize(index + 1, Second::default());
        }
        &mut inner.seconds[index]
    }

    /// Records one finished request: `latency` from its planned start, finishing
    /// `at` after the run started.
    pub fn record(&self, protocol: Protocol, step: &str, outcome: &str, latency: Duration, at: Duration) {
        let micros = latency.as_micros().clamp(1, u128::from(MAX_LATENCY_US)) as u64;
        let mut inner = self.inner.lock().expect("never poisoned");
        let key = (protocol, step.to_owned());
        let record = inner.steps.entry(key.clone()).or_insert_with(StepRecord::new);
        record.latency.saturating_record(micros);
        *record.outcomes.entry(outcome.to_owned()).or_default() += 1;
        inner.interval.entry(key).or_insert_with(latency_histogram).saturating_record(micros);
        let second = Self::second(&mut inner, at);
        second.requests += 1;
        if outcome != "ok" {
            second.errors += 1;
        }
    }

    /// Counts a start that could not be made on time (in-flight cap reached).
    pub fn dropped(&self, at: Duration) {
        let mut inner = self.inner.lock().expect("never poisoned");
        inner.dropped += 1;
        Self::second(&mut inner, at).dropped += 1;
    }

    /// Notes how many requests are in flight `at` this moment.
    pub fn in_flight(&self, at: Duration, count: u64) {
        let mut inner = self.inner.lock().expect("never poisoned");
        Self::second(&mut inner, at).in_flight = count;
    }

    /// Closes the current interval of the interval log, `at` after the start.
    pub fn close_interval(&self, at: Duration) {
        let mut inner = self.inner.lock().expect("never poisoned");
        let interval = std::mem::take(&mut inner.interval);
        inner.intervals.push((at.as_secs_f64(), interval));
    }

    /// Everything recorded so far.
    pub fn snapshot(&self) -> Snapshot {
        let inner = self.inner.lock().expect("never poisoned");
        Snapshot {
            steps: inner.steps.clone(),
            seconds: inner.seconds.clone(),
            intervals: inner.intervals.clone(),
            dropped: inner.dropped,
        }
    }

    /// Total requests and failures so far, and the p95 over all steps (µs).
    pub fn progress(&self) -> (u64, u64, u64) {
        let inner = self.inner.lock().expect("never poisoned");
        let mut all = latency_histogram();
        let (mut requests, mut errors) = (0, 0);
        for record in inner.steps.values() {
            all.add(&record.latency).expect("same bounds");
            for (outcome, count) in &record.outcomes {
                requests += count;
                if outcome != "ok" {
                    errors += count;
                }
            }
        }
        (requests, errors, all.value_at_quantile(0.95))
    }
}

/// A copy of a recorder's state.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// By (protocol, step).
    pub steps: BTreeMap<StepKey, StepRecord>,
    /// By second of the run.
    pub seconds: Vec<Second>,
    /// Interval histograms: (end of interval in seconds, by (protocol, step)).
    pub intervals: Vec<Interval>,
    /// Starts dropped or late.
    pub dropped: u64,
}
