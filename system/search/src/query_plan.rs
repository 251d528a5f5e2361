//! The user's query text, parsed before it reaches tantivy.
//!
//! Syntax: words (all must match, each allowing one typo), `"exact phrases"`,
//! `-excluded` words, and `field:value` filters on `name`, `tags`, `language`,
//! `agent_type` and `status`. As Elasticsearch's `simple_query_string`, a
//! query is never refused for its syntax: what is not understood (an
//! unbalanced quote, an empty phrase, `-` alone, an unknown field) is left
//! out or read as words, and the answer lists it under `ignored`. Only an
//! empty query and one over 256 characters are refused, as the API's schema
//! says, so that the schema describes exactly what is accepted.

/// Longest accepted query.
pub const MAX_QUERY_CHARS: usize = 256;

/// Fields a `field:value` filter may name.
pub const FILTER_FIELDS: &[&str] = &["name", "tags", "language", "agent_type", "status"];

/// A parsed query.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct QueryPlan {
    /// Words every hit must contain (lower-cased).
    pub words: Vec<String>,
    /// Phrases every hit must contain, as word lists.
    pub phrases: Vec<Vec<String>>,
    /// Words no hit may contain.
    pub excluded: Vec<String>,
    /// `field:value` filters.
    pub filters: Vec<(String, String)>,
    /// What of the text was left out or read otherwise, and why.
    pub ignored: Vec<String>,
}

/// Why a query was rejected. The message names the parameter (`q`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("q: {0}")]
pub struct QueryError(pub String);

/// Splits text into index terms the way the default tokenizer does.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

impl QueryPlan {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<QueryPlan, QueryError> {
        if text.is_empty() {
            return Err(QueryError("must not be empty".into()));
        }
        if text.chars().count() > MAX_QUERY_CHARS {
            return Err(QueryError(format!("must be at most {MAX_QUERY_CHARS} characters")));
        }
        let mut plan = QueryPlan::default();
        let mut parts: Vec<&str> = text.split('"').collect();
        if parts.len().is_multiple_of(2) {
            // An odd number of quotes: the last one opens nothing.
            plan.ignored.push("an unbalanced quote".into());
            let last = parts.pop().unwrap_or_default();
            let before = parts.pop().unwrap_or_default();
            plan.words_of(before);
            plan.words_of(last);
        }
        for (i, part) in parts.iter().enumerate() {
            if i % 2 == 0 {
                plan.words_of(part);
                continue;
            }
            let phrase = words(part);
            match phrase.len() {
                0 => plan.ignored.push(format!("the empty phrase \"{part}\"")),
                1 => plan.words.extend(phrase),
                _ => plan.phrases.push(phrase),
            }
        }
        if plan.is_empty() {
            plan.ignored.push("nothing to search for".into());
        }
        Ok(plan)
    }

    /// Whether the plan asks for anything: a query of exclusions alone, or
    /// of nothing understood, matches nothing.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty() && self.phrases.is_empty() && self.filters.is_empty()
    }

    /// The words, exclusions and filters of unquoted text.
    fn words_of(&mut self, text: &str) {
        for token in text.split_whitespace() {
            if let Some(rest) = token.strip_prefix('-') {
                let excluded = words(rest);
                if excluded.is_empty() {
                    self.ignored.push(format!("`{token}` excludes nothing"));
                }
                self.excluded.extend(excluded);
            } else if let Some((field, value)) = token.split_once(':') {
                if !FILTER_FIELDS.contains(&field) {
                    self.ignored.push(format!(
                        "`{field}:` is not a field (filters: {}): searched as words",
                        FILTER_FIELDS.join(", ")
                    ));
                    self.words.extend(words(token));
                    continue;
                }
                let value = value.to_lowercase();
                if value.is_empty() {
                    self.ignored.push(format!("`{field}:` has no value"));
                    continue;
                }
                self.filters.push((field.to_owned(), value));
            } else {
                self.words.extend(words(token));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_phrases_exclusions_and_filters_are_recognised() {
        let plan = QueryPlan::parse(r#"Payment "refund ledger" -legacy agent_type:coder"#).unwrap();
        assert_eq!(plan.words, ["payment"]);
        assert_eq!(plan.phrases, [vec!["refund".to_string(), "ledger".to_string()]]);
        assert_eq!(plan.excluded, ["legacy"]);
        assert_eq!(plan.filters, [("agent_type".to_string(), "coder".to_string())]);
    }

    #[test]
    fn what_is_not_understood_is_left_out_and_said() {
        for (text, ignored, words) in [
            ("\"open ledger", "an unbalanced quote", vec!["open", "ledger"]),
            ("payment \"\"", "the empty phrase", vec!["payment"]),
            ("colour:red", "`colour:` is not a field", vec!["colour", "red"]),
            ("ledger name:", "`name:` has no value", vec!["ledger"]),
            ("ledger -", "`-` excludes nothing", vec!["ledger"]),
            ("!!!", "nothing to search for", vec![]),
            ("   ", "nothing to search for", vec![]),
            ("-legacy", "nothing to search for", vec![]),
        ] {
            let plan = QueryPlan::parse(text).unwrap();
            assert!(plan.ignored.iter().any(|i| i.contains(ignored)), "{text:?}: {:?}", plan.ignored);
            assert_eq!(plan.words, words, "{text:?}");
        }
        assert!(QueryPlan::parse("payment ledger").unwrap().ignored.is_empty());
    }

    #[test]
    fn only_an_empty_or_overlong_query_is_refused() {
        let err = QueryPlan::parse("").unwrap_err();
        assert_eq!(err.to_string(), "q: must not be empty");
        assert!(QueryPlan::parse(&"x".repeat(257)).unwrap_err().0.contains("at most 256"));
        // Characters, not bytes, as the schema's maxLength counts them.
        assert!(QueryPlan::parse(&"é".repeat(256)).is_ok());
    }
}
