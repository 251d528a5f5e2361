//! The open-model engine: requests start on schedule whether or not earlier ones
//! have finished, and each one's latency is measured from its *planned* start
//! (the wrk2 method). A stall in the system under test therefore shows up in the
//! latency of every request that was due during it, instead of silently lowering
//! the request rate (coordinated omission).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::arrival::ArrivalSchedule;
use crate::metrics::ClientMetrics;
use crate::recorder::Recorder;
use crate::target::{Step, Target};

/// How long requests still in flight get when the schedule (or Ctrl-C) ends.
pub const DRAIN: Duration = Duration::from_secs(5);

/// What the engine did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineSummary {
    /// Requests started.
    pub started: u64,
    /// Planned starts not made because `max_in_flight` requests were outstanding.
    pub dropped: u64,
    /// Whether the run was cut short by the stop signal.
    pub interrupted: bool,
}

/// Runs `schedule` against `target`, picking each request's step from `mix`.
/// The recorder (and metrics) must know the mix's steps, in order.
pub async fn run(
    target: Arc<dyn Target>,
    mix: &[(Arc<Step>, u32)],
    schedule: ArrivalSchedule,
    max_in_flight: u64,
    recorder: Arc<Recorder>,
    metrics: Option<ClientMetrics>,
    stop: impl Future<Output = ()>,
) -> EngineSummary {
    let total_weight: u32 = mix.iter().map(|(_, w)| w).sum();
    assert!(total_weight > 0, "the mix is validated to have weight");
    let in_flight = Arc::new(AtomicU64::new(0));
    let mut requests = JoinSet::new();
    let start = Instant::now();
    let mut summary = EngineSummary { started: 0, dropped: 0, interrupted: false };
    let mut next_interval = Duration::from_secs(1);
    tokio::pin!(stop);
    let mut n: u64 = 0;
    while let Some(offset) = schedule.offset(n) {
        let planned = start + offset;
        // Arm a timer only when the request is not due yet: at high rates many
        // requests fall due within one timer tick, and each timer costs.
        if planned > Instant::now() {
            tokio::select! {
                () = &mut stop => {
                    summary.interrupted = true;
                    break;
                }
                () = tokio::time::sleep_until(planned) => {}
            }
        } else if n.is_multiple_of(64) && futures_ready(&mut stop) {
            summary.interrupted = true;
            break;
        }
        while start.elapsed() >= next_interval {
            recorder.close_interval(next_interval);
            recorder.in_flight(next_interval - Duration::from_millis(1), in_flight.load(Ordering::Relaxed));
            next_interval += Duration::from_secs(1);
        }
        while requests.try_join_next().is_some() {}
        let (slot, step) = pick(mix, total_weight, n);
        let step = Arc::clone(step);
        n += 1;
        if in_flight.load(Ordering::Relaxed) >= max_in_flight {
            summary.dropped += 1;
            recorder.dropped(planned - start);
            if let Some(m) = &metrics {
                m.dropped();
            }
            continue;
        }
        summary.started += 1;
        in_flight.fetch_add(1, Ordering::Relaxed);
        let (target, recorder, metrics, in_flight) =
            (Arc::clone(&target), Arc::clone(&recorder), metrics.clone(), Arc::clone(&in_flight));
        if let Some(m) = &metrics {
            m.set_in_flight(in_flight.load(Ordering::Relaxed));
        }
        requests.spawn(async move {
            let outcome = target.call(&step).await;
            let done = Instant::now();
            // From the planned start: queueing behind a stall counts.
            let latency = done - planned;
            recorder.record(slot, &outcome, latency, done - start);
            let left = in_flight.fetch_sub(1, Ordering::Relaxed) - 1;
            if let Some(m) = &metrics {
                m.record(slot, &outcome, latency);
                m.set_in_flight(left);
            }
        });
    }
    let drain = tokio::time::sleep(DRAIN);
    tokio::pin!(drain);
    loop {
        tokio::select! {
            next = requests.join_next() => if next.is_none() { break },
            () = &mut drain => {
                requests.abort_all();
                break;
            }
        }
    }
    recorder.close_interval(start.elapsed());
    summary
}

/// The step of request `n` and its index in the mix: weights laid out in blocks
/// over each cycle.
fn pick(mix: &[(Arc<Step>, u32)], total: u32, n: u64) -> (usize, &Arc<Step>) {
    let mut slot = (n % u64::from(total)) as u32;
    for (i, (step, weight)) in mix.iter().enumerate() {
        if slot < *weight {
            return (i, step);
        }
        slot -= weight;
    }
    (mix.len() - 1, &mix[mix.len() - 1].0)
}

/// Whether `stop` has resolved, without waiting.
fn futures_ready(stop: &mut std::pin::Pin<&mut impl Future<Output = ()>>) -> bool {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    stop.as_mut().poll(&mut cx).is_ready()
}
