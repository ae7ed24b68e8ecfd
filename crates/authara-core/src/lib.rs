//! Authara's core: domain types, services and the storage interface.
//! Depends on neither axum nor sqlx; the compiler keeps it that way.

pub mod clock;
pub mod store;
