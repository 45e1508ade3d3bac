//! The commands: one file per subcommand, each a thin layer that resolves what the user typed
//! (paths, the workflow, the memory budget) into a [`Context`] or a [`Setup`], asks the session,
//! the planner or the state for the work, and prints the result.
//!
//! Nothing below this layer sees the command line; the exit code of every command comes from
//! [`crate::exit`].

mod plan;
mod report;
mod retry;
mod run;
pub mod schedule;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::{Cli, Command, FromStage};
use crate::config::{self, Workflow};
use crate::error::{Error, Result};
use crate::session::{Setup, Start};
use crate::shutdown::Shutdown;

pub use run::run_scheduled;

/// Where `dag` finds its workflows and keeps its state (the global options).
#[derive(Debug, Clone)]
pub struct Context {
    /// The state directory (`--state`, `DAG_STATE`).
    pub state: PathBuf,
    /// The workflow directory (`--workflows`, `DAG_WORKFLOWS`).
    pub workflows: PathBuf,
}

impl Context {
    pub fn of(cli: &Cli) -> Context {
        Context {
            state: cli.state.clone(),
            workflows: cli.workflows.clone(),
        }
    }

    /// Reads and validates a workflow (a name in the workflow directory or a path);
    /// `${DAG_STATE_DIR}` expands to the state directory.
    pub fn load_workflow(&self, name: &str) -> Result<Workflow> {
        let path = config::resolve(name, &self.workflows).map_err(Error::config)?;
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::config(format!("cannot read {}: {e}", path.display())))?;
        let state = self.state.to_string_lossy().into_owned();
        let env = move |k: &str| {
            if k == "DAG_STATE_DIR" {
                Some(state.clone())
            } else {
                std::env::var(k).ok()
            }
        };
        config::parse(&text, &path, &env).map_err(|errs| Error::config(errs.to_string()))
    }

    /// The workflow `name` with the budget a session of it works under (`--memory` when given).
    pub fn setup(&self, name: &str, memory: Option<&str>) -> Result<Setup> {
        let wf = self.load_workflow(name)?;
        let budget = budget(memory, &wf)?;
        Ok(Setup {
            state: self.state.clone(),
            wf,
            budget,
        })
    }
}

/// The memory budget: `--memory`, else the workflow's `limits.memory`, else a share of the
/// machine's memory.
fn budget(cli_memory: Option<&str>, wf: &Workflow) -> Result<u64> {
    match cli_memory {
        // The same floor as `limits.memory` in a workflow file.
        Some(s) => match config::parse_size(s) {
            Ok(b) if b >= config::MIN_MEMORY => Ok(b),
            Ok(_) => Err(Error::config(format!(
                "--memory: {s} is below the minimum of 16MiB"
            ))),
            Err(e) => Err(Error::config(format!("--memory: {e}"))),
        },
        None => Ok(wf
            .limits
            .memory
            .unwrap_or_else(crate::sysmem::default_budget)),
    }
}

/// Runs the command `cli` names and returns the process's exit code.
pub async fn main(cli: Cli) -> ExitCode {
    let shutdown = Shutdown::new();
    if let Err(e) = shutdown.listen_for_signals() {
        eprintln!("warning: cannot listen for SIGINT/SIGTERM ({e}); a signal stops at once");
    }
    let ctx = Context::of(&cli);
    let res = match cli.command {
        Command::Run {
            workflow,
            tables,
            lake_only,
            from,
            memory,
            new,
        } => {
            let start = match (lake_only, from) {
                (true, _) => Start::LakeOnly,
                (false, Some(FromStage::Load)) => Start::FromLake,
                (false, None) => Start::Full,
            };
            run::run(
                &ctx,
                &workflow,
                &tables,
                start,
                memory.as_deref(),
                new,
                &shutdown,
            )
            .await
        }
        Command::Retry {
            target,
            workflow,
            memory,
        } => {
            retry::retry(
                &ctx,
                &target,
                workflow.as_deref(),
                memory.as_deref(),
                &shutdown,
            )
            .await
        }
        Command::Status {
            workflow,
            run,
            json,
        } => status::status(&ctx, workflow.as_deref(), run.as_deref(), json),
        Command::History { workflow, json } => status::history(&ctx, workflow.as_deref(), json),
        Command::Plan {
            workflow,
            format,
            tables,
            lake_only,
            memory,
        } => {
            plan::plan(
                &ctx,
                &workflow,
                format,
                &tables,
                lake_only,
                memory.as_deref(),
            )
            .await
        }
        Command::Validate { workflow } => ctx.load_workflow(&workflow).map(|wf| {
            println!("{}: OK", wf.path.display());
            crate::exit::OK
        }),
        Command::Schedule {
            simulate_from,
            simulate_until,
        } => schedule::schedule(&ctx, simulate_from.as_deref(), simulate_until.as_deref()).await,
        Command::Next {
            workflow,
            count,
            after,
        } => schedule::next(&ctx, workflow.as_deref(), count, after.as_deref()),
    };
    match res {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(crate::exit::of_error(&e))
        }
    }
}
