//! One new snapshot of a lake table, written with iceberg's public writers: the manifests of the
//! run's data files, the manifests that mark the replaced files deleted (a full refresh) or the
//! current manifests carried over (an incremental append), the manifest list, and the table
//! metadata that adds the snapshot and points `main` at it.
//!
//! iceberg 0.10.1 has no overwrite action and its commit builder is crate-private, so a full
//! refresh that keeps the table's identity has to be produced here; catalogs then only swap the
//! metadata pointer (SQL) or apply the metadata's changes (REST), both guarded by what the
//! snapshot was built on. Nothing here touches the catalog: a snapshot produced and never
//! committed leaves only unreferenced files, which retention removes.
//!
//! Manifests are written in slices of [`MANIFEST_FILES`] data files and each file description is
//! parsed only when its slice is written, so the memory of a commit does not grow with the
//! thousands of files a day-partitioned table can have; the replaced files are read one manifest
//! at a time.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use iceberg::io::FileIO;
use iceberg::spec::{
    MAIN_BRANCH, ManifestFile, ManifestListWriter, ManifestWriterBuilder, Operation, Snapshot,
    SnapshotReference, SnapshotRetention, SnapshotSummaryCollector, Summary, TableMetadata,
    TableMetadataBuildResult,
};

use super::metadata;
use crate::error::{Error, Result};
use crate::model::TableInfo;

/// Data files described by one manifest the commit writes. Manifest entries are held in memory
/// until their manifest is written (about 1.5 KB each with column statistics).
pub const MANIFEST_FILES: usize = 2000;

/// What the new snapshot does to the table's current files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A full refresh: every current data file is removed, the run's files are the table.
    Replace,
    /// An incremental run: the run's files are added to the current ones.
    Append,
}

/// What a snapshot changes: the data files it adds (descriptions as the chunk writers record
/// them), whether it replaces the table's files or adds to them, the current files it removes
/// besides (an incremental run's rewritten files), and its summary properties.
pub struct Changes<'a> {
    /// The run's files, read as they are written into manifests.
    pub files: super::commit::RunFileIter,
    pub files_count: usize,
    /// Files added besides (an incremental run's rewrites).
    pub more_json: Vec<String>,
    pub change: Change,
    pub removed: &'a HashSet<String>,
    pub props: HashMap<String, String>,
}

/// The new snapshot's id and the metadata that makes it current.
pub struct Produced {
    pub snapshot_id: i64,
    pub result: TableMetadataBuildResult,
}

/// A snapshot id not used by the table: random and non-negative, as Iceberg writers make them.
fn new_snapshot_id(md: &TableMetadata) -> i64 {
    loop {
        let (a, b) = uuid::Uuid::new_v4().as_u64_pair();
        let id = ((a ^ b) >> 1) as i64;
        if md.snapshot_by_id(id).is_none() {
            return id;
        }
    }
}

/// The data sequence number of a manifest entry read back (inherited when it was written).
fn entry_sequence(e: &iceberg::spec::ManifestEntry, table: &str, manifest: &str) -> Result<i64> {
    e.sequence_number.ok_or_else(|| {
        Error::state(format!(
            "lake table {table}: manifest {manifest} has an entry without a sequence number"
        ))
    })
}

/// A format-version-2 data manifest of snapshot `snapshot_id` at `path`.
fn manifest_writer(
    io: &FileIO,
    path: String,
    snapshot_id: i64,
    schema: &iceberg::spec::SchemaRef,
    spec: &iceberg::spec::PartitionSpecRef,
) -> Result<iceberg::spec::ManifestWriter> {
    Ok(ManifestWriterBuilder::new(
        io.new_output(path)?,
        Some(snapshot_id),
        schema.clone(),
        spec.as_ref().clone(),
    )
    .build_v2_data())
}

/// Writes the files of a snapshot of `info`'s table that adds the data files `files`
/// (descriptions recorded by the chunk writers, which wrote through [`metadata::for_writers`]
/// of the same `current`) with `change`, and returns the table metadata that adds it. An append
/// also removes the current files in `removed` (those an incremental run rewrote without the
/// rows it replaces; their rewrites are `more_json`).
/// `current` is the table's metadata and its location (none: the table is created by this
/// commit, at `location`).
pub async fn snapshot(
    io: &FileIO,
    current: Option<(&TableMetadata, &str)>,
    info: &TableInfo,
    location: &str,
    what: Changes<'_>,
) -> Result<Produced> {
    let Changes {
        files,
        files_count,
        more_json,
        change,
        removed,
        props,
    } = what;
    // The table as the run's writers saw it: its schema and spec read the file descriptions.
    let base = metadata::for_run(current, info, location)?
        .build()?
        .metadata;
    let schema = base.current_schema().clone();
    let spec = base.default_partition_spec().clone();
    let partition_type = base.default_partition_type().clone();
    let snapshot_id = new_snapshot_id(&base);
    let parent = base.current_snapshot_id();
    let seq = base.next_sequence_number();
    let commit = uuid::Uuid::new_v4();
    let meta_dir = format!("{}/metadata", base.location().trim_end_matches('/'));
    let mut manifests: Vec<ManifestFile> = Vec::new();
    let mut summary = SnapshotSummaryCollector::default();
    let mut counter = 0usize;
    let mut next_path = || {
        counter += 1;
        format!("{meta_dir}/{commit}-m{}.avro", counter - 1)
    };

    let added_files = files_count + more_json.len();
    let mut files = files
        .map(|f| f.map(|f| f.json))
        .chain(more_json.into_iter().map(Ok));
    loop {
        let slice: Vec<String> = files.by_ref().take(MANIFEST_FILES).collect::<Result<_>>()?;
        if slice.is_empty() {
            break;
        }
        let mut w = manifest_writer(io, next_path(), snapshot_id, &schema, &spec)?;
        for json in slice {
            let df = iceberg::spec::deserialize_data_file_from_json(
                &json,
                spec.spec_id(),
                &partition_type,
                &schema,
            )?;
            summary.add_file(&df, schema.clone(), spec.clone());
            w.add_file(df, seq)?;
        }
        manifests.push(w.write_manifest_file().await?);
    }

    let mut removed_files = 0usize;
    if let Some(current) = base.current_snapshot() {
        for m in super::snapshot::data_manifests(io, &base, current, &info.name).await? {
            // A full refresh removes every current file; an append the ones it rewrote.
            let gone = |path: &str| change == Change::Replace || removed.contains(path);
            if change == Change::Append && removed.is_empty() {
                manifests.push(m);
                continue;
            }
            let (entries, md) = m.load_manifest(io).await?.into_parts();
            if !entries.iter().any(|e| e.is_alive() && gone(e.file_path())) {
                manifests.push(m);
                continue;
            }
            // Written again: removed files as deleted entries, the others as existing.
            let m_schema = md.schema().clone();
            let m_spec = Arc::new(md.partition_spec().clone());
            let mut w = manifest_writer(io, next_path(), snapshot_id, &m_schema, &m_spec)?;
            for e in entries.iter().filter(|e| e.is_alive()) {
                let seq = entry_sequence(e, &info.name, &m.manifest_path)?;
                if gone(e.file_path()) {
                    summary.remove_file(&e.data_file, m_schema.clone(), m_spec.clone());
                    w.add_delete_file(e.data_file.clone(), seq, e.file_sequence_number)?;
                    removed_files += 1;
                } else {
                    let added_by = e.snapshot_id.or(parent).unwrap_or(snapshot_id);
                    w.add_existing_file(
                        e.data_file.clone(),
                        added_by,
                        seq,
                        e.file_sequence_number,
                    )?;
                }
            }
            drop(entries);
            manifests.push(w.write_manifest_file().await?);
        }
    }

    let list_path = format!("{meta_dir}/snap-{snapshot_id}-0-{commit}.avro");
    let mut list = ManifestListWriter::v2(
        io.new_output(&list_path)?.writer().await?,
        snapshot_id,
        parent,
        seq,
    );
    list.add_manifests(manifests.into_iter())?;
    list.close().await?;

    let operation = if removed_files > 0 {
        Operation::Overwrite
    } else {
        Operation::Append
    };
    let mut additional = props;
    let computed = summary.build();
    let previous = base
        .current_snapshot()
        .map(|s| &s.summary().additional_properties);
    let count = |k: &str| computed.get(k).and_then(|v| v.parse::<u64>().ok());
    let before = |k: &str| {
        previous
            .and_then(|p| p.get(k))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // (total, added, removed): the totals of the table after the snapshot.
    let totals = [
        ("total-records", "added-records", "deleted-records"),
        ("total-data-files", "added-data-files", "deleted-data-files"),
        ("total-files-size", "added-files-size", "removed-files-size"),
        (
            "total-delete-files",
            "added-delete-files",
            "removed-delete-files",
        ),
        (
            "total-position-deletes",
            "added-position-deletes",
            "removed-position-deletes",
        ),
        (
            "total-equality-deletes",
            "added-equality-deletes",
            "removed-equality-deletes",
        ),
    ];
    additional.extend(computed.clone());
    for (total, added, gone) in totals {
        let kept = match change {
            Change::Replace => 0,
            Change::Append => before(total).saturating_sub(count(gone).unwrap_or(0)),
        };
        additional.insert(
            total.to_string(),
            (kept + count(added).unwrap_or(0)).to_string(),
        );
    }
    debug_assert_eq!(count("added-data-files").unwrap_or(0) as usize, added_files);

    let snap = Snapshot::builder()
        .with_manifest_list(list_path)
        .with_snapshot_id(snapshot_id)
        .with_parent_snapshot_id(parent)
        .with_sequence_number(seq)
        .with_summary(Summary {
            operation,
            additional_properties: additional,
        })
        .with_schema_id(base.current_schema_id())
        .with_timestamp_ms(chrono::Utc::now().timestamp_millis())
        .build();
    let result = metadata::for_run(current, info, location)?
        .add_snapshot(snap)?
        .set_ref(
            MAIN_BRANCH,
            SnapshotReference::new(snapshot_id, SnapshotRetention::branch(None, None, None)),
        )?
        .build()?;
    Ok(Produced {
        snapshot_id,
        result,
    })
}
