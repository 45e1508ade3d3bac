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
