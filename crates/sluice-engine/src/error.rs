//! Engine errors: what went wrong, and how far it reaches (`Severity`):
//! retry it, stop one table, or fail the pipe.

use sluice_catalog::CatalogError;
use sluice_core::Severity;
use sluice_sink::SinkError;
use sluice_source::SourceError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("{0}")]
    Spec(String),
    #[error("stopped")]
    Cancelled,
}

impl EngineError {
    /// How far the error reaches; decided by the layer that raised it.
    pub fn severity(&self) -> Severity {
        match self {
            EngineError::Source(e) => e.severity(),
            EngineError::Sink(e) => e.severity(),
            EngineError::Catalog(e) => e.severity(),
            EngineError::Spec(_) | EngineError::Cancelled => Severity::Fatal,
        }
    }

    pub fn is_transient(&self) -> bool {
        self.severity() == Severity::Transient
    }

    pub fn is_cancelled(&self) -> bool {
        matches!(self, EngineError::Cancelled)
    }
}
