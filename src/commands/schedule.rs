//! The two commands: `dag schedule` (the loop in the foreground, on the workflow directory) and
//! `dag next` (upcoming fire times), plus the pieces only they need: the launcher that runs a
//! workflow in this process and the watcher of the workflow directory.
//!
//! Reloading: the directory is polled every [`POLL`] for added, changed or removed `*.toml`
//! files, and read again at once on SIGHUP. A file that no longer validates is reported and its
//! previous version is kept, so a typo saved halfway through an edit does not stop a schedule;
//! a file that never validated is reported and not scheduled until it does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use futures::future::{FutureExt, LocalBoxFuture};

use super::Context;
use super::run::run_scheduled;
use crate::config::{CatchUp, OnFailure, Overlap, Workflow};
use crate::error::{Error, Result};
use crate::exit::OK as EXIT_OK;
use crate::schedule::engine::{Fixed, WorkflowSource};
use crate::schedule::{Clock, Launcher, Scheduler, SimClock, SystemClock, Timing, utc};
use crate::shutdown::Shutdown;

/// How often the workflow directory is checked for changes.
pub const POLL: Duration = Duration::from_secs(3);

/// Runs workflows in this process through [`run_scheduled`], each on its own task so a run's
/// blocking moments never delay the loop. Under a simulated clock each run holds the clock: a
/// real run takes no simulated time.
pub struct RealLauncher {
    ctx: Arc<Context>,
    hold: Option<SimClock>,
}

impl RealLauncher {
    pub fn new(ctx: &Context, hold: Option<SimClock>) -> RealLauncher {
        RealLauncher {
            ctx: Arc::new(ctx.clone()),
            hold,
        }
    }
}

impl Launcher for RealLauncher {
    fn launch(
        &self,
        workflow: &str,
        resume_failed: bool,
        shutdown: &Shutdown,
    ) -> LocalBoxFuture<'_, Result<u8>> {
        let hold = self.hold.as_ref().map(SimClock::hold);
        let ctx = self.ctx.clone();
        let name = workflow.to_string();
        let shutdown = shutdown.clone();
        let task =
            tokio::spawn(async move { run_scheduled(&ctx, &name, resume_failed, &shutdown).await });
        let name = workflow.to_string();
        async move {
            let res = task.await.unwrap_or_else(|e| {
                Err(Error::internal(format!(
                    "the run of {name} ended abnormally: {e}"
                )))
            });
            drop(hold);
            res
        }
        .boxed_local()
    }
}

/// A `*.toml` file's identity for change detection.
type Stamp = (Option<SystemTime>, u64);

/// The workflow directory, watched for changes.
pub struct DirSource<'c> {
    ctx: &'c Context,
    stamps: BTreeMap<PathBuf, Stamp>,
    /// The last version of each file that validated.
    good: BTreeMap<PathBuf, Workflow>,
    hup: Option<tokio::signal::unix::Signal>,
    tick: tokio::time::Interval,
}

impl<'c> DirSource<'c> {
    pub fn new(ctx: &'c Context) -> Result<DirSource<'c>> {
        if !ctx.workflows.is_dir() {
            return Err(Error::config(format!(
                "workflow directory {} does not exist (--workflows DIR)",
                ctx.workflows.display()
            )));
        }
        let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(DirSource {
            ctx,
            stamps: BTreeMap::new(),
            good: BTreeMap::new(),
            hup,
            tick,
        })
    }

    fn scan(&self) -> BTreeMap<PathBuf, Stamp> {
        workflow_files(&self.ctx.workflows)
            .into_iter()
            .map(|p| {
                let meta = std::fs::metadata(&p).ok();
                let stamp = (
                    meta.as_ref().and_then(|m| m.modified().ok()),
                    meta.map_or(0, |m| m.len()),
                );
                (p, stamp)
            })
            .collect()
    }

    /// Reads every file that is new or changed since the last look; returns the whole set.
    pub fn load(&mut self) -> Vec<Workflow> {
        let now = self.scan();
        for (path, stamp) in &now {
            if self.stamps.get(path) == Some(stamp) {
                continue;
            }
            match self.ctx.load_workflow(&path.to_string_lossy()) {
                Ok(wf) => {
                    self.good.insert(path.clone(), wf);
                }
                Err(e) => {
                    let kept = if self.good.contains_key(path) {
                        "keeping its previous version"
                    } else {
                        "not scheduled until it validates"
                    };
                    println!("{} {}: {kept}: {e}", utc(Utc::now()), path.display());
                }
            }
        }
        self.good.retain(|p, _| now.contains_key(p));
        self.stamps = now;
        self.good.values().cloned().collect()
    }
}

impl WorkflowSource for DirSource<'_> {
    async fn changed(&mut self) -> Vec<Workflow> {
        loop {
            let hup = async {
                match &mut self.hup {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = hup => {
                    println!("{} SIGHUP: reading the workflows again", utc(Utc::now()));
                    self.stamps.clear();
                    break;
                }
                _ = self.tick.tick() => {
                    if self.scan() != self.stamps {
                        println!("{} workflow files changed: reading them again", utc(Utc::now()));
                        break;
                    }
                }
            }
        }
        self.load()
    }
}

/// The `*.toml` files of a directory, sorted.
fn workflow_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    out.sort();
    out
}

fn parse_time(flag: &str, text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            Error::config(format!(
                "{flag}: {text:?} is not an RFC 3339 time such as 2026-03-28T22:00:00Z ({e})"
            ))
        })
}

fn print_line(line: &str) {
    println!("{line}");
}

/// `dag schedule`: runs in the foreground until SIGINT/SIGTERM (or, on a simulated clock, until
/// the end of the simulation), starting each scheduled workflow of the directory when due.
pub async fn schedule(
    ctx: &Context,
    simulate_from: Option<&str>,
    simulate_until: Option<&str>,
) -> Result<u8> {
    let shutdown = Shutdown::new();
    shutdown
        .listen_for_signals()
        .map_err(|e| Error::internal(format!("cannot listen for signals: {e}")))?;
    let mut dir = DirSource::new(ctx)?;
    let mut sched = Scheduler::new(ctx.state.clone(), Box::new(print_line));
    match (simulate_from, simulate_until) {
        (Some(from), Some(until)) => {
            let from = parse_time("--simulate-from", from)?;
            let until = parse_time("--simulate-until", until)?;
            if until < from {
                return Err(Error::config(format!(
                    "--simulate-until {} is before --simulate-from {}",
                    utc(until),
                    utc(from)
                )));
            }
            let clock = SimClock::new(from);
            let launcher = RealLauncher::new(ctx, Some(clock.clone()));
            println!(
                "{} simulating {} to {} (workflow files are read once)",
                utc(from),
                utc(from),
                utc(until)
            );
            sched.set_workflows(dir.load(), clock.now());
            sched
                .run(&clock, &launcher, &mut Fixed, &shutdown, Some(until))
                .await;
            println!("{} simulation ended", utc(clock.now()));
        }
        (None, None) => {
            let clock = SystemClock;
            let launcher = RealLauncher::new(ctx, None);
            println!(
                "{} scheduling the workflows of {} (state in {}); SIGHUP reads them again",
                utc(clock.now()),
                ctx.workflows.display(),
                ctx.state.display()
            );
            sched.set_workflows(dir.load(), clock.now());
            sched
                .run(&clock, &launcher, &mut dir, &shutdown, None)
                .await;
            println!("{} stopped", utc(clock.now()));
        }
        _ => {
            return Err(Error::config(
                "--simulate-from and --simulate-until go together",
            ));
        }
    }
    Ok(EXIT_OK)
}

/// `dag next [WORKFLOW] [--count N]`: the next fire times of each scheduled workflow, in its
/// zone and in UTC. `after` replaces the current time (for reproducible output).
pub fn next(
    ctx: &Context,
    workflow: Option<&str>,
    count: usize,
    after: Option<&str>,
) -> Result<u8> {
    let after = match after {
        Some(t) => parse_time("--after", t)?,
        None => Utc::now(),
    };
    let wfs = match workflow {
        Some(name) => {
            let wf = ctx.load_workflow(name)?;
            if wf.schedule.is_none() {
                return Err(Error::config(format!(
                    "{} has no schedule (add e.g. schedule = \"0 0 2 * * *\" for 02:00 every day)",
                    wf.path.display()
                )));
            }
            vec![wf]
        }
        None => {
            if !ctx.workflows.is_dir() {
                return Err(Error::config(format!(
                    "workflow directory {} does not exist (--workflows DIR)",
                    ctx.workflows.display()
                )));
            }
            let mut out = Vec::new();
            for p in workflow_files(&ctx.workflows) {
                match ctx.load_workflow(&p.to_string_lossy()) {
                    Ok(wf) if wf.schedule.is_some() => out.push(wf),
                    Ok(_) => {}
                    Err(e) => eprintln!("{}: skipped: {e}", p.display()),
                }
            }
            if out.is_empty() {
                println!("no workflow in {} has a schedule", ctx.workflows.display());
            }
            out
        }
    };
    for (i, wf) in wfs.iter().enumerate() {
        let Some(timing) = Timing::of(wf)? else {
            continue;
        };
        if i > 0 {
            println!();
        }
        println!(
            "{}: schedule {:?} in {}; overlap {}, catch_up {}, on_failure {}",
            wf.name,
            timing.expr,
            timing.tz.name(),
            match wf.overlap {
                Overlap::Skip => "skip",
                Overlap::Queue => "queue",
            },
            match wf.catch_up {
                CatchUp::Once => "once",
                CatchUp::Skip => "skip",
            },
            match wf.on_failure {
                OnFailure::Restart => "restart",
                OnFailure::Resume => "resume",
            },
        );
        let times = timing.upcoming(after, count);
        if times.is_empty() {
            println!("  no fire time after {}", utc(after));
        }
        for t in times {
            println!("  {:<28} {}", timing.local(t), utc(t));
        }
    }
    Ok(EXIT_OK)
}
