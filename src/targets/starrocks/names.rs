//! StarRocks names for source tables and columns, Stream Load labels and staging tables.
//!
//! StarRocks accepts only letters, digits and `_` in the names we create. Its FE checks
//! (`FeNameFormat.java`) are: common names `^[a-zA-Z]\w{0,63}$|^_[a-zA-Z0-9]\w{0,62}$`, table
//! names up to 1024 characters, column names up to 1024 characters and case-insensitive, labels
//! `^[-\w]{1,128}$`; column names starting with `__starrocks_shadow_` are reserved. Source names
//! (SQL Server allows spaces, dashes, `€`, ...) are therefore mapped here, deterministically, so
//! that DDL, loads, verify and retries all use the same names, and collisions are refused with a
//! clear error instead of silently merging two columns.
//!
//! Labels make Stream Load exactly-once: the same (workflow, run, table, part) always gives the
//! same label, so re-sending after an unclear outcome is deduplicated by StarRocks. **Changing the
//! label format breaks that deduplication for runs in flight across an upgrade.**

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::model::TableInfo;

/// Longest Stream Load label StarRocks accepts.
pub const LABEL_MAX: usize = 128;

/// Longest staging table name we create. Current StarRocks accepts table names up to 1024
/// characters, but its documentation gives 64 as the general object-name limit, older versions
/// and MySQL-protocol tools cap identifiers at 64, and a staging name is ours to choose: 64 fits
/// everywhere.
pub const STAGING_MAX: usize = 64;

/// Hex digits of the tuple hash appended to labels (64 bits).
const HASH_HEX: usize = 16;

/// Every character that is not an ASCII letter, digit or `_` becomes `_` (one per character).
fn clean(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The StarRocks name of a source table or column.
///
/// Rules: every character other than `A-Z a-z 0-9 _` becomes `_` (so `Order Date` is
/// `Order_Date` and `Straße` is `Stra_e`); a result that StarRocks' common-name rule would refuse
/// at its start (not a letter, and not `_` followed by a letter or digit: `1st`, `__x`, empty)
/// gets the prefix `c_`. Valid names are returned unchanged. The `c_` prefix also keeps source
/// columns away from StarRocks' reserved `__op` and `__starrocks_shadow_` names.
pub fn sanitize(name: &str) -> String {
    let s = clean(name);
    let ok = match s.as_bytes() {
        [c, ..] if c.is_ascii_alphabetic() => true,
        [b'_', c, ..] if c.is_ascii_alphanumeric() => true,
        _ => false,
    };
    if ok { s } else { format!("c_{s}") }
}

/// Refuses two sources mapping to one name, comparing case-insensitively (StarRocks column names
/// are case-insensitive; table names are too when `enable_table_name_case_insensitive` is on).
fn unique(sources: &[&str], what: &str, owner: &str) -> Result<Vec<String>> {
    let names: Vec<String> = sources.iter().map(|s| sanitize(s)).collect();
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, n) in names.iter().enumerate() {
        if let Some(&j) = seen.get(&n.to_ascii_lowercase()) {
            return Err(Error::config(format!(
                "{owner}{what}s `{}` and `{}` both map to the StarRocks name `{n}` (StarRocks \
                 allows only letters, digits and `_` and compares names case-insensitively); \
                 exclude or rename one of them",
                sources[j], sources[i]
            )));
        }
        seen.insert(n.to_ascii_lowercase(), i);
    }
    Ok(names)
}

/// StarRocks column names of a table, in column order.
pub fn column_names(info: &TableInfo) -> Result<Vec<String>> {
    let sources: Vec<&str> = info.columns.iter().map(|c| c.name.as_str()).collect();
    unique(&sources, "column", &format!("table {}: ", info.name))
}

/// StarRocks table names, in the given order.
pub fn table_names(names: &[String]) -> Result<Vec<String>> {
    let sources: Vec<&str> = names.iter().map(String::as_str).collect();
    unique(&sources, "table", "")
}

/// First 64 bits of SHA-256 over the length-prefixed parts, in hex: distinct tuples give
/// distinct hashes (barring a 2^-64 accident) even when their readable forms coincide.
fn tuple_hash(kind: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    h.finalize()[..HASH_HEX / 2]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `readable` cut to fit `max` with `_<hash>` appended; `readable` is ASCII.
fn bounded(mut readable: String, hash: &str, max: usize) -> String {
    let keep = max - 1 - hash.len();
    readable.truncate(keep);
    format!("{readable}_{hash}")
}

/// The Stream Load label of one part of one table in one run.
///
/// Form: `<workflow>_<run>_<table>_<part>_<hash>`, each name with non-`[A-Za-z0-9_]` characters
/// replaced by `_`, the readable part cut so the whole is at most 128 characters, and `<hash>`
/// 16 hex digits of SHA-256 over the exact tuple. The hash is always present because the readable
/// part alone is ambiguous (`a_b`+`c` and `a`+`b_c`, or `a-b` and `a.b`, read the same).
pub fn label(workflow: &str, run: &str, table: &str, part: u32) -> String {
    let part_s = part.to_string();
    let readable = format!(
        "{}_{}_{}_{part_s}",
        clean(workflow),
        clean(run),
        clean(table)
    );
    let hash = tuple_hash("label", &[workflow, run, table, &part_s]);
    bounded(readable, &hash, LABEL_MAX)
}

/// Characters of the table name kept in staging names.
const STAGING_TABLE_PART: usize = 24;
/// Hex digits of the hashes in staging names (32 bits each).
const STAGING_HASH_HEX: usize = 8;

/// The prefix every staging table of `table` starts with, and no other table's staging table or
/// [`sanitize`]d name does: `<table, cut to 24>__stage_<8 hex of hash(table)>_`. Cleanup of
/// leftovers from earlier runs looks for it. `table` may be given as in the source or already
/// sanitized: both give the same prefix (and [`staging_table`] the same name).
pub fn staging_prefix(table: &str) -> String {
    let full = sanitize(table);
    let h = &tuple_hash("stage-table", &[&full])[..STAGING_HASH_HEX];
    let mut t = full.clone();
    t.truncate(STAGING_TABLE_PART);
    format!("{t}__stage_{h}_")
}

/// The staging table a run loads `table` into before swapping it in:
/// `<staging_prefix(table)><run, cut to fit>_<8 hex of hash(table, run)>`, at most
/// [`STAGING_MAX`] characters, deterministic, starting like [`sanitize`]d names do.
pub fn staging_table(table: &str, run: &str) -> String {
    let prefix = staging_prefix(table);
    let h = &tuple_hash("stage", &[&sanitize(table), run])[..STAGING_HASH_HEX];
    let mut r = clean(run);
    r.truncate(STAGING_MAX - prefix.len() - 1 - STAGING_HASH_HEX);
    format!("{prefix}{r}_{h}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ColType, Column};

    fn valid_common(n: &str) -> bool {
        let b = n.as_bytes();
        let body_ok = b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
        let start_ok = match b {
            [c, ..] if c.is_ascii_alphabetic() => true,
            [b'_', c, ..] => c.is_ascii_alphanumeric(),
            _ => false,
        };
        body_ok && start_ok
    }

    #[test]
    fn sanitize_maps_deterministically() {
        assert_eq!(sanitize("ORDERS"), "ORDERS");
        assert_eq!(sanitize("Order Date"), "Order_Date");
        assert_eq!(sanitize("e-mail"), "e_mail");
        assert_eq!(sanitize("Straße"), "Stra_e");
        assert_eq!(sanitize("Prix€"), "Prix_");
        assert_eq!(sanitize("1st"), "c_1st");
        assert_eq!(sanitize("_id"), "_id");
        assert_eq!(sanitize("_1"), "_1");
        assert_eq!(sanitize("__op"), "c___op");
        assert_eq!(sanitize("__starrocks_shadow_x"), "c___starrocks_shadow_x");
        assert_eq!(sanitize("_"), "c__");
        assert_eq!(sanitize(""), "c_");
        assert_eq!(sanitize("ü"), "c__");
        for n in ["a b", "1", "", "_", "__", "-x", "Ω", "x.y.z", "_a", "Z9"] {
            let s = sanitize(n);
            assert!(valid_common(&s), "{n:?} -> {s:?}");
            assert_eq!(sanitize(&s), s, "idempotent on {n:?}");
        }
    }

    fn table(cols: &[&str]) -> TableInfo {
        TableInfo::new(
            "dbo.T",
            cols.iter()
                .map(|n| Column {
                    name: n.to_string(),
                    ty: ColType::Int32,
                    nullable: true,
                })
                .collect(),
            None,
            0,
        )
    }

    #[test]
    fn column_names_in_order_and_collisions_refused() {
        assert_eq!(
            column_names(&table(&["id", "Order Date", "1x"])).unwrap(),
            vec!["id", "Order_Date", "c_1x"]
        );
        let e = column_names(&table(&["id", "a-b", "A_B"])).unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::Config);
        assert!(
            e.message.contains("`a-b`") && e.message.contains("`A_B`"),
            "{e}"
        );
        assert!(e.message.contains("dbo.T"), "{e}");
        assert!(column_names(&table(&["Id", "ID"])).is_err());
    }

    #[test]
    fn table_names_collisions_refused() {
        let ok = table_names(&["A".into(), "B c".into()]).unwrap();
        assert_eq!(ok, vec!["A", "B_c"]);
        let e = table_names(&["x y".into(), "X_Y".into()]).unwrap_err();
        assert!(
            e.message.contains("`x y`") && e.message.contains("`X_Y`"),
            "{e}"
        );
    }

    #[test]
    fn labels_are_deterministic_bounded_and_distinct() {
        let l = label("nightly", "20240101T000000Z", "dbo.Orders", 7);
        assert_eq!(l, label("nightly", "20240101T000000Z", "dbo.Orders", 7));
        assert!(
            l.starts_with("nightly_20240101T000000Z_dbo_Orders_7_"),
            "{l}"
        );
        assert_eq!(
            l.len(),
            "nightly_20240101T000000Z_dbo_Orders_7_".len() + HASH_HEX
        );
        // Same readable form, different tuples.
        assert_ne!(label("a_b", "c", "t", 1), label("a", "b_c", "t", 1));
        assert_ne!(label("w", "r", "a-b", 1), label("w", "r", "a.b", 1));
        assert_ne!(label("w", "r", "t", 1), label("w", "r", "t", 2));
        // Too long: readable prefix kept, still unique and valid.
        let long = "T".repeat(300);
        let a = label("wf", "run", &long, 1);
        let b = label("wf", "run", &format!("{long}x"), 1);
        assert_eq!(a.len(), LABEL_MAX);
        assert_eq!(b.len(), LABEL_MAX);
        assert_ne!(a, b);
        assert!(a.starts_with("wf_run_TTT"));
        for l in [&l, &a, &b, &label("ü", "-", "", 0)] {
            assert!(l.len() <= LABEL_MAX);
            assert!(
                l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'),
                "{l}"
            );
        }
    }

    #[test]
    fn staging_names_are_bounded_and_valid() {
        let s = staging_table("Orders", "r1");
        assert!(s.starts_with("Orders__stage_"), "{s}");
        assert!(s.starts_with(&staging_prefix("Orders")), "{s}");
        assert_eq!(s.len(), "Orders__stage_".len() + 8 + 1 + 2 + 1 + 8);
        assert_eq!(s, staging_table("Orders", "r1"));
        assert_ne!(s, staging_table("Orders", "r2"));
        // Same StarRocks table, same staging table, whichever form of the name is given.
        assert_eq!(staging_table("a-b", "r"), staging_table("a_b", "r"));
        assert_eq!(staging_prefix("a b"), staging_prefix("a_b"));
        let long = staging_table(&"x".repeat(200), "20240101T000000Z-0123456789");
        assert_eq!(long.len(), STAGING_MAX);
        assert!(long.starts_with(&staging_prefix(&"x".repeat(200))));
        assert_ne!(
            long,
            staging_table(&"x".repeat(200), "20240101T000000Z-0123456788")
        );
        for n in [&s, &long, &staging_table("1 x", "ü")] {
            assert!(n.len() <= STAGING_MAX);
            assert!(valid_common(n), "{n}");
        }
        // Another table's names never carry this table's prefix, even when they start alike.
        let p = staging_prefix("a");
        assert!(!staging_table("a__stage_x", "r").starts_with(&p));
        assert!(
            !staging_table(&format!("{}y", "a".repeat(30)), "r")
                .starts_with(&staging_prefix(&format!("{}z", "a".repeat(30))))
        );
        assert_eq!(
            staging_prefix("Orders"),
            staging_prefix(&sanitize("Orders"))
        );
    }
}
