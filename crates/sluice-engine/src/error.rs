//! Engine errors: what went wrong, and whether waiting and retrying can help.

use sluice_catalog::CatalogError;
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
    pub fn is_transient(&self) -> bool {
        match self {
            EngineError::Source(e) => e.is_transient(),
            EngineError::Sink(e) => e.is_transient(),
            EngineError::Catalog(e) => e.is_busy(),
            _ => false,
        }
    }

    pub fn is_cancelled(&self) -> bool {
        matches!(self, EngineError::Cancelled)
    }
}
