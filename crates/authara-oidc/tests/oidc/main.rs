//! The OpenID Connect adapter against a real identity provider on 127.0.0.1 (`idp.rs`): its JWKS
//! with RSA and EC keys, rotation and `Cache-Control`, and the ID tokens it signs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test: a failed expectation must fail it"
)]

mod idp;
mod verify;
