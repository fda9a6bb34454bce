//! Named crash points for tests: with the `failpoints` feature (tests only;
//! release builds leave it off), `failpoint!("name")` ends the process at once
//! — like `kill -9` at exactly that instant — when the `FAILPOINTS`
//! environment variable configures `name` (the `fail` crate's syntax, e.g.
//! `FAILPOINTS='cdc-after-write-before-checkpoint=3*off->return'` crashes at
//! its fourth pass). Without the feature the macro expands to nothing.
//!
//! The points, each named after the instant it breaks:
//! - `cdc-after-write-before-checkpoint`: ClickHouse acknowledged a batch, its checkpoint is not saved;
//! - `cdc-mid-large-transaction`: part of a transaction too large to hold was written, its commit not read;
//! - `resync-after-exchange-before-catalog`: `EXCHANGE TABLES` done, the catalog still says `Swapping`;
//! - `schema-after-alter-before-record`: the destination `ALTER` done, the new definition not recorded;
//! - `snapshot-after-chunk-before-progress`: a snapshot chunk written, its partition progress not saved.

/// Crashes the process when the named failpoint is configured (feature `failpoints`).
#[macro_export]
macro_rules! failpoint {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        {
            if fail::eval($name, |_| ()).is_some() {
                $crate::failpoints::crash($name);
            }
        }
    };
}

/// Ends the process without unwinding or flushing anything, as `kill -9` would.
#[cfg(feature = "failpoints")]
pub fn crash(name: &str) -> ! {
    eprintln!("failpoint {name}: crashing the process");
    std::process::exit(86)
}

/// Keeps the failpoint configuration alive (nothing without the feature).
#[cfg(feature = "failpoints")]
pub type Guard = fail::FailScenario<'static>;
#[cfg(not(feature = "failpoints"))]
pub type Guard = ();

/// Reads `FAILPOINTS` from the environment (feature `failpoints`; otherwise
/// does nothing); keep the returned guard for the process lifetime.
#[allow(clippy::needless_return)]
pub fn setup() -> Guard {
    #[cfg(feature = "failpoints")]
    return fail::FailScenario::setup();
}
