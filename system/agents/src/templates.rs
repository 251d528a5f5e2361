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

/// Replaces every `{{key}}` in `template`.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (key, value) in values {
        out = out.replace(&format!("{{{{{key}}}}}"), value);
    }
    out
}

/// Renders one item template per feature and joins them.
fn each(features: &[String], template: &str) -> String {
    features
        .iter()
        .enumerate()
        .map(|(i, f)| fill(template, &[("f", f), ("F", &pascal(f)), ("i", &i.to_string())]))
        .collect::<Vec<_>>()
        .join("")
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
    // The fingerprint covers the rendered body, so it changes whenever the output does.
    let body = fill(
        template,
        &[
            ("Name", &name),
            ("name", &features.join("_")),
            ("summary", &summary),
            ("methods", &items),
            ("items", &items),
            ("tests", &fill(&tests, &[("Name", &name)])),
        ],
    );
    let fingerprint = sha1_smol::Sha1::from(body.as_bytes()).digest().to_string();
    Artifact { language, code: body.replace("{{fingerprint}}", &fingerprint[..12]) }
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
