//! Benchmarks of the reference system. Each `benches/*.rs` is a program that
//! measures one thing and prints what it measured; see the README's Benchmarks.

/// Formats a latency histogram (microseconds) as `mean / p50 / p95 / p99 / max`.
pub fn percentiles(h: &hdrhistogram::Histogram<u64>) -> String {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    format!(
        "mean {:.3} ms, p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms (n = {})",
        h.mean() / 1000.0,
        ms(0.5),
        ms(0.95),
        ms(0.99),
        h.max() as f64 / 1000.0,
        h.len()
    )
}

pub mod corpus {
    //! The synthetic search corpus: documents of `tenants` tenants drawn from
    //! a 40-word vocabulary, a third of them projects and the rest code.

    use q2o_search::index::{DocKind, IndexDoc, SearchIndex};
    use rand::RngExt;
    use time::OffsetDateTime;

    /// The vocabulary.
    pub const WORDS: &[&str] = &[
        "ledger",
        "payment",
        "refund",
        "invoice",
        "billing",
        "analytics",
        "dashboard",
        "pipeline",
        "search",
        "index",
        "cluster",
        "gateway",
        "session",
        "cache",
        "stream",
        "report",
        "export",
        "import",
        "schema",
        "migration",
        "auth",
        "token",
        "tenant",
        "quota",
        "audit",
        "event",
        "kafka",
        "redis",
        "worker",
        "queue",
        "retry",
        "backoff",
        "parser",
        "render",
        "template",
        "compiler",
        "network",
        "socket",
        "latency",
        "throughput",
    ];

    /// `n` random words.
    pub fn sentence(rng: &mut impl rand::Rng, n: usize) -> String {
        (0..n).map(|_| WORDS[rng.random_range(0..WORDS.len())]).collect::<Vec<_>>().join(" ")
    }

    /// Indexes `docs` documents of `tenants` tenants (committing every 20,000 and at the end).
    pub fn fill(index: &SearchIndex, docs: usize, tenants: usize, rng: &mut impl rand::Rng) {
        for i in 0..docs {
            let kind = if i % 3 == 0 { DocKind::Project } else { DocKind::Code };
            let doc = IndexDoc {
                kind,
                id: format!("doc-{i}"),
                tenant: format!("tenant-{}", i % tenants),
                project_id: format!("p-{}", i / 3),
                name: sentence(rng, 3),
                objective: sentence(rng, 8),
                description: sentence(rng, 20),
                tags: vec![WORDS[i % WORDS.len()].to_string()],
                code: if kind == DocKind::Code {
                    format!("fn {}() {{ {} }}", WORDS[i % WORDS.len()], sentence(rng, 40))
                } else {
                    String::new()
                },
                language: "rust".into(),
                agent_type: ["coder", "qa", "testing", "data"][i % 4].into(),
                status: "completed".into(),
                created: OffsetDateTime::now_utc(),
            };
            index.upsert(&doc, None).expect("the index takes the document");
            if i % 20_000 == 19_999 {
                index.commit().expect("commits");
            }
        }
        index.commit().expect("commits");
    }
}
