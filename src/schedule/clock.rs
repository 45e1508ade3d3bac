//! Time for the scheduler: the machine's clock, or a simulated one that jumps.
//!
//! The scheduler only ever asks "what time is it" and "wake me at t", so a simulated clock can
//! replace the real one and a whole night passes in milliseconds. A simulated clock jumps
//! straight to the time asked for, with two exceptions that keep simulations honest:
//! - it stops on the way at every time someone waits for with [`SimClock::until`] (a fake run
//!   that lasts until 02:30 ends at 02:30, not at the next fire time), one stop at a time;
//! - while a [`ClockHold`] exists (a real run started under simulation holds one), it does not
//!   move, so work that takes real time takes no simulated time.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

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
    /// Times waited for with `until`, with how many wait for each.
    stops: Arc<Mutex<BTreeMap<DateTime<Utc>, usize>>>,
}

impl SimClock {
    pub fn new(start: DateTime<Utc>) -> SimClock {
        SimClock {
            now: Arc::new(watch::Sender::new(start)),
            holds: Arc::new(watch::Sender::new(0)),
            stops: Arc::default(),
        }
    }

    /// Waits, without moving the clock, until someone else moves it to `t` or later: how a
    /// fake run in a test lasts until a simulated time.
    pub async fn until(&self, t: DateTime<Utc>) {
        if self.now() >= t {
            return;
        }
        let _stop = Stop::new(self.stops.clone(), t);
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
        loop {
            let mut holds = self.holds.subscribe();
            let _ = holds.wait_for(|h| *h == 0).await;
            let stop = {
                let stops = self.stops.lock().unwrap_or_else(|p| p.into_inner());
                stops.keys().next().copied()
            };
            let to = stop.map_or(t, |s| s.min(t));
            self.now.send_if_modified(|now| {
                if *now < to {
                    *now = to;
                    true
                } else {
                    false
                }
            });
            if self.now() >= t {
                return;
            }
            // Whoever waited for this stop runs before the clock moves on.
            tokio::task::yield_now().await;
        }
    }
}

/// One registered wait of [`SimClock::until`], removed when the wait ends or is dropped.
struct Stop {
    stops: Arc<Mutex<BTreeMap<DateTime<Utc>, usize>>>,
    at: DateTime<Utc>,
}

impl Stop {
    fn new(stops: Arc<Mutex<BTreeMap<DateTime<Utc>, usize>>>, at: DateTime<Utc>) -> Stop {
        *stops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(at)
            .or_default() += 1;
        Stop { stops, at }
    }
}

impl Drop for Stop {
    fn drop(&mut self) {
        let mut stops = self.stops.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = stops.get_mut(&self.at) {
            *n -= 1;
            if *n == 0 {
                stops.remove(&self.at);
            }
        }
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
