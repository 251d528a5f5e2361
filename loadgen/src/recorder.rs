//! What a run measured: one HDR histogram per (protocol, step), outcome counters,
//! and a per-second series, shared by every request task.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2Serializer};

use crate::outcome::Outcome;
use crate::step::Step;

/// Highest latency a histogram tracks: an hour, in microseconds.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// A new latency histogram: microsecond resolution, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("static bounds are valid")
}

// The protocol is part of a step's identity; kept reachable here, where
// the recorder's keys name it.
pub use crate::step::Protocol;

/// Measurements of one (protocol, step).
#[derive(Clone, Debug)]
pub struct StepRecord {
    /// Latency from the planned start of every answer but the shed ones, microseconds.
    pub latency: Histogram<u64>,
    /// Latency of the answers that turned the request away ([`Outcome::Shed`]):
    /// kept apart, so that a gateway shedding in a few µs does not make the
    /// admitted requests' percentiles look better than they were.
    pub shed: Histogram<u64>,
    /// Requests by outcome.
    pub outcomes: BTreeMap<Outcome, u64>,
}

impl Default for StepRecord {
    fn default() -> Self {
        StepRecord { latency: latency_histogram(), shed: latency_histogram(), outcomes: BTreeMap::new() }
    }
}

impl StepRecord {
    /// Requests finished, shed ones included.
    pub fn count(&self) -> u64 {
        self.latency.len() + self.shed.len()
    }
}

/// Which series a measurement belongs to: (protocol, step).
pub type StepKey = (Protocol, Step);

/// The histograms of one interval of the interval log: its end (seconds into the
/// run) and a histogram per step, V2 encoded. A live histogram of our range is
/// ~140 KB of counters however few samples it holds; encoded (runs of empty
/// counters as one number), an interval's is a few hundred bytes to a few KB,
/// so a long run's log stays small. Not deflated here: a fresh compressor for
/// every step every second was most of the loadgen's instructions at 2,000
/// users (callgrind); the log file is deflated once, when it is written.
pub type Interval = (f64, BTreeMap<StepKey, Vec<u8>>);

/// One second of the run.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Second {
    /// Requests that finished in this second.
    pub requests: u64,
    /// Of which failed (any outcome but `ok`).
    pub errors: u64,
    /// Of which were turned away by the system's admission control.
    #[serde(default)]
    pub shed: u64,
    /// Starts dropped or late in this second.
    pub dropped: u64,
    /// Requests in flight at the end of the second.
    pub in_flight: u64,
    /// Closed model: simulated users active at the end of the second.
    #[serde(default)]
    pub users: u64,
    /// The API calls of this second by how they ended: what a criterion
    /// judged over part of the run counts (the wait for a task is not an API call).
    #[serde(default)]
    pub api: ApiCounts,
}

/// API calls by how they ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ApiCounts {
    /// Finished, shed ones included.
    pub requests: u64,
    /// Did not succeed (any outcome but `ok`).
    pub failed: u64,
    /// Turned away by admission control.
    pub shed: u64,
    /// Failed by the server ([`Outcome::is_server_fault`]).
    pub faults: u64,
}

impl ApiCounts {
    /// Counts one call that ended with `outcome`.
    fn count(&mut self, outcome: Outcome) {
        self.requests += 1;
        self.failed += u64::from(!outcome.is_ok());
        self.shed += u64::from(outcome.is_shed());
        self.faults += u64::from(outcome.is_server_fault());
    }

    /// The sum of two counts.
    pub fn add(&mut self, other: &ApiCounts) {
        self.requests += other.requests;
        self.failed += other.failed;
        self.shed += other.shed;
        self.faults += other.faults;
    }
}

/// The measurements of one step, locked separately so that steps do not contend.
#[derive(Debug)]
struct Slot {
    key: StepKey,
    record: StepRecord,
    /// Latencies finished in the current interval (for the interval log).
    interval: Histogram<u64>,
}

#[derive(Debug)]
struct Timeline {
    seconds: Vec<Second>,
    /// Every step's served latency after the warm-up, for the live p95:
    /// recorded here, under the lock each request takes anyway, rather than
    /// summed from every step's histogram every second.
    served: Histogram<u64>,
    /// The last second `users` was sampled in.
    last_users_sample: Option<usize>,
    intervals: Vec<Interval>,
    dropped: u64,
}

/// Thread-safe recorder for one run. Steps are registered up front and
/// addressed by their index, so recording allocates nothing.
#[derive(Debug)]
pub struct Recorder {
    slots: Vec<Mutex<Slot>>,
    timeline: Mutex<Timeline>,
    /// Requests finished before this are in the timeline and the interval log
    /// but not in the steps' records: the warm-up.
    measure_from: Duration,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            seconds: Vec::new(),
            served: latency_histogram(),
            last_users_sample: None,
            intervals: Vec::new(),
            dropped: 0,
        }
    }
}

impl Recorder {
    /// A recorder for these steps; `record` takes an index into `steps`.
    pub fn new(steps: &[StepKey]) -> Recorder {
        let slots = steps
            .iter()
            .map(|key| Mutex::new(Slot { key: *key, record: StepRecord::default(), interval: latency_histogram() }))
            .collect();
        Recorder { slots, timeline: Mutex::default(), measure_from: Duration::ZERO }
    }

    /// The same recorder, keeping requests that finish in the first
    /// `warm_up` out of the steps' records (a ramp's transient is not the
    /// steady state a step is judged by); the timeline still counts them.
    pub fn with_warm_up(self, warm_up: Duration) -> Recorder {
        Recorder { measure_from: warm_up, ..self }
    }

    fn second(timeline: &mut Timeline, at: Duration) -> &mut Second {
        let index = at.as_secs() as usize;
        if timeline.seconds.len() <= index {
            timeline.seconds.resize(index + 1, Second::default());
        }
        &mut timeline.seconds[index]
    }

    /// Records one finished request of step `slot`: `latency` from its planned
    /// start, finishing `at` after the run started.
    pub fn record(&self, slot: usize, outcome: Outcome, latency: Duration, at: Duration) {
        let micros = latency.as_micros().clamp(1, u128::from(MAX_LATENCY_US)) as u64;
        let shed = outcome.is_shed();
        let measured = at >= self.measure_from;
        let api = {
            let mut slot = self.slots[slot].lock().expect("never poisoned");
            if !shed {
                slot.interval.saturating_record(micros);
            }
            if measured {
                let histogram = if shed { &mut slot.record.shed } else { &mut slot.record.latency };
                histogram.saturating_record(micros);
                *slot.record.outcomes.entry(outcome).or_default() += 1;
            }
            slot.key.1.is_api()
        };
        let mut timeline = self.timeline.lock().expect("never poisoned");
        if measured && !shed {
            timeline.served.saturating_record(micros);
        }
        let second = Self::second(&mut timeline, at);
        second.requests += 1;
        if !outcome.is_ok() {
            second.errors += 1;
        }
        if outcome.is_shed() {
            second.shed += 1;
        }
        if api {
            second.api.count(outcome);
        }
    }

    /// Counts a start that could not be made on time (in-flight cap reached).
    pub fn dropped(&self, at: Duration) {
        let mut timeline = self.timeline.lock().expect("never poisoned");
        timeline.dropped += 1;
        Self::second(&mut timeline, at).dropped += 1;
    }

    /// Notes how many requests are in flight `at` this moment.
    pub fn in_flight(&self, at: Duration, count: u64) {
        let mut timeline = self.timeline.lock().expect("never poisoned");
        Self::second(&mut timeline, at).in_flight = count;
    }

    /// Notes how many simulated users are active `at` this moment (closed model).
    /// A second the sampler missed (a starved process) keeps the last count
    /// seen, not zero.
    pub fn users(&self, at: Duration, count: u64) {
        let mut timeline = self.timeline.lock().expect("never poisoned");
        let index = at.as_secs() as usize;
        let last_sampled = timeline.last_users_sample;
        let previous = last_sampled.map_or(0, |i| timeline.seconds[i].users);
        Self::second(&mut timeline, at).users = count;
        for second in timeline.seconds.iter_mut().take(index).skip(last_sampled.map_or(0, |i| i + 1)) {
            second.users = previous;
        }
        timeline.last_users_sample = Some(index);
    }

    /// Closes the current interval of the interval log, `at` after the start.
    pub fn close_interval(&self, at: Duration) {
        let mut interval = BTreeMap::new();
        for slot in &self.slots {
            let mut slot = slot.lock().expect("never poisoned");
            if !slot.interval.is_empty() {
                let mut encoded = Vec::new();
                V2Serializer::new().serialize(&slot.interval, &mut encoded).expect("in-memory serialization succeeds");
                slot.interval.reset();
                interval.insert(slot.key, encoded);
            }
        }
        let mut timeline = self.timeline.lock().expect("never poisoned");
        // Two closers (the closed model's ticker and the run's end) may
        // race: an interval never ends before the one pushed before it, or
        // the interval log would get a negative length.
        let end = timeline.intervals.last().map_or(0.0, |(last, _)| *last).max(at.as_secs_f64());
        timeline.intervals.push((end, interval));
    }

    /// Everything recorded so far.
    pub fn snapshot(&self) -> Snapshot {
        let mut steps = BTreeMap::new();
        for slot in &self.slots {
            let slot = slot.lock().expect("never poisoned");
            if slot.record.count() > 0 {
                steps.insert(slot.key, slot.record.clone());
            }
        }
        let timeline = self.timeline.lock().expect("never poisoned");
        Snapshot {
            steps,
            seconds: timeline.seconds.clone(),
            intervals: timeline.intervals.clone(),
            dropped: timeline.dropped,
        }
    }

    /// Total requests and failures so far, and the p95 over all steps (µs).
    pub fn progress(&self) -> (u64, u64, u64) {
        let (mut requests, mut errors) = (0, 0);
        for slot in &self.slots {
            let slot = slot.lock().expect("never poisoned");
            for (outcome, count) in &slot.record.outcomes {
                requests += count;
                if !outcome.is_ok() {
                    errors += count;
                }
            }
        }
        let p95 = self.timeline.lock().expect("never poisoned").served.value_at_quantile(0.95);
        (requests, errors, p95)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warm_up_keeps_its_requests_out_of_the_records_but_in_the_timeline() {
        let recorder = Recorder::new(&[(Protocol::Rest, Step::Login)]).with_warm_up(Duration::from_secs(2));
        for ms in [500, 1500, 2500, 3500] {
            recorder.record(0, Outcome::Ok, Duration::from_micros(100), Duration::from_millis(ms));
        }
        let snapshot = recorder.snapshot();
        let record = &snapshot.steps[&(Protocol::Rest, Step::Login)];
        assert_eq!(record.latency.len(), 2, "the two after the warm-up");
        assert_eq!(record.outcomes[&Outcome::Ok], 2);
        assert_eq!(snapshot.seconds.iter().map(|s| s.requests).sum::<u64>(), 4);
    }

    #[test]
    fn shed_answers_are_counted_but_kept_out_of_the_served_latency() {
        let recorder = Recorder::new(&[(Protocol::Rest, Step::Login)]);
        recorder.record(0, Outcome::Ok, Duration::from_millis(40), Duration::from_millis(100));
        recorder.record(0, Outcome::Shed, Duration::from_micros(300), Duration::from_millis(200));
        recorder.record(0, Outcome::Shed, Duration::from_micros(500), Duration::from_millis(300));
        let snapshot = recorder.snapshot();
        let record = &snapshot.steps[&(Protocol::Rest, Step::Login)];
        assert_eq!((record.latency.len(), record.shed.len(), record.count()), (1, 2, 3));
        assert!(record.latency.min() >= 39_000, "served latency holds only the served answer");
        assert_eq!(record.outcomes[&Outcome::Shed], 2);
        assert_eq!((snapshot.seconds[0].requests, snapshot.seconds[0].errors, snapshot.seconds[0].shed), (3, 2, 2));
    }

    #[test]
    fn the_live_p95_spans_every_step_but_not_the_warm_up_or_the_shed() {
        let recorder = Recorder::new(&[(Protocol::Rest, Step::Login), (Protocol::Grpc, Step::Search)])
            .with_warm_up(Duration::from_secs(1));
        // In the warm-up: slow, and left out.
        recorder.record(0, Outcome::Ok, Duration::from_secs(9), Duration::from_millis(500));
        for i in 0..95 {
            recorder.record(0, Outcome::Ok, Duration::from_millis(2), Duration::from_millis(1000 + i));
        }
        for i in 0..5 {
            recorder.record(1, Outcome::Ok, Duration::from_millis(80), Duration::from_millis(2000 + i));
            // Shed in a few µs: counted, but no part of the served latency.
            recorder.record(1, Outcome::Shed, Duration::from_micros(3), Duration::from_millis(2000 + i));
        }
        let (requests, errors, p95) = recorder.progress();
        assert_eq!((requests, errors), (105, 5));
        assert!((1_990..=2_010).contains(&p95), "the 95th of 100 served answers is 2 ms: {p95} µs");
        recorder.record(1, Outcome::Ok, Duration::from_millis(80), Duration::from_millis(3000));
        assert!(recorder.progress().2 >= 79_000, "one more slow answer moves it to the other step's latency");
    }

    #[test]
    fn a_missed_users_sample_keeps_the_last_count_and_intervals_stay_small() {
        let recorder = Recorder::new(&[(Protocol::Rest, Step::Login)]);
        recorder.users(Duration::from_millis(900), 10);
        // Seconds 1 and 2 were not sampled (the sampler was starved).
        recorder.users(Duration::from_millis(3900), 30);
        let users: Vec<u64> = recorder.snapshot().seconds.iter().map(|s| s.users).collect();
        assert_eq!(users, vec![10, 10, 10, 30]);

        for i in 0..1000 {
            recorder.record(0, Outcome::Ok, Duration::from_micros(100 + i), Duration::from_millis(i));
        }
        recorder.close_interval(Duration::from_secs(1));
        let snapshot = recorder.snapshot();
        let encoded = &snapshot.intervals[0].1[&(Protocol::Rest, Step::Login)];
        assert!(encoded.len() < 4096, "an interval is stored encoded: {} bytes", encoded.len());
        // A closer that lost a race with a later one does not end its interval earlier.
        recorder.close_interval(Duration::from_millis(2500));
        recorder.close_interval(Duration::from_millis(2400));
        let ends: Vec<f64> = recorder.snapshot().intervals.iter().map(|(end, _)| *end).collect();
        assert_eq!(ends, [1.0, 2.5, 2.5]);
    }
}
