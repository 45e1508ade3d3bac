//! Progress output: bars on a terminal, plain log lines otherwise.
//!
//! A run can take hours; on a terminal the user wants live bars, while under cron or CI the
//! same events must come out as greppable lines. Everything that reports progress goes through
//! here so the two never mix.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone)]
pub struct Progress {
    multi: Option<MultiProgress>,
}

pub struct Bar {
    bar: Option<ProgressBar>,
    table: String,
}

impl Progress {
    /// Bars when stderr is a terminal (and `DAG_PROGRESS` is not `plain`).
    pub fn auto() -> Progress {
        let tty = std::io::stderr().is_terminal()
            && std::env::var("DAG_PROGRESS")
                .map(|v| v != "plain")
                .unwrap_or(true);
        Progress {
            multi: tty.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }

    pub fn plain() -> Progress {
        Progress { multi: None }
    }

    pub fn line(&self, msg: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(msg);
            }
            None => tracing::info!("{msg}"),
        }
    }

    /// A warning the user must see whatever the output is: `warning: ...` on stderr, above any
    /// bars.
    pub fn warn(&self, msg: &str) {
        match &self.multi {
            Some(m) => m.suspend(|| eprintln!("warning: {msg}")),
            None => eprintln!("warning: {msg}"),
        }
    }

    pub fn bar(&self, table: &str, total: u64) -> Bar {
        let bar = self.multi.as_ref().map(|m| {
            let b = m.add(ProgressBar::new(total.max(1)));
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix:>16} [{bar:30}] {human_pos}/{human_len} rows {per_sec} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.set_prefix(table.to_string());
            b
        });
        if bar.is_none() {
            tracing::info!(table, rows = total, "extract started");
        }
        Bar {
            bar,
            table: table.to_string(),
        }
    }
}

impl Bar {
    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    pub fn finish(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.finish_with_message(msg.to_string()),
            None => tracing::info!(table = %self.table, "{msg}"),
        }
    }
}
