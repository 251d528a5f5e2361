//! One-typo matching without building a Levenshtein automaton per field and query.
//!
//! tantivy's `FuzzyTermQuery` builds its automaton (a DFA over the word) in
//! every query, once per field: a word searched in five fields built five
//! identical DFAs, and building them (allocating and zeroing their
//! transition tables) was a third of q2o-search's CPU under phase2's load.
//! The DFA depends only on the word, so [`Automata`] builds it once and
//! keeps it for the next query with that word; [`SharedFuzzy`] matches a
//! field with it, scoring as `FuzzyTermQuery` does (a constant score).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tantivy::query::{AutomatonWeight, DfaWrapper, EnableScoring, FuzzyTermQuery, Query, Weight};
use tantivy::schema::{Field, Term};

/// How many words' automata are kept. Past that the cache starts over: a
/// search service sees a bounded vocabulary in practice, and a cleared
/// cache only costs rebuilding.
const CAPACITY: usize = 4096;

/// The automata of recently searched words (one typo, transpositions costing one).
#[derive(Default)]
pub(crate) struct Automata {
    by_word: Mutex<HashMap<String, Arc<DfaWrapper>>>,
}

impl std::fmt::Debug for Automata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let words = self.by_word.lock().map(|m| m.len()).unwrap_or_default();
        f.debug_struct("Automata").field("words", &words).finish()
    }
}

impl Automata {
    /// The automaton matching `word` with at most one typo, built at most once while kept.
    pub(crate) fn one_typo(&self, field: Field, word: &str) -> tantivy::Result<Arc<DfaWrapper>> {
        if let Some(dfa) = self.by_word.lock().expect("never poisoned").get(word) {
            return Ok(Arc::clone(dfa));
        }
        // Built outside the lock: a slow build does not hold up other searches.
        let dfa = Arc::new(FuzzyTermQuery::new(Term::from_field_text(field, word), 1, true).automaton()?);
        let mut by_word = self.by_word.lock().expect("never poisoned");
        if by_word.len() >= CAPACITY {
            by_word.clear();
        }
        by_word.insert(word.to_owned(), Arc::clone(&dfa));
        Ok(dfa)
    }
}

/// The terms of `field` within one typo of a word, through a shared automaton.
#[derive(Clone)]
pub(crate) struct SharedFuzzy {
    field: Field,
    dfa: Arc<DfaWrapper>,
}

impl SharedFuzzy {
    pub(crate) fn new(field: Field, dfa: Arc<DfaWrapper>) -> SharedFuzzy {
        SharedFuzzy { field, dfa }
    }
}

impl std::fmt::Debug for SharedFuzzy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedFuzzy").field("field", &self.field).finish_non_exhaustive()
    }
}

impl Query for SharedFuzzy {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(AutomatonWeight::<DfaWrapper>::new(self.field, Arc::clone(&self.dfa))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::collector::Count;
    use tantivy::schema::{Schema, TEXT};
    use tantivy::{Index, doc};

    #[test]
    fn a_shared_automaton_matches_what_fuzzy_term_query_matches_in_each_field() {
        let mut schema = Schema::builder();
        let (name, code) = (schema.add_text_field("name", TEXT), schema.add_text_field("code", TEXT));
        let index = Index::create_in_ram(schema.build());
        let mut writer = index.writer_with_num_threads(1, 15_000_000).unwrap();
        for (n, c) in [("parser", "fn main"), ("pasrer", "parsers"), ("lexer", "parse"), ("other", "nothing")] {
            writer.add_document(doc!(name => n, code => c)).unwrap();
        }
        writer.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        let automata = Automata::default();
        for field in [name, code] {
            let dfa = automata.one_typo(field, "parser").unwrap();
            let shared = searcher.search(&SharedFuzzy::new(field, dfa), &Count).unwrap();
            let fuzzy = FuzzyTermQuery::new(Term::from_field_text(field, "parser"), 1, true);
            assert_eq!(shared, searcher.search(&fuzzy, &Count).unwrap());
        }
        assert_eq!(
            searcher.search(&SharedFuzzy::new(name, automata.one_typo(name, "parser").unwrap()), &Count).unwrap(),
            2
        );
        assert!(Arc::ptr_eq(&automata.one_typo(name, "parser").unwrap(), &automata.one_typo(code, "parser").unwrap()));
    }
}
