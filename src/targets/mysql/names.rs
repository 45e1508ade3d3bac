//! Names in the target database: identifiers quoted and checked against MySQL's limits, and the
//! deterministic names and comments of a run's staging table and of the table a swap sets aside.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// MySQL's longest identifier, in characters.
const MAX_NAME: usize = 64;

/// A backquoted identifier.
pub use crate::targets::quote_ident as quote;

/// A quoted string for DDL (comments), for sessions without `NO_BACKSLASH_ESCAPES` (ours).
pub(super) fn string_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// Refuses names MySQL cannot hold: empty, over 64 characters, ending with a space, or with
/// NUL or characters outside the Basic Multilingual Plane.
pub(super) fn check_name(name: &str, what: &str) -> Result<()> {
    let why = if name.is_empty() {
        "is empty"
    } else if name.chars().count() > MAX_NAME {
        "is longer than 64 characters, the MySQL limit"
    } else if name.ends_with(' ') {
        "ends with a space, which MySQL does not allow"
    } else if name.chars().any(|c| c == '\0' || c > '\u{FFFF}') {
        "holds NUL or a character outside the Basic Multilingual Plane, which MySQL names cannot"
    } else {
        return Ok(());
    };
    Err(Error::config(format!(
        "{what} {name:?} {why}: rename it for the MySQL target"
    )))
}

pub(super) fn check_run(run: &str) -> Result<()> {
    if run.is_empty()
        || run.len() > MAX_NAME
        || !run
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(Error::internal(format!(
            "run id {run:?} is not usable in MySQL table names"
        )));
    }
    Ok(())
}

/// `{table}__dag_{suffix}`, or when that is over 64 characters a prefix of the table, `__dag_`
/// and 12 hex digits of a hash of the whole name: deterministic, and different per run.
fn dag_name(table: &str, suffix: &str) -> String {
    let full = format!("{table}__dag_{suffix}");
    if full.chars().count() <= MAX_NAME {
        return full;
    }
    let h = Sha256::digest(full.as_bytes());
    let hash: String = h[..6].iter().map(|b| format!("{b:02x}")).collect();
    let prefix: String = table.chars().take(MAX_NAME - 6 - 12).collect();
    format!("{prefix}__dag_{hash}")
}

/// The staging table of `run` for `table`.
pub fn stage_name(table: &str, run: &str) -> String {
    dag_name(table, run)
}

/// Where the previous table goes during the swap.
pub(super) fn old_name(table: &str, run: &str) -> String {
    dag_name(table, &format!("old_{run}"))
}

pub(super) fn stage_comment(table: &str, run: &str) -> String {
    format!("dag run {run} for {table}")
}

/// The table a staging comment belongs to.
pub(super) fn stage_of(comment: &str) -> Option<&str> {
    let (run, table) = comment.strip_prefix("dag run ")?.split_once(" for ")?;
    (!run.is_empty() && !run.contains(' ')).then_some(table)
}

/// Names of staging tables left without their comment (a crash between `CREATE TABLE ... LIKE`
/// and the comment): `{table}__dag_[old_]<run id as made by the state store>`.
pub(super) fn is_stage_name(name: &str, table: &str) -> bool {
    let Some(rest) = name
        .strip_prefix(table)
        .and_then(|r| r.strip_prefix("__dag_"))
    else {
        return false;
    };
    let rest = rest.strip_prefix("old_").unwrap_or(rest);
    let Some((time, tag)) = rest.split_once('_') else {
        return false;
    };
    time.len() == 17
        && time.bytes().all(|b| b.is_ascii_digit())
        && tag.len() == 4
        && tag.bytes().all(|b| b.is_ascii_hexdigit())
}
