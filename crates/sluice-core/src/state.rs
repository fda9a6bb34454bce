//! The pipe lifecycle: the state names users see in logs, the CLI and the API.
//!
//! Names follow the MySQL ClickPipe lifecycle (see shared/NOTES.md §1) exactly.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a pipe is in its life. `Display`/`FromStr` use the exact user-facing names.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PipeState {
    Provisioning,
    Setup,
    Snapshot,
    Running,
    Pausing,
    Paused,
    Modifying,
    Resync,
    Completed,
    Failed,
}

impl PipeState {
    pub const ALL: [PipeState; 10] = [
        PipeState::Provisioning,
        PipeState::Setup,
        PipeState::Snapshot,
        PipeState::Running,
        PipeState::Pausing,
        PipeState::Paused,
        PipeState::Modifying,
        PipeState::Resync,
        PipeState::Completed,
        PipeState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PipeState::Provisioning => "Provisioning",
            PipeState::Setup => "Setup",
            PipeState::Snapshot => "Snapshot",
            PipeState::Running => "Running",
            PipeState::Pausing => "Pausing",
            PipeState::Paused => "Paused",
            PipeState::Modifying => "Modifying",
            PipeState::Resync => "Resync",
            PipeState::Completed => "Completed",
            PipeState::Failed => "Failed",
        }
    }

    /// States from which the engine has nothing left to do on its own.
    pub fn is_terminal(self) -> bool {
        matches!(self, PipeState::Completed | PipeState::Failed)
    }
}

impl fmt::Display for PipeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PipeState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PipeState::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| format!("unknown pipe state {s:?}"))
    }
}

/// Where one table of a pipe is in its own sync (shown per table in the API).
///
/// The initial copy goes `Setup → Snapshot → Snapshotted → Running`; a table
/// added to a live pipe is copied while CDC already applies its changes
/// (`Adding → Running`); a resync copies into `<table>_resync` while CDC
/// writes to both tables (`Resync → Swapping → Running`); a table whose source
/// changed in a way Sluice cannot follow is `Error` until it is resynced, and
/// CDC skips it meanwhile.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TableState {
    Setup,
    Snapshot,
    Snapshotted,
    Running,
    Adding,
    Resync,
    Swapping,
    Error,
}

impl TableState {
    pub const ALL: [TableState; 8] = [
        TableState::Setup,
        TableState::Snapshot,
        TableState::Snapshotted,
        TableState::Running,
        TableState::Adding,
        TableState::Resync,
        TableState::Swapping,
        TableState::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TableState::Setup => "Setup",
            TableState::Snapshot => "Snapshot",
            TableState::Snapshotted => "Snapshotted",
            TableState::Running => "Running",
            TableState::Adding => "Adding",
            TableState::Resync => "Resync",
            TableState::Swapping => "Swapping",
            TableState::Error => "Error",
        }
    }

    /// A copy that runs while CDC applies the table's changes (added or resynced tables).
    pub fn copies_alongside_cdc(self) -> bool {
        matches!(self, TableState::Adding | TableState::Resync)
    }

    /// The one table of allowed table-state transitions: the states this one
    /// may move to, besides staying where it is (always allowed: a state is
    /// written again with a new error text, or after a restart).
    ///
    /// - initial copy: `Setup → Snapshot → Snapshotted → Running` (a copy that
    ///   needed no partition plan goes `Setup → Snapshotted`); a CDC-only pipe's
    ///   tables go `Setup → Running` when CDC starts;
    /// - added tables: `Adding → Running` once copied;
    /// - resync: `Resync → Swapping → Running`;
    /// - any state → `Resync` (a user's resync, or a table replaced on the
    ///   source) and any state → `Error` (a change Sluice cannot follow, a
    ///   failed copy);
    /// - recovery from `Error`: `Resync`, or `Adding` (copied again as if added).
    pub fn next_states(self) -> &'static [TableState] {
        use TableState as T;
        match self {
            T::Setup => &[T::Snapshot, T::Snapshotted, T::Running, T::Resync, T::Error],
            T::Snapshot => &[T::Snapshotted, T::Resync, T::Error],
            T::Snapshotted => &[T::Running, T::Resync, T::Error],
            T::Running => &[T::Resync, T::Error],
            T::Adding => &[T::Running, T::Resync, T::Error],
            T::Resync => &[T::Swapping, T::Error],
            T::Swapping => &[T::Running, T::Resync, T::Error],
            T::Error => &[T::Resync, T::Adding],
        }
    }

    /// Whether a table in this state may be moved to `to` (see [`TableState::next_states`]).
    pub fn can_become(self, to: TableState) -> bool {
        self == to || self.next_states().contains(&to)
    }

    /// The states a table may be recorded in when it joins a pipe: `Setup` at
    /// the pipe's Setup, `Adding` (to be copied) or `Running` (CDC-only pipes)
    /// when added to a live pipe.
    pub fn can_start_as(self) -> bool {
        matches!(self, TableState::Setup | TableState::Adding | TableState::Running)
    }
}

/// A table-state change that the transition table does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("table {table} cannot go from {} to {to}", from.map_or("(new)".to_string(), |f| f.to_string()))]
pub struct IllegalTableTransition {
    pub table: String,
    /// `None`: the table is being recorded for the first time.
    pub from: Option<TableState>,
    pub to: TableState,
}

/// Checks a table-state change against the table (`from: None`: a new table).
pub fn table_transition(table: &str, from: Option<TableState>, to: TableState) -> Result<TableState, IllegalTableTransition> {
    let ok = match from {
        Some(f) => f.can_become(to),
        None => to.can_start_as(),
    };
    if ok {
        Ok(to)
    } else {
        Err(IllegalTableTransition { table: table.to_string(), from, to })
    }
}

impl fmt::Display for TableState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TableState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TableState::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| format!("unknown table state {s:?}"))
    }
}

/// The name of the table a resync copies into, swapped in when the copy is complete.
pub fn resync_table_name(destination: &str) -> String {
    format!("{destination}_resync")
}

/// Everything that can move a pipe: user requests and engine progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PipeAction {
    /// Engine: resources are ready.
    Provisioned,
    /// Engine: destination tables exist and schemas are recorded (`to` Snapshot, or Running for CDC-only pipes).
    SetupDone,
    /// Engine: every table is copied (`to` Running, or Completed for snapshot-only pipes).
    SnapshotDone,
    /// User: stop pulling changes after flushing the batch in flight.
    Pause,
    /// Engine: the in-flight batch is flushed and checkpointed.
    Stopped,
    /// User: continue a paused pipe (`to` Running, or Snapshot if its copy was unfinished).
    Resume,
    /// User: re-copy the tables into `<table>_resync` and swap them in.
    Resync,
    /// Engine: a resync or table change is done.
    Finished,
    /// User: add or remove tables.
    ModifyTables,
    /// Engine: an unrecoverable error.
    Fail,
    /// Engine: a Setup that failed before recording anything is tried again.
    RetrySetup,
}

impl PipeAction {
    pub const ALL: [PipeAction; 11] = [
        PipeAction::Provisioned,
        PipeAction::SetupDone,
        PipeAction::SnapshotDone,
        PipeAction::Pause,
        PipeAction::Stopped,
        PipeAction::Resume,
        PipeAction::Resync,
        PipeAction::Finished,
        PipeAction::ModifyTables,
        PipeAction::Fail,
        PipeAction::RetrySetup,
    ];

    /// Whether a user (API/CLI) may request this action, rather than only the engine.
    pub fn is_user_request(self) -> bool {
        matches!(self, PipeAction::Pause | PipeAction::Resume | PipeAction::Resync | PipeAction::ModifyTables)
    }
}

/// A request that the pipe's current state does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action:?} a pipe that is {state}")]
pub struct IllegalTransition {
    pub state: PipeState,
    pub action: PipeAction,
}

/// The one table of allowed transitions. Where an action has two possible
/// targets, `to` picks one of them and anything else is refused.
pub fn transition(state: PipeState, action: PipeAction, to: PipeState) -> Result<PipeState, IllegalTransition> {
    use PipeAction as A;
    use PipeState as S;
    let allowed: &[S] = match (state, action) {
        (S::Provisioning, A::Provisioned) => &[S::Setup],
        (S::Setup, A::SetupDone) => &[S::Snapshot, S::Running],
        (S::Snapshot, A::SnapshotDone) => &[S::Running, S::Completed],
        (S::Snapshot | S::Running, A::Pause) => &[S::Pausing],
        (S::Pausing, A::Stopped) => &[S::Paused],
        (S::Paused, A::Resume) => &[S::Running, S::Snapshot],
        (S::Running | S::Paused | S::Failed, A::Resync) => &[S::Resync],
        (S::Running | S::Paused, A::ModifyTables) => &[S::Modifying],
        (S::Resync, A::Finished) => &[S::Running, S::Snapshot],
        (S::Modifying, A::Finished) => &[S::Running, S::Snapshot, S::Paused],
        (S::Provisioning | S::Setup | S::Snapshot | S::Running | S::Pausing | S::Modifying | S::Resync, A::Fail) => &[S::Failed],
        (S::Failed, A::RetrySetup) => &[S::Setup],
        _ => &[],
    };
    if allowed.contains(&to) {
        Ok(to)
    } else {
        Err(IllegalTransition { state, action })
    }
}

/// The targets an action can have from a state (empty when it is not allowed).
pub fn targets(state: PipeState, action: PipeAction) -> Vec<PipeState> {
    PipeState::ALL.into_iter().filter(|to| transition(state, action, *to).is_ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for st in PipeState::ALL {
            assert_eq!(st.as_str().parse::<PipeState>().unwrap(), st);
        }
        assert!("running".parse::<PipeState>().is_err());
    }

    /// Every (state, action) pair against the expected table, written out independently.
    #[test]
    fn transition_table_is_exhaustive() {
        use PipeAction as A;
        use PipeState as S;
        let expected: &[(S, A, &[S])] = &[
            (S::Provisioning, A::Provisioned, &[S::Setup]),
            (S::Provisioning, A::Fail, &[S::Failed]),
            (S::Setup, A::SetupDone, &[S::Snapshot, S::Running]),
            (S::Setup, A::Fail, &[S::Failed]),
            (S::Snapshot, A::SnapshotDone, &[S::Running, S::Completed]),
            (S::Snapshot, A::Pause, &[S::Pausing]),
            (S::Snapshot, A::Fail, &[S::Failed]),
            (S::Running, A::Pause, &[S::Pausing]),
            (S::Running, A::Resync, &[S::Resync]),
            (S::Running, A::ModifyTables, &[S::Modifying]),
            (S::Running, A::Fail, &[S::Failed]),
            (S::Pausing, A::Stopped, &[S::Paused]),
            (S::Pausing, A::Fail, &[S::Failed]),
            (S::Paused, A::Resume, &[S::Snapshot, S::Running]),
            (S::Paused, A::Resync, &[S::Resync]),
            (S::Paused, A::ModifyTables, &[S::Modifying]),
            (S::Modifying, A::Finished, &[S::Snapshot, S::Running, S::Paused]),
            (S::Modifying, A::Fail, &[S::Failed]),
            (S::Resync, A::Finished, &[S::Snapshot, S::Running]),
            (S::Resync, A::Fail, &[S::Failed]),
            (S::Failed, A::Resync, &[S::Resync]),
            (S::Failed, A::RetrySetup, &[S::Setup]),
        ];
        let mut checked = 0;
        for state in PipeState::ALL {
            for action in PipeAction::ALL {
                let want: Vec<S> =
                    expected.iter().find(|(s, a, _)| *s == state && *a == action).map(|(_, _, t)| t.to_vec()).unwrap_or_default();
                assert_eq!(targets(state, action), want, "{state} + {action:?}");
                for to in PipeState::ALL {
                    let r = transition(state, action, to);
                    assert_eq!(r.is_ok(), want.contains(&to), "{state} + {action:?} -> {to}");
                    if let Err(e) = r {
                        assert_eq!(e, IllegalTransition { state, action });
                    }
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 110);
        // Completed is terminal: nothing moves it.
        assert!(PipeAction::ALL.iter().all(|a| targets(S::Completed, *a).is_empty()));
    }

    /// Every (from, to) pair of table states against the expected table, written out independently.
    #[test]
    fn table_transition_table_is_exhaustive() {
        use TableState as T;
        let expected: &[(T, T)] = &[
            (T::Setup, T::Snapshot),
            (T::Setup, T::Snapshotted),
            (T::Setup, T::Running),
            (T::Setup, T::Resync),
            (T::Setup, T::Error),
            (T::Snapshot, T::Snapshotted),
            (T::Snapshot, T::Resync),
            (T::Snapshot, T::Error),
            (T::Snapshotted, T::Running),
            (T::Snapshotted, T::Resync),
            (T::Snapshotted, T::Error),
            (T::Running, T::Resync),
            (T::Running, T::Error),
            (T::Adding, T::Running),
            (T::Adding, T::Resync),
            (T::Adding, T::Error),
            (T::Resync, T::Swapping),
            (T::Resync, T::Error),
            (T::Swapping, T::Running),
            (T::Swapping, T::Resync),
            (T::Swapping, T::Error),
            (T::Error, T::Resync),
            (T::Error, T::Adding),
        ];
        let mut allowed = 0;
        for from in T::ALL {
            for to in T::ALL {
                let want = from == to || expected.contains(&(from, to));
                assert_eq!(from.can_become(to), want, "{from} -> {to}");
                let r = table_transition("t", Some(from), to);
                assert_eq!(r.is_ok(), want, "{from} -> {to}");
                if let Err(e) = r {
                    assert_eq!(e.to_string(), format!("table t cannot go from {from} to {to}"));
                }
                allowed += want as usize;
            }
        }
        assert_eq!(allowed, expected.len() + T::ALL.len());
        // Everything can be resynced or put in Error; Error leaves only by a recovery.
        assert!(T::ALL.iter().all(|s| s.can_become(T::Resync) && s.can_become(T::Error)));
        assert!(!T::Error.can_become(T::Running));
        // New tables start in Setup, Adding or Running only.
        for to in T::ALL {
            let r = table_transition("s.t", None, to);
            assert_eq!(r.is_ok(), matches!(to, T::Setup | T::Adding | T::Running), "new -> {to}");
        }
        assert_eq!(table_transition("s.t", None, T::Swapping).unwrap_err().to_string(), "table s.t cannot go from (new) to Swapping");
    }
}
