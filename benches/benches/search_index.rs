//! Search latency at 100k indexed documents (20 tenants, or as many as asked:
//! a load test's users all share one), and indexing lag (time from a document
//! being added until a commit makes it searchable, committing at q2o-search's
//! own `commit_every`).
//!
//! Three kinds of question: distinct two-word queries (each computed: the
//! cost of a query), the same with a typo, and the users' kind of traffic,
//! one of eight words per tenant asked again and again (answered from the
//! result cache after its first time in each commit's generation).
//!
//! `cargo bench -p q2o-benches --bench search_index [-- DOCS [TENANTS]]`

use std::collections::HashSet;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use q2o_benches::corpus::{WORDS, sentence};
use q2o_search::index::{DocKind, Filters, IndexDoc, SearchIndex};
use q2o_search::metrics::SearchMetrics;
use q2o_search::query_plan::QueryPlan;
use q2o_testkit::ScratchDir;
use rand::RngExt;
use time::OffsetDateTime;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Question {
    Distinct,
    Typo,
    Repeated,
}

fn main() {
    let numbers: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let docs = numbers.first().copied().unwrap_or(100_000);
    let tenants = numbers.get(1).copied().unwrap_or(20).max(1);
    let dir = ScratchDir::new("bench-search").unwrap();
    let index = SearchIndex::open(dir.path(), SearchMetrics::new(&prometheus::Registry::new())).unwrap();
    let mut rng = rand::rng();
    let started = Instant::now();
    q2o_benches::corpus::fill(&index, docs, tenants, &mut rng);
    index.commit().unwrap();
    let build = started.elapsed();
    println!(
        "indexed {docs} documents of {tenants} tenants in {:.1} s ({:.0} docs/s)",
        build.as_secs_f64(),
        docs as f64 / build.as_secs_f64()
    );

    let kinds = [
        ("distinct 2-word queries", Question::Distinct),
        ("distinct 2-word queries, one typo", Question::Typo),
        ("one of 8 words per tenant, asked again", Question::Repeated),
    ];
    for (label, kind) in kinds {
        let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        let mut asked = HashSet::new();
        // 1,600 two-word queries per tenant: ask at most 1,000 of them.
        let questions = if kind == Question::Repeated { 2_000 } else { 2_000.min(1_000 * tenants) };
        for _ in 0..questions {
            let (q, tenant) = loop {
                let mut q = match kind {
                    Question::Repeated => WORDS[rng.random_range(0..8)].to_owned(),
                    Question::Distinct | Question::Typo => sentence(&mut rng, 2),
                };
                if kind == Question::Typo {
                    q.remove(1);
                }
                let tenant = format!("tenant-{}", rng.random_range(0..tenants));
                // A distinct question is never answered from the result cache.
                if kind == Question::Repeated || asked.insert((q.clone(), tenant.clone())) {
                    break (q, tenant);
                }
            };
            let plan = QueryPlan::parse(&q).unwrap();
            let t = Instant::now();
            let results = index.search(&tenant, &plan, &Filters::default(), 1, 10).unwrap();
            latencies.record(t.elapsed().as_micros().max(1) as u64).unwrap();
            std::hint::black_box(results);
        }
        println!("search ({label}; page of 10 + facets + highlights): {}", q2o_benches::percentiles(&latencies));
    }

    // Indexing lag: documents arriving every 0.5 ms (plus indexing time), committed as the service does.
    let every = q2o_search::config::Config::default().commit_every;
    let mut lag = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut pending: Vec<Instant> = Vec::new();
    let mut next_commit = Instant::now() + every;
    let run_until = Instant::now() + Duration::from_secs(10);
    let mut i = docs;
    while Instant::now() < run_until {
        let doc = IndexDoc {
            kind: DocKind::Code,
            id: format!("live-{i}"),
            tenant: "tenant-0".into(),
            project_id: "p".into(),
            name: sentence(&mut rng, 3),
            objective: String::new(),
            description: sentence(&mut rng, 20),
            tags: Vec::new(),
            code: sentence(&mut rng, 40),
            language: "rust".into(),
            agent_type: "coder".into(),
            status: "completed".into(),
            created: OffsetDateTime::now_utc(),
        };
        index.upsert(&doc, None).unwrap();
        pending.push(Instant::now());
        i += 1;
        if Instant::now() >= next_commit {
            index.commit().unwrap();
            let visible = Instant::now();
            for added in pending.drain(..) {
                lag.record((visible - added).as_micros().max(1) as u64).unwrap();
            }
            next_commit += every;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let rate = (i - docs) as f64 / 10.0;
    println!("indexing lag at {rate:.0} docs/s, commit every {every:?}: {}", q2o_benches::percentiles(&lag));
}
