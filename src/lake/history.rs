//! Clean-up of the lake's files: leftovers of attempts that died before recording their chunk,
//! and the directories of earlier runs once they are past `[lake] retention`.

use std::collections::HashSet;

use super::Lake;
use crate::error::Result;

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
        let dir = format!("{}/{run}/data", self.table_dir(table));
        let mut n = 0;
        for file in self.storage.list_files_below(&dir).await? {
            if file.ends_with(".parquet") && !keep.contains(&file) {
                self.storage.delete_file(&file).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Deletes the files of earlier runs of `table` that started more than `retention` ago,
    /// except the version published before this one (readers that opened it keep working). Runs
    /// that never published are removed too.
    pub async fn prune_old_runs(&self, table: &str, run: &str) -> Result<usize> {
        let Some((current, previous)) = self.locations(&self.db, &self.namespace, table).await?
        else {
            return Ok(0);
        };
        let dir = self.table_dir(table);
        // <table dir>/<run>/metadata/<file>.metadata.json: the run whose directory holds a
        // version's metadata is the full run it grew from; incremental runs after it appended
        // files from their own (later) directories, so everything from the oldest of the two
        // versions' runs on is kept.
        let base = |loc: &str| {
            let mut parts = loc.rsplit('/');
            parts.nth(2).map(str::to_string)
        };
        let floor = [base(&current), previous.as_deref().and_then(base)]
            .into_iter()
            .flatten()
            .chain(std::iter::once(run.to_string()))
            .min()
            .unwrap_or_else(|| run.to_string());
        let runs: Vec<String> = self
            .storage
            .list_dirs(&dir)
            .await?
            .into_iter()
            .filter(|n| n.as_str() < floor.as_str())
            .filter(|n| self.past_retention(n))
            .collect();
        for r in &runs {
            self.storage.delete_dir(&format!("{dir}/{r}")).await?;
        }
        Ok(runs.len())
    }

    /// Did run `run` (its id starts with its start time, `%Y%m%d%H%M%S`) start more than
    /// `retention` ago? A name that is not a run id counts as old.
    fn past_retention(&self, run: &str) -> bool {
        if self.retention_secs == 0 {
            return true;
        }
        let Some(started) = run
            .get(..14)
            .and_then(|t| chrono::NaiveDateTime::parse_from_str(t, "%Y%m%d%H%M%S").ok())
        else {
            return true;
        };
        let age = chrono::Utc::now().naive_utc() - started;
        age.num_seconds() > self.retention_secs as i64
    }
}
