//! The durable state store: runs, tasks and chunk checkpoints in sled.
//!
//! Exact resume depends on one rule: a task's outputs are flushed to disk before any successor
//! starts. Every `put_*` here therefore ends with a synchronous `flush`, and readers rebuild all
//! decisions (what to skip, what to redo) from these records alone. Each workflow has its own sled
//! database under `<state>/db/<workflow>` so that different workflows can run at once, and a
//! per-workflow lock file ([`lock::WorkflowLock`]) keeps a second process of the same workflow
//! out. Because sled admits one process per database, every write also refreshes a small JSON
//! mirror that `dag status` reads while a run holds the database.

pub mod lock;
mod records;

pub use records::*;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::Stage;

/// sled's page cache. Its default (1 GiB) would let a long run's records grow the process by
/// that much; the store reads each record a few times per run, so a small cache costs nothing.
const CACHE_BYTES: u64 = 8 << 20;

pub struct Store {
    db: sled::Db,
    runs: sled::Tree,
    tasks: sled::Tree,
    chunks: sled::Tree,
    watermarks: sled::Tree,
    mirror: Option<PathBuf>,
    /// When the mirror was last written: task writes refresh it at most a few times a second,
    /// so a schema of thousands of tables does not rewrite it on every transition.
    mirrored_at: std::sync::Mutex<Option<std::time::Instant>>,
    pub workflow: String,
}

fn task_key(run: &str, table: &str, stage: Stage) -> Vec<u8> {
    format!("{run}/{table}/{}", stage.name()).into_bytes()
}

fn chunk_key(run: &str, table: &str, index: u32) -> Vec<u8> {
    format!("{run}/{table}/{index:08}").into_bytes()
}

/// The first bytes of a zstd frame; a JSON record starts with `{`.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// A chunk record as stored: JSON compressed with zstd. A chunk of a partitioned table lists
/// thousands of data files, each described in about 1.5 KB of JSON (paths, partition and
/// per-column statistics) that compresses about tenfold; sled holds what it writes in memory
/// until its cache evicts it, so the compressed record is also what the process holds.
fn encode_chunk(c: &ChunkRecord) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(c)?;
    zstd::bulk::compress(&json, 3)
        .map_err(|e| Error::internal(format!("cannot compress a chunk record: {e}")))
}

/// Reads a chunk record, compressed or (as written by earlier versions) plain JSON.
fn decode_chunk(v: &[u8]) -> std::result::Result<ChunkRecord, String> {
    if v.starts_with(&ZSTD_MAGIC) {
        let json = zstd::stream::decode_all(v).map_err(|e| e.to_string())?;
        serde_json::from_slice(&json).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice(v).map_err(|e| e.to_string())
    }
}

impl Store {
    pub fn db_dir(state_dir: &Path, workflow: &str) -> PathBuf {
        state_dir.join("db").join(workflow)
    }

    pub fn mirror_path(state_dir: &Path, workflow: &str) -> PathBuf {
        state_dir.join("db").join(format!("{workflow}.status.json"))
    }

    /// Opens (creating) the workflow's database. Fails with a clear message if another process
    /// holds it.
    pub fn open(state_dir: &Path, workflow: &str) -> Result<Store> {
        let dir = Self::db_dir(state_dir, workflow);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::state(format!("cannot create {}: {e}", dir.display())))?;
        // Every write flushes explicitly, so sled's background flusher is off; without that
        // thread a dropped database also releases its file lock at once. A database dropped by
        // this process a moment ago may still be closing: retry briefly before giving up.
        let config = sled::Config::new()
            .path(&dir)
            .flush_every_ms(None)
            .cache_capacity(CACHE_BYTES);
        let mut waited = 0;
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                // sled reports a held lock as ErrorKind::Other with this text.
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock") && waited < 2000 =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    waited += 20;
                }
                Err(e) => {
                    return Err(Error::state(format!(
                        "cannot open the state of workflow `{workflow}` at {}: {e} (is a run of it in progress?)",
                        dir.display()
                    )));
                }
            }
        };
        Self::from_db(db, workflow, Some(Self::mirror_path(state_dir, workflow)))
    }

    /// A store that lives in memory only (tests).
    pub fn temporary(workflow: &str) -> Result<Store> {
        let db = sled::Config::new()
            .temporary(true)
            .cache_capacity(CACHE_BYTES)
            .open()?;
        Self::from_db(db, workflow, None)
    }

    fn from_db(db: sled::Db, workflow: &str, mirror: Option<PathBuf>) -> Result<Store> {
        Ok(Store {
            runs: db.open_tree("runs")?,
            tasks: db.open_tree("tasks")?,
            chunks: db.open_tree("chunks")?,
            watermarks: db.open_tree("watermarks")?,
            db,
            mirror,
            mirrored_at: std::sync::Mutex::new(None),
            workflow: workflow.to_string(),
        })
    }

    fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    /// Run ids sort by start time and stay unique even if the state directory is wiped while the
    /// lake keeps older runs (the id appears in Iceberg snapshot summaries and target ledgers).
    pub fn new_run_id() -> String {
        format!(
            "{}_{:04x}",
            chrono::Utc::now().format("%Y%m%d%H%M%S%3f"),
            fastrand::u16(..)
        )
    }

    pub fn put_run(&self, run: &RunRecord) -> Result<()> {
        self.runs
            .insert(run.id.as_bytes(), serde_json::to_vec(run)?)?;
        self.flush()?;
        self.write_mirror(&run.id, true);
        Ok(())
    }

    pub fn run(&self, id: &str) -> Result<Option<RunRecord>> {
        match self.runs.get(id.as_bytes())? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    /// All runs, oldest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>> {
        self.runs
            .iter()
            .values()
            .map(|v| Ok(serde_json::from_slice(&v?)?))
            .collect()
    }

    pub fn latest_run(&self) -> Result<Option<RunRecord>> {
        match self.runs.last()? {
            Some((_, v)) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    pub fn put_task(&self, t: &TaskRecord) -> Result<()> {
        self.tasks.insert(
            task_key(&t.run_id, &t.table, t.stage),
            serde_json::to_vec(t)?,
        )?;
        self.flush()?;
        self.write_mirror(&t.run_id, false);
        Ok(())
    }

    pub fn task(&self, run: &str, table: &str, stage: Stage) -> Result<Option<TaskRecord>> {
        match self.tasks.get(task_key(run, table, stage))? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    /// Every task of a run, in table then stage order.
    pub fn tasks(&self, run: &str) -> Result<Vec<TaskRecord>> {
        let mut out: Vec<TaskRecord> = self
            .tasks
            .scan_prefix(format!("{run}/").as_bytes())
            .values()
            .map(|v| Ok::<_, Error>(serde_json::from_slice(&v?)?))
            .collect::<Result<_>>()?;
        out.sort_by(|a, b| (&a.table, a.stage).cmp(&(&b.table, b.stage)));
        Ok(out)
    }

    pub fn put_chunk(&self, run: &str, table: &str, c: &ChunkRecord) -> Result<()> {
        self.chunks
            .insert(chunk_key(run, table, c.index), encode_chunk(c)?)?;
        self.flush()
    }

    /// Finished chunks of a table in a run, by index, all at once (tests; the tasks read them
    /// with [`Store::chunk_iter`]).
    #[cfg(test)]
    pub fn chunks(&self, run: &str, table: &str) -> Result<Vec<ChunkRecord>> {
        self.chunk_iter(run, table).collect()
    }

    /// The chunk records of `table` in run `run`, read one at a time (a day-partitioned
    /// table's records describe thousands of files).
    pub fn chunk_iter(
        &self,
        run: &str,
        table: &str,
    ) -> impl Iterator<Item = Result<ChunkRecord>> + Send + 'static {
        self.chunks
            .scan_prefix(format!("{run}/{table}/").as_bytes())
            .map(|kv| {
                let (k, v) = kv?;
                decode_chunk(&v).map_err(|e| {
                    Error::state(format!(
                        "chunk record {} in the state store cannot be read: {e}",
                        String::from_utf8_lossy(&k)
                    ))
                })
            })
    }

    /// The watermark of an incremental table (its name as the run recorded it).
    pub fn watermark(&self, table: &str) -> Result<Option<Watermark>> {
        match self.watermarks.get(table.as_bytes())? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    /// Every watermark, by table.
    pub fn watermarks(&self) -> Result<Vec<Watermark>> {
        self.watermarks
            .iter()
            .values()
            .map(|v| Ok(serde_json::from_slice(&v?)?))
            .collect()
    }

    pub fn put_watermark(&self, w: &Watermark) -> Result<()> {
        self.watermarks
            .insert(w.table.as_bytes(), serde_json::to_vec(w)?)?;
        self.flush()?;
        self.write_mirror(&w.run_id, true);
        Ok(())
    }

    /// Deletes a finished run with its tasks and chunk checkpoints (history retention).
    pub fn delete_run(&self, run: &str) -> Result<()> {
        let prefix = format!("{run}/");
        for tree in [&self.tasks, &self.chunks] {
            let keys: Vec<sled::IVec> = tree
                .scan_prefix(prefix.as_bytes())
                .keys()
                .collect::<std::result::Result<_, _>>()?;
            for k in keys {
                tree.remove(k)?;
            }
        }
        self.runs.remove(run.as_bytes())?;
        self.flush()
    }

    /// Tasks a dead process left `running` go back to `pending`, keeping their attempts and
    /// checkpoints, so the next process picks them up where they stopped.
    pub fn recover(&self, run: &str) -> Result<usize> {
        let mut n = 0;
        for mut t in self.tasks(run)? {
            if t.status == TaskStatus::Running {
                t.status = TaskStatus::Pending;
                t.last_error = Some("interrupted: the process running it died".into());
                t.ended_at = Some(now());
                self.put_task(&t)?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn write_mirror(&self, run_id: &str, force: bool) {
        let Some(path) = &self.mirror else { return };
        {
            let mut at = self.mirrored_at.lock().unwrap_or_else(|p| p.into_inner());
            let now = std::time::Instant::now();
            if !force
                && at.is_some_and(|t| now.duration_since(t) < std::time::Duration::from_millis(250))
            {
                return;
            }
            *at = Some(now);
        }
        let (Ok(Some(run)), Ok(tasks)) = (self.run(run_id), self.tasks(run_id)) else {
            return;
        };
        let m = Mirror {
            run,
            tasks,
            pid: std::process::id(),
            watermarks: self.watermarks().unwrap_or_default(),
        };
        let tmp = path.with_extension("json.tmp");
        if let Ok(bytes) = serde_json::to_vec(&m)
            && std::fs::write(&tmp, bytes).is_ok()
        {
            let _ = std::fs::rename(&tmp, path);
        }
    }

    pub fn read_mirror(state_dir: &Path, workflow: &str) -> Option<Mirror> {
        let bytes = std::fs::read(Self::mirror_path(state_dir, workflow)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use crate::model::fingerprint::Digest128;

    fn chunk(index: u32, files: usize) -> ChunkRecord {
        ChunkRecord {
            index,
            digest: Digest128 { rows: 7, sum: 11 },
            files: (0..files)
                .map(|i| {
                    format!(r#"{{"file_path":"s3://w/t/data/{i:05}.parquet","record_count":115}}"#)
                })
                .collect(),
            paths: (0..files)
                .map(|i| format!("s3://w/t/data/{i:05}.parquet"))
                .collect(),
            attempt: 1,
            bytes: 10,
            lossy: BTreeMap::new(),
        }
    }

    #[test]
    fn chunk_records_are_stored_compressed_and_plain_ones_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), "w").unwrap();
        let big = chunk(0, 2000);
        s.put_chunk("r", "T", &big).unwrap();
        let stored = s.chunks.get(chunk_key("r", "T", 0)).unwrap().unwrap();
        let json = serde_json::to_vec(&big).unwrap();
        assert!(stored.starts_with(&ZSTD_MAGIC));
        assert!(
            stored.len() * 5 < json.len(),
            "{} of {}",
            stored.len(),
            json.len()
        );
        // A record written as plain JSON (by an earlier version) is read as it was.
        let old = chunk(1, 3);
        s.chunks
            .insert(chunk_key("r", "T", 1), serde_json::to_vec(&old).unwrap())
            .unwrap();
        let got = s.chunks("r", "T").unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].files, big.files);
        assert_eq!(got[0].paths, big.paths);
        assert_eq!(got[1].files, old.files);
        // A damaged record is an error naming it, not a panic.
        let mut bad = stored.to_vec();
        bad.truncate(bad.len() / 2);
        s.chunks.insert(chunk_key("r", "T", 2), bad).unwrap();
        let e = s.chunks("r", "T").unwrap_err().to_string();
        assert!(e.contains("r/T/00000002"), "{e}");
    }

    #[test]
    fn records_survive_reopen_and_running_tasks_are_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunRecord {
            id: Store::new_run_id(),
            workflow: "w".into(),
            started_at: now(),
            ended_at: None,
            status: RunStatus::Running,
            config_hash: "h".into(),
            lake_only: false,
            memory_budget: 1 << 30,
            tables: vec!["T".into()],
            sessions: 1,
            peak_rss: None,
            peak_rss_code: None,
            peak_reserved: None,
            from_lake: false,
        };
        {
            let s = Store::open(dir.path(), "w").unwrap();
            s.put_run(&run).unwrap();
            let mut t = TaskRecord::new(&run.id, "T", Stage::Extract);
            t.status = TaskStatus::Running;
            t.attempts = 1;
            s.put_task(&t).unwrap();
            s.put_chunk(
                &run.id,
                "T",
                &ChunkRecord {
                    index: 3,
                    digest: Digest128 { rows: 5, sum: 9 },
                    files: vec![],
                    paths: vec![],
                    attempt: 1,
                    bytes: 10,
                    lossy: BTreeMap::from([("C".to_string(), 2)]),
                },
            )
            .unwrap();
        }
        let s = Store::open(dir.path(), "w").unwrap();
        assert_eq!(s.latest_run().unwrap().unwrap().id, run.id);
        assert_eq!(s.recover(&run.id).unwrap(), 1);
        let t = s.task(&run.id, "T", Stage::Extract).unwrap().unwrap();
        assert_eq!(t.status, TaskStatus::Pending);
        assert_eq!(t.attempts, 1);
        let c = s.chunks(&run.id, "T").unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].digest.rows, 5);
        let m = Store::read_mirror(dir.path(), "w").unwrap();
        assert_eq!(m.tasks.len(), 1);
    }
}
