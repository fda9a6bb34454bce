//! Sluice control plane: the long-running server (pipe manager + REST API),
//! and the `sluice pipe ...` CLI client that talks to it.

pub mod api;
pub mod client;
pub mod manager;
pub mod server;
pub mod ui;
