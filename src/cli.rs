//! Command-line definitions only (no I/O): what a data engineer types.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "dag",
    version,
    about = "Move whole databases into an Iceberg lakehouse and on into a target, \
in bounded memory, with exact resume and verification"
)]
pub struct Cli {
    /// State directory (sled database, locks, local catalog and warehouse).
    #[arg(long, global = true, env = "DAG_STATE", default_value = "state")]
    pub state: PathBuf,
    /// Directory holding workflow files.
    #[arg(
        long,
        global = true,
        env = "DAG_WORKFLOWS",
        default_value = "workflows"
    )]
    pub workflows: PathBuf,
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a workflow, or resume its unfinished run.
    Run {
        /// Workflow name (workflows/<name>.toml) or path to a .toml file.
        workflow: String,
        /// Only these tables (comma-separated).
        #[arg(long, value_delimiter = ',')]
        tables: Vec<String>,
        /// Stop at the lake: no load into the target.
        #[arg(long, conflicts_with = "from")]
        lake_only: bool,
        /// Start at this task, from what the lake holds: `--from load` loads and verifies the
        /// target from the tables' published snapshots without contacting the source.
        #[arg(long, value_enum)]
        from: Option<FromStage>,
        /// Memory budget, e.g. 512MiB or 2GiB (default: limits.memory, else a quarter of the
        /// machine's memory).
        #[arg(long)]
        memory: Option<String>,
        /// Start a new run even if the last one is unfinished.
        #[arg(long)]
        new: bool,
    },
    /// Resume the latest run of a table from its failed or unfinished task on.
    Retry {
        /// TABLE or TABLE.TASK (extract, write_iceberg, load, verify).
        target: String,
        /// The workflow (default: the one whose latest run has the table).
        #[arg(long)]
        workflow: Option<String>,
        #[arg(long)]
        memory: Option<String>,
    },
    /// What ran, what failed, rows, time, memory.
    Status {
        workflow: Option<String>,
        #[arg(long)]
        run: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Past runs.
    History {
        workflow: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show the tables and tasks a run would have, with estimates.
    Plan {
        workflow: String,
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
        #[arg(long, value_delimiter = ',')]
        tables: Vec<String>,
        #[arg(long)]
        lake_only: bool,
        #[arg(long)]
        memory: Option<String>,
    },
    /// Check a workflow file and report every problem.
    Validate { workflow: String },
    /// Start each workflow of the directory that has a `schedule` when it is due (runs in the
    /// foreground; reads changed workflow files again, and on SIGHUP).
    Schedule {
        /// Run on a simulated clock from this RFC 3339 time (testing).
        #[arg(long, hide = true, requires = "simulate_until")]
        simulate_from: Option<String>,
        /// End the simulation at this RFC 3339 time, once the runs it started have ended.
        #[arg(long, hide = true, requires = "simulate_from")]
        simulate_until: Option<String>,
    },
    /// Upcoming scheduled runs of each workflow (or one), in its time zone and in UTC.
    Next {
        workflow: Option<String>,
        /// How many fire times per workflow.
        #[arg(long, default_value_t = 5)]
        count: usize,
        /// List the fire times after this RFC 3339 time instead of now.
        #[arg(long, hide = true)]
        after: Option<String>,
    },
}

/// Where a run may start instead of the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FromStage {
    /// Load the target from the lake's published snapshots, then verify.
    Load,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Dot,
}
