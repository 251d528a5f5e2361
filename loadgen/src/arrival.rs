//! When each request of an open-model run is due.
//!
//! The rate ramps linearly from `start` to `end` requests per second over the
//! run (equal rates give a constant rate). Request `n` is due when the integral
//! of the rate reaches `n`, so the schedule is exact however long the run.

use std::time::Duration;

/// A planned arrival schedule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArrivalSchedule {
    start: f64,
    end: f64,
    duration: Duration,
}

impl ArrivalSchedule {
    /// A schedule from `start` to `end` requests/s over `duration`.
    pub fn new(start: f64, end: f64, duration: Duration) -> Result<ArrivalSchedule, String> {
        for (name, rate) in [("--rate", start), ("--ramp-to", end)] {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(format!("{name} must be a positive number of requests per second, got {rate}"));
            }
        }
        if duration.is_zero() {
            return Err("--duration must be positive".into());
        }
        Ok(ArrivalSchedule { start, end, duration })
    }

    /// The rate at the start and at the end.
    pub fn rates(&self) -> (f64, f64) {
        (self.start, self.end)
    }

    /// How long the schedule runs.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// When request `n` (from 0) is due, or `None` if after the end.
    pub fn offset(&self, n: u64) -> Option<Duration> {
        let n = n as f64;
        let total = self.duration.as_secs_f64();
        // rate(t) = a + s t, arrivals(t) = a t + s t^2 / 2
        let (a, s) = (self.start, (self.end - self.start) / total);
        let t = if s.abs() < 1e-12 { n / a } else { (-a + (a * a + 2.0 * s * n).max(0.0).sqrt()) / s };
        (t < total).then(|| Duration::from_secs_f64(t))
    }

    /// Requests the whole schedule plans.
    pub fn planned(&self) -> u64 {
        ((self.start + self.end) / 2.0 * self.duration.as_secs_f64()).ceil() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_rate_spaces_requests_evenly() {
        let s = ArrivalSchedule::new(100.0, 100.0, Duration::from_secs(2)).unwrap();
        assert_eq!(s.offset(0), Some(Duration::ZERO));
        assert_eq!(s.offset(1), Some(Duration::from_millis(10)));
        assert_eq!(s.offset(150), Some(Duration::from_millis(1500)));
        assert_eq!(s.offset(200), None);
        assert_eq!(s.planned(), 200);
    }

    #[test]
    fn a_ramp_plans_the_integral_of_its_rate() {
        let s = ArrivalSchedule::new(10.0, 30.0, Duration::from_secs(10)).unwrap();
        // 200 requests in total; half of the time holds 10*5 + 5*5 = 75 of them.
        assert_eq!(s.planned(), 200);
        let t = s.offset(75).unwrap().as_secs_f64();
        assert!((t - 5.0).abs() < 1e-9, "{t}");
        let count = (0..).take_while(|&n| s.offset(n).is_some()).count();
        assert_eq!(count, 200);
    }

    #[test]
    fn bad_rates_and_durations_name_the_flag() {
        assert!(ArrivalSchedule::new(0.0, 1.0, Duration::from_secs(1)).unwrap_err().contains("--rate"));
        assert!(ArrivalSchedule::new(1.0, -1.0, Duration::from_secs(1)).unwrap_err().contains("--ramp-to"));
        assert!(ArrivalSchedule::new(f64::NAN, 1.0, Duration::from_secs(1)).is_err());
        assert!(ArrivalSchedule::new(1.0, 1.0, Duration::ZERO).unwrap_err().contains("--duration"));
    }
}
