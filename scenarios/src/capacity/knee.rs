//! The knee: the highest arrival rate at which every SLO still holds, found by
//! doubling the rate until one breaks and then bisecting between the last
//! rate that held and the first that broke.

use std::future::Future;

use serde::Serialize;

/// One rate tried, and whether it met every SLO.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Step {
    /// Requests per second offered.
    pub rate: f64,
    /// Every SLO held.
    pub held: bool,
}

/// The search's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Knee {
    /// The highest rate that held (`None` if even the first did not).
    pub rate: Option<f64>,
    /// The lowest rate that broke (`None` if none did up to the ceiling).
    pub broke_at: Option<f64>,
    /// Every step, in order.
    pub steps: Vec<Step>,
}

/// Searches from `start` (doubling, at most up to `ceiling`) and then bisects
/// until the bracket is narrower than `resolution` (a fraction of the rate,
/// e.g. 0.05) or `max_steps` rates were tried. `probe(rate)` runs one step
/// and says whether every SLO held; a probe that could not run ends the search.
pub async fn search<F, Fut, E>(
    start: f64,
    ceiling: f64,
    resolution: f64,
    max_steps: usize,
    mut probe: F,
) -> Result<Knee, E>
where
    F: FnMut(f64) -> Fut,
    Fut: Future<Output = Result<bool, E>>,
{
    let mut steps = Vec::new();
    let (mut good, mut bad): (Option<f64>, Option<f64>) = (None, None);
    let mut rate = start.min(ceiling);
    // Doubling.
    while steps.len() < max_steps {
        let held = probe(rate).await?;
        steps.push(Step { rate, held });
        if held {
            good = Some(rate);
            if rate >= ceiling {
                break;
            }
            rate = (rate * 2.0).min(ceiling);
        } else {
            bad = Some(rate);
            break;
        }
    }
    // Bisecting; below the first rate, halve until one holds.
    while steps.len() < max_steps {
        let next = match (good, bad) {
            (Some(g), Some(b)) if (b - g) > resolution * g => (g + b) / 2.0,
            (None, Some(b)) if b > start / 64.0 => b / 2.0,
            _ => break,
        };
        let held = probe(next).await?;
        steps.push(Step { rate: next, held });
        if held {
            good = Some(next);
        } else {
            bad = Some(next);
        }
    }
    Ok(Knee { rate: good, broke_at: bad, steps })
}

/// Concurrent users that produce `rate` requests per second when each waits
/// `think` seconds between requests that take `response` seconds: Little's
/// law, N = X · (Z + R).
pub fn users_for(rate: f64, think: f64, response: f64) -> f64 {
    rate * (think + response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: impl Future<Output = Result<Knee, ()>>) -> Knee {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f).unwrap()
    }

    #[test]
    fn doubling_then_bisecting_finds_a_known_capacity_within_its_resolution() {
        let capacity = 1234.0;
        let knee = run(search(50.0, 100_000.0, 0.05, 30, |rate| async move { Ok(rate <= capacity) }));
        let found = knee.rate.unwrap();
        assert!(found <= capacity && found >= capacity * 0.95, "{knee:?}");
        assert!(knee.broke_at.unwrap() > capacity);
        let rates: Vec<f64> = knee.steps.iter().map(|s| s.rate).collect();
        assert_eq!(&rates[..6], [50.0, 100.0, 200.0, 400.0, 800.0, 1600.0]);
    }

    #[test]
    fn a_system_that_never_breaks_stops_at_the_ceiling_and_one_that_always_does_halves() {
        let knee = run(search(100.0, 1000.0, 0.05, 30, |_| async { Ok(true) }));
        assert_eq!((knee.rate, knee.broke_at), (Some(1000.0), None));
        let knee = run(search(100.0, 1000.0, 0.05, 30, |rate| async move { Ok(rate <= 30.0) }));
        let found = knee.rate.unwrap();
        assert!((28.5..=30.0).contains(&found), "{knee:?}");
        let knee = run(search(100.0, 1000.0, 0.05, 5, |_| async { Ok(false) }));
        assert_eq!(knee.rate, None);
        assert_eq!(knee.steps.len(), 5, "bounded by max_steps");
    }

    #[test]
    fn littles_law_converts_a_rate_to_users() {
        assert_eq!(users_for(500.0, 10.0, 0.05), 5025.0);
    }
}
