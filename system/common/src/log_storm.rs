//! Errors that can repeat per request, logged as a summary per interval.
//!
//! Under overload every request can fail for the same reason; one ERROR line
//! per request then costs more than the request did (a gateway once wrote
//! 66 MB of them in 7 minutes), and buries the one line a reader needs. A
//! [`LogStorm`] logs the first error of each reason in an interval in full,
//! counts the rest, and at the interval's end writes one line with the
//! counts by reason. A quiet service logs exactly what it did before.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often suppressed errors are summed up.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(10);

/// A log of errors that may repeat per request. Cheap to clone; clones share counts.
#[derive(Clone, Debug)]
pub struct LogStorm {
    /// What fails, for the summary line (`requests`, `searches`, `tasks`).
    what: &'static str,
    /// How often the counts are summed up.
    interval: Duration,
    counts: Arc<Mutex<Counts>>,
}

#[derive(Debug, Default)]
struct Counts {
    /// Errors by reason since the interval started: logged ones and suppressed ones.
    by_reason: BTreeMap<&'static str, u64>,
    /// Whether a flusher task is running.
    flushing: bool,
}

impl LogStorm {
    /// A storm guard for failures of `what`.
    pub fn new(what: &'static str) -> LogStorm {
        LogStorm::every(what, SUMMARY_INTERVAL)
    }

    /// A storm guard summing up every `interval`.
    pub fn every(what: &'static str, interval: Duration) -> LogStorm {
        LogStorm { what, interval, counts: Arc::default() }
    }

    /// Logs `err` at ERROR if it is the first of `reason` in this interval;
    /// otherwise counts it for the interval's summary.
    pub fn error(&self, reason: &'static str, err: &dyn Display) {
        if self.count(reason) {
            tracing::error!(%err, reason, "{} failed", self.what);
        }
    }

    /// As [`LogStorm::error`], at WARN.
    pub fn warn(&self, reason: &'static str, err: &dyn Display) {
        if self.count(reason) {
            tracing::warn!(%err, reason, "{} failed", self.what);
        }
    }

    /// Counts one error of `reason`; whether it is the first in the interval.
    fn count(&self, reason: &'static str) -> bool {
        let mut counts = self.counts.lock().expect("never poisoned");
        let seen = counts.by_reason.entry(reason).or_insert(0);
        *seen += 1;
        let first = *seen == 1;
        if !counts.flushing
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            counts.flushing = true;
            runtime.spawn(flush_every(self.clone()));
        }
        first
    }

    /// Takes the interval's counts: the summary line, if any error was suppressed.
    fn summary(&self) -> Option<String> {
        let by_reason = std::mem::take(&mut self.counts.lock().expect("never poisoned").by_reason);
        let suppressed: u64 = by_reason.values().map(|n| n - 1).sum();
        (suppressed > 0).then(|| {
            let total: u64 = by_reason.values().sum();
            let reasons: Vec<String> = by_reason.iter().map(|(reason, n)| format!("{reason}={n}")).collect();
            format!(
                "{total} {} failed in the last {:?} ({suppressed} not logged one by one): {}",
                self.what,
                self.interval,
                reasons.join(" ")
            )
        })
    }
}

/// Writes the summary each interval while errors come; ends after a quiet interval.
async fn flush_every(storm: LogStorm) {
    loop {
        tokio::time::sleep(storm.interval).await;
        if let Some(line) = storm.summary() {
            tracing::error!("{line}");
        }
        let mut counts = storm.counts.lock().expect("never poisoned");
        if counts.by_reason.is_empty() {
            counts.flushing = false;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_error_of_each_reason_is_logged_and_the_rest_summed_up() {
        let storm = LogStorm::new("requests");
        assert!(storm.count("storage"));
        assert!(!storm.count("storage"));
        assert!(!storm.count("storage"));
        assert!(storm.count("timeout"));
        let line = storm.summary().expect("two were suppressed");
        assert_eq!(line, "4 requests failed in the last 10s (2 not logged one by one): storage=3 timeout=1");
        // A new interval logs its first error again.
        assert!(storm.count("storage"));
        assert_eq!(storm.summary(), None, "nothing was suppressed");
    }

    #[tokio::test]
    async fn a_flusher_runs_while_errors_come_and_stops_after_a_quiet_interval() {
        let interval = Duration::from_millis(50);
        let storm = LogStorm::every("searches", interval);
        storm.warn("timeout", &"slow");
        storm.warn("timeout", &"slow");
        assert!(storm.counts.lock().unwrap().flushing);
        // One interval to sum up, one quiet interval to stop, and slack for a busy machine.
        tokio::time::sleep(interval * 2 + Duration::from_millis(500)).await;
        let counts = storm.counts.lock().unwrap();
        assert!(counts.by_reason.is_empty(), "the summary took the counts");
        assert!(!counts.flushing, "the flusher ended after a quiet interval");
    }
}
