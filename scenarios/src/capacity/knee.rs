//! The knee: the most concurrent users at which every SLO still holds, found
//! by growing the users (doubling, from a guess) until a count breaks, or
//! shrinking them until one holds, and then bisecting between the most that
//! held and the fewest that broke.

use std::future::Future;

use serde::Serialize;

/// The search's outcome.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Knee {
    /// The most users that held (`None` if even the first count did not).
    pub knee_users: Option<u64>,
    /// The fewest users that broke (`None` if none did up to the ceiling).
    pub broke_users: Option<u64>,
}

/// How a search proceeds: where it starts, how it grows, when it stops.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// The first user count tried.
    pub start: u64,
    /// The most tried.
    pub ceiling: u64,
    /// Factor from one count to the next before the bracket closes: 2 from a
    /// far guess, less from a near one (the knee at one replica fewer).
    pub growth: f64,
    /// Stop bisecting when the bracket is narrower than this share of the users.
    pub resolution: f64,
    /// Most counts tried.
    pub max_steps: usize,
}

/// Searches as `bounds` say: grows the users by `growth` from `start` while
/// they hold (up to `ceiling`), or shrinks them by it until a count holds,
/// then bisects until the bracket is narrower than `resolution` or
/// `max_steps` counts were tried. `probe(users)` runs one step and says
/// whether every SLO held; a probe that could not run ends the search.
/// Returns the knee and every count tried with its verdict, in order.
pub async fn search<F, Fut, E>(bounds: Bounds, mut probe: F) -> Result<(Knee, Vec<(u64, bool)>), E>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<bool, E>>,
{
    let Bounds { start, ceiling, growth, resolution, max_steps } = bounds;
    let grown = |users: u64| ((users as f64 * growth).round() as u64).max(users + 1);
    let shrunk = |users: u64| ((users as f64 / growth).round() as u64).min(users - 1);
    let mut tried = Vec::new();
    let mut knee = Knee::default();
    let mut users = start.clamp(1, ceiling.max(1));
    // Growing.
    while tried.len() < max_steps {
        let held = probe(users).await?;
        tried.push((users, held));
        if !held {
            knee.broke_users = Some(users);
            break;
        }
        knee.knee_users = Some(users);
        if users >= ceiling {
            break;
        }
        users = grown(users).min(ceiling);
    }
    // Bisecting; below the first count, shrinking until one holds.
    while tried.len() < max_steps {
        let next = match (knee.knee_users, knee.broke_users) {
            (Some(good), Some(bad)) if (bad - good) as f64 > resolution * good as f64 && bad - good > 1 => {
                good + (bad - good) / 2
            }
            (None, Some(bad)) if bad > 1 => shrunk(bad).max(1),
            _ => break,
        };
        let held = probe(next).await?;
        tried.push((next, held));
        if held {
            knee.knee_users = Some(next);
        } else {
            knee.broke_users = Some(next);
        }
    }
    Ok((knee, tried))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(start: u64, ceiling: u64, resolution: f64, max_steps: usize) -> Bounds {
        Bounds { start, ceiling, growth: 2.0, resolution, max_steps }
    }

    fn run(f: impl Future<Output = Result<(Knee, Vec<(u64, bool)>), ()>>) -> (Knee, Vec<(u64, bool)>) {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f).unwrap()
    }

    #[test]
    fn doubling_then_bisecting_finds_a_known_capacity_within_its_resolution() {
        let capacity = 1234;
        let (knee, tried) = run(search(bounds(50, 100_000, 0.05, 30), |users| async move { Ok(users <= capacity) }));
        let found = knee.knee_users.unwrap();
        assert!(found <= capacity && found as f64 >= capacity as f64 * 0.95, "{knee:?}");
        assert!(knee.broke_users.unwrap() > capacity);
        let counts: Vec<u64> = tried.iter().map(|t| t.0).collect();
        assert_eq!(&counts[..6], [50, 100, 200, 400, 800, 1600]);
    }

    #[test]
    fn a_system_that_never_breaks_stops_at_the_ceiling_and_one_that_always_does_halves() {
        let (knee, _) = run(search(bounds(100, 1000, 0.05, 30), |_| async { Ok(true) }));
        assert_eq!(knee, Knee { knee_users: Some(1000), broke_users: None });
        let (knee, _) = run(search(bounds(100, 1000, 0.05, 30), |users| async move { Ok(users <= 30) }));
        let found = knee.knee_users.unwrap();
        assert!((28..=30).contains(&found), "{knee:?}");
        let (knee, tried) = run(search(bounds(100, 1000, 0.05, 5), |_| async { Ok(false) }));
        assert_eq!(knee.knee_users, None);
        assert_eq!(tried.len(), 5, "bounded by max_steps");
        let (knee, tried) = run(search(bounds(4, 1000, 0.05, 30), |_| async { Ok(false) }));
        assert_eq!((knee, tried.len()), (Knee { knee_users: None, broke_users: Some(1) }, 3), "4, 2, 1 users");
    }

    #[test]
    fn a_near_guess_grows_and_shrinks_by_its_own_factor() {
        let near = |start| Bounds { start, ceiling: 100_000, growth: 1.25, resolution: 0.1, max_steps: 30 };
        let (knee, tried) = run(search(near(1000), |users| async move { Ok(users <= 1100) }));
        assert_eq!(&tried[..2], [(1000, true), (1250, false)]);
        assert!(knee.knee_users.unwrap() >= 1000 && knee.broke_users.unwrap() <= 1250, "{knee:?}");
        let (_, tried) = run(search(near(1000), |users| async move { Ok(users <= 700) }));
        assert_eq!(&tried[..3], [(1000, false), (800, false), (640, true)]);
    }

    #[test]
    fn the_bracket_closes_at_one_user() {
        let (knee, _) = run(search(bounds(2, 1000, 0.0001, 30), |users| async move { Ok(users <= 5) }));
        assert_eq!(knee, Knee { knee_users: Some(5), broke_users: Some(6) });
    }
}
