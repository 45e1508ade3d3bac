//! The `dag` binary: parse arguments, set up logging, run a command, exit 0 (all succeeded),
//! 1 (some task failed), 2 (usage or configuration error), or 130 / 143 (stopped by SIGINT /
//! SIGTERM: running tasks got `limits.stop_grace` to finish, the rest are pending and the next
//! `dag run` resumes the run).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // `dag status | head` must end quietly when the reader goes away, as other command-line
    // tools do, instead of panicking on a broken pipe.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match dag::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { dag::exit::USAGE } else { 0 });
        }
    };
    let level = match cli.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DAG_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(format!("warn,tiberius=error,dag={level}"))
            }),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal (and not with NO_COLOR set): a log written to a file or a
        // pipe is plain text.
        .with_ansi(
            std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
        .with_target(false)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(dag::exit::FAILED);
        }
    };
    let code = rt.block_on(dag::commands::main(cli));
    // After a stop, a task aborted while stuck in blocking code may still hold a thread; the
    // state no longer depends on it, so the process must not wait for it.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}
