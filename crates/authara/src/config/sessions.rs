//! `AUTHARA_SESSIONS_MAX_PER_USER`: how many live sessions one user may hold.
//!
//! A new session (login, signup) beyond the cap revokes the user's oldest live sessions, in the
//! same transaction as the insert. The default, 50, is far above what one person's browsers and
//! devices hold at once, yet bounds the live rows (and the account page's list) of a user whose
//! credentials a script logs in with over and over.

use super::{ConfigError, Env};

/// The variable's name.
pub const SESSIONS_MAX_PER_USER: &str = "AUTHARA_SESSIONS_MAX_PER_USER";

/// The default cap.
pub const DEFAULT_MAX_PER_USER: u32 = 50;

/// The cap, `1..=1000`.
pub(super) fn max_per_user(e: &Env<'_>) -> Result<u32, ConfigError> {
    e.whole(SESSIONS_MAX_PER_USER, DEFAULT_MAX_PER_USER, 1, 1000, "")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::super::Config;
    use super::*;

    fn load(value: Option<&str>) -> Result<u32, ConfigError> {
        Config::from_lookup(|k| {
            (k == SESSIONS_MAX_PER_USER)
                .then(|| value.map(str::to_owned))
                .flatten()
        })
        .map(|c| c.session.max_sessions_per_user)
    }

    #[test]
    fn the_cap_defaults_to_50_and_takes_1_to_1000() {
        assert_eq!(load(None).unwrap(), 50);
        assert_eq!(load(Some("")).unwrap(), 50);
        assert_eq!(load(Some("1")).unwrap(), 1);
        assert_eq!(load(Some(" 1000 ")).unwrap(), 1000);
        for bad in ["0", "1001", "-1", "ten", "4294967296"] {
            let e = load(Some(bad)).unwrap_err();
            assert_eq!(e.var, SESSIONS_MAX_PER_USER, "{bad}");
            assert!(e.message.contains("from 1 to 1000"), "{bad}: {}", e.message);
        }
    }
}
