//! `${NAME}` environment interpolation of string values.
//!
//! Expansion is a single pass: text that came out of a variable is never
//! expanded again, so a value containing `${` cannot pull in other variables.

use std::fmt;

/// Why one `${...}` reference could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Problem {
    /// `${NAME}` where `NAME` is not set.
    Missing(String),
    /// `${` with no closing `}`.
    Unterminated,
    /// `${...}` whose content is not a variable name.
    BadName(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing(name) => write!(f, "environment variable `{name}` is not set"),
            Problem::Unterminated => {
                f.write_str("unterminated `${` (write `$${` for a literal `${`)")
            }
            Problem::BadName(name) => write!(
                f,
                "`${{{name}}}` is not a variable reference (names use letters, digits and '_'; \
                 write `$${{` for a literal `${{`)"
            ),
        }
    }
}

/// Expands every `${NAME}` in `input` using `env`; `$${` stands for a literal `${`.
///
/// Returns the expanded text and the references that could not be expanded;
/// those are kept verbatim in the text.
pub(super) fn expand(input: &str, env: &dyn Fn(&str) -> Option<String>) -> (String, Vec<Problem>) {
    let mut out = String::with_capacity(input.len());
    let mut problems = Vec::new();
    let mut rest = input;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        rest = &rest[dollar..];
        if let Some(after) = rest.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = rest.strip_prefix("${") {
            let Some(close) = after.find('}') else {
                problems.push(Problem::Unterminated);
                out.push_str(rest);
                rest = "";
                break;
            };
            let name = &after[..close];
            let reference = &rest[..close + 3];
            if !is_variable_name(name) {
                problems.push(Problem::BadName(name.to_owned()));
                out.push_str(reference);
            } else if let Some(value) = env(name) {
                out.push_str(&value);
            } else {
                problems.push(Problem::Missing(name.to_owned()));
                out.push_str(reference);
            }
            rest = &after[close + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    (out, problems)
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
