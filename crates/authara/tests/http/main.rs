//! HTTP integration tests: the real server on a random port, a real client with a cookie jar.
//! Every test runs on SQLite and, when `AUTHARA_TEST_POSTGRES_URL` is set, on PostgreSQL; the
//! browser end-to-end test (`browser`) runs on SQLite only.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod dbstate;
mod helpers;
mod idp;
/// The test keys (and signing) of `authara-oidc`'s test provider, shared rather than copied.
#[path = "../../../authara-oidc/tests/oidc/idp.rs"]
#[allow(dead_code)]
mod oidc_idp;
mod raw;
mod receiver;
/// The test SMTP server of `authara-smtp`'s tests, shared rather than copied.
#[path = "../../../authara-smtp/tests/smtp/server.rs"]
#[allow(dead_code)]
mod smtp_server;

mod account;
mod api;
mod audit;
mod browser;
mod cli;
mod code_flow;
mod csrf;
mod email;
mod faults;
mod go_verifier;
mod google;
mod hostile;
mod invitations;
mod json_api;
mod limits;
mod limits_conn;
mod login;
mod openapi;
mod organizations;
mod password;
mod security;
mod session_api;
mod sessions;
mod sessions_cap;
mod sweep;
mod webhooks;
