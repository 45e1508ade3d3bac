//! The executor's callbacks (run, failed, retried, skipped, interrupted by a stop) mapped onto
//! task records: the glue between the executor, which knows no tables, and the stages, which
//! know no executor.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::error::{Error, Result};
use crate::model::Stage;
use crate::sched::{Grant, Runner};
use crate::store::{TaskRecord, TaskStatus, now};
use crate::sysmem::RssWatch;
use crate::task::{Allowance, Ctx, run_stage};

pub struct TaskRunner {
    pub ctx: Arc<Ctx>,
    pub nodes: Vec<(String, Stage)>,
    /// The run's memory budget: a task during which the process held more than this plus
    /// [`RSS_SLACK`] is named in a warning.
    pub budget: u64,
    pub rss: Arc<RssWatch>,
}

/// What the process may hold beyond the budget: its own baseline (code, runtime, catalog and
/// store) that no task reserves.
pub const RSS_SLACK: u64 = 32 << 20;

impl TaskRunner {
    fn update(&self, idx: usize, f: impl FnOnce(&mut TaskRecord)) {
        let (table, stage) = &self.nodes[idx];
        match self.ctx.record(table, *stage) {
            Ok(mut rec) => {
                f(&mut rec);
                if let Err(e) = self.ctx.store.put_task(&rec) {
                    tracing::error!(table, task = %stage, "cannot record the task's state: {e}");
                }
            }
            Err(e) => tracing::error!(table, task = %stage, "cannot read the task's state: {e}"),
        }
    }
}

/// Keeps the process's peak RSS during the task in its record, and warns when it went over the
/// budget plus its slack.
fn record_rss(ctx: &Ctx, table: &str, stage: Stage, peak: u64, limit: u64) {
    let recorded = ctx.record(table, stage).and_then(|mut rec| {
        rec.peak_rss = Some(peak);
        ctx.store.put_task(&rec)
    });
    if let Err(e) = recorded {
        tracing::error!(table, task = %stage, "cannot record the task's RSS: {e}");
    }
    if let Some(w) = over_budget(table, stage, peak, limit) {
        tracing::warn!("{w}");
    }
}

/// The warning for a task during which the process held more than `limit`, naming the task.
fn over_budget(table: &str, stage: Stage, peak: u64, limit: u64) -> Option<String> {
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    (peak > limit).then(|| {
        format!(
            "{table}.{stage}: the process held {:.1} MiB while it ran, over the memory budget \
             plus {:.0} MiB ({:.1} MiB)",
            mib(peak),
            mib(RSS_SLACK),
            mib(limit)
        )
    })
}

impl Runner for TaskRunner {
    fn run(&self, idx: usize, grant: Grant) -> BoxFuture<'static, Result<()>> {
        let (table, stage) = self.nodes[idx].clone();
        let ctx = Arc::clone(&self.ctx);
        let allowance = Allowance {
            bytes: grant.reservation.bytes(),
            scale: grant.scale,
            attempt: grant.attempt,
            slots: grant.slots,
        };
        let span = self.rss.span();
        let limit = self.budget + RSS_SLACK;
        Box::pin(async move {
            let res = run_stage(Arc::clone(&ctx), table.clone(), stage, allowance).await;
            let peak = span.peak();
            // The reservation is released only when the task has ended.
            drop(grant);
            record_rss(&ctx, &table, stage, peak, limit);
            res
        })
    }

    fn failed(&self, idx: usize, err: &Error, attempt: u32, retry_in: Option<Duration>) {
        let (table, stage) = &self.nodes[idx];
        match retry_in {
            Some(d) => self.ctx.progress.line(&format!(
                "{table}.{stage}: attempt {attempt} failed, retrying in {:.1}s: {err}",
                d.as_secs_f64()
            )),
            None => self
                .ctx
                .progress
                .line(&format!("{table}.{stage}: FAILED: {err}")),
        }
        self.update(idx, |r| {
            r.status = if retry_in.is_some() {
                TaskStatus::Pending
            } else {
                TaskStatus::Failed
            };
            r.ended_at = Some(now());
            r.last_error = Some(err.to_string());
        });
    }

    fn skipped(&self, idx: usize, cause: usize) {
        let (ct, cs) = &self.nodes[cause];
        let msg = format!("skipped because {ct}.{cs} did not succeed");
        self.update(idx, |r| {
            r.status = TaskStatus::Skipped;
            r.last_error = Some(msg);
        });
    }

    fn interrupted(&self, idx: usize, why: &str) {
        let (table, stage) = &self.nodes[idx];
        self.ctx.progress.line(&format!("{table}.{stage}: {why}"));
        self.update(idx, |r| {
            // A task aborted right after recording its success did finish: keep that, so the
            // next run does not redo it.
            if r.status != TaskStatus::Succeeded {
                r.status = TaskStatus::Pending;
                r.ended_at = Some(now());
                r.last_error = Some(why.to_string());
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_task_over_budget_plus_slack_is_named_with_both_figures() {
        let limit = (48 << 20) + RSS_SLACK;
        assert_eq!(over_budget("T", Stage::Extract, limit, limit), None);
        let w = over_budget("AGENTSVES", Stage::Extract, limit + (1 << 20), limit).unwrap();
        assert_eq!(
            w,
            "AGENTSVES.extract: the process held 81.0 MiB while it ran, over the memory budget \
             plus 32 MiB (80.0 MiB)"
        );
    }
}
