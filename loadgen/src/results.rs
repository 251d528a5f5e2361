//! A run's results as JSON (schema version 1, below) plus an HdrHistogram
//! interval log, and the exact merge of several processes' results.
//!
//! # Schema (`results.json`)
//!
//! ```text
//! schema_version   1
//! model            "open" (arrival rate) or "closed" (simulated users)
//! users            closed model: users at the top of the ramp (summed over processes)
//! processes        how many loadgen processes these results merge
//! duration_seconds wall time of the run (the longest process, after a merge)
//! target_rate      {start, end}: planned requests per second (summed over processes)
//! achieved_rate    requests finished per second
//! dropped_starts   planned starts that could not be made on time
//! steps[]          {protocol, step, count, outcomes{outcome: n},
//!                   latency_us{min, mean, p50, p90, p95, p99, p999, max},
//!                   histogram: base64 of the V2-deflate HdrHistogram (µs, 3 digits),
//!                   shed_histogram: the same of the shed answers, when there were any}
//! seconds[]        {requests, errors, shed, dropped, in_flight, users} per second of the run
//!
//! `histogram` and `latency_us` hold every answer but the shed ones (503
//! with `Retry-After`, `UNAVAILABLE` with retry pushback): the latency of
//! the requests the system took on. `count` and `outcomes` hold them all.
//! ```
//!
//! In the open model latency is measured from each request's *planned* start,
//! so time a request waited because the system (or the generator) stalled is
//! counted. In the closed model (goose users) it is measured from the moment
//! the request is sent, and `target_rate` is zero.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use crate::outcome::Outcome;
use crate::recorder::{Protocol, Second, Snapshot, StepKey, StepRecord, latency_histogram};
use crate::step::Step;

/// The version written to and required from `schema_version`.
pub const SCHEMA_VERSION: u32 = 1;

/// Results could not be written, read or merged.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// File system.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not a results file of ours.
    #[error("{path}: not a q2o-loadgen results file: {reason}")]
    Format {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Summary percentiles of one histogram, in microseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Smallest.
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

impl LatencySummary {
    /// The summary of `h`.
    pub fn of(h: &Histogram<u64>) -> Self {
        LatencySummary {
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p95: h.value_at_quantile(0.95),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// One (protocol, step).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// Which API.
    pub protocol: Protocol,
    /// Which operation.
    pub step: Step,
    /// Requests finished.
    pub count: u64,
    /// Requests by outcome.
    pub outcomes: BTreeMap<Outcome, u64>,
    /// Latency percentiles, microseconds.
    pub latency_us: LatencySummary,
    /// The full histogram, base64 of its V2-deflate encoding.
    pub histogram: String,
    /// The shed answers' histogram, encoded the same way; absent when none was shed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shed_histogram: Option<String>,
}

impl StepResult {
    /// Requests whose outcome `which` selects.
    pub fn outcomes_where(&self, which: impl Fn(Outcome) -> bool) -> u64 {
        self.outcomes.iter().filter(|(o, _)| which(**o)).map(|(_, n)| n).sum()
    }

    /// Requests that did not succeed.
    pub fn failed(&self) -> u64 {
        self.outcomes_where(|o| !o.is_ok())
    }
}

/// Planned arrival rate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateSpan {
    /// At the start of the run.
    pub start: f64,
    /// At the end.
    pub end: f64,
}

/// A run's results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResults {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `open` or `closed`.
    pub model: String,
    /// Closed model: users at the top of the ramp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<u64>,
    /// Processes merged into these results.
    pub processes: u32,
    /// When the run's load started (Unix seconds): the merge lines up the
    /// parts' per-second timelines by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<f64>,
    /// Wall time of the run.
    pub duration_seconds: f64,
    /// Closed model: the first seconds, whose requests are in `seconds` but
    /// not in `steps` (0 when every request is).
    #[serde(default)]
    pub warm_up_seconds: f64,
    /// Planned rate.
    pub target_rate: RateSpan,
    /// Requests finished per second.
    pub achieved_rate: f64,
    /// Planned starts not made on time.
    pub dropped_starts: u64,
    /// By (protocol, step).
    pub steps: Vec<StepResult>,
    /// By second.
    pub seconds: Vec<Second>,
}

fn encode(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new().serialize(h, &mut bytes).expect("in-memory serialization succeeds");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn decode(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| e.to_string())?;
    Deserializer::new().deserialize(&mut bytes.as_slice()).map_err(|e| format!("{e:?}"))
}

impl RunResults {
    /// Results of one process from its recorder's snapshot.
    pub fn from_snapshot(snapshot: &Snapshot, duration_seconds: f64, target_rate: RateSpan) -> RunResults {
        let steps: Vec<StepResult> = snapshot
            .steps
            .iter()
            .map(|((protocol, step), record)| StepResult {
                protocol: *protocol,
                step: *step,
                count: record.count(),
                outcomes: record.outcomes.clone(),
                latency_us: LatencySummary::of(&record.latency),
                histogram: encode(&record.latency),
                shed_histogram: (!record.shed.is_empty()).then(|| encode(&record.shed)),
            })
            .collect();
        let total: u64 = steps.iter().map(|s| s.count).sum();
        RunResults {
            schema_version: SCHEMA_VERSION,
            model: "open".into(),
            users: None,
            processes: 1,
            started_at: None,
            duration_seconds,
            warm_up_seconds: 0.0,
            target_rate,
            achieved_rate: if duration_seconds > 0.0 { total as f64 / duration_seconds } else { 0.0 },
            dropped_starts: snapshot.dropped,
            steps,
            seconds: snapshot.seconds.clone(),
        }
    }

    /// Merges several processes' results exactly: histograms are added (not
    /// their percentiles averaged) and counters summed.
    pub fn merge(parts: &[RunResults]) -> Result<RunResults, String> {
        let first = parts.first().ok_or("nothing to merge")?;
        // The earliest start, if every part knows its own.
        let started_at = parts.iter().map(|p| p.started_at).try_fold(f64::INFINITY, |min, s| s.map(|s| min.min(s)));
        let mut histograms: BTreeMap<StepKey, StepRecord> = BTreeMap::new();
        let mut seconds: Vec<Second> = Vec::new();
        for part in parts {
            if part.schema_version != SCHEMA_VERSION {
                return Err(format!("schema_version {} (expected {SCHEMA_VERSION})", part.schema_version));
            }
            if part.model != first.model {
                return Err(format!("cannot merge a {} run with a {} run", first.model, part.model));
            }
            for step in &part.steps {
                let h = decode(&step.histogram)?;
                let entry = histograms.entry((step.protocol, step.step)).or_default();
                entry.latency.add(&h).map_err(|e| format!("{e:?}"))?;
                if let Some(shed) = &step.shed_histogram {
                    entry.shed.add(&decode(shed)?).map_err(|e| format!("{e:?}"))?;
                }
                for (outcome, count) in &step.outcomes {
                    *entry.outcomes.entry(*outcome).or_default() += count;
                }
            }
            // A part that started later (a shard whose pod was late) adds
            // its seconds where they happened, not from the first second.
            let offset = match (part.started_at, started_at) {
                (Some(start), Some(first)) => (start - first).round().max(0.0) as usize,
                _ => 0,
            };
            if seconds.len() < offset + part.seconds.len() {
                seconds.resize(offset + part.seconds.len(), Second::default());
            }
            for (sum, s) in seconds[offset..].iter_mut().zip(&part.seconds) {
                sum.requests += s.requests;
                sum.errors += s.errors;
                sum.shed += s.shed;
                sum.api.add(&s.api);
                sum.dropped += s.dropped;
                sum.in_flight += s.in_flight;
                sum.users += s.users;
            }
        }
        let steps: Vec<StepResult> = histograms
            .into_iter()
            .map(|((protocol, step), record)| StepResult {
                protocol,
                step,
                count: record.count(),
                latency_us: LatencySummary::of(&record.latency),
                histogram: encode(&record.latency),
                shed_histogram: (!record.shed.is_empty()).then(|| encode(&record.shed)),
                outcomes: record.outcomes,
            })
            .collect();
        // From the first part's start to the last part's end.
        let late = |p: &RunResults| match (p.started_at, started_at) {
            (Some(start), Some(first)) => (start - first).max(0.0),
            _ => 0.0,
        };
        let duration = parts.iter().map(|p| late(p) + p.duration_seconds).fold(0.0, f64::max);
        let warm_up = parts.iter().map(|p| p.warm_up_seconds).fold(0.0, f64::max);
        let total: u64 = steps.iter().map(|s| s.count).sum();
        let measured = duration - warm_up;
        Ok(RunResults {
            schema_version: SCHEMA_VERSION,
            model: first.model.clone(),
            users: parts.iter().map(|p| p.users).sum(),
            processes: parts.iter().map(|p| p.processes).sum(),
            started_at,
            duration_seconds: duration,
            warm_up_seconds: warm_up,
            target_rate: RateSpan {
                start: parts.iter().map(|p| p.target_rate.start).sum(),
                end: parts.iter().map(|p| p.target_rate.end).sum(),
            },
            achieved_rate: if measured > 0.0 { total as f64 / measured } else { 0.0 },
            dropped_starts: parts.iter().map(|p| p.dropped_starts).sum(),
            steps,
            seconds,
        })
    }

    /// Seconds whose requests are in `steps`: after the warm-up.
    pub fn measured_seconds(&self) -> f64 {
        (self.duration_seconds - self.warm_up_seconds).max(0.0)
    }

    /// Requests of every step that did not succeed.
    pub fn failed(&self) -> u64 {
        self.steps.iter().map(StepResult::failed).sum()
    }

    /// The latency histogram of every step together.
    pub fn overall_latency(&self) -> Result<Histogram<u64>, String> {
        self.latency_where(|_| true)
    }

    /// The latency histogram of the steps `keep` selects, added exactly.
    pub fn latency_where(&self, keep: impl Fn(&StepResult) -> bool) -> Result<Histogram<u64>, String> {
        let mut all = latency_histogram();
        for step in self.steps.iter().filter(|s| keep(s)) {
            all.add(&decode(&step.histogram)?).map_err(|e| format!("{e:?}"))?;
        }
        Ok(all)
    }

    /// The shed answers' latency histogram of the steps `keep` selects, added exactly.
    pub fn shed_latency_where(&self, keep: impl Fn(&StepResult) -> bool) -> Result<Histogram<u64>, String> {
        let mut all = latency_histogram();
        for shed in self.steps.iter().filter(|s| keep(s)).filter_map(|s| s.shed_histogram.as_deref()) {
            all.add(&decode(shed)?).map_err(|e| format!("{e:?}"))?;
        }
        Ok(all)
    }

    /// Writes `results.json` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), ResultsError> {
        let path = dir.join("results.json");
        let io = |source| ResultsError::Io { path: path.display().to_string(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let json = serde_json::to_vec_pretty(self).expect("results serialize");
        std::fs::write(&path, json).map_err(io)
    }

    /// Reads a `results.json`.
    pub fn read(path: &Path) -> Result<RunResults, ResultsError> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| ResultsError::Io { path: name.clone(), source })?;
        let results: RunResults = serde_json::from_slice(&bytes)
            .map_err(|e| ResultsError::Format { path: name.clone(), reason: e.to_string() })?;
        if results.schema_version != SCHEMA_VERSION {
            return Err(ResultsError::Format {
                path: name,
                reason: format!("schema_version {} (expected {SCHEMA_VERSION})", results.schema_version),
            });
        }
        Ok(results)
    }
}

/// One histogram of a process's interval log.
#[derive(Clone, Debug)]
pub struct LoggedInterval {
    /// Its start, seconds after the process's run started.
    pub start: f64,
    /// Its end, likewise.
    pub end: f64,
    /// Its step.
    pub key: StepKey,
    /// The latencies of its served answers, microseconds.
    pub histogram: Histogram<u64>,
}

/// Reads the interval log [`write_interval_log`] wrote.
pub fn read_interval_log(path: &Path) -> Result<Vec<LoggedInterval>, ResultsError> {
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ResultsError::Io { path: name.clone(), source })?;
    let format = |reason: String| ResultsError::Format { path: name.clone(), reason };
    let mut intervals = Vec::new();
    for entry in IntervalLogIterator::new(&bytes) {
        let LogEntry::Interval(logged) = entry.map_err(|e| format(format!("{e:?}")))? else { continue };
        let tag = logged.tag().ok_or_else(|| format("an interval without a step tag".into()))?.as_str();
        let (protocol, step) =
            tag.split_once('/').ok_or_else(|| format(format!("tag `{tag}` is not protocol/step")))?;
        let key = (protocol.parse().map_err(format)?, step.parse().map_err(format)?);
        let start = logged.start_timestamp().as_secs_f64();
        let histogram = decode(logged.encoded_histogram()).map_err(format)?;
        intervals.push(LoggedInterval { start, end: start + logged.duration().as_secs_f64(), key, histogram });
    }
    Ok(intervals)
}

/// Writes the interval log (`latency.hlog`): one tagged histogram per step and interval.
pub fn write_interval_log(dir: &Path, snapshot: &Snapshot, started: std::time::SystemTime) -> Result<(), ResultsError> {
    let path = dir.join("latency.hlog");
    let io = |source| ResultsError::Io { path: path.display().to_string(), source };
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).map_err(io)?);
    let mut serializer = V2DeflateSerializer::new();
    let mut log = IntervalLogWriterBuilder::new()
        .add_comment("q2o-loadgen latency log: microseconds from planned start, tag = protocol/step")
        .with_start_time(started)
        .with_base_time(started)
        .with_max_value_divisor(1000.0)
        .begin_log_with(&mut file, &mut serializer)
        .map_err(io)?;
    let mut previous = 0.0;
    for (end, histograms) in &snapshot.intervals {
        for ((protocol, step), encoded) in histograms {
            let h: Histogram<u64> = Deserializer::new()
                .deserialize(&mut encoded.as_slice())
                .map_err(|e| io(std::io::Error::other(format!("{e:?}"))))?;
            let h = &h;
            let tag = format!("{}/{}", protocol.as_str(), step);
            let tag = Tag::new(&tag);
            log.write_histogram(
                h,
                std::time::Duration::from_secs_f64(previous),
                std::time::Duration::from_secs_f64(end - previous),
                tag,
            )
            .map_err(|e| io(std::io::Error::other(format!("{e:?}"))))?;
        }
        previous = *end;
    }
    drop(log);
    file.flush().map_err(io)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::recorder::Recorder;

    #[test]
    fn the_interval_log_reads_back_as_written() {
        let keys = [(Protocol::Rest, Step::ListProjects), (Protocol::Grpc, Step::SubmitTask)];
        let recorder = Recorder::new(&keys);
        recorder.record(0, Outcome::Ok, Duration::from_millis(3), Duration::from_millis(200));
        recorder.record(1, Outcome::Ok, Duration::from_millis(9), Duration::from_millis(700));
        recorder.close_interval(Duration::from_secs(1));
        recorder.record(0, Outcome::Ok, Duration::from_millis(5), Duration::from_millis(1500));
        recorder.record(0, Outcome::Shed, Duration::from_micros(80), Duration::from_millis(1600));
        recorder.close_interval(Duration::from_secs(2));
        let dir = q2o_testkit::ScratchDir::new("hlog").unwrap();
        write_interval_log(dir.path(), &recorder.snapshot(), std::time::SystemTime::now()).unwrap();
        let read = read_interval_log(&dir.path().join("latency.hlog")).unwrap();
        let spans: Vec<(f64, f64, StepKey, u64)> =
            read.iter().map(|i| (i.start, i.end, i.key, i.histogram.len())).collect();
        assert_eq!(spans, [(0.0, 1.0, keys[0], 1), (0.0, 1.0, keys[1], 1), (1.0, 2.0, keys[0], 1)]);
        assert!(read[2].histogram.min() >= 4_990, "the shed answer is not in the served latencies");
    }

    #[test]
    fn a_part_that_started_late_is_merged_where_its_seconds_happened() {
        let keys = [(Protocol::Rest, Step::ListProjects)];
        let part = |started_at: f64, seconds: u64| {
            let recorder = Recorder::new(&keys);
            for s in 0..seconds {
                recorder.record(0, Outcome::Ok, Duration::from_millis(2), Duration::from_millis(s * 1000 + 500));
                recorder.close_interval(Duration::from_secs(s + 1));
            }
            let mut results =
                RunResults::from_snapshot(&recorder.snapshot(), seconds as f64, RateSpan { start: 0.0, end: 0.0 });
            results.started_at = Some(started_at);
            results
        };
        let merged = RunResults::merge(&[part(1000.0, 3), part(1002.2, 3)]).unwrap();
        assert_eq!(merged.started_at, Some(1000.0));
        let requests: Vec<u64> = merged.seconds.iter().map(|s| s.requests).collect();
        assert_eq!(requests, [1, 1, 2, 1, 1], "the late part's first second is the third");
        assert!((merged.duration_seconds - 5.2).abs() < 1e-9, "{}", merged.duration_seconds);
        assert_eq!(merged.steps[0].count, 6);
        // Without start times, parts line up from their first seconds, as before.
        let mut a = part(0.0, 2);
        a.started_at = None;
        let merged = RunResults::merge(&[a, part(5.0, 2)]).unwrap();
        assert_eq!((merged.started_at, merged.seconds.len()), (None, 2));
    }
}
