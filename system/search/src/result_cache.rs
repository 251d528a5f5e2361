//! Answers of the current index generation, kept until the next commit.
//!
//! As Solr's `queryResultCache` and Elasticsearch's shard request cache: the
//! documents a reader sees change only when a commit reloads it, so until
//! then the same query, filters and page have the same answer. Users search a
//! small set of words, and a query that matches most of a tenant's documents
//! (scoring, counting and faceting all of them) costs milliseconds; between
//! two commits (2 s) it is computed once per distinct question instead of
//! once per request. A commit starts a new generation and the old answers go.

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

#[derive(Debug, Default)]
struct Generation {
    id: u64,
    answers: HashMap<Question, Arc<Answer>>,
}

/// The answers of one index generation.
#[derive(Debug, Default)]
pub(crate) struct ResultCache {
    current: Mutex<Generation>,
}

impl ResultCache {
    /// The answer to `question` in generation `id`, if it was computed.
    pub(crate) fn get(&self, id: u64, question: &Question) -> Option<Arc<Answer>> {
        let current = self.current.lock().expect("never poisoned");
        if current.id != id {
            return None;
        }
        current.answers.get(question).cloned()
    }

    /// Keeps an answer computed on generation `id`. An answer of an older
    /// generation than the cache's is dropped; a newer one starts the cache over.
    pub(crate) fn put(&self, id: u64, question: Question, answer: Arc<Answer>) {
        let mut current = self.current.lock().expect("never poisoned");
        if id < current.id {
            return;
        }
        if id > current.id || current.answers.len() >= CAPACITY {
            *current = Generation { id, answers: HashMap::new() };
        }
        current.answers.insert(question, answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question(q: &str) -> Question {
        let plan = QueryPlan::parse(q).unwrap();
        Question { tenant: "acme".into(), plan, filters: Filters::default(), page: 1, size: 10 }
    }

    fn answer(total: usize) -> Arc<Answer> {
        Arc::new(Answer { total, hits: Vec::new(), facets: Default::default() })
    }

    #[test]
    fn an_answer_holds_for_its_generation_only() {
        let cache = ResultCache::default();
        cache.put(1, question("cache"), answer(7));
        assert_eq!(cache.get(1, &question("cache")).unwrap().total, 7);
        assert!(cache.get(1, &question("api")).is_none(), "another question");
        let mut page_two = question("cache");
        page_two.page = 2;
        assert!(cache.get(1, &page_two).is_none(), "another page");
        assert!(cache.get(2, &question("cache")).is_none(), "after a commit");
        cache.put(2, question("api"), answer(3));
        cache.put(1, question("cache"), answer(7));
        assert!(cache.get(1, &question("cache")).is_none(), "an older generation's answer is not kept");
        assert_eq!(cache.get(2, &question("api")).unwrap().total, 3);
    }
}
