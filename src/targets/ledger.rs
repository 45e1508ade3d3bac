//! The unit ledger: how SQLite and MySQL load exactly once, written once for both.
//!
//! A unit is one data file of the load (numbered by its place in the sorted list). The target
//! keeps a ledger of the units it holds in its own database and commits each unit's rows with
//! its ledger row in one transaction, so a unit is either loaded and recorded or neither: a
//! resumed load asks the ledger what is in and loads the rest. A full refresh loads into the
//! run's staging table and publishes it at the end (the swap), so readers see the old table or
//! the new one; an incremental run that appends upserts its units straight into the live table.
//! Each target says how it does each step ([`UnitLedger`]); [`load`] is the order of the steps
//! and where the crash tests kill the process between them.

use std::collections::HashSet;
use std::future::Future;

use super::{LoadJob, LoadSummary};
use crate::error::Result;
use crate::model::TableInfo;
use crate::model::fingerprint::Digest128;

/// Where a unit's rows go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dest {
    /// The run's staging table (a full refresh).
    Stage,
    /// The live table, by upsert by the primary key; plain inserts for a keyless table (an
    /// incremental run that appends).
    Live,
}

/// The steps of a target with a unit ledger in its own database. Each is safe to repeat after a
/// crash anywhere before it; [`load`] runs them in order.
pub(crate) trait UnitLedger: Sync {
    /// Reaches the target and readies the ledger's home before a load.
    fn check(&self) -> impl Future<Output = Result<()>> + Send;

    /// Whether this run's full load of the table was published already.
    fn is_published(
        &self,
        info: &TableInfo,
        run: &str,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Finishes a publish found done: whatever a crash cut short after the swap.
    fn finish_publish(
        &self,
        info: &TableInfo,
        run: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Creates the run's staging table if missing; returns the units already in it.
    fn prepare(
        &self,
        info: &TableInfo,
        run: &str,
    ) -> impl Future<Output = Result<HashSet<u32>>> + Send;

    /// Loads one unit into `dest` with its ledger row, in one transaction; returns the digest of
    /// its rows. A unit already in the ledger is not applied again.
    fn load_unit(
        &self,
        dest: Dest,
        job: &LoadJob<'_>,
        unit: u32,
        file: &str,
    ) -> impl Future<Output = Result<Digest128>> + Send;

    /// Swaps the staging table in as the table. Idempotent.
    fn publish(&self, info: &TableInfo, run: &str) -> impl Future<Output = Result<()>> + Send;

    /// For an incremental run that appends: readies the live table (created if missing, with
    /// the key to upsert by); returns the units of the run already in it.
    fn prepare_append(
        &self,
        info: &TableInfo,
        run: &str,
    ) -> impl Future<Output = Result<HashSet<u32>>> + Send;

    /// Ends an incremental run's load (what earlier runs left of the table goes). Idempotent.
    fn finish_append(&self, info: &TableInfo, run: &str)
    -> impl Future<Output = Result<()>> + Send;
}

/// Loads `job.files` through `t`'s ledger: a full refresh into the run's staging table, then
/// published; or (`append`) an incremental run's upserts into the live table. Returns the units
/// loaded now and those an earlier attempt loaded.
pub(crate) async fn load<T: UnitLedger>(
    t: &T,
    job: &LoadJob<'_>,
    append: bool,
) -> Result<LoadSummary> {
    let (info, run) = (job.info, job.run);
    let units = job.files.len() as u32;
    t.check().await?;
    if append {
        let done = t.prepare_append(info, run).await?;
        let loaded = load_units(t, job, Dest::Live, &done).await?;
        crate::fault::point(&format!("after_upsert:{}", info.name));
        t.finish_append(info, run).await?;
        return Ok(LoadSummary {
            loaded,
            found: units - loaded,
        });
    }
    if t.is_published(info, run).await? {
        // Idempotent: finishes a cleanup a crash cut short after the swap.
        t.finish_publish(info, run).await?;
        return Ok(LoadSummary {
            loaded: 0,
            found: units,
        });
    }
    let done = t.prepare(info, run).await?;
    let loaded = load_units(t, job, Dest::Stage, &done).await?;
    crate::fault::point(&format!("before_publish:{}", info.name));
    t.publish(info, run).await?;
    Ok(LoadSummary {
        loaded,
        found: units - loaded,
    })
}

/// Loads into `dest`, in order, each data file (a unit, numbered by its place in `job.files`)
/// that `done` does not hold; returns how many it loaded.
async fn load_units<T: UnitLedger>(
    t: &T,
    job: &LoadJob<'_>,
    dest: Dest,
    done: &HashSet<u32>,
) -> Result<u32> {
    let mut loaded = 0;
    for (unit, file) in job.files.iter().enumerate() {
        let unit = unit as u32;
        if !done.contains(&unit) {
            t.load_unit(dest, job, unit, file).await?;
            loaded += 1;
        }
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A ledger in memory that records the steps it is asked for.
    #[derive(Default)]
    struct Fake {
        published: bool,
        done: HashSet<u32>,
        steps: Mutex<Vec<String>>,
    }

    impl Fake {
        fn step(&self, s: String) {
            self.steps.lock().unwrap().push(s);
        }
        fn steps(&self) -> Vec<String> {
            self.steps.lock().unwrap().clone()
        }
    }

    impl UnitLedger for Fake {
        async fn check(&self) -> Result<()> {
            self.step("check".into());
            Ok(())
        }
        async fn is_published(&self, _: &TableInfo, _: &str) -> Result<bool> {
            Ok(self.published)
        }
        async fn finish_publish(&self, _: &TableInfo, _: &str) -> Result<()> {
            self.step("finish_publish".into());
            Ok(())
        }
        async fn prepare(&self, _: &TableInfo, _: &str) -> Result<HashSet<u32>> {
            self.step("prepare".into());
            Ok(self.done.clone())
        }
        async fn load_unit(
            &self,
            dest: Dest,
            _: &LoadJob<'_>,
            unit: u32,
            file: &str,
        ) -> Result<Digest128> {
            self.step(format!("{dest:?} {unit} {file}"));
            Ok(Digest128::default())
        }
        async fn publish(&self, _: &TableInfo, _: &str) -> Result<()> {
            self.step("publish".into());
            Ok(())
        }
        async fn prepare_append(&self, _: &TableInfo, _: &str) -> Result<HashSet<u32>> {
            self.step("prepare_append".into());
            Ok(self.done.clone())
        }
        async fn finish_append(&self, _: &TableInfo, _: &str) -> Result<()> {
            self.step("finish_append".into());
            Ok(())
        }
    }

    async fn run(t: &Fake, append: bool) -> LoadSummary {
        let info = TableInfo::new("T", Vec::new(), None, 0);
        let files: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let io = iceberg::io::FileIO::new_with_fs();
        let job = LoadJob {
            workflow: "w",
            run: "r",
            info: &info,
            ov: None,
            files: &files,
            io: &io,
            batch_rows: 10,
            scale: 1.0,
            lake_namespace: String::new(),
        };
        load(t, &job, append).await.unwrap()
    }

    #[tokio::test]
    async fn a_resumed_load_skips_recorded_units_and_publishes_after_the_rest() {
        let t = Fake {
            done: HashSet::from([1]),
            ..Fake::default()
        };
        let s = run(&t, false).await;
        assert_eq!((s.loaded, s.found), (2, 1));
        assert_eq!(
            t.steps(),
            ["check", "prepare", "Stage 0 a", "Stage 2 c", "publish"]
        );
    }

    #[tokio::test]
    async fn a_published_load_only_finishes_its_publish() {
        let t = Fake {
            published: true,
            ..Fake::default()
        };
        let s = run(&t, false).await;
        assert_eq!((s.loaded, s.found), (0, 3));
        assert_eq!(t.steps(), ["check", "finish_publish"]);
    }

    #[tokio::test]
    async fn an_append_upserts_the_missing_units_into_the_live_table() {
        let t = Fake {
            done: HashSet::from([0, 2]),
            ..Fake::default()
        };
        let s = run(&t, true).await;
        assert_eq!((s.loaded, s.found), (1, 2));
        assert_eq!(
            t.steps(),
            ["check", "prepare_append", "Live 1 b", "finish_append"]
        );
    }
}
