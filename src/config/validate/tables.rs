//! The table selection (`[tables] include/exclude`) and the per-table overrides
//! (`[table.<name>]`), with the checks that span tables: the same table named twice
//! in different case, and cycles among `after` declarations.

use std::collections::BTreeMap;

use toml::de::DeValue;

use super::keys::{OVERRIDE_KEYS, TABLES_KEYS};
use super::text::type_name;
use super::{Located, Need, Section, Validator};
use crate::config::order;
use crate::config::{Mode, PartitionSetting, TableOverride, TableSelection, compile_glob};

impl Validator<'_> {
    /// `full_refresh`: `"never"`, `"daily"`, `"weekly"`, `"monthly"` (30 days) or a duration.
    pub(super) fn full_refresh(&mut self, sec: &Section<'_, '_>) -> Option<u64> {
        let (key, at, value) = self.lookup(sec, "full_refresh", Need::Optional)?;
        if let DeValue::String(_) = value.get_ref() {
            let text = self.expand(&key, at, value)?;
            match text.trim() {
                "never" => return None,
                "daily" => return Some(86_400),
                "weekly" => return Some(7 * 86_400),
                "monthly" => return Some(30 * 86_400),
                _ => {}
            }
        }
        self.duration(
            sec,
            "full_refresh",
            3600,
            3650 * 86_400,
            "\"never\", \"daily\", \"weekly\", \"monthly\" or a duration such as \"14d\"",
        )
    }

    pub(super) fn tables(&mut self, root: &Section<'_, '_>) -> Option<TableSelection> {
        let Some(sec) = self.section(root, "tables", Need::Optional) else {
            return Some(TableSelection::default());
        };
        self.check_keys(&sec, &TABLES_KEYS, None);
        let include = self.globs(&sec, "include");
        let exclude = self.globs(&sec, "exclude");
        if let Some(include) = &include
            && include.value.is_empty()
        {
            let message = "selects no tables; use [\"*\"] for all of them";
            self.report(include.at, &sec.key_of("include"), message);
        }
        let bad = |list: &Option<_>, name| list.is_none() && sec.has(name);
        if bad(&include, "include") || bad(&exclude, "exclude") {
            return None;
        }
        let include = include.map_or_else(|| vec!["*".to_owned()], |i| i.value);
        let exclude = exclude.map_or_else(Vec::new, |e| e.value);
        // Each glob compiled above, so this can only fail on e.g. a size limit.
        match TableSelection::new(include, exclude) {
            Ok(selection) => Some(selection),
            Err(message) => {
                self.report(sec.at, &sec.key, message);
                None
            }
        }
    }

    /// A list of globs; each bad one is reported at its own position.
    pub(super) fn globs(
        &mut self,
        sec: &Section<'_, '_>,
        name: &str,
    ) -> Option<Located<Vec<String>>> {
        let list = self.string_list(sec, name)?;
        let mut ok = true;
        for (index, pattern) in list.value.iter().enumerate() {
            if let Err(message) = compile_glob(&pattern.value) {
                self.report(
                    pattern.at,
                    &format!("{}[{index}]", sec.key_of(name)),
                    message,
                );
                ok = false;
            }
        }
        ok.then(|| Located {
            value: list.value.into_iter().map(|p| p.value).collect(),
            at: list.at,
        })
    }

    pub(super) fn overrides(&mut self, root: &Section<'_, '_>) -> BTreeMap<String, TableOverride> {
        let mut overrides = BTreeMap::new();
        let Some(sec) = self.section(root, "table", Need::Optional) else {
            return overrides;
        };
        let mut entries: Vec<_> = sec.table.iter().collect();
        entries.sort_by_key(|(key, _)| key.span().start);
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let mut located: BTreeMap<String, (usize, String)> = BTreeMap::new();
        for (name, value) in entries {
            let table_name = name.get_ref().to_string();
            let key = sec.key_of(&table_name);
            let at = name.span().start;
            located.insert(table_name.to_lowercase(), (at, format!("{key}.after")));
            if table_name.trim().is_empty() {
                self.report(at, &key, "table name must not be empty");
                continue;
            }
            if let Some(first) = seen.insert(table_name.to_lowercase(), table_name.clone()) {
                let message = format!(
                    "same table as `{}` (table names are matched case-insensitively)",
                    sec.key_of(&first)
                );
                self.report(at, &key, message);
                continue;
            }
            let DeValue::Table(table) = value.get_ref() else {
                let message = format!("expected a table, found {}", type_name(value.get_ref()));
                self.report(at, &key, message);
                continue;
            };
            let table_sec = Section {
                key,
                table,
                at: value.span().start,
            };
            if let Some(o) = self.table_override(&table_sec, &table_name) {
                overrides.insert(table_name, o);
            }
        }
        self.order_cycles(&overrides, &located);
        overrides
    }

    /// Reports every cycle among `after` declarations, with the tables on it in order. Whether
    /// the tables exist is only known at run time; a cycle is wrong whatever the source holds.
    pub(super) fn order_cycles(
        &mut self,
        overrides: &BTreeMap<String, TableOverride>,
        located: &BTreeMap<String, (usize, String)>,
    ) {
        let after: BTreeMap<String, Vec<String>> = overrides
            .iter()
            .map(|(table, o)| (table.clone(), o.after.clone()))
            .collect();
        // Start at the table declared first (a stable message).
        let declared = |t: &str| located.get(&t.to_lowercase()).map_or(usize::MAX, |l| l.0);
        for cycle in order::cycles(&after, declared) {
            if cycle.len() < 2 {
                continue; // self-waits are reported per key above
            }
            let first = cycle[0].to_lowercase();
            let (at, key) = located
                .get(&first)
                .cloned()
                .unwrap_or((0, "table".to_string()));
            let message = format!(
                "the declared table order has a cycle: {}",
                order::describe(&cycle)
            );
            self.report(at, &key, message);
        }
    }

    pub(super) fn table_override(
        &mut self,
        sec: &Section<'_, '_>,
        table: &str,
    ) -> Option<TableOverride> {
        self.check_keys(sec, &OVERRIDE_KEYS, None);
        let chunk_key = self.name(sec, "chunk_key", Need::Optional);
        let chunk_rows = self.integer(sec, "chunk_rows", 1, u64::MAX);
        let partition = self
            .name(sec, "partition", Need::Optional)
            .map(|p| match p.as_str() {
                "auto" => PartitionSetting::Auto,
                "off" => PartitionSetting::Off,
                _ => PartitionSetting::Column(p),
            });
        let partition_min_rows = self
            .integer(sec, "partition_min_rows", 0, u64::MAX)
            .map(|n| n.value);
        let mode = self.mode(sec);
        let cursor = self.name(sec, "cursor", Need::Optional);
        let full_refresh_secs = self.full_refresh(sec);
        if let Some((k, _)) = sec.get("full_refresh")
            && mode.as_ref().is_none_or(|m| m.value != Mode::Incremental)
        {
            self.report(
                k.span().start,
                &sec.key_of("full_refresh"),
                "only an incremental table (mode = \"incremental\") has periodic full refreshes",
            );
        }
        if let Some(mode) = &mode
            && mode.value == Mode::Incremental
            && !sec.has("cursor")
        {
            let message = "\"incremental\" needs a `cursor` column";
            self.report(mode.at, &sec.key_of("mode"), message);
        }
        let after = self.string_list(sec, "after");
        for (index, other) in after.iter().flat_map(|a| &a.value).enumerate() {
            let key = format!("{}[{index}]", sec.key_of("after"));
            if other.value.trim().is_empty() {
                self.report(other.at, &key, "table name must not be empty");
            } else if other.value.eq_ignore_ascii_case(table) {
                self.report(other.at, &key, "a table cannot wait for itself");
            }
        }
        let exclude_columns = self.string_list(sec, "exclude_columns");
        let cast = self.string_map(sec, "cast");
        let connections = self
            .integer(sec, "connections", 1, 64)
            .map(|n| n.value as usize);
        let verify = self.verify(sec);
        let schema_changes = self.schema_changes(sec);
        Some(TableOverride {
            verify,
            schema_changes,
            exclude_columns: exclude_columns
                .map_or_else(Vec::new, |a| a.value.into_iter().map(|s| s.value).collect()),
            cast: cast.unwrap_or_default(),
            connections,
            chunk_key,
            chunk_rows: chunk_rows.map(|n| n.value),
            partition,
            partition_min_rows,
            mode: mode.map_or(Mode::Full, |m| m.value),
            cursor,
            full_refresh_secs,
            after: after.map_or_else(Vec::new, |a| a.value.into_iter().map(|s| s.value).collect()),
        })
    }

    pub(super) fn mode(&mut self, sec: &Section<'_, '_>) -> Option<Located<Mode>> {
        let mode = self.string(sec, "mode", Need::Optional)?;
        let value = match mode.value.as_str() {
            "full" => Mode::Full,
            "incremental" => Mode::Incremental,
            other => {
                let message =
                    format!("{other:?} is not a mode (expected one of: full, incremental)");
                self.report(mode.at, &sec.key_of("mode"), message);
                return None;
            }
        };
        Some(Located { value, at: mode.at })
    }
}
