//! `dag run`: a new run of a workflow, or the resumption of its unfinished one; and the run a
//! schedule starts.

use crate::error::Result;
use crate::session::{self, Start};
use crate::shutdown::Shutdown;

use super::{Context, report};

pub async fn run(
    ctx: &Context,
    workflow: &str,
    only: &[String],
    start: Start,
    memory: Option<&str>,
    force_new: bool,
    shutdown: &Shutdown,
) -> Result<u8> {
    let setup = ctx.setup(workflow, memory)?;
    let outcome = session::run(&setup, only, start, force_new, shutdown).await?;
    Ok(report::outcome(&outcome))
}

/// One run started by `dag schedule`: a new run of the workflow, or (`resume_failed`, the
/// workflow's `on_failure = "resume"`) first the unfinished tasks of its last run when that
/// failed. Returns the exit code `dag run` would have. `shutdown` stops it gracefully.
pub async fn run_scheduled(
    ctx: &Context,
    workflow: &str,
    resume_failed: bool,
    shutdown: &Shutdown,
) -> Result<u8> {
    if resume_failed {
        let wf = ctx.load_workflow(workflow)?;
        if let Some(id) = session::reopen_failed(&ctx.state, &wf)? {
            println!(
                "{}: the last run {id} failed; resuming its unfinished tasks (on_failure = \"resume\")",
                wf.name
            );
        }
    }
    run(ctx, workflow, &[], Start::Full, None, false, shutdown).await
}
