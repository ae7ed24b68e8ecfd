//! JSON API v1 under `/auth/api/v1`.

pub mod challenges;
pub mod csrf;
pub mod invitations;
pub mod login;
pub mod oauth;
pub mod organizations;
pub mod password;
pub mod password_reset;
pub mod session;
pub mod sessions;
pub mod signup;
pub mod tokens;
pub mod user;

pub use user::UserBody;
