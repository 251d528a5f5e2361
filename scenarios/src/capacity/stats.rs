//! Statistics for comparing two sets of latency samples: the ratio of a
//! percentile with a percentile-bootstrap 95 % confidence interval.

use serde::Serialize;

/// A ratio and its 95 % confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RatioCi {
    /// quantile(a) / quantile(b) on the samples as measured.
    pub ratio: f64,
    /// 2.5th percentile of the bootstrap ratios.
    pub low: f64,
    /// 97.5th percentile of the bootstrap ratios.
    pub high: f64,
}

/// The `q` quantile of sorted samples (nearest rank, as HdrHistogram reports).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// quantile_q(a) / quantile_q(b), with a 95 % interval from `resamples`
/// bootstrap resamples of each set (drawn with a fixed seed, so a report is
/// reproducible from its samples). `None` when either set is empty.
pub fn ratio_ci(a: &[f64], b: &[f64], q: f64, resamples: usize, seed: u64) -> Option<RatioCi> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let sorted = |s: &[f64]| {
        let mut v = s.to_vec();
        v.sort_by(f64::total_cmp);
        v
    };
    let ratio = quantile(&sorted(a), q) / quantile(&sorted(b), q);
    let mut rng = SplitMix64(seed);
    let mut buffer = Vec::new();
    let mut resample = |s: &[f64], rng: &mut SplitMix64| {
        buffer.clear();
        buffer.extend((0..s.len()).map(|_| s[(rng.next() % s.len() as u64) as usize]));
        buffer.sort_by(f64::total_cmp);
        quantile(&buffer, q)
    };
    let mut ratios: Vec<f64> = (0..resamples.max(1)).map(|_| resample(a, &mut rng) / resample(b, &mut rng)).collect();
    ratios.sort_by(f64::total_cmp);
    Some(RatioCi { ratio, low: quantile(&ratios, 0.025), high: quantile(&ratios, 0.975) })
}

/// The values recorded in a latency histogram as samples, each as often as it
/// was recorded (at the histogram's resolution: 3 significant digits), sorted.
pub fn samples(h: &hdrhistogram::Histogram<u64>) -> Vec<f64> {
    let mut out = Vec::with_capacity(h.len() as usize);
    for bucket in h.iter_recorded() {
        let value = h.highest_equivalent(bucket.value_iterated_to()) as f64;
        out.extend(std::iter::repeat_n(value, bucket.count_at_value() as usize));
    }
    out
}

/// A small, fast, seedable generator: enough for resampling indices.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    #[cfg(test)]
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exponential samples with the given mean.
    fn exponential(mean: f64, n: usize, rng: &mut SplitMix64) -> Vec<f64> {
        (0..n).map(|_| -mean * rng.unit().ln()).collect()
    }

    #[test]
    fn the_interval_covers_the_true_ratio_about_95_times_in_100() {
        // p95 of an exponential is mean·ln 20, so the true p95 ratio is the ratio of the means.
        let truth = 3.0;
        let mut rng = SplitMix64(42);
        let trials = 100;
        let mut covered = 0;
        for trial in 0..trials {
            let a = exponential(3.0, 400, &mut rng);
            let b = exponential(1.0, 400, &mut rng);
            let ci = ratio_ci(&a, &b, 0.95, 400, trial).unwrap();
            assert!(ci.low <= ci.ratio && ci.ratio <= ci.high, "{ci:?}");
            if ci.low <= truth && truth <= ci.high {
                covered += 1;
            }
        }
        // Binomial(100, 0.95): below 88 happens with probability under 0.1 %.
        assert!(covered >= 88, "covered the true ratio in {covered} of {trials} trials");
    }

    #[test]
    fn histogram_samples_give_the_histograms_own_quantiles() {
        let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        let mut rng = SplitMix64(9);
        for _ in 0..10_000 {
            h.record((1.0 + 5_000.0 * rng.unit()) as u64).unwrap();
        }
        let s = samples(&h);
        assert_eq!(s.len(), 10_000);
        assert!(s.windows(2).all(|w| w[0] <= w[1]), "sorted");
        for q in [0.5, 0.95, 0.99] {
            assert_eq!(quantile(&s, q), h.value_at_quantile(q) as f64, "q {q}");
        }
    }

    #[test]
    fn identical_sets_give_a_ratio_of_one_and_empty_sets_none() {
        let a: Vec<f64> = (1..=100).map(f64::from).collect();
        let ci = ratio_ci(&a, &a, 0.5, 200, 7).unwrap();
        assert_eq!(ci.ratio, 1.0);
        assert!(ci.low <= 1.0 && ci.high >= 1.0);
        assert!(ratio_ci(&a, &[], 0.5, 10, 1).is_none());
        assert_eq!(quantile(&a, 0.95), 95.0);
    }
}
