//! The process's memory budget for rows in flight.
//!
//! Every row a pipe holds between reading it from the source and ClickHouse
//! acknowledging it — a snapshot chunk being read or written, the committed
//! transactions and the open transaction of a CDC batch — is counted against
//! one budget shared by all pipes of the process (`--memory-budget-mb`,
//! default 256 MiB). Sizes are what the process actually holds for the rows:
//! a snapshot chunk is encoded as it is read (`Destination::encoder`), so it
//! counts its encoding's blocks; a CDC batch counts `RowChange::heap_size`,
//! the decoded values' bytes plus their fixed overhead.
//!
//! Contract:
//! - a snapshot chunk reserves its bytes *before* it is read (an estimate from
//!   the rows read so far, at most `chunk_allowance`), the reader stops at the
//!   reserved size, and the reservation is returned when the chunk is written;
//! - a CDC batch grows its reservation as rows arrive; when the budget has no
//!   room it writes what it holds (committed transactions first, then the open
//!   one in parts) instead of waiting, and waits only when it holds nothing;
//! - one request never asks for more than the whole budget, so a single row
//!   larger than the budget is still read (alone) rather than blocking forever.
//!
//! What is not counted: the RowBinary encoding of a CDC insert (streamed in
//! 1 MiB blocks, a fixed amount per concurrent insert), the unused room of a
//! snapshot chunk's open block (the same fixed amount), the row being decoded,
//! the binlog event being decoded, and the libraries' own buffers — a fixed
//! overhead per connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;

/// The budget when none is configured.
pub const DEFAULT_BUDGET_BYTES: u64 = 256 << 20;
/// The smallest budget accepted.
pub const MIN_BUDGET_BYTES: u64 = 16 << 20;
/// The largest budget accepted (the semaphore counts KiB in a `u32`).
pub const MAX_BUDGET_BYTES: u64 = 1 << 40;
const KIB: u64 = 1024;

static GLOBAL: OnceLock<MemoryBudget> = OnceLock::new();

/// Sets the process's budget; must run before any pipe starts. Refused when
/// out of range or when a different budget is already in use.
pub fn configure(bytes: u64) -> Result<(), String> {
    if !(MIN_BUDGET_BYTES..=MAX_BUDGET_BYTES).contains(&bytes) {
        return Err(format!(
            "the memory budget must be between {} MiB and {} MiB (got {} MiB)",
            MIN_BUDGET_BYTES >> 20,
            MAX_BUDGET_BYTES >> 20,
            bytes >> 20
        ));
    }
    let set = GLOBAL.get_or_init(|| MemoryBudget::new(bytes));
    if set.total_bytes() != bytes.div_ceil(KIB) * KIB {
        return Err(format!("the memory budget is already {} MiB", set.total_bytes() >> 20));
    }
    Ok(())
}

/// The process's budget (`DEFAULT_BUDGET_BYTES` unless `configure`d first).
pub fn global() -> &'static MemoryBudget {
    GLOBAL.get_or_init(|| MemoryBudget::new(DEFAULT_BUDGET_BYTES))
}

/// A byte budget shared by every holder of rows.
#[derive(Clone)]
pub struct MemoryBudget {
    sem: Arc<Semaphore>,
    total_kib: u32,
    reserved: Arc<AtomicU64>,
}

impl MemoryBudget {
    pub fn new(bytes: u64) -> Self {
        let total_kib = bytes.div_ceil(KIB).clamp(1, u32::MAX as u64) as u32;
        Self { sem: Arc::new(Semaphore::new(total_kib as usize)), total_kib, reserved: Arc::new(AtomicU64::new(0)) }
    }

    pub fn total_bytes(&self) -> u64 {
        self.total_kib as u64 * KIB
    }

    /// Bytes reserved right now (the `sluice_memory_reserved_bytes` gauge).
    pub fn reserved_bytes(&self) -> u64 {
        self.reserved.load(Ordering::Relaxed) * KIB
    }

    /// The most one snapshot chunk may hold: a sixteenth of the budget, between
    /// 256 KiB and 32 MiB, so that many readers share it.
    pub fn chunk_allowance(&self) -> u64 {
        (self.total_bytes() / 16).clamp(256 * KIB, 32 << 20)
    }

    /// The most one CDC batch holds before it is written: an eighth of the
    /// budget, between 1 MiB and 64 MiB.
    pub fn batch_allowance(&self) -> u64 {
        (self.total_bytes() / 8).clamp(1 << 20, 64 << 20)
    }

    fn kib(&self, bytes: u64) -> u32 {
        bytes.div_ceil(KIB).clamp(1, self.total_kib as u64) as u32
    }

    /// An empty reservation, grown later (`try_grow`, `grow`).
    pub fn empty(&self) -> Reservation {
        Reservation { budget: self.clone(), kib: 0 }
    }

    /// Waits until `bytes` (at most the whole budget) are free and reserves them.
    pub async fn reserve(&self, bytes: u64) -> Reservation {
        let mut r = self.empty();
        r.grow(bytes).await;
        r
    }

    fn taken(&self, kib: u32) {
        self.reserved.fetch_add(kib as u64, Ordering::Relaxed);
        metrics::gauge!("sluice_memory_reserved_bytes").set(self.reserved_bytes() as f64);
    }

    fn returned(&self, kib: u32) {
        if kib == 0 {
            return;
        }
        self.sem.add_permits(kib as usize);
        self.reserved.fetch_sub(kib as u64, Ordering::Relaxed);
        metrics::gauge!("sluice_memory_reserved_bytes").set(self.reserved_bytes() as f64);
    }
}

/// Bytes held against a `MemoryBudget`; returned when dropped.
pub struct Reservation {
    budget: MemoryBudget,
    kib: u32,
}

impl Reservation {
    pub fn bytes(&self) -> u64 {
        self.kib as u64 * KIB
    }

    /// Grows the reservation to cover `bytes` in all, if the budget has room now.
    pub fn try_grow(&mut self, bytes: u64) -> bool {
        let want = self.budget.kib(bytes);
        if want <= self.kib {
            return true;
        }
        match self.budget.sem.try_acquire_many(want - self.kib) {
            Ok(p) => {
                p.forget();
                self.budget.taken(want - self.kib);
                self.kib = want;
                true
            }
            Err(_) => false,
        }
    }

    /// Grows the reservation to cover `bytes` in all (at most the whole
    /// budget), waiting for room.
    pub async fn grow(&mut self, bytes: u64) {
        let want = self.budget.kib(bytes);
        if want <= self.kib {
            return;
        }
        let p = self.budget.sem.acquire_many(want - self.kib).await.expect("the budget's semaphore is never closed");
        p.forget();
        self.budget.taken(want - self.kib);
        self.kib = want;
    }

    /// Makes the reservation cover what was actually read: returns the
    /// surplus, or takes more if the budget has room now (never waits: the
    /// bytes are already held, and waiting while holding could deadlock).
    pub fn settle(&mut self, bytes: u64) {
        if !self.try_grow(bytes) {
            return;
        }
        self.shrink_to(bytes);
    }

    /// Shrinks the reservation to `bytes`, returning the rest to the budget.
    pub fn shrink_to(&mut self, bytes: u64) {
        let keep = if bytes == 0 { 0 } else { self.budget.kib(bytes) };
        if keep < self.kib {
            self.budget.returned(self.kib - keep);
            self.kib = keep;
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.returned(self.kib);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn reservations_share_the_budget_and_return_on_drop() {
        let b = MemoryBudget::new(16 << 20);
        assert_eq!(b.chunk_allowance(), 1 << 20);
        assert_eq!(b.batch_allowance(), 2 << 20);
        let mut a = b.reserve(10 << 20).await;
        assert_eq!(b.reserved_bytes(), 10 << 20);
        let mut c = b.empty();
        assert!(!c.try_grow(7 << 20), "over the budget");
        assert!(c.try_grow(6 << 20));
        // A waiter is woken when room is returned.
        let b2 = b.clone();
        let waiter = tokio::spawn(async move { b2.reserve(8 << 20).await.bytes() });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        a.shrink_to(2 << 20);
        assert_eq!(waiter.await.unwrap(), 8 << 20);
        drop(c);
        drop(a);
        assert_eq!(b.reserved_bytes(), 0);
        // One request never asks for more than the whole budget.
        let all = b.reserve(1 << 40).await;
        assert_eq!(all.bytes(), 16 << 20);
    }

    #[test]
    fn configure_checks_the_range() {
        assert!(configure(1 << 20).unwrap_err().contains("between 16 MiB"));
    }
}
