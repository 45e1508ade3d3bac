//! Time for the scheduler: the machine's clock, or a simulated one that jumps.
//!
//! The scheduler only ever asks "what time is it" and "wake me at t", so a simulated clock can
//! replace the real one and a whole night passes in milliseconds. A simulated clock jumps
//! straight to the time asked for, with one exception that keeps simulations honest: while a
//! [`ClockHold`] exists (a real run started under simulation holds one), it waits, so work that
//! takes real time takes no simulated time and is over before the next fire time comes.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

pub trait Clock {
    fn now(&self) -> DateTime<Utc>;
    /// Resolves once `now() >= t`.
    fn sleep_until(&self, t: DateTime<Utc>) -> impl Future<Output = ()>;
}

/// The machine's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

/// Longest single sleep: the wall clock can be set or the machine suspended meanwhile, and a
/// monotonic timer would not notice, so the clock is read again at least this often.
const MAX_NAP: std::time::Duration = std::time::Duration::from_secs(30);

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep_until(&self, t: DateTime<Utc>) {
        loop {
            let left = t - Utc::now();
            let Ok(left) = left.to_std() else { return };
            if left.is_zero() {
                return;
            }
            tokio::time::sleep(left.min(MAX_NAP)).await;
        }
    }
}

/// A clock that jumps to whatever time it is asked to sleep until (never backwards), unless a
/// [`ClockHold`] is alive. Clones share the same time.
#[derive(Debug, Clone)]
pub struct SimClock {
    now: Arc<watch::Sender<DateTime<Utc>>>,
    holds: Arc<watch::Sender<usize>>,
}

impl SimClock {
    pub fn new(start: DateTime<Utc>) -> SimClock {
        SimClock {
            now: Arc::new(watch::Sender::new(start)),
            holds: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Waits, without moving the clock, until someone else moves it to `t` or later: how a
    /// fake run in a test lasts until a simulated time.
    pub async fn until(&self, t: DateTime<Utc>) {
        let mut rx = self.now.subscribe();
        // The sender lives as long as `self`, so the wait cannot fail.
        let _ = rx.wait_for(|now| *now >= t).await;
    }

    /// Stops the clock from moving until the returned hold is dropped.
    pub fn hold(&self) -> ClockHold {
        self.holds.send_modify(|h| *h += 1);
        ClockHold {
            holds: self.holds.clone(),
        }
    }
}

impl Clock for SimClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    async fn sleep_until(&self, t: DateTime<Utc>) {
        let mut holds = self.holds.subscribe();
        let _ = holds.wait_for(|h| *h == 0).await;
        self.now.send_if_modified(|now| {
            if *now < t {
                *now = t;
                true
            } else {
                false
            }
        });
    }
}

/// Keeps a [`SimClock`] still while alive.
#[derive(Debug)]
pub struct ClockHold {
    holds: Arc<watch::Sender<usize>>,
}

impl Drop for ClockHold {
    fn drop(&mut self) {
        self.holds.send_modify(|h| *h -= 1);
    }
}
