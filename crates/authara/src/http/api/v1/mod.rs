//! JSON API v1 under `/auth/api/v1`.

pub mod csrf;
pub mod login;
pub mod session;
pub mod signup;
pub mod tokens;
pub mod user;

pub use user::UserBody;
