//! The pipe lifecycle: the state names users see in logs, the CLI and the API.
//!
//! Names follow the MySQL ClickPipe lifecycle (see shared/NOTES.md §1) exactly.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a pipe is in its life. `Display`/`FromStr` use the exact user-facing names.
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
        PipeState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown pipe state {s:?}"))
    }
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
}
