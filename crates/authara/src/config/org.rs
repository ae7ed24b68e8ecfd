//! Organizations: upstream's `AUTHARA_ORG_MODE` and `AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED`,
//! with upstream's defaults (`single`, off).
//!
//! Decisions:
//! - The mode is a product shape, not a setting to flip: the first start pins it in the
//!   database (`organization_mode`) and a later start with another mode refuses to run (in
//!   `server.rs`, which has the database). Here it is only parsed, exactly (`multi`, not `Multi`).

use super::env::{err, shown, Env};
use super::ConfigError;
use authara_core::org::OrgMode;

/// The names of this section's variables.
pub mod var {
    /// `personal`, `single` or `multi`.
    pub const ORG_MODE: &str = "AUTHARA_ORG_MODE";
    /// Opens the public organization-management routes.
    pub const PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED: &str =
        "AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED";
}

use var::*;

/// The organization settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrgConfig {
    /// The product shape.
    pub mode: OrgMode,
    /// Whether `GET/PATCH /auth/api/v1/organizations/{id}` and the member and membership
    /// routes are served.
    pub public_management: bool,
}

/// Reads the section.
pub(super) fn read(e: &Env<'_>) -> Result<OrgConfig, ConfigError> {
    let mode = match e.get(ORG_MODE) {
        None => OrgMode::DEFAULT,
        Some(v) => OrgMode::parse(&v).ok_or_else(|| {
            err(
                ORG_MODE,
                format!("must be personal, single or multi, got {}", shown(&v)),
            )
        })?,
    };
    Ok(OrgConfig {
        mode,
        public_management: e.boolean(PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED, false)?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::testing::{assert_messages, load};
    use super::*;

    #[test]
    fn defaults_are_upstreams() {
        let c = load(&[]).unwrap();
        assert_eq!(
            c.org,
            OrgConfig {
                mode: OrgMode::Single,
                public_management: false
            }
        );
    }

    #[test]
    fn every_mode_can_be_chosen() {
        for (v, mode) in [
            ("personal", OrgMode::Personal),
            ("single", OrgMode::Single),
            ("multi", OrgMode::Multi),
        ] {
            let c = load(&[(ORG_MODE, v), (PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED, "true")])
                .unwrap();
            assert_eq!(c.org.mode, mode);
            assert!(c.org.public_management);
        }
    }

    #[test]
    fn invalid_settings_have_one_line_messages() {
        assert_messages(&[
            (
                vec![(ORG_MODE, "Multi")],
                r#"AUTHARA_ORG_MODE must be personal, single or multi, got "Multi""#.into(),
            ),
            (
                vec![(PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED, "sometimes")],
                r#"AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED must be true or false (or 1/0, yes/no, on/off), got "sometimes""#.into(),
            ),
        ]);
    }
}
