//! The memory budget of requests in flight: each request takes what its window
//! and output need before rendering and gives it back when its response is
//! made; requests wait for one another instead of adding up past the budget.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Bytes shared by the requests in flight.
pub struct Budget {
    total: u64,
    free: Mutex<u64>,
    freed: Condvar,
}

/// Bytes held by one request; given back when dropped.
pub struct Lease<'a> {
    budget: &'a Budget,
    bytes: u64,
}

impl Budget {
    /// A budget of `total` bytes.
    pub fn new(total: u64) -> Budget {
        Budget {
            total,
            free: Mutex::new(total),
            freed: Condvar::new(),
        }
    }

    /// Waits up to `wait` for `bytes`. A request larger than the whole budget
    /// gets it all once nothing else is in flight, so every request the IIIF
    /// limits allow is served, one at a time.
    pub fn take(&self, bytes: u64, wait: Duration) -> Option<Lease<'_>> {
        let bytes = bytes.min(self.total);
        let deadline = Instant::now() + wait;
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free < bytes {
            let left = deadline.checked_duration_since(Instant::now())?;
            free = self
                .freed
                .wait_timeout(free, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *free -= bytes;
        Some(Lease {
            budget: self,
            bytes,
        })
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut free = self.budget.free.lock().unwrap_or_else(|e| e.into_inner());
        *free += self.bytes;
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_wait_for_each_other_and_oversized_ones_run_alone() {
        let b = Budget::new(100);
        let a = b.take(60, Duration::ZERO).unwrap();
        assert!(b.take(60, Duration::from_millis(10)).is_none());
        drop(a);
        let big = b
            .take(1000, Duration::ZERO)
            .expect("alone, it gets everything");
        assert!(b.take(1, Duration::from_millis(10)).is_none());
        drop(big);
        assert!(b.take(100, Duration::ZERO).is_some());
    }
}
