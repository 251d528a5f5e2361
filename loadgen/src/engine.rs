//! The open-model engine: requests start on schedule whether or not earlier ones
//! have finished, and each one's latency is measured from its *planned* start
//! (the wrk2 method). A stall in the system under test therefore shows up in the
//! latency of every request that was due during it, instead of silently lowering
//! the request rate (coordinated omission).

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;

use crate::arrival::ArrivalSchedule;
use crate::metrics::ClientMetrics;
use crate::recorder::Recorder;
use crate::step::Call;
use crate::target::Target;

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
///
/// Requests in flight are driven inside this one task (a `FuturesUnordered`),
/// not spawned: no task allocation, no cross-thread wake-up per request, which
/// is most of what a generator spends beyond the syscalls. One engine therefore
/// uses one core; `--processes` spreads a larger rate over several.
pub async fn run(
    target: Arc<dyn Target>,
    mix: &[(Call, u32)],
    schedule: ArrivalSchedule,
    max_in_flight: u64,
    recorder: Arc<Recorder>,
    metrics: Option<ClientMetrics>,
    stop: impl Future<Output = ()>,
) -> EngineSummary {
    let total_weight: u32 = mix.iter().map(|(_, w)| w).sum();
    assert!(total_weight > 0, "the mix is validated to have weight");
    let mut requests = FuturesUnordered::new();
    let start = Instant::now();
    let mut summary = EngineSummary { started: 0, dropped: 0, interrupted: false };
    let mut next_interval = Duration::from_secs(1);
    tokio::pin!(stop);
    let mut n: u64 = 0;
    'schedule: while let Some(offset) = schedule.offset(n) {
        let planned = start + offset;
        // Until the next start is due, finish requests; arm a timer only when
        // it is not due yet (at high rates many starts fall within one tick).
        while planned > Instant::now() {
            tokio::select! {
                biased;
                () = &mut stop => {
                    summary.interrupted = true;
                    break 'schedule;
                }
                Some(()) = requests.next(), if !requests.is_empty() => {}
                () = tokio::time::sleep_until(planned) => {}
            }
        }
        if n.is_multiple_of(64) && futures_ready(&mut stop) {
            summary.interrupted = true;
            break;
        }
        // Behind schedule the loop above does not run: collect what finished anyway.
        while let Some(Some(())) = requests.next().now_or_never() {}
        while start.elapsed() >= next_interval {
            recorder.close_interval(next_interval);
            recorder.in_flight(next_interval - Duration::from_millis(1), requests.len() as u64);
            next_interval += Duration::from_secs(1);
        }
        let (slot, call) = pick(mix, total_weight, n);
        n += 1;
        if requests.len() as u64 >= max_in_flight {
            summary.dropped += 1;
            recorder.dropped(planned - start);
            if let Some(m) = &metrics {
                m.dropped();
            }
            continue;
        }
        summary.started += 1;
        if let Some(m) = &metrics {
            m.set_in_flight(requests.len() as u64 + 1);
        }
        let (target, recorder, metrics) = (&target, &recorder, &metrics);
        requests.push(async move {
            let outcome = target.call(call).await;
            let done = Instant::now();
            // From the planned start: queueing behind a stall counts.
            let latency = done - planned;
            recorder.record(slot, outcome, latency, done - start);
            if let Some(m) = metrics {
                m.record(slot, outcome, latency);
            }
        });
    }
    let drain = tokio::time::sleep(DRAIN);
    tokio::pin!(drain);
    loop {
        tokio::select! {
            next = requests.next() => if next.is_none() { break },
            () = &mut drain => break,
        }
    }
    if let Some(m) = &metrics {
        m.set_in_flight(0);
    }
    recorder.close_interval(start.elapsed());
    summary
}

/// The step of request `n` and its index in the mix: weights laid out in blocks
/// over each cycle.
fn pick(mix: &[(Call, u32)], total: u32, n: u64) -> (usize, Call) {
    let mut slot = (n % u64::from(total)) as u32;
    for (i, (call, weight)) in mix.iter().enumerate() {
        if slot < *weight {
            return (i, *call);
        }
        slot -= weight;
    }
    (mix.len() - 1, mix[mix.len() - 1].0)
}

/// Whether `stop` has resolved, without waiting.
fn futures_ready(stop: &mut std::pin::Pin<&mut impl Future<Output = ()>>) -> bool {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    stop.as_mut().poll(&mut cx).is_ready()
}
