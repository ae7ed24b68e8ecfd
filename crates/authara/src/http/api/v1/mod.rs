//! JSON API v1 under `/auth/api/v1`.

pub mod csrf;
pub mod session;
pub mod user;

pub use user::UserBody;
