//! The pipe's version clock: where `_peerdb_version` values come from.
//!
//! Versions are drawn from a counter kept in the catalog, not derived from
//! binlog positions, so that they keep growing when CDC resumes by GTID on
//! another server of the topology (a fail-over), whose binlog files and
//! offsets have nothing to do with the old server's. The rules that keep
//! `FINAL` equal to the source:
//! - a block of versions is reserved durably before any of them is written,
//!   so a restart never hands out a version at or below one already written:
//!   a replayed change gets a higher version than its first write, and the
//!   last replayed change of a row still wins;
//! - within a stream, versions grow in binlog order;
//! - a copy's snapshot version is reserved before the stream that applies the
//!   table's changes starts, so every change that stream applies is above it;
//! - no reservation goes below `floor()`, wall-clock microseconds × 1024, so a
//!   pipe created again over destination tables that still hold an older
//!   pipe's rows writes above them. (A pipe never outruns the floor in
//!   practice: that would take over a billion changes per second.)

use crate::{EngineError, PipeContext};
use sluice_catalog::CatalogStore;
use sluice_core::RowChange;
use sluice_source::ChangeSource;

/// Versions reserved at once by a stream (one catalog write per block).
const BLOCK: i64 = 1 << 20;

/// The lowest version a reservation made now may return.
pub fn floor() -> i64 {
    let micros = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0);
    micros.saturating_mul(1024)
}

/// Reserves `n` versions and returns the first. A pipe created before the
/// clock existed wrote versions derived from binlog positions; its clock
/// starts above the version of the source's current position, which is above
/// every one of them.
pub async fn reserve(catalog: &dyn CatalogStore, pipe: &str, source: &dyn ChangeSource, n: i64) -> Result<i64, EngineError> {
    let mut floor = floor();
    if catalog.next_version(pipe).await?.is_none() {
        let position = source.position().await?.position;
        if let Ok(v) = position.version(0) {
            floor = floor.max(v + 1);
        }
    }
    Ok(catalog.reserve_versions(pipe, n, floor).await?)
}

/// A stream's supply of versions: a reserved block, renewed when used up.
pub struct VersionClock {
    next: i64,
    end: i64,
}

impl VersionClock {
    /// Reserves the stream's first block.
    pub async fn start(ctx: &PipeContext) -> Result<Self, EngineError> {
        let next = reserve(ctx.catalog.as_ref(), ctx.name(), ctx.source.as_ref(), BLOCK).await?;
        Ok(Self { next, end: next + BLOCK })
    }

    /// Gives `changes` the next versions, in order.
    pub async fn stamp(&mut self, ctx: &PipeContext, changes: &mut [RowChange]) -> Result<(), EngineError> {
        let n = changes.len() as i64;
        if self.end - self.next < n {
            let size = BLOCK.max(n);
            // A busy catalog delays the stream; it does not interrupt it.
            self.next = crate::retry::retry(ctx, "reserving versions", || async {
                Ok(ctx.catalog.reserve_versions(ctx.name(), size, floor()).await?)
            })
            .await?;
            self.end = self.next + size;
        }
        for (c, v) in changes.iter_mut().zip(self.next..) {
            c.version = v;
        }
        self.next += n;
        Ok(())
    }
}
