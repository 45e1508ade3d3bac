//! What a lake table's metadata must be for a run: its schema (field ids kept across runs), its
//! day partition spec, its sort order and the properties every lake table carries, either for a
//! table created by the run or as an evolution of the table the run commits to.
//!
//! A full refresh commits to the *same* table (same table-uuid, one more snapshot), so the run's
//! columns are laid onto the table's current schema rather than numbered afresh: a column that
//! keeps its name and a type Iceberg can promote to keeps its field id, so readers of older
//! snapshots and engines holding the table resolve it as the same column; a new or retyped
//! column gets a new id past the table's last one. The result is a pure function of the current
//! metadata and the run's [`TableInfo`], so the chunk writers (which need the field ids and the
//! partition spec to write their files) and the commit (which needs them to read the recorded
//! file descriptions back) compute the same answer independently, however often a run resumes.

use std::collections::HashMap;
use std::sync::Arc;

use iceberg::spec::{
    FormatVersion, NestedField, NullOrder, PartitionSpec, Schema, SortDirection, SortField,
    SortOrder, TableMetadata, TableMetadataBuilder, Transform, UnboundPartitionSpec,
};

use super::ROW_GROUP_BYTES;
use super::schema::widens;
use crate::error::{Error, Result};
use crate::model::TableInfo;

/// Properties every lake table carries, so that other writers and readers (Spark, Trino,
/// StarRocks, pyiceberg) know how its files were written and write alike.
pub(super) fn table_properties() -> HashMap<String, String> {
    [
        ("write.format.default", "parquet".to_string()),
        ("write.parquet.compression-codec", "zstd".to_string()),
        ("write.parquet.compression-level", "1".to_string()),
        (
            "write.parquet.row-group-size-bytes",
            ROW_GROUP_BYTES.to_string(),
        ),
        // The rolling writer's default: a chunk's rows go into one file unless it exceeds this.
        ("write.target-file-size-bytes", (512u64 << 20).to_string()),
        ("write.metadata.metrics.default", "truncate(16)".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The schema for `info`'s columns, in the source's column order. On an existing table
/// (`current` and its `last_column_id`), a column of the same name whose type is unchanged or
/// one Iceberg promotes to keeps its field id (and stays optional if it was: a column is never
/// tightened to required under existing data); any other column gets the next unused id.
pub(super) fn schema(current: Option<(&Schema, i32)>, info: &TableInfo) -> Result<Schema> {
    let mut next = current.map_or(0, |(_, last)| last);
    let fields = info
        .columns
        .iter()
        .map(|c| {
            let ty = c.ty.iceberg();
            let kept = current
                .and_then(|(s, _)| s.field_by_name(&c.name))
                .filter(|f| *f.field_type == ty || widens(&f.field_type, &ty));
            let (id, required) = match kept {
                Some(f) => (f.id, f.required && !c.nullable),
                None => {
                    next += 1;
                    (next, !c.nullable)
                }
            };
            Arc::new(if required {
                NestedField::required(id, &c.name, ty)
            } else {
                NestedField::optional(id, &c.name, ty)
            })
        })
        .collect::<Vec<_>>();
    Ok(Schema::builder().with_fields(fields).build()?)
}

/// `day(<col>)` when the run decided to partition the table (`info.partition`), with the
/// partition field named `<col>_day` as Spark and pyiceberg name it.
fn partition_spec(info: &TableInfo, schema: &Schema) -> Result<UnboundPartitionSpec> {
    let Some(col) = &info.partition else {
        return Ok(UnboundPartitionSpec::builder().build());
    };
    let field = schema.field_by_name(col).ok_or_else(|| {
        Error::internal(format!(
            "table {}: partition column {col} is not in the lake schema",
            info.name
        ))
    })?;
    Ok(UnboundPartitionSpec::builder()
        .add_partition_field(field.id, format!("{col}_day"), Transform::Day)?
        .build())
}

/// The chunk key, ascending, as the table's sort order: every data file holds rows of one chunk,
/// which the sources read in chunk-key order, so readers can skip files and row groups by key
/// range. A table read without a key is unsorted.
fn sort_order(info: &TableInfo, schema: &Schema) -> Result<SortOrder> {
    let key: Vec<&String> = match &info.key {
        Some(k) => vec![k],
        None => info.chunk_key.iter().collect(),
    };
    let mut b = SortOrder::builder();
    if key.is_empty() {
        return Ok(SortOrder::unsorted_order());
    }
    b.with_order_id(1);
    for k in key {
        let Some(field) = schema.field_by_name(k) else {
            // A key column left out of the copy (exclude_columns): no claim about order.
            return Ok(SortOrder::unsorted_order());
        };
        b.with_sort_field(SortField {
            source_id: field.id,
            transform: Transform::Identity,
            direction: SortDirection::Ascending,
            null_order: NullOrder::First,
        });
    }
    Ok(b.build(schema)?)
}

/// Same partition fields (source column and transform) in the same order.
fn same_partitioning(spec: &PartitionSpec, want: &UnboundPartitionSpec) -> bool {
    spec.fields().len() == want.fields().len()
        && spec
            .fields()
            .iter()
            .zip(want.fields())
            .all(|(a, b)| a.source_id == b.source_id && a.transform == b.transform)
}

/// Same sort fields in the same order.
fn same_order(a: &SortOrder, b: &SortOrder) -> bool {
    a.fields == b.fields
}

/// Same columns (ids, names, types, required) in the same order.
fn same_columns(a: &Schema, b: &Schema) -> bool {
    a.as_struct().fields() == b.as_struct().fields()
}

/// The metadata of `info`'s table for this run, not yet built: a new table at `location` when
/// there is none (`current`), else the current metadata (written at `current_location`) with the
/// run's schema, partitioning, sort order and properties applied where they differ. Applying it
/// to an unchanged table changes nothing but the metadata log.
pub(super) fn for_run(
    current: Option<(&TableMetadata, &str)>,
    info: &TableInfo,
    location: &str,
) -> Result<TableMetadataBuilder> {
    let Some((md, md_location)) = current else {
        let schema = schema(None, info)?;
        let spec = partition_spec(info, &schema)?;
        let order = sort_order(info, &schema)?;
        return Ok(TableMetadataBuilder::new(
            schema,
            spec,
            order,
            location.to_string(),
            FormatVersion::V2,
            table_properties(),
        )?);
    };
    let schema = schema(Some((md.current_schema(), md.last_column_id())), info)?;
    let mut b = md.clone().into_builder(Some(md_location.to_string()));
    if !same_columns(md.current_schema(), &schema) {
        b = b.add_current_schema(schema.clone())?;
    }
    let spec = partition_spec(info, &schema)?;
    if !same_partitioning(md.default_partition_spec(), &spec) {
        b = b.add_default_partition_spec(spec)?;
    }
    let order = sort_order(info, &schema)?;
    if !same_order(md.default_sort_order(), &order) {
        b = b.add_sort_order(order)?.set_default_sort_order(-1)?;
    }
    let props = table_properties();
    if props.iter().any(|(k, v)| md.properties().get(k) != Some(v)) {
        b = b.set_properties(props)?;
    }
    Ok(b)
}

/// The metadata the run's chunk writers write through: the table as it will be once the run
/// commits, with data files going to `data_location` (the run's own directory) rather than the
/// table's, so that a run's files, its leftovers included, can be found and removed by run.
pub(super) fn for_writers(
    current: Option<(&TableMetadata, &str)>,
    info: &TableInfo,
    location: &str,
    data_location: &str,
) -> Result<TableMetadata> {
    let b = for_run(current, info, location)?.set_properties(HashMap::from([(
        "write.data.path".to_string(),
        data_location.to_string(),
    )]))?;
    let md = b.build()?.metadata;
    if md.format_version() == FormatVersion::V1 {
        return Err(Error::config(format!(
            "lake table {}: Iceberg format version 1 is not written by dag (tables it creates \
             are version 2); upgrade the table's format version first",
            info.name
        )));
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ColType, Column};

    fn info(cols: &[(&str, ColType, bool)]) -> TableInfo {
        TableInfo::new(
            "T",
            cols.iter()
                .map(|(n, t, nullable)| Column {
                    name: n.to_string(),
                    ty: *t,
                    nullable: *nullable,
                })
                .collect(),
            None,
            0,
        )
    }

    fn ids(s: &Schema) -> Vec<(String, i32, bool)> {
        s.as_struct()
            .fields()
            .iter()
            .map(|f| (f.name.clone(), f.id, f.required))
            .collect()
    }

    #[test]
    fn kept_columns_keep_their_ids_and_new_ones_come_after_the_last() {
        let first = schema(
            None,
            &info(&[
                ("ID", ColType::Int32, false),
                ("NAME", ColType::String, true),
                ("GONE", ColType::String, true),
            ]),
        )
        .unwrap();
        assert_eq!(
            ids(&first),
            [
                ("ID".into(), 1, true),
                ("NAME".into(), 2, false),
                ("GONE".into(), 3, false)
            ]
        );
        // GONE dropped, NAME retyped to an integer (a new column), ID widened, NEW added in
        // front: last_column_id 3 stays taken by the dropped column.
        let second = schema(
            Some((&first, 3)),
            &info(&[
                ("NEW", ColType::Int64, false),
                ("ID", ColType::Int64, false),
                ("NAME", ColType::Int64, true),
            ]),
        )
        .unwrap();
        assert_eq!(
            ids(&second),
            [
                ("NEW".into(), 4, true),
                ("ID".into(), 1, true),
                ("NAME".into(), 5, false)
            ]
        );
    }

    #[test]
    fn an_optional_column_is_not_tightened_to_required() {
        let first = schema(None, &info(&[("A", ColType::Int32, true)])).unwrap();
        let second = schema(Some((&first, 1)), &info(&[("A", ColType::Int32, false)])).unwrap();
        assert_eq!(ids(&second), [("A".into(), 1, false)]);
    }

    #[test]
    fn evolving_an_unchanged_table_adds_no_schema_spec_or_order() {
        let mut i = info(&[("ID", ColType::Int64, false), ("D", ColType::Date, false)]);
        i.key = Some("ID".into());
        i.partition = Some("D".into());
        let md = for_run(None, &i, "file:///w/ns/T")
            .unwrap()
            .build()
            .unwrap()
            .metadata;
        let again = for_run(Some((&md, "file:///w/ns/T/metadata/0.json")), &i, "x")
            .unwrap()
            .build()
            .unwrap();
        assert!(again.changes.is_empty(), "{:?}", again.changes);
        assert_eq!(again.metadata.uuid(), md.uuid());
        assert_eq!(again.metadata.location(), "file:///w/ns/T");

        // Unpartitioned and a new column: a new schema and a new default spec, same uuid.
        i.partition = None;
        i.columns.push(Column {
            name: "X".into(),
            ty: ColType::String,
            nullable: true,
        });
        let evolved = for_run(Some((&md, "m")), &i, "x")
            .unwrap()
            .build()
            .unwrap()
            .metadata;
        assert_eq!(evolved.uuid(), md.uuid());
        assert!(evolved.default_partition_spec().is_unpartitioned());
        assert_eq!(evolved.current_schema().field_by_name("X").unwrap().id, 3);
        assert_eq!(evolved.schemas_iter().len(), 2);
    }
}
