//! The Authara server: configuration, HTTP layer and wiring. The binary in `main.rs` is a thin
//! command-line front over this library, which tests drive directly.

pub mod cli;
pub mod config;
pub mod http;
pub mod network;
pub mod server;
pub mod state;
