//! Structure checks (sub-tables, `kind`, unknown keys) and the typed getters every
//! section uses. Each getter reports what is wrong with its key where it is and
//! returns `None`, so callers read on without stopping at the first problem.

use std::collections::BTreeMap;
use std::path::PathBuf;

use toml::Spanned;
use toml::de::DeValue;

use super::keys::Keys;
use super::text::{closest, type_name};
use super::{Located, Need, Section, Validator};
use crate::config::interpolate::expand;
use crate::config::{SchemaChanges, Secret, VerifyMode, parse_size};

impl Validator<'_> {
    /// A duration: an integer number of seconds or a string such as `"90s"`, `"10m"`, `"2h"`.
    /// A timeout: whole seconds or a duration, from 1 s to a week.
    pub(super) fn seconds(&mut self, sec: &Section<'_, '_>, name: &str) -> Option<u64> {
        self.duration(
            sec,
            name,
            1,
            7 * 86_400,
            "e.g. 600, \"90s\", \"10m\", \"2h\"",
        )
    }

    /// Seconds from an integer or a text such as `"90s"`, `"10m"`, `"2h"` or `"7d"`, in
    /// `min..=max`; `example` shows accepted forms in the error.
    pub(super) fn duration(
        &mut self,
        sec: &Section<'_, '_>,
        name: &str,
        min: u64,
        max: u64,
        example: &str,
    ) -> Option<u64> {
        let (key, at, value) = self.lookup(sec, name, Need::Optional)?;
        if let DeValue::Integer(_) = value.get_ref() {
            return self.integer_value(&key, at, value, min, max);
        }
        let text = self.expand(&key, at, value)?;
        let t = text.trim();
        let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
        let mult = match unit.trim() {
            "" | "s" => Some(1),
            "m" | "min" => Some(60),
            "h" => Some(3600),
            "d" => Some(86_400),
            _ => None,
        };
        match (num.parse::<u64>(), mult) {
            (Ok(n), Some(m)) if n.checked_mul(m).is_some_and(|s| (min..=max).contains(&s)) => {
                Some(n * m)
            }
            _ => {
                let message = format!("{text:?} is not a duration ({example})");
                self.report(at, &key, message);
                None
            }
        }
    }

    /// One of a fixed set of words.
    pub(super) fn choice<T: Copy>(
        &mut self,
        sec: &Section<'_, '_>,
        name: &str,
        options: &[(&str, T)],
    ) -> Option<T> {
        let got = self.string(sec, name, Need::Optional)?;
        if let Some((_, v)) = options.iter().find(|(w, _)| *w == got.value) {
            return Some(*v);
        }
        let words: Vec<&str> = options.iter().map(|(w, _)| *w).collect();
        let message = format!(
            "{:?} is not valid (expected one of: {})",
            got.value,
            words.join(", ")
        );
        self.report(got.at, &sec.key_of(name), message);
        None
    }

    pub(super) fn schema_changes(&mut self, sec: &Section<'_, '_>) -> Option<SchemaChanges> {
        self.choice(
            sec,
            "schema_changes",
            &[
                ("additive", SchemaChanges::Additive),
                ("any", SchemaChanges::Any),
            ],
        )
    }

    pub(super) fn verify(&mut self, sec: &Section<'_, '_>) -> Option<VerifyMode> {
        self.choice(
            sec,
            "verify",
            &[("full", VerifyMode::Full), ("count", VerifyMode::Count)],
        )
    }

    /// A byte size such as `"100MB"` or an integer, in `min..=max`.
    pub(super) fn size(
        &mut self,
        sec: &Section<'_, '_>,
        name: &str,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        let (key, at, value) = self.lookup(sec, name, Need::Optional)?;
        let bytes = match value.get_ref() {
            DeValue::Integer(_) => self.integer_value(&key, at, value, 0, u64::MAX)?,
            _ => {
                let text = self.expand(&key, at, value)?;
                match parse_size(&text) {
                    Ok(b) => b,
                    Err(message) => {
                        self.report(at, &key, message);
                        return None;
                    }
                }
            }
        };
        if !(min..=max).contains(&bytes) {
            let message = format!(
                "{bytes} bytes is outside {}..={}",
                bytesize::ByteSize(min),
                bytesize::ByteSize(max)
            );
            self.report(at, &key, message);
            return None;
        }
        Some(bytes)
    }

    // ---- structure ----

    /// The sub-table `name` of `parent`.
    pub(super) fn section<'t, 'i>(
        &mut self,
        parent: &Section<'t, 'i>,
        name: &str,
        need: Need<'_>,
    ) -> Option<Section<'t, 'i>> {
        let key = parent.key_of(name);
        let Some((key_span, value)) = parent.get(name) else {
            if let Need::Required | Need::RequiredFor(_) = need {
                self.report(parent.at, &key, "missing required section");
            }
            return None;
        };
        match value.get_ref() {
            DeValue::Table(table) => Some(Section {
                key,
                table,
                at: value.span().start,
            }),
            other => {
                let message = format!("expected a table, found {}", type_name(other));
                self.report(key_span.span().start, &key, message);
                None
            }
        }
    }

    /// The section's required `kind`, if it is one of `keys.by_kind`.
    pub(super) fn kind(
        &mut self,
        sec: &Section<'_, '_>,
        keys: &Keys,
        what: &str,
    ) -> Option<&'static str> {
        let kind = self.string(sec, "kind", Need::Required)?;
        let known = keys.by_kind.iter().map(|(k, _)| *k);
        if let Some(found) = known.clone().find(|k| *k == kind.value) {
            return Some(found);
        }
        let message = format!(
            "{:?} is not a supported {what} kind (expected one of: {})",
            kind.value,
            known.collect::<Vec<_>>().join(", ")
        );
        self.report(kind.at, &sec.key_of("kind"), message);
        None
    }

    /// Reports keys that `sec` does not accept. With an unknown `kind`, the
    /// keys of every kind are accepted.
    pub(super) fn check_keys(&mut self, sec: &Section<'_, '_>, keys: &Keys, kind: Option<&str>) {
        let mut allowed: Vec<&str> = keys.common.to_vec();
        for (k, kind_keys) in keys.by_kind {
            if kind.is_none_or(|kind| kind == *k) {
                for key in *kind_keys {
                    if !allowed.contains(key) {
                        allowed.push(key);
                    }
                }
            }
        }
        for (key, _) in sec.table.iter() {
            let name = key.get_ref().as_ref();
            if allowed.contains(&name) {
                continue;
            }
            let owners: Vec<String> = keys
                .by_kind
                .iter()
                .filter(|(_, kind_keys)| kind_keys.contains(&name))
                .map(|(k, _)| format!("{k:?}"))
                .collect();
            let message = match kind {
                Some(kind) if !owners.is_empty() => format!(
                    "not valid for kind = {kind:?} (only for kind {})",
                    owners.join(" or ")
                ),
                _ => {
                    let mut message =
                        format!("unknown key (expected one of: {})", allowed.join(", "));
                    if let Some(close) = closest(name, allowed.iter().copied()) {
                        message += &format!("; did you mean `{close}`?");
                    }
                    message
                }
            };
            self.report(key.span().start, &sec.key_of(name), message);
        }
    }

    // ---- typed getters: report problems, return None after reporting ----

    /// The key, its position and its value; reports an absent required key.
    pub(super) fn lookup<'t, 'i>(
        &mut self,
        sec: &Section<'t, 'i>,
        name: &str,
        need: Need<'_>,
    ) -> Option<(String, usize, &'t Spanned<DeValue<'i>>)> {
        let key = sec.key_of(name);
        match sec.get(name) {
            Some((key_span, value)) => Some((key, key_span.span().start, value)),
            None => {
                match need {
                    Need::Optional => {}
                    Need::Required => self.report(sec.at, &key, "missing required key"),
                    Need::RequiredFor(kind) => {
                        let message = format!("missing; required for kind = {kind:?}");
                        self.report(sec.at, &key, message);
                    }
                }
                None
            }
        }
    }

    pub(super) fn string(
        &mut self,
        sec: &Section<'_, '_>,
        name: &str,
        need: Need<'_>,
    ) -> Option<Located<String>> {
        let (key, at, value) = self.lookup(sec, name, need)?;
        let value = self.expand(&key, at, value)?;
        Some(Located { value, at })
    }

    /// A string that must not be blank, such as a column or database name.
    pub(super) fn name(
        &mut self,
        sec: &Section<'_, '_>,
        name: &str,
        need: Need<'_>,
    ) -> Option<String> {
        let value = self.string(sec, name, need)?;
        if value.value.trim().is_empty() {
            self.report(value.at, &sec.key_of(name), "must not be empty");
            return None;
        }
        Some(value.value)
    }

    pub(super) fn path(
        &mut self,
        sec: &Section<'_, '_>,
        name: &str,
        need: Need<'_>,
    ) -> Option<PathBuf> {
        self.name(sec, name, need).map(PathBuf::from)
    }

    pub(super) fn secret(
        &mut self,
        sec: &Section<'_, '_>,
        name: &str,
        need: Need<'_>,
    ) -> Option<Secret> {
        self.name(sec, name, need).map(Secret::new)
    }

    pub(super) fn boolean(&mut self, sec: &Section<'_, '_>, name: &str) -> Option<bool> {
        let (key, at, value) = self.lookup(sec, name, Need::Optional)?;
        match value.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                let message = format!("expected true or false, found {}", type_name(other));
                self.report(at, &key, message);
                None
            }
        }
    }

    /// An optional integer in `min..=max`.
    pub(super) fn integer(
        &mut self,
        sec: &Section<'_, '_>,
        name: &str,
        min: u64,
        max: u64,
    ) -> Option<Located<u64>> {
        let (key, at, value) = self.lookup(sec, name, Need::Optional)?;
        let value = self.integer_value(&key, at, value, min, max)?;
        Some(Located { value, at })
    }

    pub(super) fn integer_value(
        &mut self,
        key: &str,
        at: usize,
        value: &Spanned<DeValue<'_>>,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        let DeValue::Integer(int) = value.get_ref() else {
            let message = format!("expected an integer, found {}", type_name(value.get_ref()));
            self.report(at, key, message);
            return None;
        };
        let parsed = i128::from_str_radix(int.as_str(), int.radix()).ok();
        match parsed.and_then(|n| u64::try_from(n).ok()) {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                let message = if max == u64::MAX {
                    format!("must be at least {min}, got {int}")
                } else {
                    format!("must be between {min} and {max}, got {int}")
                };
                self.report(at, key, message);
                None
            }
        }
    }

    /// An optional inline table of strings, such as `cast = { GEO = "nvarchar(max)" }`.
    pub(super) fn string_map(
        &mut self,
        sec: &Section<'_, '_>,
        name: &str,
    ) -> Option<BTreeMap<String, String>> {
        let inner = self.section(sec, name, Need::Optional)?;
        let mut out = BTreeMap::new();
        for (k, v) in inner.table.iter() {
            let key = inner.key_of(k.get_ref());
            if let Some(text) = self.expand(&key, v.span().start, v) {
                if text.trim().is_empty() {
                    self.report(v.span().start, &key, "must not be empty");
                } else {
                    out.insert(k.get_ref().to_string(), text);
                }
            }
        }
        Some(out)
    }

    /// An optional array of strings; each element is located at itself.
    pub(super) fn string_list(
        &mut self,
        sec: &Section<'_, '_>,
        name: &str,
    ) -> Option<Located<Vec<Located<String>>>> {
        let (key, at, value) = self.lookup(sec, name, Need::Optional)?;
        let DeValue::Array(items) = value.get_ref() else {
            let message = format!(
                "expected an array of strings, found {}",
                type_name(value.get_ref())
            );
            self.report(at, &key, message);
            return None;
        };
        let mut list = Vec::new();
        let mut ok = true;
        for (index, item) in items.iter().enumerate() {
            let item_key = format!("{key}[{index}]");
            let item_at = item.span().start;
            match self.expand(&item_key, item_at, item) {
                Some(value) => list.push(Located { value, at: item_at }),
                None => ok = false,
            }
        }
        ok.then_some(Located { value: list, at })
    }

    /// A string value with `${VAR}` expanded; reports non-strings and
    /// unexpandable references. Never echoes the value, which may be secret.
    pub(super) fn expand(
        &mut self,
        key: &str,
        at: usize,
        value: &Spanned<DeValue<'_>>,
    ) -> Option<String> {
        let DeValue::String(text) = value.get_ref() else {
            let message = format!("expected a string, found {}", type_name(value.get_ref()));
            self.report(at, key, message);
            return None;
        };
        let (expanded, problems) = expand(text, self.env);
        for problem in &problems {
            self.report(at, key, problem.to_string());
        }
        problems.is_empty().then_some(expanded)
    }
}
