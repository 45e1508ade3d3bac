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
use crate::task::{Allowance, Ctx, run_stage};

pub struct TaskRunner {
    pub ctx: Arc<Ctx>,
    pub nodes: Vec<(String, Stage)>,
}

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
        Box::pin(async move {
            let res = run_stage(ctx, table, stage, allowance).await;
            // The reservation is released only when the task has ended.
            drop(grant);
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
