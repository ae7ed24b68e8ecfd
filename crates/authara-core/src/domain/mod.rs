//! Domain values validated once, at the edge: a value of these types is known to be well-formed.

mod email;
mod password;
mod return_to;
mod username;

pub use email::{Email, EmailError, MAX_EMAIL_LEN};
pub use password::{Password, PasswordError};
pub use return_to::ReturnTo;
pub use username::{Username, UsernameError};
