//! A run's way into the lake: the table its chunk writers write through, and the one commit of
//! its files as one new snapshot of the *same* table (an overwrite for a full refresh, an append
//! for an incremental run), safe to repeat after a crash at any point.
//!
//! An incremental run of a table with a key first rewrites the current files that hold older
//! versions of its rows (see `rewrite`), so the table equals the source by key.
//!
//! The commit is recognised by the run id in its snapshot's summary: a commit that finds it in
//! the table's history was made by an earlier attempt and is not made again. A commit that loses
//! a race with another writer (the catalog's pointer moved since the snapshot was built on it) is
//! built again on the new state, up to [`COMMIT_ATTEMPTS`] times.

use std::collections::HashMap;

use super::catalog::Committed;
use super::produce::{self, Change};
use super::rewrite;
use super::{FINGERPRINT_PROP, Lake, Published, ROWS_PROP, RUN_ID_PROP, TASK_PROP, metadata};
use crate::error::{Error, Result};
use crate::model::fingerprint::Digest128;
use crate::model::{ColType, TableInfo};

/// Times a commit is built and tried against a table that other writers keep changing.
const COMMIT_ATTEMPTS: usize = 5;

impl Lake {
    /// The table `info`'s chunk writers of run `run` write through: the lake table as this run
    /// will commit it (its schema, partitioning and field ids, see `metadata`), with data files
    /// going to the run's own directory. It is not in any catalog and is never committed to.
    pub async fn writer_table(&self, info: &TableInfo, run: &str) -> Result<iceberg::table::Table> {
        let current = self.current_table(&info.name).await?;
        let data = self.storage.location(&self.run_data_dir(&info.name, run));
        self.writer_table_at(current.as_ref(), info, &data)
    }

    /// The table the writers of a run write through into the directory `data_location`, built
    /// on the table `current` (none: not created yet).
    fn writer_table_at(
        &self,
        current: Option<&iceberg::table::Table>,
        info: &TableInfo,
        data_location: &str,
    ) -> Result<iceberg::table::Table> {
        let md = metadata::for_writers(
            current.map(table_state).transpose()?,
            info,
            &self.table_location(&info.name),
            data_location,
        )?;
        Ok(iceberg::table::Table::builder()
            .metadata(md)
            .identifier(self.ident(&info.name))
            .file_io(self.file_io().clone())
            .runtime(iceberg::Runtime::try_current()?)
            .readonly(true)
            .build()?)
    }

    /// An incremental run of a keyed table, before its commit to `t`: the current files that
    /// hold older versions of the rows in the run's files (`files`) written again without them
    /// (see `rewrite`). The run's keys are read once (`keys`) however often the commit is
    /// rebuilt. Nothing for a table without a key.
    async fn rewrite_older_versions(
        &self,
        t: &iceberg::table::Table,
        info: &TableInfo,
        run: &str,
        files: &RunFiles,
        keys: &mut Option<rewrite::Keys>,
        tuning: &RewriteTuning,
    ) -> Result<rewrite::Rewritten> {
        let Some(key) = &info.key else {
            return Ok(rewrite::Rewritten::default());
        };
        if keys.is_none() {
            let integer = info
                .columns
                .iter()
                .find(|c| &c.name == key)
                .is_some_and(|c| matches!(c.ty, ColType::Int32 | ColType::Int64));
            *keys = Some(
                rewrite::run_keys(
                    self.file_io(),
                    files.paths()?,
                    key,
                    integer,
                    tuning.batch_rows,
                )
                .await?,
            );
        }
        let Some(keys) = keys.as_ref().filter(|k| !k.is_empty()) else {
            return Ok(rewrite::Rewritten::default());
        };
        let rewrites = format!("{}/{run}/rewrite", self.table_dir(&info.name));
        let writers = self.writer_table_at(Some(t), info, &self.storage.location(&rewrites))?;
        let Some(field) = writers.metadata().current_schema().field_by_name(key) else {
            return Ok(rewrite::Rewritten::default());
        };
        let files = rewrite::candidates(t, field.id, keys).await?;
        let settings = rewrite::RewriteSettings {
            writer_table: &writers,
            prefix: format!(
                "{run}-rw-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            batch_rows: tuning.batch_rows,
            row_group_rows: tuning.row_group_rows,
            open_partitions: tuning.open_partitions,
        };
        rewrite::rewrite(&settings, info, files, keys).await
    }

    pub(super) fn snapshot_of_run(t: &iceberg::table::Table, run: &str) -> Option<i64> {
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

    /// Commits the run's data files (`files`, as the chunk writers recorded them) to
    /// `info`'s lake table as one snapshot carrying the run id and `props`: replacing every
    /// current file (`Change::Replace`) or added to them (`Change::Append`, where `batch` is what
    /// the run read: the snapshot's `dag.rows` and `dag.fingerprint` are the table's totals, the
    /// previous snapshot's plus `batch`). The table keeps its identity (table-uuid, history); it
    /// is created by the first commit. Skipped when a snapshot of the table already carries the
    /// run id (an earlier attempt committed), and a run with nothing to append commits nothing.
    #[allow(clippy::too_many_arguments)]
    pub async fn commit_run(
        &self,
        info: &TableInfo,
        run: &str,
        files: &RunFiles,
        change: Change,
        batch: Digest128,
        mut props: HashMap<String, String>,
        tuning: &RewriteTuning,
    ) -> Result<Published> {
        props.insert(RUN_ID_PROP.into(), run.into());
        props.insert(TASK_PROP.into(), format!("{}.write_iceberg", info.name));
        let _g = self.commit_lock.lock().await;
        // An incremental run of a keyed table replaces the older versions of its rows.
        let mut keys: Option<rewrite::Keys> = None;
        for attempt in 1..=COMMIT_ATTEMPTS {
            let current = self.current_table(&info.name).await?;
            if let Some(t) = &current {
                if let Some(id) = Self::snapshot_of_run(t, run) {
                    return Ok(Published {
                        snapshot_id: id,
                        found: true,
                    });
                }
                if change == Change::Append && files.is_empty() {
                    return Ok(Published {
                        snapshot_id: t.metadata().current_snapshot_id().unwrap_or_default(),
                        found: false,
                    });
                }
            }
            let state = current.as_ref().map(table_state).transpose()?;
            let mut rewritten = rewrite::Rewritten::default();
            if let (Change::Append, Some(t)) = (change, &current)
                && t.metadata().current_snapshot().is_some()
                && !files.is_empty()
            {
                rewritten = self
                    .rewrite_older_versions(t, info, run, files, &mut keys, tuning)
                    .await?;
            }
            let mut props = props.clone();
            if change == Change::Append {
                let mut total = batch;
                if let Some(before) =
                    state
                        .and_then(|(md, _)| md.current_snapshot())
                        .and_then(|s| {
                            let p = &s.summary().additional_properties;
                            Digest128::from_parts(
                                p.get(ROWS_PROP)?.parse().ok()?,
                                p.get(FINGERPRINT_PROP)?,
                            )
                        })
                {
                    total.add(before);
                }
                total.sub(rewritten.dropped);
                props.insert(ROWS_PROP.into(), total.rows.to_string());
                props.insert(FINGERPRINT_PROP.into(), total.hex());
            }
            let produced = produce::snapshot(
                self.file_io(),
                state,
                info,
                &self.table_location(&info.name),
                produce::Changes {
                    files: files.iter(),
                    files_count: files.len(),
                    more_json: std::mem::take(&mut rewritten.added_json),
                    change,
                    removed: &rewritten.removed,
                    props,
                },
            )
            .await?;
            crate::fault::point(&format!("before_catalog_commit:{}", info.name));
            match self
                .commit_metadata(&info.name, state, &produced.result)
                .await?
            {
                Committed::Yes => {
                    crate::fault::point(&format!("after_commit:{}", info.name));
                    return Ok(Published {
                        snapshot_id: produced.snapshot_id,
                        found: false,
                    });
                }
                Committed::Created => tracing::debug!(
                    table = info.name,
                    "the REST catalog created the table; committing its first snapshot"
                ),
                Committed::Conflict => tracing::info!(
                    table = info.name,
                    attempt,
                    "the lake table changed while committing; building the commit again on its \
                     new state"
                ),
            }
        }
        Err(Error::unavailable(format!(
            "lake table {}: {COMMIT_ATTEMPTS} commits in a row lost a race with other writers \
             of the table; will retry",
            info.name
        )))
    }
}

/// How an incremental run reads and writes the files it rewrites (the run's tuning).
#[derive(Debug, Clone, Copy)]
pub struct RewriteTuning {
    pub batch_rows: usize,
    pub row_group_rows: usize,
    pub open_partitions: usize,
}

/// One data file of a run as its chunk recorded it: its description (what a commit adds) and
/// its path (what is read back).
#[derive(Debug, Clone)]
pub struct RunFile {
    pub json: String,
    pub path: String,
}

/// Reads a run's data files again, in the order their chunks recorded them.
pub type RunFileIter = Box<dyn Iterator<Item = Result<RunFile>> + Send>;

/// A run's data files of a table, read afresh (from the state store) each time a commit is
/// built rather than held: a day-partitioned table's run has tens of thousands, about a
/// kilobyte of description each, and a commit needs only one manifest's worth at a time.
pub struct RunFiles {
    count: usize,
    read: Box<dyn Fn() -> RunFileIter + Send + Sync>,
}

impl RunFiles {
    /// `count` files, read by `read`.
    pub fn new(count: usize, read: impl Fn() -> RunFileIter + Send + Sync + 'static) -> RunFiles {
        RunFiles {
            count,
            read: Box::new(read),
        }
    }

    /// Files held in memory.
    #[cfg(test)]
    pub fn from_vec(files: Vec<RunFile>) -> RunFiles {
        let files = std::sync::Arc::new(files);
        RunFiles::new(files.len(), move || {
            let files = files.clone();
            Box::new((0..files.len()).map(move |i| Ok(files[i].clone())))
        })
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn iter(&self) -> RunFileIter {
        (self.read)()
    }

    /// The files' paths.
    pub fn paths(&self) -> Result<Vec<String>> {
        self.iter().map(|f| f.map(|f| f.path)).collect()
    }
}

/// The metadata and metadata location of a table loaded from the catalog.
pub(super) fn table_state(
    t: &iceberg::table::Table,
) -> Result<(&iceberg::spec::TableMetadata, &str)> {
    let loc = t.metadata_location().ok_or_else(|| {
        Error::internal(format!(
            "lake table {} was loaded without its metadata location",
            t.identifier()
        ))
    })?;
    Ok((t.metadata(), loc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_files_are_read_afresh_for_each_commit_attempt() {
        let reads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = reads.clone();
        let files = RunFiles::new(3, move || -> RunFileIter {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::new((0..3).map(|i| {
                Ok(RunFile {
                    json: format!("{{\"n\":{i}}}"),
                    path: format!("/w/f{i}.parquet"),
                })
            }))
        });
        assert_eq!((files.len(), files.is_empty()), (3, false));
        let first: Vec<String> = files.iter().map(|f| f.unwrap().json).collect();
        let second: Vec<String> = files.iter().map(|f| f.unwrap().json).collect();
        assert_eq!(first, second);
        assert_eq!(
            files.paths().unwrap(),
            ["/w/f0.parquet", "/w/f1.parquet", "/w/f2.parquet"]
        );
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 3);
        // A record that cannot be read fails the reading of the paths.
        let broken = RunFiles::new(1, || -> RunFileIter {
            Box::new(std::iter::once(Err(Error::state(
                "chunk record unreadable",
            ))))
        });
        assert!(broken.paths().is_err());
        assert!(RunFiles::from_vec(Vec::new()).is_empty());
    }
}
