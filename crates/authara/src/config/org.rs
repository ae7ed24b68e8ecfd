//! Organizations: upstream's `AUTHARA_ORG_MODE` and `AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED`,
//! with upstream's defaults (`single`, off).
//!
//! Decisions:
//! - `AUTHARA_INTERNAL_API_TOKEN` unset: every `/auth/internal/v1` request is `401` (as
//!   upstream). Set, it must be at least 32 characters in prod (a bearer credential of the
//!   whole internal API; upstream checks no length) and at most 512 bytes, without control
//!   characters or spaces (it travels in an `Authorization` header).
//! - The mode is a product shape, not a setting to flip: the first start pins it in the
//!   database (`organization_mode`) and a later start with another mode refuses to run (in
//!   `server.rs`, which has the database). Here it is only parsed, exactly (`multi`, not `Multi`).

use super::env::{err, shown, Env};
use super::{AppEnv, ConfigError, Secret};
use authara_core::org::OrgMode;
use std::time::Duration;

/// The names of this section's variables.
pub mod var {
    /// `personal`, `single` or `multi`.
    pub const ORG_MODE: &str = "AUTHARA_ORG_MODE";
    /// Opens the public organization-management routes.
    pub const PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED: &str =
        "AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED";
    /// The bearer token of the internal (server-to-server) API.
    pub const INTERNAL_API_TOKEN: &str = "AUTHARA_INTERNAL_API_TOKEN";
    /// How long an invitation link can be accepted.
    pub const ORGANIZATION_INVITATION_TTL: &str = "AUTHARA_ORGANIZATION_INVITATION_TTL";
}

/// Shortest internal API token accepted in prod.
const MIN_TOKEN_CHARS: usize = 32;
/// Longest internal API token accepted.
const MAX_TOKEN_BYTES: usize = 512;
/// Upstream's invitation lifetime (168 h).
pub const DEFAULT_INVITATION_TTL: Duration = Duration::from_secs(168 * 3600);
/// Longest invitation lifetime accepted: a link in an inbox for more than 90 days is a
/// credential nobody remembers (upstream has no bound).
const MAX_INVITATION_TTL: Duration = Duration::from_secs(90 * 86_400);

use var::*;

/// The organization settings.
#[derive(Debug, Clone)]
pub struct OrgConfig {
    /// The product shape.
    pub mode: OrgMode,
    /// Whether `GET/PATCH /auth/api/v1/organizations/{id}` and the member and membership
    /// routes are served.
    pub public_management: bool,
    /// The internal API's bearer token; `None`: the internal API refuses everything.
    pub internal_api_token: Option<Secret>,
    /// How long an invitation can be accepted (`AUTHARA_ORGANIZATION_INVITATION_TTL`).
    pub invitation_ttl: Duration,
}

/// Reads the section.
pub(super) fn read(e: &Env<'_>, env: AppEnv) -> Result<OrgConfig, ConfigError> {
    let mode = match e.get(ORG_MODE) {
        None => OrgMode::DEFAULT,
        Some(v) => OrgMode::parse(&v).ok_or_else(|| {
            err(
                ORG_MODE,
                format!("must be personal, single or multi, got {}", shown(&v)),
            )
        })?,
    };
    let internal_api_token = match e.get(INTERNAL_API_TOKEN) {
        None => None,
        Some(v) => Some(internal_token(v, env)?),
    };
    Ok(OrgConfig {
        mode,
        public_management: e.boolean(PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED, false)?,
        internal_api_token,
        invitation_ttl: e.duration(
            ORGANIZATION_INVITATION_TTL,
            DEFAULT_INVITATION_TTL,
            MAX_INVITATION_TTL,
            false,
        )?,
    })
}

/// `AUTHARA_INTERNAL_API_TOKEN`, checked; the value is never part of a message.
fn internal_token(v: String, env: AppEnv) -> Result<Secret, ConfigError> {
    if v.len() > MAX_TOKEN_BYTES || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(err(
            INTERNAL_API_TOKEN,
            format!("must be at most {MAX_TOKEN_BYTES} printable ASCII characters without spaces"),
        ));
    }
    if env == AppEnv::Prod && v.len() < MIN_TOKEN_CHARS {
        return Err(err(
            INTERNAL_API_TOKEN,
            format!(
                "must be at least {MIN_TOKEN_CHARS} characters when APP_ENV is prod, got {}",
                v.len()
            ),
        ));
    }
    Ok(Secret::new(v))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::testing::{assert_messages, load, prod_with};
    use super::*;

    #[test]
    fn defaults_are_upstreams() {
        let c = load(&[]).unwrap();
        assert_eq!(c.org.mode, OrgMode::Single);
        assert!(!c.org.public_management);
        assert!(c.org.internal_api_token.is_none());
        assert_eq!(c.org.invitation_ttl, Duration::from_secs(168 * 3600));
    }

    #[test]
    fn the_invitation_lifetime_is_positive_and_bounded() {
        let c = load(&[(ORGANIZATION_INVITATION_TTL, "72h")]).unwrap();
        assert_eq!(c.org.invitation_ttl, Duration::from_secs(72 * 3600));
        for bad in ["0", "0s", "2161h", "soon", "-1h"] {
            assert!(
                load(&[(ORGANIZATION_INVITATION_TTL, bad)]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn every_mode_can_be_chosen() {
        for (v, mode) in [
            ("personal", OrgMode::Personal),
            ("single", OrgMode::Single),
            ("multi", OrgMode::Multi),
        ] {
            let c = load(&[
                (ORG_MODE, v),
                (PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED, "true"),
            ])
            .unwrap();
            assert_eq!(c.org.mode, mode);
            assert!(c.org.public_management);
        }
    }

    #[test]
    fn the_internal_token_is_kept_secret_and_long_in_prod() {
        let c = load(&[(INTERNAL_API_TOKEN, "short-dev-token")]).unwrap();
        assert_eq!(
            c.org.internal_api_token.as_ref().map(|s| s.expose()),
            Some("short-dev-token")
        );
        assert!(!format!("{:?}", c.org).contains("short-dev-token"));
    }

    #[test]
    fn invalid_settings_have_one_line_messages() {
        assert_messages(&[
            (
                vec![(ORG_MODE, "Multi")],
                r#"AUTHARA_ORG_MODE must be personal, single or multi, got "Multi""#.into(),
            ),
            (
                prod_with(&[(INTERNAL_API_TOKEN, "only-twenty-one-chars")]),
                "AUTHARA_INTERNAL_API_TOKEN must be at least 32 characters when APP_ENV is prod, got 21".into(),
            ),
            (
                vec![(INTERNAL_API_TOKEN, "has space")],
                "AUTHARA_INTERNAL_API_TOKEN must be at most 512 printable ASCII characters without spaces".into(),
            ),
            (
                vec![(PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED, "sometimes")],
                r#"AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED must be true or false (or 1/0, yes/no, on/off), got "sometimes""#.into(),
            ),
        ]);
    }
}
