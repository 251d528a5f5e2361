use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use q2o_common::metrics::{LATENCY_BUCKETS, names, register};

/// The search service's own series.
#[derive(Clone, Debug)]
pub struct SearchMetrics {
    pub(crate) query_duration: HistogramVec,
    pub(crate) documents: IntGauge,
    pub(crate) size_bytes: IntGauge,
    pub(crate) indexing_lag: Histogram,
    pub(crate) indexed: IntCounter,
    /// Searches answered from the current generation's results, and computed.
    pub(crate) result_cache_hits: IntCounter,
    pub(crate) result_cache_misses: IntCounter,
}

impl SearchMetrics {
    /// Creates and registers the series.
    pub fn new(registry: &Registry) -> Self {
        let lookups = |name: &str, help: &str| {
            let vec = IntCounterVec::new(Opts::new(name, help), &["cache_type"]).expect("valid metric");
            register(registry, vec).with_label_values(&["search_results"])
        };
        let lag_buckets = vec![0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0];
        let metrics = SearchMetrics {
            query_duration: register(
                registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        names::SEARCH_QUERY_DURATION_SECONDS,
                        "Time spent answering a query in the index.",
                    )
                    .buckets(LATENCY_BUCKETS.to_vec()),
                    &["kind"],
                )
                .expect("valid metric"),
            ),
            documents: register(
                registry,
                IntGauge::new(names::SEARCH_INDEX_DOCUMENTS, "Documents in the index.").expect("valid metric"),
            ),
            size_bytes: register(
                registry,
                IntGauge::new(names::SEARCH_INDEX_SIZE_BYTES, "Bytes the index occupies on disk.")
                    .expect("valid metric"),
            ),
            indexing_lag: register(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        names::SEARCH_INDEXING_LAG_SECONDS,
                        "Time from an event's creation until it is searchable.",
                    )
                    .buckets(lag_buckets),
                )
                .expect("valid metric"),
            ),
            indexed: register(
                registry,
                IntCounter::new(names::SEARCH_DOCUMENTS_INDEXED_TOTAL, "Documents indexed.").expect("valid metric"),
            ),
            result_cache_hits: lookups(names::CACHE_HITS_TOTAL, "Cache lookups that hit."),
            result_cache_misses: lookups(names::CACHE_MISSES_TOTAL, "Cache lookups that missed."),
        };
        for kind in ["search", "autocomplete"] {
            metrics.query_duration.with_label_values(&[kind]);
        }
        metrics
    }
}
