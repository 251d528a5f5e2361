//! One-typo matching without building a Levenshtein automaton per field and
//! query, and without reading the postings of the word itself twice.
//!
//! tantivy's `FuzzyTermQuery` builds its automaton (a DFA over the word) in
//! every query, once per field: a word searched in five fields built five
//! identical DFAs, and building them (allocating and zeroing their
//! transition tables) was a third of q2o-search's CPU under phase2's load.
//! The DFA depends only on the word, so [`Automata`] builds it once and
//! keeps it for the next query with that word.
//!
//! Its matching then read, per segment and field, the postings of every term
//! the automaton accepts into a bitset of the whole segment, every tenant's
//! documents included. The term it accepts first is the word itself, which
//! the query's exact clause reads again (scored, and only as far as the
//! tenant's documents). So [`variants`] walks the term dictionaries alone and
//! returns the *other* terms within one typo, usually none or a few rare ones;
//! the query matches those at the constant score `FuzzyTermQuery` gave.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use tantivy::Searcher;
use tantivy::query::{DfaWrapper, FuzzyTermQuery};
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

/// The terms of `field`, in any of `searcher`'s segments, that `dfa` (built
/// for `word`) accepts, other than `word` itself.
pub(crate) fn variants(searcher: &Searcher, field: Field, dfa: &DfaWrapper, word: &str) -> tantivy::Result<Vec<Term>> {
    let mut found = BTreeSet::new();
    for segment in searcher.segment_readers() {
        let inverted = segment.inverted_index(field)?;
        let mut terms = inverted.terms().search(dfa).into_stream()?;
        while terms.advance() {
            let key = terms.key();
            if key != word.as_bytes()
                && let Ok(text) = std::str::from_utf8(key)
            {
                found.insert(text.to_owned());
            }
        }
    }
    Ok(found.into_iter().map(|text| Term::from_field_text(field, &text)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::collector::DocSetCollector;
    use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
    use tantivy::schema::{IndexRecordOption, Schema, TEXT};
    use tantivy::{Index, doc};

    #[test]
    fn the_variants_and_the_word_match_what_fuzzy_term_query_matches_in_each_field() {
        let mut schema = Schema::builder();
        let (name, code) = (schema.add_text_field("name", TEXT), schema.add_text_field("code", TEXT));
        let index = Index::create_in_ram(schema.build());
        let mut writer = index.writer_with_num_threads(1, 15_000_000).unwrap();
        for (n, c) in [("parser", "fn main"), ("pasrer", "parsers"), ("lexer", "parse"), ("other", "nothing")] {
            writer.add_document(doc!(name => n, code => c)).unwrap();
            // Two segments: a variant is found in whichever holds it.
            writer.commit().unwrap();
        }
        let searcher = index.reader().unwrap().searcher();
        let automata = Automata::default();
        let text = |terms: &[Term]| terms.iter().map(|t| t.value().as_str().unwrap().to_owned()).collect::<Vec<_>>();
        for (field, expected) in [(name, vec!["pasrer"]), (code, vec!["parse", "parsers"])] {
            let dfa = automata.one_typo(field, "parser").unwrap();
            let variants = variants(&searcher, field, &dfa, "parser").unwrap();
            assert_eq!(text(&variants), expected);
            let mut any: Vec<(Occur, Box<dyn Query>)> =
                variants.into_iter().map(|t| (Occur::Should, term_query(t))).collect();
            any.push((Occur::Should, term_query(Term::from_field_text(field, "parser"))));
            let fuzzy = FuzzyTermQuery::new(Term::from_field_text(field, "parser"), 1, true);
            let both = searcher.search(&BooleanQuery::new(any), &DocSetCollector).unwrap();
            assert_eq!(both, searcher.search(&fuzzy, &DocSetCollector).unwrap());
        }
        assert!(Arc::ptr_eq(&automata.one_typo(name, "parser").unwrap(), &automata.one_typo(code, "parser").unwrap()));
    }

    fn term_query(term: Term) -> Box<dyn Query> {
        Box::new(TermQuery::new(term, IndexRecordOption::Basic))
    }
}
