//! What each task may hold: the tuning a workflow's limits give, and each task's reservation
//! (rows x columns x type width, capped by what streaming actually holds). The executor admits a
//! task only when its reservation fits the budget; `dag plan` prints the same figures.

use crate::config::Workflow;
use crate::model::{Stage, TableInfo};
use crate::task::Tuning;

/// Bytes a task holds while streaming: batches in flight and the Parquet row group being
/// built, never more than the whole table would take.
pub fn task_bytes(tuning: &Tuning, stage: Stage, info: &TableInfo) -> u64 {
    const MIB: u64 = 1 << 20;
    let w = info.row_width();
    let whole = info.rows.max(1) * w;
    let batch = (tuning.batch_rows(info, 1.0) as u64 * w).min(whole);
    let writer = crate::lake::writer_bytes(info.columns.len());
    match stage {
        Stage::Extract => {
            let rg = (tuning.row_group_rows(info, 1.0) as u64 * w).min(whole);
            // builders + one batch in the channel + one being encoded, plus the row group
            let plain = 3 * batch + 2 * rg + writer + tuning.lake_write_bytes + 8 * MIB;
            if info.partition.is_none() {
                return plain;
            }
            // Partitioned: `open_partitions` writers each buffer a row group of their own
            // (row_group_rows already divided the bytes among them, but its 1024-row floor
            // can make the sum larger, so count each) plus each writer's codec contexts and
            // encoder state (`writer_bytes`), which a row group of a few thousand rows does
            // not amortise. The writer gathers n row groups of rows before writing them
            // grouped by day, and a flush holds them twice (the gathered batches and their
            // concatenation, then that and its copy sorted by day) plus 8 bytes a row of day
            // numbers and sort order: counted as three.
            let n = tuning.writers(info) as u64;
            let gathered = (n * rg).min(whole);
            // Each open writer on S3 also fills a multipart part of its own.
            3 * batch + 2 * n * rg + 3 * gathered + n * (writer + tuning.lake_write_bytes) + 8 * MIB
        }
        Stage::WriteIceberg => 16 * MIB,
        // Reading a data file holds a row group's column chunks besides the batches (a target
        // may read smaller batches than `batch_rows`).
        Stage::Load => {
            let rg = (tuning.row_group_rows(info, 1.0) as u64 * w).min(whole);
            let batch = tuning.load_batch_bytes.map_or(batch, |b| b.min(batch));
            2 * batch + rg + tuning.load_bytes + 8 * MIB
        }
        Stage::Verify => 4 * batch + 16 * MIB,
    }
}

/// Connections an extract may read its chunks with: the table's `connections`, else the
/// workflow's `limits.source_connections`, never more than the chunks it will have.
pub fn extract_connections(wf: &Workflow, info: &TableInfo, chunk_rows: u64) -> usize {
    let cap = wf.limits.source_connections.max(1);
    let wanted = wf
        .override_for(&info.name)
        .and_then(|o| o.connections)
        .unwrap_or(cap)
        .min(cap);
    wanted
        .min(info.estimated_chunks(chunk_rows) as usize)
        .max(1)
}

/// An extract's reservation covers every connection it reads with; under a tight budget it
/// reads with fewer connections rather than shrink its buffers.
pub fn extract_estimate(
    tuning: &Tuning,
    info: &TableInfo,
    connections: usize,
    budget: u64,
) -> (u64, usize) {
    let one = task_bytes(tuning, Stage::Extract, info);
    let mut n = connections.max(1);
    while n > 1 && one * n as u64 > budget {
        n -= 1;
    }
    (one * n as u64, n)
}

/// The buffers and sizes a run of `wf` works with.
pub fn tuning(wf: &Workflow) -> Tuning {
    Tuning {
        batch_rows: wf.limits.batch_rows,
        row_group_bytes: crate::lake::ROW_GROUP_BYTES,
        lake_write_bytes: if wf.lake.s3.is_some() { 10 << 20 } else { 0 },
        default_chunk_rows: 250_000,
        load_bytes: wf
            .target
            .as_ref()
            .map_or(0, crate::targets::load_buffer_bytes),
        load_batch_bytes: wf
            .target
            .as_ref()
            .and_then(crate::targets::load_batch_bytes),
        open_partitions: wf.lake.open_partitions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ColType, Column};

    #[test]
    fn a_load_that_reads_smaller_batches_is_estimated_with_them() {
        let columns = (0..66)
            .map(|i| Column {
                name: format!("c{i}"),
                ty: ColType::String,
                nullable: true,
            })
            .collect();
        let info = TableInfo::new("t", columns, None, 1_000_000);
        let t = Tuning {
            batch_rows: 8192,
            row_group_bytes: 16 << 20,
            default_chunk_rows: 250_000,
            load_bytes: 6 << 20,
            load_batch_bytes: None,
            lake_write_bytes: 0,
            open_partitions: 1,
        };
        let batch = t.batch_rows(&info, 1.0) as u64 * info.row_width();
        assert!(batch > 1 << 20);
        let small = Tuning {
            load_batch_bytes: Some(1 << 20),
            ..t.clone()
        };
        let (full, less) = (
            task_bytes(&t, Stage::Load, &info),
            task_bytes(&small, Stage::Load, &info),
        );
        // The load holds up to two batches; the target's bound replaces batch_rows' bytes.
        assert_eq!(full - less, 2 * (batch - (1 << 20)));
        // Other stages keep the run's batches.
        assert_eq!(
            task_bytes(&t, Stage::Verify, &info),
            task_bytes(&small, Stage::Verify, &info)
        );
    }
}
