//! The Universal Scalability Law, X(N) = λN / (1 + σ(N−1) + κN(N−1)), and its
//! least-squares fit to measured (N, X) points.
//!
//! The fit is Levenberg–Marquardt on (σ, κ, λ) with the analytic Jacobian,
//! σ and κ kept non-negative (a negative contention or coherency cost has no
//! meaning). With more points than parameters it also gives each parameter's
//! standard error from the residual variance and (JᵀJ)⁻¹.

use serde::Serialize;

/// A fitted model.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Usl {
    /// Contention (serial fraction).
    pub sigma: f64,
    /// Coherency (crosstalk) cost.
    pub kappa: f64,
    /// Throughput of one unit.
    pub lambda: f64,
}

/// A fit: the model, and the standard errors of (σ, κ, λ) when the points
/// outnumber the parameters.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Fit {
    /// The model.
    pub model: Usl,
    /// Standard errors of σ, κ and λ.
    pub std_errors: Option<[f64; 3]>,
    /// Root mean square of the residuals.
    pub rms_residual: f64,
}

impl Usl {
    /// Throughput at `n` units.
    pub fn throughput(&self, n: f64) -> f64 {
        self.lambda * n / (1.0 + self.sigma * (n - 1.0) + self.kappa * n * (n - 1.0))
    }

    /// Where throughput peaks, N* = √((1 − σ) / κ); unbounded without coherency cost.
    pub fn peak_units(&self) -> Option<f64> {
        (self.kappa > 0.0).then(|| ((1.0 - self.sigma).max(0.0) / self.kappa).sqrt())
    }

    /// Fewest whole units whose throughput reaches `x`, if any number does
    /// (units beyond the peak only lose throughput).
    pub fn units_for(&self, x: f64) -> Option<u64> {
        let limit = self.peak_units().map_or(1e6, |p| p.ceil().min(1e6)) as u64;
        (1..=limit.max(1)).find(|&n| self.throughput(n as f64) >= x)
    }

    /// ∂X/∂(σ, κ, λ) at `n`.
    fn gradient(&self, n: f64) -> [f64; 3] {
        let d = 1.0 + self.sigma * (n - 1.0) + self.kappa * n * (n - 1.0);
        let x = self.lambda * n / d;
        [-x * (n - 1.0) / d, -x * n * (n - 1.0) / d, n / d]
    }
}

/// Fits the USL to `points` (N, X) by least squares. Needs three points with
/// distinct N; returns `None` otherwise or if the fit does not converge.
pub fn fit(points: &[(f64, f64)]) -> Option<Fit> {
    let mut distinct: Vec<f64> = points.iter().map(|p| p.0).collect();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    if distinct.len() < 3 || points.iter().any(|&(n, x)| !(n > 0.0 && x.is_finite())) {
        return None;
    }
    let sse = |m: &Usl| points.iter().map(|&(n, x)| (x - m.throughput(n)).powi(2)).sum::<f64>();
    // Start from a linear model through the best per-unit throughput.
    let lambda = points.iter().map(|&(n, x)| x / n).fold(0.0, f64::max);
    let mut model = Usl { sigma: 0.01, kappa: 0.0001, lambda };
    let mut damping = 1e-3;
    let mut error = sse(&model);
    for _ in 0..500 {
        let (jtj, jtr) = normal_equations(&model, points);
        let mut improved = false;
        for _ in 0..30 {
            let mut a = jtj;
            for i in 0..3 {
                a[i][i] += damping * jtj[i][i].max(1e-12);
            }
            let Some(step) = solve3(a, jtr) else { break };
            let candidate = Usl {
                sigma: (model.sigma + step[0]).max(0.0),
                kappa: (model.kappa + step[1]).max(0.0),
                lambda: model.lambda + step[2],
            };
            let candidate_error = sse(&candidate);
            if candidate_error < error {
                let converged = (error - candidate_error) <= 1e-15 * error.max(1e-300);
                model = candidate;
                error = candidate_error;
                damping = (damping / 3.0).max(1e-12);
                improved = !converged;
                break;
            }
            damping *= 4.0;
        }
        if !improved {
            break;
        }
    }
    if !(model.lambda.is_finite() && model.lambda > 0.0) {
        return None;
    }
    let dof = points.len() as f64 - 3.0;
    let std_errors = (dof > 0.0).then(|| {
        let (jtj, _) = normal_equations(&model, points);
        let variance = error / dof;
        invert3(jtj).map(|inv| [0, 1, 2].map(|i| (inv[i][i] * variance).max(0.0).sqrt()))
    });
    Some(Fit { model, std_errors: std_errors.flatten(), rms_residual: (error / points.len() as f64).sqrt() })
}

fn normal_equations(model: &Usl, points: &[(f64, f64)]) -> ([[f64; 3]; 3], [f64; 3]) {
    let mut jtj = [[0.0; 3]; 3];
    let mut jtr = [0.0; 3];
    for &(n, x) in points {
        let g = model.gradient(n);
        let residual = x - model.throughput(n);
        for i in 0..3 {
            jtr[i] += g[i] * residual;
            for j in 0..3 {
                jtj[i][j] += g[i] * g[j];
            }
        }
    }
    (jtj, jtr)
}

fn det3(m: [[f64; 3]; 3]) -> f64 {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

fn invert3(m: [[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let det = det3(m);
    if det.abs() < 1e-300 || !det.is_finite() {
        return None;
    }
    let mut inv = [[0.0; 3]; 3];
    for (i, row) in inv.iter_mut().enumerate() {
        for (j, cell) in row.iter_mut().enumerate() {
            // The cofactor of (j, i), over the determinant.
            let (r0, r1) = match j {
                0 => (1, 2),
                1 => (0, 2),
                _ => (0, 1),
            };
            let (c0, c1) = match i {
                0 => (1, 2),
                1 => (0, 2),
                _ => (0, 1),
            };
            let minor = m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
            let sign = if (i + j) % 2 == 0 { 1.0 } else { -1.0 };
            *cell = sign * minor / det;
        }
    }
    Some(inv)
}

fn solve3(a: [[f64; 3]; 3], b: [f64; 3]) -> Option<[f64; 3]> {
    let inv = invert3(a)?;
    Some([0, 1, 2].map(|i| inv[i][0] * b[0] + inv[i][1] * b[1] + inv[i][2] * b[2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gunther's published "cisco" measurements and their fit, as the usl4j and
    /// usl-rs test suites carry them: σ = 0.02671591, κ = 7.690945e-4, λ = 995.6486.
    const CISCO: [(f64, f64); 32] = [
        (1.0, 955.16),
        (2.0, 1878.91),
        (3.0, 2688.01),
        (4.0, 3548.68),
        (5.0, 4315.54),
        (6.0, 5130.43),
        (7.0, 5931.37),
        (8.0, 6531.08),
        (9.0, 7219.8),
        (10.0, 7867.61),
        (11.0, 8278.71),
        (12.0, 8646.7),
        (13.0, 9047.84),
        (14.0, 9426.55),
        (15.0, 9645.37),
        (16.0, 9897.24),
        (17.0, 10097.6),
        (18.0, 10240.5),
        (19.0, 10532.39),
        (20.0, 10798.52),
        (21.0, 11151.43),
        (22.0, 11518.63),
        (23.0, 11806.0),
        (24.0, 12089.37),
        (25.0, 12075.41),
        (26.0, 12177.29),
        (27.0, 12211.41),
        (28.0, 12158.93),
        (29.0, 12155.27),
        (30.0, 12118.04),
        (31.0, 12140.4),
        (32.0, 12074.39),
    ];

    fn close(a: f64, b: f64, relative: f64) -> bool {
        (a - b).abs() <= relative * b.abs()
    }

    #[test]
    fn the_published_example_is_reproduced() {
        let fit = fit(&CISCO).unwrap();
        let m = fit.model;
        assert!(close(m.sigma, 0.02671591, 1e-4), "{m:?}");
        assert!(close(m.kappa, 7.690945e-4, 1e-4), "{m:?}");
        assert!(close(m.lambda, 995.6486, 1e-4), "{m:?}");
        assert_eq!(m.peak_units().map(f64::floor), Some(35.0));
        assert!(fit.std_errors.is_some());
    }

    #[test]
    fn known_parameters_are_recovered_from_synthetic_points_within_five_percent() {
        let truth = Usl { sigma: 0.05, kappa: 0.002, lambda: 1200.0 };
        // Past the peak (N* = 22), with deterministic noise of up to ±1 %.
        let points: Vec<(f64, f64)> = (1..=32)
            .map(|n| {
                let noise = 1.0 + 0.01 * (((n * 7919) % 13) as f64 / 6.0 - 1.0);
                (n as f64, truth.throughput(n as f64) * noise)
            })
            .collect();
        let m = fit(&points).unwrap().model;
        assert!(close(m.sigma, truth.sigma, 0.05), "{m:?}");
        assert!(close(m.kappa, truth.kappa, 0.05), "{m:?}");
        assert!(close(m.lambda, truth.lambda, 0.05), "{m:?}");
    }

    #[test]
    fn too_few_points_give_no_fit_and_units_follow_the_curve() {
        assert!(fit(&[(1.0, 10.0), (2.0, 19.0)]).is_none());
        assert!(fit(&[(1.0, 10.0), (1.0, 11.0), (2.0, 19.0)]).is_none(), "three points but two distinct N");
        let m = Usl { sigma: 0.1, kappa: 0.0, lambda: 100.0 };
        assert_eq!(m.peak_units(), None);
        assert_eq!(m.units_for(100.0), Some(1));
        assert_eq!(m.units_for(181.0), Some(2), "X(2) = 200 / 1.1 = 181.8");
        assert_eq!(m.units_for(182.0), Some(3));
        assert_eq!(m.units_for(1001.0), None, "σ = 0.1 caps X below 1,000");
    }
}
