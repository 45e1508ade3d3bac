//! A run's way into the lake: the staging table it writes to, the one commit of its files, and
//! the publish that makes it the real table (or the append of an incremental run), each safe to
//! repeat after a crash (see the module docs of `lake`).

use std::collections::HashMap;
use std::sync::Arc;

use iceberg::spec::{
    NestedField, NullOrder, Schema, SortDirection, SortField, SortOrder, Transform,
};
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::{Catalog, NamespaceIdent, TableCreation};

use super::{
    FINGERPRINT_PROP, Lake, Published, ROW_GROUP_BYTES, ROWS_PROP, RUN_ID_PROP, TASK_PROP,
};
use crate::error::{Error, Result};
use crate::model::TableInfo;
use crate::model::fingerprint::Digest128;

/// Properties every lake table carries, so that other writers and readers (Spark, Trino,
/// StarRocks, pyiceberg) know how its files were written and write alike.
fn table_properties() -> HashMap<String, String> {
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

/// The chunk key, ascending, as the table's sort order: every data file holds rows of one chunk,
/// which the sources read in chunk-key order, so readers can skip files and row groups by key
/// range. A table read without a key is unsorted.
fn sort_order(info: &TableInfo, schema: &Schema) -> Result<Option<SortOrder>> {
    let key: Vec<&String> = match &info.key {
        Some(k) => vec![k],
        None => info.chunk_key.iter().collect(),
    };
    if key.is_empty() {
        return Ok(None);
    }
    let mut b = SortOrder::builder();
    b.with_order_id(1);
    for k in key {
        let Some(field) = schema.field_by_name(k) else {
            // A key column left out of the copy (exclude_columns): no claim about order.
            return Ok(None);
        };
        b.with_sort_field(SortField {
            source_id: field.id,
            transform: Transform::Identity,
            direction: SortDirection::Ascending,
            null_order: NullOrder::First,
        });
    }
    Ok(Some(b.build(schema)?))
}

impl Lake {
    fn iceberg_schema(info: &TableInfo) -> Result<Schema> {
        let fields = info
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                Arc::new(if c.nullable {
                    NestedField::optional(i as i32 + 1, &c.name, c.ty.iceberg())
                } else {
                    NestedField::required(i as i32 + 1, &c.name, c.ty.iceberg())
                })
            })
            .collect::<Vec<_>>();
        Ok(Schema::builder().with_fields(fields).build()?)
    }

    /// `day(<col>)` when the run decided to partition the table (`info.partition`), with the
    /// partition field named `<col>_day` as Spark and pyiceberg name it.
    fn partition_spec(
        info: &TableInfo,
        schema: &Schema,
    ) -> Result<Option<iceberg::spec::UnboundPartitionSpec>> {
        let Some(col) = &info.partition else {
            return Ok(None);
        };
        let field = schema.field_by_name(col).ok_or_else(|| {
            Error::internal(format!(
                "table {}: partition column {col} is not in the lake schema",
                info.name
            ))
        })?;
        let spec = iceberg::spec::UnboundPartitionSpec::builder()
            .add_partition_field(
                field.id,
                format!("{col}_day"),
                iceberg::spec::Transform::Day,
            )?
            .build();
        Ok(Some(spec))
    }

    /// The run's staging table for `info`, created on first use (partitioned by day when
    /// `info.partition` names a column).
    pub async fn staging_table(
        &self,
        info: &TableInfo,
        run: &str,
    ) -> Result<iceberg::table::Table> {
        let ident = self.staging_ident(&info.name, run);
        let _g = self.commit_lock.lock().await;
        if self.catalog.table_exists(&ident).await? {
            return Ok(self.catalog.load_table(&ident).await?);
        }
        let schema = Self::iceberg_schema(info)?;
        let spec = Self::partition_spec(info, &schema)?;
        let creation = TableCreation::builder()
            .name(ident.name().to_string())
            .location(self.run_location(&info.name, run))
            .schema(schema.clone())
            .partition_spec_opt(spec)
            .sort_order_opt(sort_order(info, &schema)?)
            .properties(table_properties())
            .build();
        self.catalog.create_table(&self.staging, creation).await?;
        // Loaded back from the catalog database: the crate ignores a failed COMMIT of the row.
        Ok(self.catalog.load_table(&ident).await?)
    }

    fn snapshot_of_run(t: &iceberg::table::Table, run: &str) -> Option<i64> {
        t.metadata()
            .snapshots()
            .find(|s| {
                s.summary()
                    .additional_properties
                    .get(RUN_ID_PROP)
                    .map(String::as_str)
                    == Some(run)
            })
            .map(|s| s.snapshot_id())
    }

    /// Commits the run's data files of `table` once, then publishes the staging table as the
    /// real one. Safe to call again after a crash at any point.
    pub async fn commit_and_publish(
        &self,
        info: &TableInfo,
        run: &str,
        files_json: Vec<String>,
        extra_props: HashMap<String, String>,
    ) -> Result<Published> {
        // Already published by an earlier attempt?
        let ident = self.ident(&info.name);
        if self.catalog.table_exists(&ident).await? {
            let t = self.catalog.load_table(&ident).await?;
            if let Some(id) = Self::snapshot_of_run(&t, run)
                && t.metadata().current_snapshot_id() == Some(id)
            {
                return Ok(Published {
                    snapshot_id: id,
                    found: true,
                });
            }
        }
        let staging = self.staging_table(info, run).await?;
        let (snapshot_id, found) = match Self::snapshot_of_run(&staging, run) {
            Some(id) => (id, true),
            None => {
                let id = self
                    .commit_files(
                        &staging,
                        &self.staging,
                        &info.name,
                        run,
                        files_json,
                        extra_props,
                    )
                    .await?;
                (id, false)
            }
        };
        crate::fault::point(&format!("after_commit:{}", info.name));
        self.publish(&info.name, run).await?;
        Ok(Published { snapshot_id, found })
    }

    /// Appends an incremental run's data files to the published table as one snapshot carrying
    /// the run id (skipped when a snapshot already does), then drops the run's staging entry
    /// (its files were written there, under the run's own directory). `dag.rows` and
    /// `dag.fingerprint` of the new snapshot are the table's totals: the previous snapshot's plus
    /// the run's `batch`. Safe to call again after a crash at any point.
    pub async fn append(
        &self,
        info: &TableInfo,
        run: &str,
        files_json: Vec<String>,
        batch: Digest128,
        mut props: HashMap<String, String>,
    ) -> Result<Published> {
        let ident = self.ident(&info.name);
        let live = self.catalog.load_table(&ident).await?;
        let found = Self::snapshot_of_run(&live, run);
        let published = match found {
            Some(id) => Published {
                snapshot_id: id,
                found: true,
            },
            None if files_json.is_empty() => Published {
                snapshot_id: live.metadata().current_snapshot_id().unwrap_or_default(),
                found: false,
            },
            None => {
                let md = live.metadata();
                let mut total = batch;
                if let Some(cur) = md.current_snapshot() {
                    let p = &cur.summary().additional_properties;
                    if let (Some(rows), Some(fp)) = (
                        p.get(ROWS_PROP).and_then(|r| r.parse().ok()),
                        p.get(FINGERPRINT_PROP),
                    ) && let Some(before) = Digest128::from_parts(rows, fp)
                    {
                        total.add(before);
                    }
                }
                props.insert(ROWS_PROP.into(), total.rows.to_string());
                props.insert(FINGERPRINT_PROP.into(), total.hex());
                let id = self
                    .commit_files(&live, &self.namespace, &info.name, run, files_json, props)
                    .await?;
                Published {
                    snapshot_id: id,
                    found: false,
                }
            }
        };
        crate::fault::point(&format!("after_commit:{}", info.name));
        let _g = self.commit_lock.lock().await;
        sqlx::query(&self.sql(
            "DELETE FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? \
             AND table_name = ?",
        ))
        .bind(&self.catalog_name)
        .bind(self.staging.join("."))
        .bind(self.staging_ident(&info.name, run).name())
        .execute(&self.db)
        .await?;
        Ok(published)
    }

    /// Commits the data files `files_json` to table `t` (catalog row `ns`.`t`'s name) as one
    /// snapshot carrying the run id and `props`, then reads the catalog row back:
    /// iceberg-catalog-sql 0.10.1 ignores the database's COMMIT result, so a commit that did not
    /// persist must be an error, not a success. Returns the new snapshot's id.
    async fn commit_files(
        &self,
        t: &iceberg::table::Table,
        ns: &NamespaceIdent,
        table: &str,
        run: &str,
        files_json: Vec<String>,
        mut props: HashMap<String, String>,
    ) -> Result<i64> {
        let md = t.metadata();
        // Each description is dropped as soon as it is parsed: a table of many small files (a
        // partitioned one) has thousands, and iceberg copies the parsed files twice more while
        // it writes the manifest.
        let files = files_json
            .into_iter()
            .map(|j| {
                iceberg::spec::deserialize_data_file_from_json(
                    &j,
                    md.default_partition_spec_id(),
                    md.default_partition_type(),
                    md.current_schema(),
                )
            })
            .collect::<iceberg::Result<Vec<_>>>()?;
        props.insert(RUN_ID_PROP.into(), run.into());
        props.insert(TASK_PROP.into(), format!("{table}.write_iceberg"));
        let _g = self.commit_lock.lock().await;
        let tx = Transaction::new(t);
        let tx = tx
            .fast_append()
            .add_data_files(files)
            .set_snapshot_properties(props)
            .apply(tx)?;
        let committed = tx.commit(self.catalog.as_ref()).await?;
        let row = self.locations(&self.db, ns, t.identifier().name()).await?;
        let written = committed.metadata_location().unwrap_or_default();
        if row.as_ref().map(|(loc, _)| loc.as_str()) != Some(written) {
            return Err(Error::unavailable(format!(
                "lake commit of {table} was not stored by the catalog database; will retry"
            )));
        }
        Self::snapshot_of_run(&committed, run).ok_or_else(|| {
            Error::internal("the commit succeeded but its snapshot is not in the table")
        })
    }

    /// Points the real table at the staging table's metadata and drops the staging entry, in one
    /// catalog transaction.
    async fn publish(&self, table: &str, run: &str) -> Result<()> {
        let staging = self.staging_ident(table, run);
        let _g = self.commit_lock.lock().await;
        let mut tx = self.db.begin().await?;
        let staged = self
            .locations(&mut *tx, &self.staging, staging.name())
            .await?;
        let Some((new_loc, _)) = staged else {
            // Nothing staged: published before (checked by the caller) or never staged.
            return Err(Error::internal(format!(
                "staging table {} is missing: nothing to publish",
                staging.name()
            )));
        };
        match self.locations(&mut *tx, &self.namespace, table).await? {
            Some((old, _)) => {
                let n = sqlx::query(&self.sql(
                    "UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ? \
                     WHERE catalog_name = ? AND table_namespace = ? AND table_name = ? \
                     AND metadata_location = ?",
                ))
                .bind(&new_loc)
                .bind(&old)
                .bind(&self.catalog_name)
                .bind(self.namespace.join("."))
                .bind(table)
                .bind(&old)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n != 1 {
                    return Err(Error::unavailable(format!(
                        "table {table} changed while publishing; will retry"
                    )));
                }
            }
            None => {
                sqlx::query(&self.sql(
                    "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, \
                     metadata_location, iceberg_type) VALUES (?, ?, ?, ?, 'TABLE')",
                ))
                .bind(&self.catalog_name)
                .bind(self.namespace.join("."))
                .bind(table)
                .bind(&new_loc)
                .execute(&mut *tx)
                .await?;
            }
        }
        // Drop this run's staging entry and those that abandoned runs of the table left behind
        // (same prefix and a run id of the same shape, so table `A__B` is not mistaken for one).
        let prefix = format!("{table}__");
        sqlx::query(&self.sql(
            "DELETE FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? \
             AND substr(table_name, 1, length(?)) = ? AND length(table_name) = length(?) + ?",
        ))
        .bind(&self.catalog_name)
        .bind(self.staging.join("."))
        .bind(&prefix)
        .bind(&prefix)
        .bind(&prefix)
        .bind(run.len() as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
