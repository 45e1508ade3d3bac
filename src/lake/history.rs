//! A lake table's history and its clean-up: snapshots older than `[lake] retention` expire
//! (the current one and the one before it always stay, so a reader that opened the previous
//! version keeps working), and files that no remaining snapshot or metadata version references
//! are deleted once they are older than the retention too: the files of expired snapshots, and
//! the orphans of attempts that died (data files of a chunk never recorded, manifests and
//! metadata of a commit that lost its race or was killed before the catalog pointed at it).

use std::collections::{HashMap, HashSet};

use super::Lake;
use super::catalog::Committed;
use super::commit::table_state;
use crate::error::Result;

/// What one retention pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    pub snapshots: usize,
    pub files: usize,
    /// Snapshots in the table's history after the pass.
    pub left: usize,
}

impl Expired {
    pub fn is_empty(&self) -> bool {
        self.snapshots == 0 && self.files == 0
    }

    pub fn describe(&self) -> String {
        format!(
            "expired {} snapshot(s), deleted {} unreferenced file(s)",
            self.snapshots, self.files
        )
    }
}

impl Lake {
    /// Deletes files under the run's data directory of `table` that no finished chunk recorded:
    /// leftovers of attempts that died before recording their chunk. Returns how many.
    pub async fn remove_unrecorded_files(
        &self,
        table: &str,
        run: &str,
        keep: &HashSet<String>,
    ) -> Result<usize> {
        // A partitioned table's files sit one directory deeper, in `data/<col>_day=<day>/`.
        let mut n = 0;
        for file in self
            .storage
            .list_files_below(&self.run_data_dir(table, run))
            .await?
        {
            if file.ends_with(".parquet") && !keep.contains(&file) {
                self.storage.delete_file(&file).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Applies `[lake] retention` to `table` after run `run` committed to it: expires the
    /// snapshots older than the retention except the current one and its parent, then deletes
    /// the files under the table's directory that nothing left references and that are older
    /// than the retention (the run's own directory is never touched). A commit by another writer
    /// in between leaves the history as it is until the next run. Says how many snapshots the
    /// history holds after.
    pub async fn expire(&self, table: &str, run: &str) -> Result<Expired> {
        let _g = self.commit_lock.lock().await;
        let mut out = Expired::default();
        let Some(mut t) = self.current_table(table).await? else {
            return Ok(out);
        };
        let now_ms = chrono::Utc::now().timestamp_millis();
        let cutoff_ms = now_ms - (self.retention_secs as i64).saturating_mul(1000);
        {
            let (md, loc) = table_state(&t)?;
            let current = md.current_snapshot();
            let keep = [
                current.map(|s| s.snapshot_id()),
                current.and_then(|s| s.parent_snapshot_id()),
            ];
            let old: Vec<i64> = md
                .snapshots()
                .filter(|s| !keep.contains(&Some(s.snapshot_id())))
                .filter(|s| s.timestamp_ms() <= cutoff_ms)
                .map(|s| s.snapshot_id())
                .collect();
            if !old.is_empty() {
                let new = md
                    .clone()
                    .into_builder(Some(loc.to_string()))
                    .remove_snapshots(&old)
                    .build()?;
                if self.commit_metadata(table, Some((md, loc)), &new).await? != Committed::Yes {
                    out.left = md.snapshots().len();
                    return Ok(out);
                }
                out.snapshots = old.len();
                match self.current_table(table).await? {
                    Some(now) => t = now,
                    None => return Ok(out),
                }
            }
        }
        out.left = t.metadata().snapshots().len();
        let dir = self.table_dir(table);
        let run_dir = self.storage.location(&format!("{dir}/{run}"));
        let root = self.storage.location(&dir);
        // Files old enough to go, outside this run's directory: usually few (a retention's worth
        // of runs is younger), so only they are looked up in the metadata, which keeps the
        // memory of this pass small however many files the table's history holds.
        let listed = self.storage.list_files_below_with_time(&dir).await?;
        let mut old_files: HashSet<String> = HashSet::new();
        let mut young_dirs: HashSet<String> = HashSet::new();
        // The directory directly under the table's that holds `file` (none for a file of the
        // table's directory itself).
        let top_of = |file: &str| {
            let rel = file.strip_prefix(&root)?.trim_start_matches('/');
            rel.split_once('/').map(|(top, _)| top.to_string())
        };
        for (file, modified_ms) in listed {
            let old_enough = modified_ms.is_none_or(|m| m <= cutoff_ms);
            if old_enough && !file.starts_with(&format!("{run_dir}/")) {
                old_files.insert(file);
            } else if let Some(top) = top_of(&file) {
                young_dirs.insert(top);
            }
        }
        if old_files.is_empty() {
            return Ok(out);
        }
        let referenced = self.referenced_among(&t, &old_files).await?;
        // Unreferenced files by the directory directly under the table's: a directory whose
        // files all go (an expired run's) is removed whole, partition directories included.
        let mut by_dir: HashMap<Option<String>, (Vec<String>, bool)> = HashMap::new();
        for file in old_files {
            let entry = by_dir.entry(top_of(&file)).or_default();
            if referenced.contains(&file) {
                entry.1 = true;
            } else {
                entry.0.push(file);
            }
        }
        for (top, (files, kept_some)) in by_dir {
            out.files += files.len();
            match top {
                Some(top) if !kept_some && !young_dirs.contains(&top) => {
                    self.storage.delete_dir(&format!("{dir}/{top}")).await?;
                }
                _ => {
                    for f in &files {
                        self.storage.delete_file(f).await?;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Those of `files` that the table's metadata reaches: the current metadata file and those
    /// in its log, statistics files, and for each snapshot its manifest list, manifests and
    /// live data files.
    async fn referenced_among(
        &self,
        t: &iceberg::table::Table,
        files: &HashSet<String>,
    ) -> Result<HashSet<String>> {
        let (md, loc) = table_state(t)?;
        let io = self.file_io();
        let mut keep: HashSet<String> = HashSet::new();
        let mut note = |path: &str| {
            if files.contains(path) {
                keep.insert(path.to_string());
            }
        };
        note(loc);
        md.metadata_log()
            .iter()
            .for_each(|l| note(&l.metadata_file));
        md.statistics_iter().for_each(|s| note(&s.statistics_path));
        md.partition_statistics_iter()
            .for_each(|s| note(&s.statistics_path));
        let mut manifests_seen: HashSet<String> = HashSet::new();
        for s in md.snapshots() {
            note(s.manifest_list());
            for m in super::snapshot::manifests(io, md, s).await? {
                if !manifests_seen.insert(m.manifest_path.clone()) {
                    continue;
                }
                note(&m.manifest_path);
                let manifest = m.load_manifest(io).await?;
                for e in manifest.entries().iter().filter(|e| e.is_alive()) {
                    note(e.file_path());
                }
            }
        }
        Ok(keep)
    }
}
