//! Authara's core: domain types, services and the storage interface.
//! Depends on neither axum nor sqlx; the compiler keeps it that way.

pub mod audit;
pub mod auth;
pub mod challenge;
pub mod clock;
pub mod csrf;
pub mod digest;
pub mod domain;
pub mod events;
pub mod identity;
pub mod invitation;
pub mod jwt;
pub mod limits;
pub mod mail;
pub mod org;
pub mod outbox;
pub mod random;
pub mod session;
pub mod store;
