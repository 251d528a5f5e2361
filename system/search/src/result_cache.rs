//! Answers of the current index generation, kept until the next commit.
//!
//! As Solr's `queryResultCache` and Elasticsearch's shard request cache: the
//! documents a reader sees change only when a commit reloads it, so until
//! then the same query, filters and page have the same answer. Users search a
//! small set of words, and a query that matches most of a tenant's documents
//! (scoring, counting and faceting all of them) costs milliseconds; between
//! two commits (2 s) it is computed once per distinct question instead of
//! once per request. A commit starts a new generation and the old answers go.
//!
//! Once per question, not once per request that arrives before the first
//! answer is ready: the requests of a question wait for the one computing it
//! (as Go's `singleflight`, or Varnish's request coalescing). Without that,
//! every request in the milliseconds after a commit computed the same answer
//! on a thread of its own, and the later in a run, the larger the index and
//! the more of them: at 45,000 phase2 users on two cores, search went from
//! 26–30 CPU-µs per request over a minute's hold to 41 over four.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::index::{Filters, Hit};
use crate::query_plan::QueryPlan;

/// Answers held at most in one generation; past it the cache starts over.
const CAPACITY: usize = 4096;

/// What identifies an answer within a generation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Question {
    pub(crate) tenant: String,
    pub(crate) plan: QueryPlan,
    pub(crate) filters: Filters,
    pub(crate) page: usize,
    pub(crate) size: usize,
}

/// A computed answer: what a search returns apart from its own timing.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) total: usize,
    pub(crate) hits: Vec<Hit>,
    pub(crate) facets: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>,
}

/// A question's answer, or the lock its first asker holds while computing it.
type Slot = Arc<Mutex<Option<Arc<Answer>>>>;

#[derive(Debug, Default)]
struct Generation {
    id: u64,
    answers: HashMap<Question, Slot>,
}

/// The answers of one index generation.
#[derive(Debug, Default)]
pub(crate) struct ResultCache {
    current: Mutex<Generation>,
}

/// Where an answer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// Computed by another request (before or while this one waited).
    Cache,
    /// Computed for this request.
    Computed,
}

impl ResultCache {
    /// The answer to `question` on generation `id`: kept, or computed by
    /// `compute` once while the other askers wait. An error is returned to
    /// its asker only, and the next waiter computes again. A question on an
    /// older generation than the cache's is computed and not kept.
    pub(crate) fn answer<E>(
        &self,
        id: u64,
        question: Question,
        compute: impl FnOnce() -> Result<Answer, E>,
    ) -> Result<(Arc<Answer>, Source), E> {
        let Some(slot) = self.slot(id, question) else {
            return Ok((Arc::new(compute()?), Source::Computed));
        };
        // Blocks while another request computes this answer: both run on
        // the blocking pool, where the waiter would otherwise compute too.
        let mut answer = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(answer) = answer.as_ref() {
            return Ok((Arc::clone(answer), Source::Cache));
        }
        let computed = Arc::new(compute()?);
        *answer = Some(Arc::clone(&computed));
        Ok((computed, Source::Computed))
    }

    /// `question`'s slot in generation `id`; `None` for an older generation.
    fn slot(&self, id: u64, question: Question) -> Option<Slot> {
        let mut current = self.current.lock().expect("never poisoned");
        if id < current.id {
            return None;
        }
        if id > current.id || (current.answers.len() >= CAPACITY && !current.answers.contains_key(&question)) {
            *current = Generation { id, answers: HashMap::new() };
        }
        Some(Arc::clone(current.answers.entry(question).or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question(q: &str) -> Question {
        let plan = QueryPlan::parse(q).unwrap();
        Question { tenant: "acme".into(), plan, filters: Filters::default(), page: 1, size: 10 }
    }

    fn answer(total: usize) -> Answer {
        Answer { total, hits: Vec::new(), facets: Default::default() }
    }

    /// The cached answer's total, and where it came from.
    fn ask(cache: &ResultCache, id: u64, question: Question, total: usize) -> (usize, Source) {
        let (answer, source) = cache.answer(id, question, || Ok::<_, ()>(answer(total))).unwrap();
        (answer.total, source)
    }

    #[test]
    fn an_answer_holds_for_its_generation_only() {
        let cache = ResultCache::default();
        assert_eq!(ask(&cache, 1, question("cache"), 7), (7, Source::Computed));
        assert_eq!(ask(&cache, 1, question("cache"), 8), (7, Source::Cache));
        assert_eq!(ask(&cache, 1, question("api"), 9), (9, Source::Computed), "another question");
        let mut page_two = question("cache");
        page_two.page = 2;
        assert_eq!(ask(&cache, 1, page_two, 10).1, Source::Computed, "another page");
        assert_eq!(ask(&cache, 2, question("cache"), 11), (11, Source::Computed), "after a commit");
        assert_eq!(ask(&cache, 1, question("cache"), 12), (12, Source::Computed), "an older generation's");
        assert_eq!(ask(&cache, 1, question("cache"), 13), (13, Source::Computed), "... is not kept");
        assert_eq!(ask(&cache, 2, question("cache"), 14), (11, Source::Cache));
    }

    #[test]
    fn askers_of_a_question_being_computed_wait_for_its_answer_instead_of_computing_it_again() {
        let cache = Arc::new(ResultCache::default());
        let computed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (started_tx, started) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let first = {
            let (cache, computed) = (Arc::clone(&cache), Arc::clone(&computed));
            std::thread::spawn(move || {
                let compute = || {
                    computed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    started_tx.send(()).unwrap();
                    released.recv().unwrap();
                    Ok::<_, ()>(answer(5))
                };
                cache.answer(1, question("cache"), compute).unwrap().1
            })
        };
        started.recv().unwrap();
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let (cache, computed) = (Arc::clone(&cache), Arc::clone(&computed));
                std::thread::spawn(move || {
                    let compute = || {
                        computed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        Ok::<_, ()>(answer(6))
                    };
                    let (answer, source) = cache.answer(1, question("cache"), compute).unwrap();
                    (answer.total, source)
                })
            })
            .collect();
        // Every asker holds the question's slot from the moment it asks: once
        // the generation, the first asker and the four waiters hold it, the
        // waiters asked while the answer was being computed.
        let holders = || Arc::strong_count(&cache.current.lock().unwrap().answers[&question("cache")]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while holders() < 6 {
            assert!(std::time::Instant::now() < deadline, "the waiters never asked: {} holders", holders());
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        release.send(()).unwrap();
        assert_eq!(first.join().unwrap(), Source::Computed);
        for waiter in waiters {
            assert_eq!(waiter.join().unwrap(), (5, Source::Cache));
        }
        assert_eq!(computed.load(std::sync::atomic::Ordering::SeqCst), 1, "computed once for five askers");
    }

    #[test]
    fn a_failed_computation_is_its_askers_error_and_the_next_asker_computes_again() {
        let cache = ResultCache::default();
        let failed = cache.answer(1, question("cache"), || Err::<Answer, _>("disk"));
        assert_eq!(failed.unwrap_err(), "disk");
        assert_eq!(ask(&cache, 1, question("cache"), 4), (4, Source::Computed));
        assert_eq!(ask(&cache, 1, question("cache"), 5), (4, Source::Cache));
    }
}
