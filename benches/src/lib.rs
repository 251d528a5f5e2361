//! Benchmarks of the reference system. Each `benches/*.rs` is a program that
//! measures one thing and prints what it measured; see the README's Benchmarks.

/// Formats a latency histogram (microseconds) as `p50 / p95 / p99 / max`.
pub fn percentiles(h: &hdrhistogram::Histogram<u64>) -> String {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    format!(
        "p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms (n = {})",
        ms(0.5),
        ms(0.95),
        ms(0.99),
        h.max() as f64 / 1000.0,
        h.len()
    )
}
