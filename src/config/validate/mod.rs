//! Walks the spanned TOML tree and turns it into workflow parts, collecting
//! every problem with its location instead of stopping at the first.
//!
//! Each section is handled the same way: reject keys the section does not know
//! (for sections with a `kind`, keys of the other kinds get their own message),
//! then read each known key with a typed getter that reports wrong types,
//! failed `${VAR}` expansion and out-of-range values. A getter returns `None`
//! after reporting, so the caller just continues with the next key.
//!
//! The walk is spread over a few files: this one holds the validator and the
//! document root; `keys.rs` the keys each section accepts; `getters.rs` the
//! structure checks and typed getters every section uses; `sections.rs` the
//! source, lake, target and limits sections; `tables.rs` the table selection and
//! the per-table overrides; `text.rs` key names, spelling hints and positions.

mod getters;
mod keys;
mod sections;
mod tables;
mod text;

use std::collections::BTreeMap;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

use super::{
    CatchUp, ConfigError, ConfigErrors, LakeConfig, Limits, OnFailure, Overlap, SchemaChanges,
    SourceConfig, TableOverride, TableSelection, TargetConfig, VerifyMode,
};
use keys::ROOT_KEYS;
use text::{LineIndex, join_key};

pub(super) use text::closest;

/// The validated contents of a workflow file.
pub(super) struct Parsed {
    pub description: Option<String>,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub overlap: Overlap,
    pub catch_up: CatchUp,
    pub on_failure: OnFailure,
    pub history_retention_secs: u64,
    pub source: SourceConfig,
    pub lake: LakeConfig,
    pub target: Option<TargetConfig>,
    pub limits: Limits,
    pub tables: TableSelection,
    pub overrides: BTreeMap<String, TableOverride>,
    pub verify: VerifyMode,
    pub schema_changes: SchemaChanges,
}

/// Parses and validates `text`; the errors are sorted by position.
pub(super) fn validate(
    text: &str,
    file: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Parsed, ConfigErrors> {
    let mut v = Validator {
        file,
        lines: LineIndex::new(text),
        env,
        errors: Vec::new(),
    };
    let (root, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        // Validating a half-parsed document would only add noise.
        for e in syntax_errors {
            let span = e.span().unwrap_or(0..0);
            match text.get(span.clone()) {
                Some(key) if e.message() == "duplicate key" => {
                    v.report(span.start, "", format!("duplicate key `{key}`"))
                }
                _ => v.report(span.start, "", e.message()),
            }
        }
        v.errors.sort_by_key(|e| (e.line, e.column));
        return Err(ConfigErrors(v.errors));
    }
    let root = Section {
        key: String::new(),
        table: root.get_ref(),
        at: 0,
    };
    let parsed = v.workflow(&root);
    match parsed {
        Some(parsed) if v.errors.is_empty() => Ok(parsed),
        _ => {
            // Stable: problems at the same place keep the order they were found in.
            v.errors.sort_by_key(|e| (e.line, e.column));
            Err(ConfigErrors(v.errors))
        }
    }
}

/// A TOML table being validated.
struct Section<'t, 'i> {
    /// Dotted key of the table; empty for the document root.
    key: String,
    table: &'t DeTable<'i>,
    /// Where "missing key" errors point: the table's header or opening brace.
    at: usize,
}

impl<'t, 'i> Section<'t, 'i> {
    fn get(&self, name: &str) -> Option<(&'t Spanned<DeString<'i>>, &'t Spanned<DeValue<'i>>)> {
        self.table.iter().find(|(key, _)| key.get_ref() == name)
    }

    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    fn key_of(&self, name: &str) -> String {
        join_key(&self.key, name)
    }
}

/// A value read from the file, with the offset that errors about it point at.
struct Located<T> {
    value: T,
    at: usize,
}

/// Whether a getter reports an absent key.
#[derive(Clone, Copy)]
enum Need<'a> {
    Optional,
    Required,
    /// Required for the section's `kind`, which is named in the message.
    RequiredFor(&'a str),
}

struct Validator<'a> {
    file: &'a Path,
    lines: LineIndex<'a>,
    env: &'a dyn Fn(&str) -> Option<String>,
    errors: Vec<ConfigError>,
}

impl<'a> Validator<'a> {
    fn report(&mut self, at: usize, key: &str, message: impl Into<String>) {
        let (line, column) = self.lines.position(at);
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            column,
            key: key.to_owned(),
            message: message.into(),
        });
    }

    fn workflow(&mut self, root: &Section<'_, '_>) -> Option<Parsed> {
        self.check_keys(root, &ROOT_KEYS, None);
        let description = self.string(root, "description", Need::Optional);
        let schedule = self.schedule(root);
        let timezone = self.timezone(root);
        let overlap = self.choice(
            root,
            "overlap",
            &[("skip", Overlap::Skip), ("queue", Overlap::Queue)],
        );
        let catch_up = self.choice(
            root,
            "catch_up",
            &[("once", CatchUp::Once), ("skip", CatchUp::Skip)],
        );
        let on_failure = self.choice(
            root,
            "on_failure",
            &[
                ("restart", OnFailure::Restart),
                ("resume", OnFailure::Resume),
            ],
        );
        let history_retention_secs = self.duration(
            root,
            "history_retention",
            3600,
            3650 * 86_400,
            "e.g. \"30d\", \"90d\"; at least 1h",
        );
        let source = self.source(root);
        let lake = self.lake(root);
        let target = self.target(root);
        let limits = self.limits(root);
        let tables = self.tables(root);
        let overrides = self.overrides(root);
        let verify = self.verify(root);
        let schema_changes = self.schema_changes(root);
        Some(Parsed {
            verify: verify.unwrap_or_default(),
            schema_changes: schema_changes.unwrap_or_default(),
            description: description.map(|d| d.value),
            schedule,
            timezone,
            overlap: overlap.unwrap_or_default(),
            catch_up: catch_up.unwrap_or_default(),
            on_failure: on_failure.unwrap_or_default(),
            history_retention_secs: history_retention_secs
                .unwrap_or(crate::config::DEFAULT_HISTORY_RETENTION_SECS),
            source: source?,
            lake: lake?,
            target,
            limits,
            tables: tables?,
            overrides,
        })
    }

    fn schedule(&mut self, root: &Section<'_, '_>) -> Option<String> {
        let expr = self.string(root, "schedule", Need::Optional)?;
        let trimmed = expr.value.trim();
        let normalized = if trimmed.split_whitespace().count() == 5 {
            format!("0 {trimmed}")
        } else {
            trimmed.to_owned()
        };
        match normalized.parse::<cron::Schedule>() {
            Ok(_) => Some(normalized),
            Err(e) => {
                let message = format!(
                    "{:?} is not a cron expression ({e}); use \"sec min hour day month weekday\" \
                     or a 5-field crontab line",
                    expr.value
                );
                self.report(expr.at, "schedule", message);
                None
            }
        }
    }

    /// `timezone`: an IANA zone name such as `"Europe/Paris"` (or `"UTC"`).
    fn timezone(&mut self, root: &Section<'_, '_>) -> Option<String> {
        let tz = self.string(root, "timezone", Need::Optional)?;
        match tz.value.trim().parse::<chrono_tz::Tz>() {
            Ok(_) => Some(tz.value.trim().to_owned()),
            Err(_) => {
                let message = format!(
                    "{:?} is not an IANA time zone (e.g. \"Europe/Paris\", \"America/New_York\", \"UTC\")",
                    tz.value
                );
                self.report(tz.at, "timezone", message);
                None
            }
        }
    }
}
