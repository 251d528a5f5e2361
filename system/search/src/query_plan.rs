//! The user's query text, parsed and validated before it reaches tantivy.
//!
//! Syntax: words (all must match, each allowing one typo), `"exact phrases"`,
//! `-excluded` words, and `field:value` filters on `name`, `tags`, `language`,
//! `agent_type` and `status`. Anything else is a 400 naming what is wrong.

/// Longest accepted query.
pub const MAX_QUERY_CHARS: usize = 256;

/// Fields a `field:value` filter may name.
pub const FILTER_FIELDS: &[&str] = &["name", "tags", "language", "agent_type", "status"];

/// A parsed query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryPlan {
    /// Words every hit must contain (lower-cased).
    pub words: Vec<String>,
    /// Phrases every hit must contain, as word lists.
    pub phrases: Vec<Vec<String>>,
    /// Words no hit may contain.
    pub excluded: Vec<String>,
    /// `field:value` filters.
    pub filters: Vec<(String, String)>,
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
        let text = text.trim();
        if text.is_empty() {
            return Err(QueryError("must not be empty".into()));
        }
        if text.chars().count() > MAX_QUERY_CHARS {
            return Err(QueryError(format!("must be at most {MAX_QUERY_CHARS} characters")));
        }
        if text.matches('"').count() % 2 == 1 {
            return Err(QueryError("unbalanced quote".into()));
        }
        let mut plan = QueryPlan::default();
        for (i, part) in text.split('"').enumerate() {
            if i % 2 == 1 {
                let phrase = words(part);
                match phrase.len() {
                    0 => return Err(QueryError("empty phrase \"\"".into())),
                    1 => plan.words.extend(phrase),
                    _ => plan.phrases.push(phrase),
                }
                continue;
            }
            for token in part.split_whitespace() {
                if let Some(rest) = token.strip_prefix('-') {
                    let excluded = words(rest);
                    if excluded.is_empty() {
                        return Err(QueryError(format!("`{token}` excludes nothing")));
                    }
                    plan.excluded.extend(excluded);
                } else if let Some((field, value)) = token.split_once(':') {
                    if !FILTER_FIELDS.contains(&field) {
                        return Err(QueryError(format!(
                            "unknown field `{field}` (filters: {})",
                            FILTER_FIELDS.join(", ")
                        )));
                    }
                    let value = value.to_lowercase();
                    if value.is_empty() {
                        return Err(QueryError(format!("`{field}:` needs a value")));
                    }
                    plan.filters.push((field.to_owned(), value));
                } else {
                    plan.words.extend(words(token));
                }
            }
        }
        if plan.words.is_empty() && plan.phrases.is_empty() && plan.filters.is_empty() {
            return Err(QueryError("nothing to search for".into()));
        }
        Ok(plan)
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
    fn syntax_errors_say_what_is_wrong() {
        for (text, expected) in [
            ("", "must not be empty"),
            ("   ", "must not be empty"),
            ("\"open", "unbalanced quote"),
            ("colour:red", "unknown field `colour`"),
            ("name:", "needs a value"),
            ("-", "excludes nothing"),
            ("!!!", "nothing to search for"),
        ] {
            let err = QueryPlan::parse(text).unwrap_err();
            assert!(err.to_string().starts_with("q: "), "{err}");
            assert!(err.0.contains(expected), "{text:?}: {err}");
        }
        assert!(QueryPlan::parse(&"x".repeat(300)).unwrap_err().0.contains("at most"));
    }
}
