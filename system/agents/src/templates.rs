//! Template code generation: what the agents "write".
//!
//! Deterministic for a given description, and real work (tokenising, rendering,
//! hashing), so that generated artefacts have realistic sizes and the agents'
//! CPU cost shows up in a profile the way code generation would.

use q2o_common::domain::AgentType;

/// A generated file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    /// Its language (`rust`, `python`, `markdown` ...).
    pub language: &'static str,
    /// Its text.
    pub code: String,
}

/// Words of the description usable as identifiers: lowercase ASCII, deduplicated,
/// at most eight, never empty.
fn features(description: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in description.split(|c: char| !c.is_ascii_alphanumeric()) {
        let word = word.to_ascii_lowercase();
        if word.len() >= 3 && !word.starts_with(|c: char| c.is_ascii_digit()) && !words.contains(&word) {
            words.push(word);
        }
        if words.len() == 8 {
            break;
        }
    }
    if words.is_empty() {
        words.push("task".into());
    }
    words
}

fn pascal(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}

/// The template's placeholder for the fingerprint of what it renders to.
const FINGERPRINT: &str = "fingerprint";

/// Renders `template` into `out` in one pass: each `{{key}}` becomes its
/// value, and a value is never scanned for placeholders itself (a
/// description that says `{{methods}}` is text). A key without a value is
/// left as it was, and where `{{fingerprint}}` stood is pushed to `holes`.
fn fill_into(out: &mut String, template: &str, values: &[(&str, &str)], holes: &mut Vec<usize>) {
    let mut rest = template;
    while let Some(open) = find_pair(rest, '{') {
        let (text, tail) = rest.split_at(open);
        out.push_str(text);
        let Some(close) = find_pair(tail, '}') else {
            rest = tail;
            break;
        };
        let key = &tail[2..close];
        match values.iter().find(|(k, _)| *k == key) {
            Some((_, value)) => out.push_str(value),
            None => {
                if key == FINGERPRINT {
                    holes.push(out.len());
                }
                out.push_str(&tail[..close + 2]);
            }
        }
        rest = &tail[close + 2..];
    }
    out.push_str(rest);
}

/// Where `cc` first occurs in `text`, for `c` an ASCII brace: a search for
/// one char (memchr) per brace. `str::find("{{")` sets up a substring
/// searcher on every call, which cost more than the search itself over these
/// short templates.
fn find_pair(text: &str, c: char) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text[from..].find(c) {
        let at = from + at;
        if text[at + 1..].starts_with(c) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Replaces every `{{key}}` in `template` (see [`fill_into`]).
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    fill_into(&mut out, template, values, &mut Vec::new());
    out
}

/// Renders one item template per feature, one after the other.
fn each(features: &[String], template: &str) -> String {
    let mut out = String::with_capacity(features.len() * (template.len() + 32));
    for (i, f) in features.iter().enumerate() {
        fill_into(&mut out, template, &[("f", f), ("F", &pascal(f)), ("i", &i.to_string())], &mut Vec::new());
    }
    out
}

const RUST_MODULE: &str = "\
//! {{Name}}: {{summary}}
//! fingerprint: {{fingerprint}}

use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct {{Name}} {
    state: HashMap<String, u64>,
}

impl {{Name}} {
{{methods}}}

#[cfg(test)]
mod tests {
    use super::*;
{{tests}}}
";
const RUST_METHOD: &str = "
    /// Handles the `{{f}}` step.
    pub fn {{f}}(&mut self, input: &str) -> Result<u64, String> {
        if input.is_empty() {
            return Err(\"{{f}}: empty input\".to_string());
        }
        let weight = input.bytes().map(u64::from).sum::<u64>() + {{i}};
        *self.state.entry(\"{{f}}\".to_string()).or_default() += weight;
        Ok(weight)
    }
";
const RUST_TEST: &str = "
    #[test]
    fn {{f}}_accepts_input() {
        assert!({{Name}}::default().{{f}}(\"x\").is_ok());
    }
";

const PYTHON_TESTS: &str = "\
\"\"\"Tests for {{summary}} (fingerprint {{fingerprint}}).\"\"\"
import pytest

{{items}}";
const PYTHON_TEST: &str = "
def test_{{f}}_handles_valid_input():
    assert {{f}}(\"sample\") is not None


def test_{{f}}_rejects_empty_input():
    with pytest.raises(ValueError):
        {{f}}(\"\")
";

const TSX_COMPONENT: &str = "\
// {{summary}} (fingerprint {{fingerprint}})
import React from 'react';

export function {{Name}}() {
  return (
    <section className=\"{{name}}\">
{{items}}    </section>
  );
}
";
const TSX_ITEM: &str = "      <div data-feature=\"{{f}}\">{{F}}</div>\n";

const MARKDOWN_DOC: &str = "\
# {{Name}}

{{summary}}

fingerprint: `{{fingerprint}}`

## Sections
{{items}}";
const MARKDOWN_ITEM: &str = "\n### {{F}}\n\nHow {{f}} works, its inputs and its failure modes.\n";

const SQL_PIPELINE: &str = "\
-- {{summary}} (fingerprint {{fingerprint}})
CREATE TABLE IF NOT EXISTS {{name}} (
    id BIGSERIAL PRIMARY KEY,
{{items}}    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
";
const SQL_COLUMN: &str = "    {{f}} TEXT NOT NULL,\n";

const YAML_CONFIG: &str = "\
# {{summary}} (fingerprint {{fingerprint}})
name: {{name}}
steps:
{{items}}";
const YAML_STEP: &str = "  - name: {{f}}\n    run: ./scripts/{{f}}.sh\n    timeout-minutes: 10\n";

const TERRAFORM: &str = "\
# {{summary}} (fingerprint {{fingerprint}})
{{items}}";
const TERRAFORM_ITEM: &str = "
resource \"q2o_service\" \"{{f}}\" {
  name     = \"{{f}}\"
  replicas = {{i}} + 2
}
";

/// Generates the artefact an agent of type `agent` produces for `description`.
pub fn render(agent: AgentType, description: &str) -> Artifact {
    let features = features(description);
    let name = format!("{}{}", pascal(&features[0]), pascal(features.get(1).map_or("service", String::as_str)));
    let summary: String = description.chars().take(120).filter(|c| !c.is_control()).collect();
    let (language, template, item) = match agent {
        AgentType::Coder | AgentType::Backend => ("rust", RUST_MODULE, RUST_METHOD),
        AgentType::Testing | AgentType::Qa => ("python", PYTHON_TESTS, PYTHON_TEST),
        AgentType::Frontend => ("tsx", TSX_COMPONENT, TSX_ITEM),
        AgentType::Documentation | AgentType::Researcher | AgentType::Security => {
            ("markdown", MARKDOWN_DOC, MARKDOWN_ITEM)
        }
        AgentType::Data => ("sql", SQL_PIPELINE, SQL_COLUMN),
        AgentType::Integration | AgentType::Devops => ("yaml", YAML_CONFIG, YAML_STEP),
        AgentType::Infrastructure => ("hcl", TERRAFORM, TERRAFORM_ITEM),
    };
    let items = each(&features, item);
    let tests = if language == "rust" { each(&features, RUST_TEST) } else { String::new() };
    // The fingerprint covers the rendered body, placeholder included, so it
    // changes whenever the output does; it then takes the placeholder's place.
    let tests = fill(&tests, &[("Name", &name)]);
    let mut body = String::with_capacity(template.len() + 2 * items.len() + tests.len() + summary.len());
    let mut holes = Vec::new();
    fill_into(
        &mut body,
        template,
        &[
            ("Name", &name),
            ("name", &features.join("_")),
            ("summary", &summary),
            ("methods", &items),
            ("items", &items),
            ("tests", &tests),
        ],
        &mut holes,
    );
    let fingerprint = sha1_smol::Sha1::from(body.as_bytes()).digest().to_string();
    let placeholder = FINGERPRINT.len() + 4;
    let mut code = String::with_capacity(body.len());
    let mut from = 0;
    for hole in holes {
        code.push_str(&body[from..hole]);
        code.push_str(&fingerprint[..12]);
        from = hole + placeholder;
    }
    code.push_str(&body[from..]);
    Artifact { language, code }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coder_output_is_a_rust_module_with_one_method_and_test_per_feature() {
        let a = render(AgentType::Coder, "Build a payment ledger with refunds");
        assert_eq!(a.language, "rust");
        assert!(a.code.contains("pub struct BuildPayment"), "{}", a.code);
        for f in ["build", "payment", "ledger", "with", "refunds"] {
            assert!(a.code.contains(&format!("pub fn {f}(")), "missing {f}");
            assert!(a.code.contains(&format!("fn {f}_accepts_input()")), "missing test {f}");
        }
        assert!(!a.code.contains("{{"), "unfilled placeholder in {}", a.code);
    }

    #[test]
    fn placeholders_in_the_description_are_text_and_the_fingerprint_fills_only_the_templates_own() {
        let a = render(AgentType::Data, "orders {{items}} by {{fingerprint}} region");
        let header = a.code.lines().next().unwrap();
        assert!(header.starts_with("-- orders {{items}} by {{fingerprint}} region (fingerprint "), "{header}");
        let fingerprint = header.rsplit("fingerprint ").next().unwrap().trim_end_matches(')');
        assert_eq!(fingerprint.len(), 12, "{header}");
        assert!(fingerprint.bytes().all(|b| b.is_ascii_hexdigit()), "{header}");
        assert_eq!(fill("{{a}}{{b}} {{c}}", &[("a", "{{b}}"), ("b", "x")]), "{{b}}x {{c}}");
        assert_eq!(fill("open {{a", &[("a", "x")]), "open {{a");
    }

    #[test]
    fn output_is_deterministic_and_differs_by_description() {
        let a = render(AgentType::Data, "orders by region");
        assert_eq!(a, render(AgentType::Data, "orders by region"));
        assert_ne!(a.code, render(AgentType::Data, "orders by country").code);
    }

    #[test]
    fn every_agent_type_renders_without_placeholders_even_from_symbols() {
        for agent in AgentType::ALL {
            let a = render(agent, "!!! 42 ???");
            assert!(!a.code.contains("{{"), "{agent}: {}", a.code);
            assert!(a.code.contains("task") || a.code.contains("Task"), "{agent}");
        }
    }
}
