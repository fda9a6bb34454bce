//! Sluice control plane: the long-running server (pipe manager + REST API),
//! and the `sluice pipe ...` CLI client that talks to it.

pub mod alerts;
pub mod api;
pub mod client;
pub mod lock;
pub mod manager;
mod owner;
pub mod placement;
pub mod preflight;
pub use owner::{real_engine, EngineFuture, EngineResult, EngineStarter};
pub mod series;
pub mod server;
pub mod sources;
pub mod ui;
pub mod verify;
pub mod workers_api;
