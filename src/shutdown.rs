//! Graceful stop: one token that `dag run`, `dag schedule` and the task executor share.
//!
//! A SIGINT or SIGTERM must not kill a run halfway through a step: the executor stops admitting
//! tasks, lets the running ones finish within a grace period and records the rest as interrupted,
//! so the state says exactly where the next `dag run` resumes. The token carries the reason (the
//! signal's name) for the messages that say why the run stopped.

use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

#[derive(Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    reason: Arc<Mutex<Option<String>>>,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Asks everything holding this token to stop; the first reason given is kept.
    pub fn trigger(&self, reason: &str) {
        {
            let mut r = self.reason.lock().unwrap_or_else(|p| p.into_inner());
            if r.is_none() {
                *r = Some(reason.to_string());
            }
        }
        self.token.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Why the stop was asked for (e.g. `SIGTERM`), once it was.
    pub fn reason(&self) -> Option<String> {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Turns the first SIGINT or SIGTERM into a graceful stop (the token is triggered with the
    /// signal's name); a second one ends the process at once with 128 + the signal's number,
    /// which is as safe as a crash: every step is recorded so that a crash resumes exactly.
    /// Must be called inside the tokio runtime.
    pub fn listen_for_signals(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let this = self.clone();
        tokio::spawn(async move {
            let mut seen = 0;
            loop {
                let (name, code) = tokio::select! {
                    _ = int.recv() => ("SIGINT", 130),
                    _ = term.recv() => ("SIGTERM", 143),
                };
                seen += 1;
                if seen == 1 {
                    eprintln!(
                        "{name} received: stopping gracefully (no new tasks; running ones may \
                         finish); send it again to stop at once"
                    );
                    this.trigger(name);
                } else {
                    eprintln!("{name} received again: stopping now; `dag run` resumes exactly");
                    std::process::exit(code);
                }
            }
        });
        Ok(())
    }

    /// Resolves once a stop is asked for.
    pub async fn wait(&self) {
        self.token.cancelled().await
    }
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .field("reason", &self.reason())
            .finish()
    }
}
