//! Sessions: token lifetimes, refresh rotation and its reuse grace, the per-user session cap
//! and the live-session cache.
//!
//! A rotation interval that is zero (`0`, `0s`, ...) means [`Rotation::Off`], like `off`.
//!
//! `AUTHARA_SESSIONS_MAX_PER_USER`: a new session (login, signup) beyond the cap revokes the
//! user's oldest live sessions, in the same transaction as the insert. The default, 50, is far
//! above what one person's browsers and devices hold at once, yet bounds the live rows (and the
//! account page's list) of a user whose credentials a script logs in with over and over.

use super::duration::{human, parse_duration, to_time};
use super::env::{err, shown, Env};
use super::ConfigError;
use authara_core::session::{Rotation, SessionPolicy};
use std::time::Duration;

/// The names of this section's variables.
pub mod var {
    /// Access token lifetime.
    pub const ACCESS_TTL: &str = "AUTHARA_ACCESS_TOKEN_TTL_MINUTES";
    /// Absolute session lifetime.
    pub const SESSION_TTL: &str = "AUTHARA_SESSION_TTL_DAYS";
    /// Refresh token lifetime.
    pub const REFRESH_TTL: &str = "AUTHARA_REFRESH_TOKEN_TTL_DAYS";
    /// Refresh token rotation.
    pub const ROTATION: &str = "AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL";
    /// Reuse grace window.
    pub const REUSE_GRACE: &str = "AUTHARA_REFRESH_TOKEN_REUSE_GRACE";
    /// How many live sessions one user may hold.
    pub const SESSIONS_MAX_PER_USER: &str = "AUTHARA_SESSIONS_MAX_PER_USER";
    /// Seconds a live session may be answered from memory; 0 turns the cache off.
    pub const SESSION_CACHE_SECONDS: &str = "AUTHARA_SESSION_CACHE_SECONDS";
}

use var::*;

/// The default cap of live sessions per user.
pub const DEFAULT_MAX_PER_USER: u32 = 50;

const HOUR: Duration = Duration::from_secs(3600);
/// Longest accepted refresh rotation interval.
pub(super) const MAX_ROTATION: Duration = Duration::from_secs(3650 * 86_400);
/// Longest accepted reuse grace: a long window would let a stolen token be replayed unnoticed.
const MAX_REUSE_GRACE: Duration = Duration::from_secs(300);

/// The session policy: lifetimes, rotation, reuse grace and the per-user cap.
pub(super) fn read(e: &Env<'_>) -> Result<SessionPolicy, ConfigError> {
    let access: u32 = e.whole(ACCESS_TTL, 10, 1, 1440, " of minutes")?;
    let session_days: u32 = e.whole(SESSION_TTL, 60, 1, 3650, " of days")?;
    let refresh_days: u32 = e.whole(REFRESH_TTL, 14, 1, 3650, " of days")?;
    if refresh_days > session_days {
        return Err(err(
            REFRESH_TTL,
            format!("({refresh_days}) must not exceed {SESSION_TTL} ({session_days})"),
        ));
    }
    let refresh_minutes = refresh_days.saturating_mul(1440);
    if access >= refresh_minutes {
        return Err(err(
            ACCESS_TTL,
            format!(
                "({access}) must be shorter than {REFRESH_TTL} ({refresh_days} = {refresh_minutes} minutes)"
            ),
        ));
    }
    let rotation = match e.get(ROTATION) {
        None => Rotation::After(to_time(24 * HOUR)),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "always" => Rotation::Always,
            "off" | "disabled" => Rotation::Off,
            _ => {
                let d = parse_duration(&v).map_err(|why| {
                    err(
                        ROTATION,
                        format!(
                            "must be \"always\", \"off\" or a duration such as 30m or 24h, got {}: {why}",
                            shown(&v)
                        ),
                    )
                })?;
                if d > MAX_ROTATION {
                    return Err(err(
                        ROTATION,
                        format!("must be at most {}, got {}", human(MAX_ROTATION), shown(&v)),
                    ));
                }
                if d.is_zero() {
                    Rotation::Off
                } else {
                    Rotation::After(to_time(d))
                }
            }
        },
    };
    let grace = e.duration(REUSE_GRACE, Duration::from_secs(10), MAX_REUSE_GRACE, true)?;
    Ok(SessionPolicy {
        access_ttl: time::Duration::minutes(i64::from(access)),
        session_ttl: time::Duration::days(i64::from(session_days)),
        refresh_ttl: time::Duration::days(i64::from(refresh_days)),
        rotation,
        reuse_grace: to_time(grace),
        max_sessions_per_user: max_per_user(e)?,
    })
}

/// The cap, `1..=1000`.
fn max_per_user(e: &Env<'_>) -> Result<u32, ConfigError> {
    e.whole(SESSIONS_MAX_PER_USER, DEFAULT_MAX_PER_USER, 1, 1000, "")
}

/// `AUTHARA_SESSION_CACHE_SECONDS`: how long a live session may be answered from memory
/// (`0..=60` seconds; zero turns the cache off).
pub(super) fn cache_max_age(e: &Env<'_>) -> Result<Duration, ConfigError> {
    let seconds: u64 = e.whole(SESSION_CACHE_SECONDS, 5, 0, 60, "")?;
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::super::testing::{assert_messages, load};
    use super::super::Config;
    use super::*;

    fn load_cap(value: Option<&str>) -> Result<u32, ConfigError> {
        Config::from_lookup(|k| {
            (k == SESSIONS_MAX_PER_USER)
                .then(|| value.map(str::to_owned))
                .flatten()
        })
        .map(|c| c.session.max_sessions_per_user)
    }

    #[test]
    fn the_cap_defaults_to_50_and_takes_1_to_1000() {
        assert_eq!(load_cap(None).unwrap(), 50);
        assert_eq!(load_cap(Some("")).unwrap(), 50);
        assert_eq!(load_cap(Some("1")).unwrap(), 1);
        assert_eq!(load_cap(Some(" 1000 ")).unwrap(), 1000);
        for bad in ["0", "1001", "-1", "ten", "4294967296"] {
            let e = load_cap(Some(bad)).unwrap_err();
            assert_eq!(e.var, SESSIONS_MAX_PER_USER, "{bad}");
            assert!(e.message.contains("from 1 to 1000"), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn every_invalid_session_setting_has_its_own_one_line_message() {
        let cases: Vec<(Vec<(&str, &str)>, String)> = vec![
            (
                vec![("AUTHARA_ACCESS_TOKEN_TTL_MINUTES", "abc")],
                r#"AUTHARA_ACCESS_TOKEN_TTL_MINUTES must be a whole number of minutes from 1 to 1440, got "abc""#.into(),
            ),
            (
                vec![("AUTHARA_SESSION_TTL_DAYS", "0")],
                r#"AUTHARA_SESSION_TTL_DAYS must be a whole number of days from 1 to 3650, got "0""#.into(),
            ),
            (
                vec![("AUTHARA_REFRESH_TOKEN_TTL_DAYS", "-1")],
                r#"AUTHARA_REFRESH_TOKEN_TTL_DAYS must be a whole number of days from 1 to 3650, got "-1""#.into(),
            ),
            (
                vec![("AUTHARA_REFRESH_TOKEN_TTL_DAYS", "90")],
                "AUTHARA_REFRESH_TOKEN_TTL_DAYS (90) must not exceed AUTHARA_SESSION_TTL_DAYS (60)".into(),
            ),
            (
                vec![
                    ("AUTHARA_ACCESS_TOKEN_TTL_MINUTES", "1440"),
                    ("AUTHARA_REFRESH_TOKEN_TTL_DAYS", "1"),
                ],
                "AUTHARA_ACCESS_TOKEN_TTL_MINUTES (1440) must be shorter than AUTHARA_REFRESH_TOKEN_TTL_DAYS (1 = 1440 minutes)".into(),
            ),
            (
                vec![("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "sometimes")],
                r#"AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL must be "always", "off" or a duration such as 30m or 24h, got "sometimes": expected a number at "sometimes""#.into(),
            ),
            (
                vec![("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "87601h")],
                r#"AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL must be at most 87600h, got "87601h""#.into(),
            ),
            (
                vec![("AUTHARA_REFRESH_TOKEN_REUSE_GRACE", "10")],
                r#"AUTHARA_REFRESH_TOKEN_REUSE_GRACE must be a duration such as 10s, 15m or 1h30m (units ms, s, m, h), got "10": missing unit after "10" (use ms, s, m or h)"#.into(),
            ),
            (
                vec![("AUTHARA_REFRESH_TOKEN_REUSE_GRACE", "6m")],
                r#"AUTHARA_REFRESH_TOKEN_REUSE_GRACE must be at most 5m, got "6m""#.into(),
            ),
            (
                vec![("AUTHARA_SESSION_CACHE_SECONDS", "61")],
                r#"AUTHARA_SESSION_CACHE_SECONDS must be a whole number from 0 to 60, got "61""#.into(),
            ),
        ];
        assert_messages(&cases);
    }

    #[test]
    fn rotation_interval_forms() {
        for (value, expected) in [
            ("always", Rotation::Always),
            ("ALWAYS", Rotation::Always),
            ("off", Rotation::Off),
            ("disabled", Rotation::Off),
            ("0", Rotation::Off),
            ("0s", Rotation::Off),
            ("30m", Rotation::After(time::Duration::minutes(30))),
            ("1h30m", Rotation::After(time::Duration::minutes(90))),
        ] {
            let c = load(&[("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", value)]).unwrap();
            assert_eq!(c.session.rotation, expected, "{value}");
        }
        let c = load(&[("AUTHARA_REFRESH_TOKEN_REUSE_GRACE", "0")]).unwrap();
        assert_eq!(c.session.reuse_grace, time::Duration::ZERO);
    }

    #[test]
    fn lifetimes_are_read() {
        let c = load(&[
            ("AUTHARA_ACCESS_TOKEN_TTL_MINUTES", "15"),
            ("AUTHARA_SESSION_TTL_DAYS", "30"),
            ("AUTHARA_REFRESH_TOKEN_TTL_DAYS", "30"),
        ])
        .unwrap();
        assert_eq!(c.session.access_ttl, time::Duration::minutes(15));
        assert_eq!(c.session.refresh_ttl, c.session.session_ttl);
    }

    #[test]
    fn the_session_cache_defaults_to_5_seconds_and_0_turns_it_off() {
        assert_eq!(
            load(&[]).unwrap().session_cache_max_age,
            Duration::from_secs(5)
        );
        let c = load(&[("AUTHARA_SESSION_CACHE_SECONDS", "0")]).unwrap();
        assert_eq!(c.session_cache_max_age, Duration::ZERO);
        let c = load(&[("AUTHARA_SESSION_CACHE_SECONDS", "60")]).unwrap();
        assert_eq!(c.session_cache_max_age, Duration::from_secs(60));
    }
}
