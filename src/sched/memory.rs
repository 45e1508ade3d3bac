//! The memory budget: reservations that are released when dropped.
//!
//! A task may start only when its estimate fits in what is left of the budget. Release happens in
//! `Drop`, so a task that returns early, fails or panics gives its memory back all the same.
//! Tasks can also grow a reservation while they run (e.g. to extract a second chunk in parallel)
//! with [`Reservation::try_grow`], which never waits, so no task can deadlock holding memory.

use std::sync::{Arc, Mutex};

#[derive(Debug)]
pub struct MemoryPool {
    budget: u64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    used: u64,
    peak: u64,
}

impl MemoryPool {
    pub fn new(budget: u64) -> Arc<MemoryPool> {
        Arc::new(MemoryPool {
            budget: budget.max(1),
            inner: Mutex::new(Inner::default()),
        })
    }

    pub fn budget(&self) -> u64 {
        self.budget
    }

    pub fn used(&self) -> u64 {
        self.lock().used
    }

    pub fn peak(&self) -> u64 {
        self.lock().peak
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the counters inconsistent (plain adds).
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take(&self, bytes: u64) -> bool {
        let mut g = self.lock();
        if g.used + bytes > self.budget {
            return false;
        }
        g.used += bytes;
        g.peak = g.peak.max(g.used);
        true
    }

    /// Reserves `bytes` if they fit now.
    pub fn try_reserve(self: &Arc<Self>, bytes: u64) -> Option<Reservation> {
        self.take(bytes).then(|| Reservation {
            pool: Arc::clone(self),
            bytes,
        })
    }

    /// Reserves the whole budget, only when nothing else holds any of it: how a task larger than
    /// the budget runs alone.
    pub fn try_reserve_all(self: &Arc<Self>) -> Option<Reservation> {
        let mut g = self.lock();
        if g.used != 0 {
            return None;
        }
        g.used = self.budget;
        g.peak = g.peak.max(g.used);
        Some(Reservation {
            pool: Arc::clone(self),
            bytes: self.budget,
        })
    }
}

#[derive(Debug)]
pub struct Reservation {
    pool: Arc<MemoryPool>,
    bytes: u64,
}

impl Reservation {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn pool(&self) -> &Arc<MemoryPool> {
        &self.pool
    }

    /// Adds `bytes` to this reservation if they fit now.
    pub fn try_grow(&mut self, bytes: u64) -> bool {
        if self.pool.take(bytes) {
            self.bytes += bytes;
            true
        } else {
            false
        }
    }

    /// Gives back `bytes` (at most what is held).
    pub fn shrink(&mut self, bytes: u64) {
        let b = bytes.min(self.bytes);
        self.pool.lock().used -= b;
        self.bytes -= b;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.pool.lock().used -= self.bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_fit_the_budget_and_are_released_on_drop_even_on_panic() {
        let pool = MemoryPool::new(100);
        let a = pool.try_reserve(60).unwrap();
        assert!(pool.try_reserve(50).is_none());
        let mut b = pool.try_reserve(40).unwrap();
        assert_eq!(pool.used(), 100);
        assert!(!b.try_grow(1));
        drop(a);
        assert!(b.try_grow(10));
        b.shrink(20);
        assert_eq!(pool.used(), 30);
        assert!(pool.try_reserve_all().is_none());
        let p2 = Arc::clone(&pool);
        let r = std::thread::spawn(move || {
            let _held = p2.try_reserve(50).unwrap();
            panic!("task failed");
        })
        .join();
        assert!(r.is_err());
        assert_eq!(pool.used(), 30);
        drop(b);
        let all = pool.try_reserve_all().unwrap();
        assert_eq!(all.bytes(), 100);
        assert!(pool.try_reserve(1).is_none());
        drop(all);
        assert_eq!(pool.used(), 0);
        assert_eq!(pool.peak(), 100);
    }
}
