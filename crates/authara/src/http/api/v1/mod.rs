//! JSON API v1 under `/auth/api/v1`.

pub mod csrf;
pub mod login;
pub mod password;
pub mod session;
pub mod sessions;
pub mod signup;
pub mod tokens;
pub mod user;

pub use user::UserBody;
