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

use iceberg::io::FileIO;

use super::{LoadJob, LoadSummary};
use crate::error::Result;
use crate::model::TableInfo;
use crate::model::fingerprint::Digest128;

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

    /// Loads one unit into the staging table with its ledger row, in one transaction; returns
    /// the digest of its rows.
    fn load_unit(
        &self,
        info: &TableInfo,
        run: &str,
        unit: u32,
        file: &str,
        io: &FileIO,
        batch_rows: usize,
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

    /// Upserts one unit into the live table (plain inserts for a keyless table) with its ledger
    /// row, in one transaction; returns the digest of its rows.
    fn load_unit_append(
        &self,
        info: &TableInfo,
        run: &str,
        unit: u32,
        file: &str,
        io: &FileIO,
        batch_rows: usize,
    ) -> impl Future<Output = Result<Digest128>> + Send;

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
        let mut loaded = 0;
        for (unit, file) in pending(job.files, &done) {
            t.load_unit_append(info, run, unit, file, job.io, job.batch_rows)
                .await?;
            loaded += 1;
        }
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
    let mut loaded = 0;
    for (unit, file) in pending(job.files, &done) {
        t.load_unit(info, run, unit, file, job.io, job.batch_rows)
            .await?;
        loaded += 1;
    }
    crate::fault::point(&format!("before_publish:{}", info.name));
    t.publish(info, run).await?;
    Ok(LoadSummary {
        loaded,
        found: units - loaded,
    })
}

/// Each data file (a unit, numbered by its place in `files`) that `done` does not hold, in order.
fn pending<'a>(
    files: &'a [String],
    done: &'a HashSet<u32>,
) -> impl Iterator<Item = (u32, &'a str)> + 'a {
    files
        .iter()
        .enumerate()
        .map(|(unit, file)| (unit as u32, file.as_str()))
        .filter(|(unit, _)| !done.contains(unit))
}
