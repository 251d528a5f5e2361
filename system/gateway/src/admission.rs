//! Admission control: how many requests the gateway works on at once, and
//! turning the rest away at once instead of queueing them.
//!
//! A gateway that queues what it cannot serve makes every request slow, its
//! Redis calls time out, and the whole stack answers 500s for as long as the
//! surge lasts (a metastable overload). With a limit on the requests in
//! flight, the excess is answered at once with 503 and `Retry-After` (REST)
//! or `UNAVAILABLE` with `grpc-retry-pushback-ms` (gRPC), for a few µs of
//! CPU, and the admitted requests keep their latency.
//!
//! The limit is either static or adaptive. The adaptive one is AIMD, in the
//! manner of Netflix's concurrency-limits: each 100 ms window of completions
//! whose p95 exceeded `latency_target` while on average at least half the
//! limit was in flight cuts the limit by `backoff`; a window
//! that was fast and used most of the limit raises it by its square root.
//! The square root is Netflix's Gradient2 queue allowance: it finds a large
//! limit in a few seconds without overshooting a small one by much.
//!
//! A cut limit climbs back toward where it started once twice `retry_after`
//! has passed without a slow, crowded window or a request turned away: by
//! then the clients turned away last have come back and been served. Without
//! that, a shared machine's hiccups walk the limit down for good.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use q2o_common::config::{ConfigError, duration};
use q2o_common::metrics::{names, register};
use serde::{Deserialize, Serialize};

/// How the limit is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Every request is admitted (what the gateway did before admission control).
    Off,
    /// At most `limit` requests at once.
    Static,
    /// Starts at `limit` and follows the latency of admitted requests, between
    /// `min_limit` and `max_limit`.
    Adaptive,
}

/// The `[admission]` table of the gateway's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionConfig {
    /// `off`, `static` or `adaptive`.
    pub mode: Mode,
    /// Static: the limit. Adaptive: where the limit starts.
    pub limit: usize,
    /// Adaptive: the limit never goes below this.
    pub min_limit: usize,
    /// Adaptive: the limit never goes above this.
    pub max_limit: usize,
    /// Adaptive: a window whose admitted requests took longer than this at
    /// their 95th percentile lowers the limit. Well under the API's SLO, so
    /// that the limit bites before users see it.
    #[serde(with = "duration")]
    pub latency_target: Duration,
    /// Adaptive: the factor a slow window multiplies the limit by.
    pub backoff: f64,
    /// What a turned-away client is told to wait (`Retry-After`, retry pushback).
    #[serde(with = "duration")]
    pub retry_after: Duration,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            mode: Mode::Adaptive,
            // A single-threaded gateway on a busy machine takes in a burst
            // of requests after each time it waits for the CPU: started at
            // 64, the limit shed 0.35-0.52 % of phase2's requests at 12,500
            // users with the API's p95 at 8-10 ms (NO-GO on availability);
            // at 256 the same run was GO with none shed.
            limit: 256,
            min_limit: 16,
            max_limit: 2048,
            latency_target: Duration::from_millis(10),
            backoff: 0.9,
            retry_after: Duration::from_secs(1),
        }
    }
}

impl AdmissionConfig {
    /// Rejects values that would shed everything or nothing by accident.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let key = |k: &str| format!("admission.{k}");
        if self.mode == Mode::Off {
            return Ok(());
        }
        if self.limit == 0 {
            return Err(ConfigError::value(key("limit"), "must be at least 1"));
        }
        if self.mode == Mode::Adaptive {
            if self.min_limit == 0 || self.min_limit > self.max_limit {
                return Err(ConfigError::value(key("min_limit"), "must be at least 1 and at most max_limit"));
            }
            if !(self.min_limit..=self.max_limit).contains(&self.limit) {
                return Err(ConfigError::value(key("limit"), "must lie between min_limit and max_limit"));
            }
            if !(self.backoff > 0.0 && self.backoff < 1.0) {
                return Err(ConfigError::value(key("backoff"), "must lie strictly between 0 and 1"));
            }
            if self.latency_target.is_zero() {
                return Err(ConfigError::value(key("latency_target"), "must be positive"));
            }
        }
        if self.retry_after < Duration::from_millis(1) {
            return Err(ConfigError::value(key("retry_after"), "must be at least 1ms"));
        }
        Ok(())
    }
}

/// Which front-end a request came through, for the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Front {
    /// REST (axum).
    Rest,
    /// gRPC (tonic).
    Grpc,
}

impl Front {
    fn as_str(self) -> &'static str {
        match self {
            Front::Rest => "rest",
            Front::Grpc => "grpc",
        }
    }
}

/// Why a request was turned away, the `reason` label of
/// `q2o_gateway_shed_requests_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShedReason {
    /// The requests in flight were at the limit.
    ConcurrencyLimit,
}

impl ShedReason {
    fn as_str(self) -> &'static str {
        match self {
            ShedReason::ConcurrencyLimit => "concurrency_limit",
        }
    }
}

/// A window of the adaptive limit: the completions since it opened, and
/// what the windows before it leave for it to judge them by.
#[derive(Clone, Copy, Debug)]
struct Window {
    opened: Instant,
    completions: u32,
    slow: u32,
    /// Most requests in flight seen at a completion of this window.
    peak_in_flight: usize,
    /// The latencies of its completions added up: over the window's length,
    /// the requests in flight on average (Little's law).
    busy: Duration,
    /// Requests turned away while it was open.
    shed: usize,
    /// The limit as a real number: increments below one add up.
    limit: f64,
    /// When the last window that was slow and crowded or turned a request
    /// away closed.
    troubled_at: Instant,
}

impl Window {
    fn open(now: Instant, limit: f64) -> Window {
        Window {
            opened: now,
            completions: 0,
            slow: 0,
            peak_in_flight: 0,
            busy: Duration::ZERO,
            shed: 0,
            limit,
            troubled_at: now,
        }
    }
}

/// How long an adaptive window lasts.
const WINDOW: Duration = Duration::from_millis(100);

/// The gateway's admission controller, shared by both front-ends.
#[derive(Debug)]
pub struct Admission {
    config: AdmissionConfig,
    in_flight: AtomicUsize,
    limit: AtomicUsize,
    /// Turned away since the adaptive window opened.
    shed: AtomicUsize,
    window: Mutex<Window>,
    metrics: AdmissionMetrics,
}

impl Admission {
    /// A controller for `config`, exporting into `registry`.
    pub fn new(config: AdmissionConfig, registry: &Registry) -> Arc<Admission> {
        let limit = match config.mode {
            Mode::Off => usize::MAX,
            Mode::Static | Mode::Adaptive => config.limit,
        };
        let metrics = AdmissionMetrics::new(registry);
        metrics.limit.set(i64::try_from(limit).unwrap_or(i64::MAX));
        Arc::new(Admission {
            config,
            in_flight: AtomicUsize::new(0),
            limit: AtomicUsize::new(limit),
            shed: AtomicUsize::new(0),
            window: Mutex::new(Window::open(Instant::now(), limit as f64)),
            metrics,
        })
    }

    /// What turned-away clients are told to wait.
    pub fn retry_after(&self) -> Duration {
        self.config.retry_after
    }

    /// The limit now.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Admits a request, or says why not. The permit counts the request as in
    /// flight until it is dropped, which is when the answer is ready (or the
    /// request was abandoned).
    pub fn try_acquire(self: &Arc<Self>, front: Front) -> Result<Permit, ShedReason> {
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        if before >= self.limit.load(Ordering::Relaxed) {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            self.shed(front, ShedReason::ConcurrencyLimit);
            return Err(ShedReason::ConcurrencyLimit);
        }
        self.metrics.in_flight.inc();
        Ok(Permit { admission: Arc::clone(self), started: Instant::now(), in_flight: before + 1 })
    }

    /// Counts a request turned away by `reason`.
    fn shed(&self, front: Front, reason: ShedReason) {
        self.shed.fetch_add(1, Ordering::Relaxed);
        self.metrics.shed.with_label_values(&[front.as_str(), reason.as_str()]).inc();
    }

    fn complete(&self, latency: Duration, in_flight: usize) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.metrics.in_flight.dec();
        if self.config.mode != Mode::Adaptive {
            return;
        }
        let now = Instant::now();
        let mut window = self.window.lock().expect("the admission window is never poisoned");
        window.completions += 1;
        window.slow += u32::from(latency > self.config.latency_target);
        window.peak_in_flight = window.peak_in_flight.max(in_flight);
        window.busy += latency;
        if now.duration_since(window.opened) < WINDOW {
            return;
        }
        window.shed = self.shed.swap(0, Ordering::Relaxed);
        *window = next_window(&self.config, &window, now);
        let whole = window.limit as usize;
        drop(window);
        self.limit.store(whole, Ordering::Relaxed);
        self.metrics.limit.set(i64::try_from(whole).unwrap_or(i64::MAX));
    }
}

/// The window after `window`, closed at `now`, and the limit it opens with:
/// cut when more than 5 % of its completions were slow (its p95 was over the
/// target) while the requests in flight filled at least half the limit on
/// average over the window;
/// raised when it was fast and they came near the limit (the limit was what
/// held them back); raised back toward the starting limit, and no further,
/// when it was fast and calm had lasted twice `retry_after`; kept otherwise.
///
/// A slow window with few requests in flight is not slow for their number:
/// the time went elsewhere (a busy CPU's run queue, a slow Redis). Cutting
/// the limit then only sheds what the gateway could carry: at 12,500 phase2
/// users on two cores it had walked down to its floor and turned away 0.35 %
/// of the requests while the API's p95 was 8 ms.
///
/// The way back matters as much. A burst that arrives while the machine's
/// cores are busy elsewhere fills half the limit and is slow, however few
/// requests the gateway could otherwise carry. When such windows cut the
/// limit and nothing restored it, the limit walked down from 256 to 16-30
/// over three minutes of 20,000 steady phase2 users, with 0-40 requests in
/// flight, and from then on turned away 1-2 % of the requests. The calm the
/// way back waits for keeps a surge's lulls from raising it: the clients
/// turned away wait `retry_after` and come back together, and a limit raised
/// in the lull between two waves would let the next one in whole. (The
/// overload scenario's admitted p95 during the surge ranged from 75 to 106 ms
/// over single runs with and without the way back on one day: its run-to-run
/// noise hides the difference.) A cut does not wait for a second slow window
/// either: at a surge's start that would let a whole limit in for 100 ms more.
///
/// Crowded is an average, not a peak. A gateway's thread that waited tens of
/// milliseconds for a core reads the requests that arrived meanwhile at once:
/// 73-134 of them in flight for a moment, on average a tenth of that over the
/// window. Judged by the peak, each such moment cut the limit, and a cut
/// limit made the next, smaller burst crowded: at 35,000 phase2 users the
/// limit walked from 256 to 20-35 in half a minute while 0-30 requests were in
/// flight, and turned 1.2 % of all requests away. A surge keeps the limit
/// full the whole window, so its average is the limit and it is cut as before.
fn next_window(config: &AdmissionConfig, window: &Window, now: Instant) -> Window {
    let (min, max, start) = (config.min_limit as f64, config.max_limit as f64, config.limit as f64);
    let slow = f64::from(window.slow) > 0.05 * f64::from(window.completions.max(1));
    let length = now.duration_since(window.opened).max(WINDOW);
    let mean_in_flight = window.busy.as_secs_f64() / length.as_secs_f64();
    let crowded = mean_in_flight >= 0.5 * window.limit.floor();
    let troubled = slow && crowded || window.shed > 0;
    let troubled_at = if troubled { now } else { window.troubled_at };
    let calm = now.duration_since(troubled_at) >= 2 * config.retry_after;
    let limit = if slow {
        if crowded { window.limit * config.backoff } else { window.limit }
    } else if window.peak_in_flight as f64 >= 0.8 * window.limit.floor() {
        window.limit + window.limit.sqrt()
    } else if calm && window.limit < start {
        (window.limit + window.limit.sqrt()).min(start)
    } else {
        window.limit
    };
    Window { troubled_at, ..Window::open(now, limit.clamp(min, max)) }
}

/// An admitted request; dropping it ends the request for the controller.
#[derive(Debug)]
pub struct Permit {
    admission: Arc<Admission>,
    started: Instant,
    in_flight: usize,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.admission.complete(self.started.elapsed(), self.in_flight);
    }
}

/// The controller's series.
#[derive(Clone, Debug)]
struct AdmissionMetrics {
    shed: IntCounterVec,
    limit: IntGauge,
    in_flight: IntGauge,
}

impl AdmissionMetrics {
    fn new(registry: &Registry) -> Self {
        AdmissionMetrics {
            shed: register(
                registry,
                IntCounterVec::new(
                    Opts::new(names::GATEWAY_SHED_REQUESTS_TOTAL, "Requests turned away by admission control."),
                    &["protocol", "reason"],
                )
                .expect("valid metric"),
            ),
            limit: register(
                registry,
                IntGauge::new(names::GATEWAY_CONCURRENCY_LIMIT, "Requests admission control lets in at once.")
                    .expect("valid metric"),
            ),
            in_flight: register(
                registry,
                IntGauge::new(names::GATEWAY_IN_FLIGHT_REQUESTS, "Admitted requests not yet answered.")
                    .expect("valid metric"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adaptive() -> AdmissionConfig {
        AdmissionConfig { limit: 100, min_limit: 10, max_limit: 1000, ..AdmissionConfig::default() }
    }

    /// A window of `limit` that saw `completions`, `slow` of them slow, with
    /// `peak_in_flight` in flight the whole window.
    fn window(limit: f64, completions: u32, slow: u32, peak_in_flight: usize) -> Window {
        Window { completions, slow, peak_in_flight, busy: held(peak_in_flight), ..Window::open(Instant::now(), limit) }
    }

    /// What `in_flight` requests held for a whole window add up to.
    fn held(in_flight: usize) -> Duration {
        WINDOW * u32::try_from(in_flight).unwrap_or(u32::MAX)
    }

    /// The limit after `window`, where `calm` says whether calm had lasted.
    fn next_limit(config: &AdmissionConfig, window: Window, calm: bool) -> f64 {
        let now = window.opened + WINDOW;
        let troubled_at = if calm { now - 2 * config.retry_after } else { now };
        next_window(config, &Window { troubled_at, ..window }, now).limit
    }

    /// Drives the controller through `windows`, 100 ms apart, each given as
    /// (completions, slow, in flight the whole window, turned away); in flight
    /// is capped at the limit. Returns the limit after each.
    fn drive(config: &AdmissionConfig, windows: impl IntoIterator<Item = (u32, u32, usize, usize)>) -> Vec<f64> {
        let mut now = Instant::now();
        let mut state = Window::open(now, config.limit as f64);
        let mut limits = Vec::new();
        for (completions, slow, peak_in_flight, shed) in windows {
            now += WINDOW;
            let in_flight = peak_in_flight.min(state.limit as usize);
            let seen = Window { completions, slow, peak_in_flight: in_flight, busy: held(in_flight), shed, ..state };
            state = next_window(config, &seen, now);
            limits.push(state.limit);
        }
        limits
    }

    #[test]
    fn a_static_limit_turns_away_the_request_over_it_and_counts_why() {
        let registry = Registry::new();
        let admission = Admission::new(AdmissionConfig { mode: Mode::Static, limit: 2, ..adaptive() }, &registry);
        let first = admission.try_acquire(Front::Rest).unwrap();
        let _second = admission.try_acquire(Front::Grpc).unwrap();
        assert_eq!(admission.try_acquire(Front::Rest).unwrap_err(), ShedReason::ConcurrencyLimit);
        drop(first);
        let _third = admission.try_acquire(Front::Rest).expect("a finished request frees its place");
        let mut text = Vec::new();
        prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &registry.gather(), &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains(r#"q2o_gateway_shed_requests_total{protocol="rest",reason="concurrency_limit"} 1"#),
            "{text}"
        );
        assert!(text.contains("q2o_gateway_in_flight_requests 2"), "{text}");
        assert!(text.contains("q2o_gateway_concurrency_limit 2"), "{text}");
    }

    #[test]
    fn off_admits_everything() {
        let admission = Admission::new(AdmissionConfig { mode: Mode::Off, ..adaptive() }, &Registry::new());
        let permits: Vec<Permit> = (0..10_000).map(|_| admission.try_acquire(Front::Rest).unwrap()).collect();
        assert_eq!(permits.len(), 10_000);
    }

    #[test]
    fn slow_windows_cut_the_limit_and_fast_busy_ones_raise_it() {
        let config = adaptive();
        let next = |limit, slow, peak, calm| next_limit(&config, window(limit, 100, slow, peak), calm);
        // 10 of 100 completions over the target: p95 is over it.
        assert!((next(100.0, 10, 100, false) - 90.0).abs() < 1e-9);
        // 5 of 100 is the 95th percentile itself: not over.
        assert!((next(100.0, 5, 100, false) - 110.0).abs() < 1e-9);
        // Fast but far from the limit: the limit did not hold anyone back.
        assert!((next(100.0, 0, 20, true) - 100.0).abs() < 1e-9);
        assert!((next(400.0, 0, 20, true) - 400.0).abs() < 1e-9);
        // ... unless it had been cut and calm has lasted: back toward the start, no further.
        assert!((next(64.0, 0, 20, true) - 72.0).abs() < 1e-9);
        assert!((next(96.0, 0, 20, true) - 100.0).abs() < 1e-9);
        assert!((next(64.0, 0, 20, false) - 64.0).abs() < 1e-9);
        // Slow with few in flight: not their number's fault, kept; with half the limit in flight, cut.
        assert!((next(100.0, 50, 20, true) - 100.0).abs() < 1e-9);
        assert!((next(100.0, 50, 50, true) - 90.0).abs() < 1e-9);
        // Bounds hold both ways.
        assert!((next(10.5, 100, 10, false) - 10.0).abs() < 1e-9);
        assert!((next(999.0, 0, 999, false) - 1000.0).abs() < 1e-9);
    }

    #[test]
    fn a_sustained_overload_brings_the_limit_down_to_what_stays_fast() {
        // A server whose latency grows with concurrency past 40 requests,
        // and always more requests than the limit: it must settle near 40,
        // not at either bound.
        let config = adaptive();
        let mut now = Instant::now();
        let mut state = Window::open(now, config.limit as f64);
        for _ in 0..200 {
            now += WINDOW;
            let in_flight = state.limit.floor() as usize;
            let slow = if in_flight > 40 { 50 } else { 0 };
            let seen =
                Window { completions: 100, slow, peak_in_flight: in_flight, busy: held(in_flight), shed: 10, ..state };
            state = next_window(&config, &seen, now);
        }
        assert!((30.0..=50.0).contains(&state.limit), "settled at {}", state.limit);
    }

    #[test]
    fn bursts_on_a_busy_machine_cost_the_limit_a_moment_not_the_rest_of_the_run() {
        // The machine's cores were busy elsewhere now and then: a burst filled
        // more than half the limit and was slow. The windows between were
        // fast, with a handful of requests in flight. The gateway itself was
        // never the bottleneck, so the limit must stay near where it started.
        let config = adaptive();
        let start = config.limit as f64;
        // A burst every three seconds: each cuts the limit, and it is restored.
        let limits = drive(&config, (0..990).map(|n| if n % 30 == 0 { (100, 50, 60, 0) } else { (100, 0, 8, 0) }));
        let lowest = limits.iter().copied().fold(f64::MAX, f64::min);
        assert!(lowest >= 0.9 * start - 1e-9, "fell to {lowest}");
        assert!((limits[limits.len() - 1] - start).abs() < 1e-9, "ended at {limits:?}");
    }

    #[test]
    fn a_burst_read_after_a_wait_for_the_cpu_is_not_a_crowd() {
        // 240 completions in the window, 48 of them queued behind a 20 ms
        // wait for a core: 134 in flight at the worst moment, 11 on average.
        let config = AdmissionConfig { limit: 256, ..adaptive() };
        let burst = Window { busy: Duration::from_millis(192 * 2 + 48 * 15), ..window(256.0, 240, 48, 134) };
        assert!((next_limit(&config, burst, false) - 256.0).abs() < 1e-9);
        // The same window at a limit its average fills half of is crowded.
        let small = Window { limit: 22.0, ..burst };
        assert!((next_limit(&config, small, false) - 22.0 * config.backoff).abs() < 1e-9);
    }

    #[test]
    fn a_surges_lulls_do_not_raise_the_limit_and_its_end_does() {
        // A minute of surge: the clients turned away come back together after
        // `retry_after`, so each second is a slow, crowded wave that sheds,
        // then a fast lull with few in flight.
        let config = adaptive();
        let surge = (0..600).map(|n| if n % 10 < 3 { (100, 50, usize::MAX, 50) } else { (100, 0, 2, 0) });
        let calm = (0..100).map(|_| (100, 0, 2, 0));
        let limits = drive(&config, surge.chain(calm));
        let (during, after) = limits.split_at(600);
        assert!(during[300..].iter().all(|&l| l <= 0.2 * config.limit as f64), "{during:?}");
        // The last wave came 0.7 s before the end: the limit stays down for
        // the next 1.3 s, then is back at the start within 5 s of the end.
        assert!(after[..12].iter().all(|&l| l < 0.2 * config.limit as f64), "raised before the calm lasted: {after:?}");
        assert!((after[50] - config.limit as f64).abs() < 1e-9, "{after:?}");
    }

    #[test]
    fn bad_values_name_their_key() {
        for (config, key) in [
            (AdmissionConfig { limit: 0, ..adaptive() }, "admission.limit"),
            (AdmissionConfig { min_limit: 2000, ..adaptive() }, "admission.min_limit"),
            (AdmissionConfig { limit: 5, ..adaptive() }, "admission.limit"),
            (AdmissionConfig { backoff: 1.0, ..adaptive() }, "admission.backoff"),
            (AdmissionConfig { retry_after: Duration::ZERO, ..adaptive() }, "admission.retry_after"),
        ] {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
        AdmissionConfig { mode: Mode::Off, limit: 0, ..adaptive() }.validate().unwrap();
        AdmissionConfig::default().validate().unwrap();
    }
}
