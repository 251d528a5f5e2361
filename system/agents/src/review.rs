//! The QA agent's review: static checks over generated code.

use q2o_common::domain::Review;

/// Reviews `code`; `protocol` records which transport carried the request.
pub fn review(language: &str, code: &str, protocol: &str) -> Review {
    let mut comments = Vec::new();
    let mut score: f64 = 1.0;
    let lines: Vec<&str> = code.lines().collect();
    if lines.is_empty() {
        return Review {
            approved: false,
            score: 0.0,
            comments: vec!["no code to review".into()],
            protocol: protocol.into(),
        };
    }
    let long = lines.iter().filter(|l| l.chars().count() > 100).count();
    if long > 0 {
        score -= 0.05 * long.min(4) as f64;
        comments.push(format!("{long} line(s) longer than 100 characters"));
    }
    let todos = lines.iter().filter(|l| l.contains("TODO") || l.contains("FIXME")).count();
    if todos > 0 {
        score -= 0.1 * todos.min(3) as f64;
        comments.push(format!("{todos} unresolved TODO/FIXME"));
    }
    let unwraps = code.matches(".unwrap()").count() + code.matches(".expect(").count();
    let in_tests = code
        .find("#[cfg(test)]")
        .map_or(0, |at| code[at..].matches(".unwrap()").count() + code[at..].matches(".expect(").count());
    if unwraps > in_tests {
        score -= 0.15;
        comments.push(format!("{} unwrap/expect outside tests", unwraps - in_tests));
    }
    let has_tests = match language {
        "rust" => code.contains("#[test]"),
        "python" => code.contains("def test_"),
        _ => true,
    };
    if !has_tests {
        score -= 0.3;
        comments.push("no tests".into());
    }
    let trailing = lines.iter().filter(|l| l.ends_with(' ') || l.ends_with('\t')).count();
    if trailing > 0 {
        score -= 0.02;
        comments.push(format!("{trailing} line(s) with trailing whitespace"));
    }
    let score = score.clamp(0.0, 1.0);
    Review { approved: score >= 0.7, score, comments, protocol: protocol.into() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::templates::render;
    use q2o_common::domain::AgentType;

    #[test]
    fn generated_code_passes_review() {
        let a = render(AgentType::Coder, "inventory service with reservations");
        let r = review(a.language, &a.code, "rest");
        assert!(r.approved, "{r:?}");
        assert_eq!(r.protocol, "rest");
    }

    #[test]
    fn sloppy_code_fails_with_reasons() {
        let code = "fn main() {\n    let x = f().unwrap(); // TODO handle\n}\n";
        let r = review("rust", code, "grpc");
        assert!(!r.approved, "{r:?}");
        assert!(r.comments.iter().any(|c| c.contains("no tests")));
        assert!(r.comments.iter().any(|c| c.contains("TODO")));
        assert!(r.comments.iter().any(|c| c.contains("unwrap")));
    }

    #[test]
    fn empty_code_is_rejected() {
        assert!(!review("rust", "", "rest").approved);
    }
}
