//! Domain values validated once, at the edge: a value of these types is known to be well-formed.

mod email;
mod password;
mod return_to;
mod text;
mod username;

pub use email::{Email, EmailError, MAX_EMAIL_LEN};
pub use password::{Password, PasswordError, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};
pub use return_to::{ReturnTo, MAX_RETURN_TO};
pub use text::{has_forbidden_char, is_forbidden_char, sanitise};
pub use username::{Username, UsernameError, MAX_USERNAME_CHARS, MIN_USERNAME_CHARS};
