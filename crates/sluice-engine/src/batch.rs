//! The CDC batch: committed transactions waiting to be written, and the
//! transaction being read, held apart until its commit. Pure bookkeeping, no
//! I/O, so that the apply loop's rules are unit-tested on synthetic event
//! sequences:
//!
//! - rows of the transaction being read are never handed out for writing
//!   until its commit arrives (`take_committed`), except as an explicit
//!   `take_open_part` when it outgrew the memory budget;
//! - the checkpoint handed out with committed rows is the position after the
//!   last committed transaction; an idle server's position (a heartbeat) is
//!   taken only when nothing at all is held;
//! - a table put in `Error` loses what is held of it, the others keep theirs;
//! - when to write (`flush_at`, `flush_due`): adaptive batching, with the
//!   clock passed in.

use sluice_core::{Checkpoint, RowChange};
use std::time::{Duration, Instant};

/// Committed transactions taken out for writing.
#[derive(Debug)]
pub struct Committed {
    /// Rows per tracked table, in binlog order.
    pub rows: Vec<Vec<RowChange>>,
    pub count: u64,
    /// Durable once every row above is written.
    pub checkpoint: Checkpoint,
}

#[derive(Debug)]
pub struct Batch {
    committed: Vec<Vec<RowChange>>,
    committed_count: u64,
    /// Bytes the committed rows hold (`RowChange::heap_size`).
    committed_bytes: u64,
    checkpoint: Option<Checkpoint>,
    /// Source commit time (epoch seconds) of the oldest committed transaction held.
    oldest_ts: Option<u32>,
    /// When the batch was last written (the sync interval counts from here).
    pub opened: Instant,
    /// Per tracked table, when its changes were last taken out for writing (`None`: not yet).
    last_write: Vec<Option<Instant>>,
    open: Vec<Vec<RowChange>>,
    open_count: u64,
    open_bytes: u64,
    /// Parts of the open transaction were already taken out (it outgrew the budget).
    open_split: bool,
}

impl Batch {
    pub fn new(tables: usize) -> Self {
        Self {
            committed: vec![Vec::new(); tables],
            committed_count: 0,
            committed_bytes: 0,
            checkpoint: None,
            oldest_ts: None,
            opened: Instant::now(),
            last_write: vec![None; tables],
            open: vec![Vec::new(); tables],
            open_count: 0,
            open_bytes: 0,
            open_split: false,
        }
    }

    /// Row changes of the transaction being read, for tracked table `table`.
    /// Returns whether the open transaction now holds `limit` changes or
    /// `limit_bytes` bytes or more (the caller then writes the committed ones
    /// and `take_open_part`).
    pub fn add_rows(&mut self, table: usize, changes: Vec<RowChange>, limit: u64, limit_bytes: u64) -> bool {
        self.open_count += changes.len() as u64;
        self.open_bytes += changes.iter().map(RowChange::heap_size).sum::<u64>();
        if self.open[table].is_empty() {
            self.open[table] = changes;
        } else {
            self.open[table].extend(changes);
        }
        self.open_count >= limit || self.open_bytes >= limit_bytes
    }

    /// Bytes held, committed and open (what the batch's memory reservation covers).
    pub fn held_bytes(&self) -> u64 {
        self.committed_bytes + self.open_bytes
    }

    /// The transaction being read committed; the stream may resume at `checkpoint` once it is written.
    pub fn commit(&mut self, checkpoint: Checkpoint, timestamp: u32) {
        for (held, rows) in self.committed.iter_mut().zip(self.open.iter_mut()) {
            if held.is_empty() {
                std::mem::swap(held, rows);
            } else {
                held.append(rows);
            }
        }
        if self.open_count > 0 || self.open_split {
            self.oldest_ts.get_or_insert(timestamp);
        }
        self.committed_count += self.open_count;
        self.committed_bytes += std::mem::take(&mut self.open_bytes);
        self.open_count = 0;
        self.open_split = false;
        self.checkpoint = Some(checkpoint);
    }

    /// An idle server's position (`saved`: the durable checkpoint). Taken as
    /// the next checkpoint only when nothing is held and it is ahead (another
    /// file is a later one: file numbers are not compared, after a fail-over
    /// they are the new server's).
    pub fn idle_position(&mut self, at: Checkpoint, saved: &Checkpoint) {
        let newest = &self.checkpoint.as_ref().unwrap_or(saved).position;
        let ahead = at.position.file != newest.file || at.position.pos > newest.pos;
        if self.is_idle() && ahead {
            self.checkpoint = Some(at);
        }
    }

    /// Nothing held, committed or open.
    pub fn is_idle(&self) -> bool {
        self.committed_count == 0 && self.open_count == 0 && !self.open_split
    }

    /// Drops what is held of `table` (it went to `Error`).
    pub fn drop_table(&mut self, table: usize) {
        self.open_count -= self.open[table].len() as u64;
        self.committed_count -= self.committed[table].len() as u64;
        self.open_bytes -= self.open[table].iter().map(RowChange::heap_size).sum::<u64>();
        self.committed_bytes -= self.committed[table].iter().map(RowChange::heap_size).sum::<u64>();
        self.open[table].clear();
        self.committed[table].clear();
    }

    /// Committed changes held.
    #[cfg(test)]
    pub fn committed_count(&self) -> u64 {
        self.committed_count
    }

    /// When the committed changes held should be written (adaptive batching),
    /// given whether the stream has `caught_up` with the source (nothing more
    /// buffered to read right now). No table is written more often than once
    /// per `interval` (ClickHouse wants about one insert per second per
    /// table), so the batch waits until every table it holds rows of may be
    /// written again:
    /// - caught up: at once, or as soon as that per-table rate allows — a
    ///   quiet pipe writes a change as soon as it has read it;
    /// - under load (more to read): `interval` after the previous write
    ///   (`opened`), so batches grow with the load — or earlier when they
    ///   reach their bounds (`flush_due`);
    /// - nothing committed held: `interval` after the previous write (this
    ///   only moves the checkpoint past transactions on untracked tables).
    pub fn flush_at(&self, interval: Duration, caught_up: bool, now: Instant) -> Instant {
        let by_interval = self.opened + interval;
        if self.committed_count == 0 {
            return by_interval;
        }
        let rate_allows = self
            .committed
            .iter()
            .zip(&self.last_write)
            .filter(|(rows, _)| !rows.is_empty())
            .filter_map(|(_, written)| written.map(|w| w + interval))
            .max();
        match (caught_up, rate_allows) {
            (true, None) => now,
            (true, Some(at)) => at.max(now),
            (false, None) => by_interval,
            (false, Some(at)) => at.max(by_interval),
        }
    }

    /// Commit time of the oldest committed change held (for lag).
    pub fn oldest_ts(&self) -> Option<u32> {
        self.oldest_ts
    }

    /// Whether the committed part must be written now, whatever the time: it
    /// holds `max_rows` changes or `max_bytes` bytes (the largest batch; a
    /// load above one batch per interval writes more often, in full batches).
    pub fn flush_due(&self, max_rows: u64, max_bytes: u64) -> bool {
        self.committed_count >= max_rows || self.committed_bytes >= max_bytes
    }

    /// Takes the committed transactions (with the checkpoint after them), if
    /// there is a checkpoint to move to; `now` is when they are written.
    pub fn take_committed(&mut self, now: Instant) -> Option<Committed> {
        let checkpoint = self.checkpoint.take()?;
        let fresh = vec![Vec::new(); self.committed.len()];
        let rows = std::mem::replace(&mut self.committed, fresh);
        let count = std::mem::take(&mut self.committed_count);
        self.committed_bytes = 0;
        self.opened = self.opened.max(now);
        for (written, rows) in self.last_write.iter_mut().zip(&rows) {
            if !rows.is_empty() {
                *written = Some(now);
            }
        }
        self.oldest_ts = None;
        Some(Committed { rows, count, checkpoint })
    }

    /// Takes the open transaction's rows read so far (it outgrew the memory
    /// budget). Returns them, their count, and whether this is its first part.
    pub fn take_open_part(&mut self) -> (Vec<Vec<RowChange>>, u64, bool) {
        let fresh = vec![Vec::new(); self.open.len()];
        let rows = std::mem::replace(&mut self.open, fresh);
        let first = !self.open_split;
        self.open_split = true;
        self.open_bytes = 0;
        (rows, std::mem::take(&mut self.open_count), first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::{BinlogPosition, Cell, ChangeOp};

    fn cp(pos: u64) -> Checkpoint {
        Checkpoint { position: BinlogPosition::new("binlog.000001", pos), gtid_set: None }
    }

    fn rows(n: i64) -> Vec<RowChange> {
        (0..n).map(|i| RowChange { op: ChangeOp::Upsert, version: i, cells: vec![Cell::Int(i)] }).collect()
    }

    #[test]
    fn an_open_transaction_is_never_handed_out_before_its_commit() {
        let mut b = Batch::new(2);
        b.add_rows(0, rows(1), 100, u64::MAX);
        b.commit(cp(100), 10);
        // A debit is read, its credit not yet: only the first transaction is written.
        b.add_rows(0, rows(1), 100, u64::MAX);
        let c = b.take_committed(Instant::now()).unwrap();
        assert_eq!((c.count, c.checkpoint.position.pos, c.rows[0].len()), (1, 100, 1));
        assert!(b.take_committed(Instant::now()).is_none(), "no commit, nothing to write");
        b.add_rows(1, rows(1), 100, u64::MAX);
        b.commit(cp(200), 11);
        let c = b.take_committed(Instant::now()).unwrap();
        assert_eq!((c.count, c.rows[0].len(), c.rows[1].len(), c.checkpoint.position.pos), (2, 1, 1, 200));
    }

    #[test]
    fn a_transaction_over_the_budget_is_taken_in_parts_and_its_checkpoint_waits_for_the_commit() {
        let mut b = Batch::new(1);
        b.add_rows(0, rows(2), 10, u64::MAX);
        b.commit(cp(50), 1);
        assert!(!b.add_rows(0, rows(6), 10, u64::MAX));
        assert!(b.add_rows(0, rows(6), 10, u64::MAX), "12 changes reach the budget of 10");
        // The committed part goes first, with its checkpoint.
        let c = b.take_committed(Instant::now()).unwrap();
        assert_eq!((c.count, c.checkpoint.position.pos), (2, 50));
        let (part, n, first) = b.take_open_part();
        assert_eq!((part[0].len(), n, first), (12, 12, true));
        assert!(b.take_committed(Instant::now()).is_none(), "the checkpoint does not move mid-transaction");
        assert!(!b.is_idle());
        b.add_rows(0, rows(3), 10, u64::MAX);
        let (_, _, first) = b.take_open_part();
        assert!(!first);
        b.commit(cp(900), 2);
        let c = b.take_committed(Instant::now()).unwrap();
        assert_eq!((c.count, c.checkpoint.position.pos), (0, 900));
        assert!(b.is_idle());
    }

    #[test]
    fn an_idle_position_is_taken_only_when_nothing_is_held() {
        let saved = cp(100);
        let mut b = Batch::new(1);
        b.idle_position(cp(90), &saved);
        assert!(b.take_committed(Instant::now()).is_none(), "behind the checkpoint");
        b.add_rows(0, rows(1), 10, u64::MAX);
        b.idle_position(cp(300), &saved);
        assert!(b.take_committed(Instant::now()).is_none(), "a transaction is open");
        b.commit(cp(200), 1);
        b.idle_position(cp(300), &saved);
        assert_eq!(b.take_committed(Instant::now()).unwrap().checkpoint.position.pos, 200, "committed rows are held");
        b.idle_position(cp(300), &cp(200));
        assert_eq!(b.take_committed(Instant::now()).unwrap().checkpoint.position.pos, 300);
        let other = Checkpoint { position: BinlogPosition::new("other.000001", 4), gtid_set: None };
        b.idle_position(other, &cp(300));
        assert_eq!(b.take_committed(Instant::now()).unwrap().checkpoint.position.file, "other.000001", "another file is ahead");
    }

    #[test]
    fn a_table_in_error_loses_what_is_held_of_it_only() {
        let mut b = Batch::new(2);
        b.add_rows(0, rows(2), 100, u64::MAX);
        b.add_rows(1, rows(3), 100, u64::MAX);
        b.commit(cp(10), 1);
        b.add_rows(0, rows(4), 100, u64::MAX);
        b.add_rows(1, rows(5), 100, u64::MAX);
        b.drop_table(1);
        assert_eq!(b.committed_count(), 2);
        b.commit(cp(20), 2);
        let c = b.take_committed(Instant::now()).unwrap();
        assert_eq!((c.rows[0].len(), c.rows[1].len(), c.count), (6, 0, 6));
    }

    #[test]
    fn the_oldest_commit_time_is_kept_until_written() {
        let mut b = Batch::new(1);
        b.add_rows(0, rows(1), 10, u64::MAX);
        b.commit(cp(10), 100);
        b.add_rows(0, rows(1), 10, u64::MAX);
        b.commit(cp(20), 105);
        assert_eq!(b.oldest_ts(), Some(100));
        b.take_committed(Instant::now());
        assert_eq!(b.oldest_ts(), None);
        b.commit(cp(30), 110);
        assert_eq!(b.oldest_ts(), None, "an empty transaction holds nothing");
    }

    /// One committed transaction of `n` changes to `table`.
    fn txn(b: &mut Batch, table: usize, n: i64, pos: u64) {
        b.add_rows(table, rows(n), u64::MAX, u64::MAX);
        b.commit(cp(pos), 1);
    }

    #[test]
    fn a_caught_up_stream_writes_at_once_but_at_most_once_per_interval() {
        let second = Duration::from_secs(1);
        let ms = Duration::from_millis;
        let mut b = Batch::new(1);
        let t0 = Instant::now();
        b.opened = t0;
        // Nothing held: the interval decides, caught up or not.
        assert_eq!(b.flush_at(second, true, t0), t0 + second);
        txn(&mut b, 0, 1, 10);
        // Under load: at the end of the interval.
        assert_eq!(b.flush_at(second, false, t0 + ms(5)), t0 + second);
        // Caught up, never written before: now.
        assert_eq!(b.flush_at(second, true, t0 + ms(5)), t0 + ms(5));
        let _ = b.take_committed(t0 + ms(5)).expect("committed");
        b.opened = t0 + ms(8);
        txn(&mut b, 0, 1, 20);
        // Caught up right after a write: an interval after it, not sooner.
        assert_eq!(b.flush_at(second, true, t0 + ms(300)), t0 + ms(1005));
        // Long after the last write: at once again.
        assert_eq!(b.flush_at(second, true, t0 + ms(4000)), t0 + ms(4000));
    }

    #[test]
    fn the_insert_rate_is_bounded_per_table() {
        let second = Duration::from_secs(1);
        let ms = Duration::from_millis;
        let t0 = Instant::now();
        let mut b = Batch::new(3);
        b.opened = t0;
        txn(&mut b, 0, 5, 10);
        let c = b.take_committed(t0).unwrap();
        assert_eq!(c.count, 5);
        b.opened = t0 + ms(20);
        // Table 1 was never written: a change to it goes out at once, table 0's write does not hold it back.
        txn(&mut b, 1, 1, 20);
        assert_eq!(b.flush_at(second, true, t0 + ms(100)), t0 + ms(100));
        // Table 0 again, with table 1's change still held: the batch waits for table 0's rate.
        txn(&mut b, 0, 1, 30);
        assert_eq!(b.flush_at(second, true, t0 + ms(100)), t0 + second);
        b.take_committed(t0 + second).unwrap();
        b.opened = t0 + second;
        // Both tables just written; table 2 is free but a change to table 1 waits with it.
        txn(&mut b, 2, 1, 40);
        assert_eq!(b.flush_at(second, true, t0 + ms(1200)), t0 + ms(1200));
        txn(&mut b, 1, 1, 50);
        assert_eq!(b.flush_at(second, true, t0 + ms(1200)), t0 + ms(2000));
        // Under load the per-table rate holds too, even when the interval since `opened` is shorter.
        b.opened = t0 + ms(1500);
        assert_eq!(b.flush_at(second, false, t0 + ms(1600)), t0 + ms(2500));
        // A batch at its bounds is due whatever the clock says.
        assert!(!b.flush_due(3, u64::MAX));
        txn(&mut b, 1, 1, 60);
        assert!(b.flush_due(3, u64::MAX));
    }

    #[test]
    fn under_load_batches_grow_with_the_rate_up_to_their_bounds() {
        // A stream never caught up, 1 s interval, a 5,000-change bound: the
        // decision is replayed with an injected clock and `n` changes per ms.
        let batches = |per_ms: i64| -> Vec<u64> {
            let t0 = Instant::now();
            let mut b = Batch::new(1);
            b.opened = t0;
            let mut out = Vec::new();
            for ms in 1..=3000u64 {
                let now = t0 + Duration::from_millis(ms);
                txn(&mut b, 0, per_ms, ms);
                if b.flush_due(5_000, u64::MAX) || b.flush_at(Duration::from_secs(1), false, now) <= now {
                    out.push(b.take_committed(now).unwrap().count);
                    b.opened = now;
                }
            }
            out
        };
        assert_eq!(batches(1), vec![1000, 1000, 1000], "1,000 changes/s: one insert a second");
        assert_eq!(batches(4), vec![4000, 4000, 4000], "4,000 changes/s: still one, four times larger");
        let fast = batches(20);
        assert!(fast.len() == 12 && fast.iter().all(|&n| n == 5000), "20,000 changes/s: full batches, {fast:?}");
    }

    #[test]
    fn bytes_bound_the_batch_and_the_open_transaction() {
        let wide = |n: usize| -> Vec<RowChange> {
            (0..n).map(|_| RowChange { op: ChangeOp::Upsert, version: 1, cells: vec![Cell::Bytes(vec![1; 1 << 20])] }).collect()
        };
        let mut b = Batch::new(2);
        assert!(!b.add_rows(0, wide(2), 1_000, 3 << 20));
        assert!(b.add_rows(1, wide(2), 1_000, 3 << 20), "4 MiB open reach 3 MiB");
        assert!(b.held_bytes() >= 4 << 20);
        let (_, n, first) = b.take_open_part();
        assert!(n == 4 && first && b.held_bytes() == 0);
        b.add_rows(0, wide(3), 1_000, u64::MAX);
        b.commit(cp(10), 1);
        assert!(b.flush_due(1_000, 3 << 20), "3 MiB committed reach 3 MiB");
        assert!(!b.flush_due(1_000, 4 << 20));
        assert!(b.flush_due(3, 4 << 20), "3 changes reach 3");
        b.drop_table(0);
        assert_eq!(b.held_bytes(), 0);
        b.add_rows(1, wide(1), 1_000, u64::MAX);
        b.commit(cp(20), 2);
        let held = b.held_bytes();
        assert!(held >= 1 << 20);
        assert!(b.take_committed(Instant::now()).is_some());
        assert_eq!(b.held_bytes(), 0);
    }
}
