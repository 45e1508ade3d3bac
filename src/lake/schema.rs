//! How a table's columns changed since its lake table was last written, and whether a run may
//! follow.
//!
//! A full run commits the source's current columns to the lake table (a schema update on the same
//! table, see `metadata`), so any change *could* be written; but a dropped or retyped column silently breaks every query,
//! view and StarRocks load that used it. Added columns and the widenings Iceberg itself allows
//! (int to long, float to double, a larger decimal precision at the same scale) are safe and
//! followed; anything else fails the table with a message naming the columns, unless the
//! workflow says `schema_changes = "any"`.

use iceberg::spec::{PrimitiveType, Schema, Type};

use crate::config::SchemaChanges;
use crate::error::{Error, Result};
use crate::model::TableInfo;

/// The difference between the published lake schema and the source's columns.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SchemaDiff {
    pub added: Vec<String>,
    pub dropped: Vec<String>,
    /// (column, published type, new type): widenings Iceberg allows.
    pub widened: Vec<(String, String, String)>,
    /// (column, published type, new type): anything else.
    pub retyped: Vec<(String, String, String)>,
}

impl SchemaDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.dropped.is_empty()
            && self.widened.is_empty()
            && self.retyped.is_empty()
    }

    /// One line for the task's outputs, e.g. `added EMAIL; widened QTY int -> long`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.added.is_empty() {
            parts.push(format!("added {}", self.added.join(", ")));
        }
        if !self.dropped.is_empty() {
            parts.push(format!("dropped {}", self.dropped.join(", ")));
        }
        for (what, list) in [("widened", &self.widened), ("retyped", &self.retyped)] {
            for (c, from, to) in list {
                parts.push(format!("{what} {c} {from} -> {to}"));
            }
        }
        parts.join("; ")
    }

    /// Fails when the change is more than `policy` follows.
    pub fn check(&self, policy: SchemaChanges, table: &str, lake_table: &str) -> Result<()> {
        if policy == SchemaChanges::Any || (self.dropped.is_empty() && self.retyped.is_empty()) {
            return Ok(());
        }
        let mut what = Vec::new();
        if !self.dropped.is_empty() {
            what.push(format!(
                "column(s) {} no longer in the source",
                self.dropped.join(", ")
            ));
        }
        for (c, from, to) in &self.retyped {
            what.push(format!("column {c} changed from {from} to {to}"));
        }
        Err(Error::data(format!(
            "the source's columns changed since lake table {lake_table} was written: {}; \
             nothing was replaced. To replace the table with the new columns, set \
             schema_changes = \"any\" under [table.{table}] (or for the workflow), then \
             `dag retry {table}`",
            what.join("; ")
        )))
    }
}

/// Compares the published schema with the source's columns (by name, case-sensitively, as
/// Iceberg does).
pub fn diff(published: &Schema, info: &TableInfo) -> SchemaDiff {
    let mut d = SchemaDiff::default();
    for field in published.as_struct().fields() {
        match info.columns.iter().find(|c| c.name == field.name) {
            None => d.dropped.push(field.name.clone()),
            Some(c) => {
                let new = c.ty.iceberg();
                if *field.field_type != new {
                    let entry = (
                        field.name.clone(),
                        field.field_type.to_string(),
                        new.to_string(),
                    );
                    if widens(&field.field_type, &new) {
                        d.widened.push(entry);
                    } else {
                        d.retyped.push(entry);
                    }
                }
            }
        }
    }
    for c in &info.columns {
        if published.field_by_name(&c.name).is_none() {
            d.added.push(c.name.clone());
        }
    }
    d
}

/// Type promotions the Iceberg spec allows in schema evolution.
pub(super) fn widens(from: &Type, to: &Type) -> bool {
    use PrimitiveType as P;
    match (from, to) {
        (Type::Primitive(a), Type::Primitive(b)) => {
            matches!((a, b), (P::Int, P::Long) | (P::Float, P::Double))
                || matches!(
                    (a, b),
                    (P::Decimal { precision: p1, scale: s1 }, P::Decimal { precision: p2, scale: s2 })
                        if s1 == s2 && p2 >= p1
                )
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use iceberg::spec::NestedField;

    use super::*;
    use crate::model::{ColType, Column};

    fn schema(cols: &[(&str, PrimitiveType)]) -> Schema {
        let fields = cols
            .iter()
            .enumerate()
            .map(|(i, (n, t))| {
                Arc::new(NestedField::optional(
                    i as i32 + 1,
                    *n,
                    Type::Primitive(t.clone()),
                ))
            })
            .collect::<Vec<_>>();
        Schema::builder().with_fields(fields).build().unwrap()
    }

    fn info(cols: &[(&str, ColType)]) -> TableInfo {
        TableInfo::new(
            "T",
            cols.iter()
                .map(|(n, t)| Column {
                    name: n.to_string(),
                    ty: *t,
                    nullable: true,
                })
                .collect(),
            None,
            0,
        )
    }

    #[test]
    fn added_and_widened_columns_are_followed() {
        let published = schema(&[("ID", PrimitiveType::Int), ("X", PrimitiveType::Float)]);
        let now = info(&[
            ("ID", ColType::Int64),
            ("X", ColType::Float64),
            ("NEW", ColType::String),
        ]);
        let d = diff(&published, &now);
        assert_eq!(d.added, ["NEW"]);
        assert_eq!(d.widened.len(), 2, "{d:?}");
        assert!(d.dropped.is_empty() && d.retyped.is_empty());
        assert!(d.check(SchemaChanges::Additive, "T", "ns.T").is_ok());
        assert_eq!(
            d.describe(),
            "added NEW; widened ID int -> long; widened X float -> double"
        );
    }

    #[test]
    fn dropped_or_retyped_columns_fail_unless_allowed() {
        let published = schema(&[("ID", PrimitiveType::Long), ("GONE", PrimitiveType::String)]);
        let now = info(&[("ID", ColType::String)]);
        let d = diff(&published, &now);
        assert_eq!(d.dropped, ["GONE"]);
        assert_eq!(d.retyped, [("ID".into(), "long".into(), "string".into())]);
        let e = d.check(SchemaChanges::Additive, "T", "ns.T").unwrap_err();
        assert!(e.message.contains("GONE no longer in the source"), "{e}");
        assert!(e.message.contains("ID changed from long to string"), "{e}");
        assert!(
            e.message
                .contains("schema_changes = \"any\" under [table.T]"),
            "{e}"
        );
        assert!(d.check(SchemaChanges::Any, "T", "ns.T").is_ok());
    }
}
