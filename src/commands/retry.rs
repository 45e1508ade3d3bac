//! `dag retry TABLE[.TASK]`: resume one table of the latest run that has it, from its failed
//! task (or the named one) on.

use crate::error::{Error, Result};
use crate::model::Stage;
use crate::session;
use crate::shutdown::Shutdown;

use super::{Context, report, status};

pub async fn retry(
    ctx: &Context,
    spec: &str,
    workflow: Option<&str>,
    memory: Option<&str>,
    shutdown: &Shutdown,
) -> Result<u8> {
    let (table, stage) = match spec.split_once('.') {
        Some((t, s)) => (
            t.to_string(),
            Some(Stage::parse(s).ok_or_else(|| {
                Error::config(format!(
                    "`{s}` is not a task (use extract, write_iceberg, load or verify)"
                ))
            })?),
        ),
        None => (spec.to_string(), None),
    };
    let wf_name = match workflow {
        Some(w) => w.to_string(),
        None => status::find_workflow_of(&ctx.state, &table)?,
    };
    let setup = ctx.setup(&wf_name, memory)?;
    let outcome = session::retry(&setup, &table, stage, shutdown).await?;
    Ok(report::outcome(&outcome))
}
