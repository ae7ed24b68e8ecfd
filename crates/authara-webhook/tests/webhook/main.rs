//! The webhook crate's integration tests: the real workers and HTTP client against a real
//! receiver on loopback, over an in-memory outbox.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod delivery;
mod maintenance;
#[allow(dead_code)] // the email half serves `authara-smtp`'s tests
mod outbox;
mod support;
