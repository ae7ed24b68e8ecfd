//! Third-party sign-in: `AUTHARA_OAUTH_PROVIDERS` and Google's client settings.

use super::env::{err, shown, Env};
use super::url::{parse_http_url, url_err};
use super::ConfigError;

/// The names of this section's variables.
pub mod var {
    /// Enabled sign-in providers.
    pub const OAUTH_PROVIDERS: &str = "AUTHARA_OAUTH_PROVIDERS";
    /// Google OAuth client ID.
    pub const GOOGLE_CLIENT_ID: &str = "AUTHARA_OAUTH_GOOGLE_CLIENT_ID";
    /// Where Google's signing keys are fetched.
    pub const GOOGLE_JWKS_URL: &str = "AUTHARA_OAUTH_GOOGLE_JWKS_URL";
}

use var::*;

/// Google's published JWKS.
pub const DEFAULT_GOOGLE_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";

#[derive(Debug, Clone, Default)]
pub struct OAuthConfig {
    /// Google sign-in, when enabled.
    pub google: Option<GoogleConfig>,
}

/// Google sign-in settings.
#[derive(Debug, Clone)]
pub struct GoogleConfig {
    /// The OAuth client ID (the expected `aud` of Google's ID tokens).
    pub client_id: String,
    /// Where Google's signing keys are fetched.
    pub jwks_url: String,
}
/// The section: which providers are enabled, and their settings.
pub(super) fn read(e: &Env<'_>) -> Result<OAuthConfig, ConfigError> {
    let mut google = false;
    if let Some(v) = e.get(OAUTH_PROVIDERS) {
        for p in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if p.eq_ignore_ascii_case("google") {
                google = true;
            } else {
                return Err(err(
                    OAUTH_PROVIDERS,
                    format!("names unknown provider {} (known: google)", shown(p)),
                ));
            }
        }
    }
    if !google {
        return Ok(OAuthConfig::default());
    }
    let client_id = e.get(GOOGLE_CLIENT_ID).ok_or_else(|| {
        err(
            GOOGLE_CLIENT_ID,
            "is required when AUTHARA_OAUTH_PROVIDERS includes google",
        )
    })?;
    if client_id.len() > 512
        || client_id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(err(
            GOOGLE_CLIENT_ID,
            format!(
                "must be a client ID of at most 512 characters without spaces, got {}",
                shown(&client_id)
            ),
        ));
    }
    let jwks_url = match e.get(GOOGLE_JWKS_URL) {
        None => DEFAULT_GOOGLE_JWKS_URL.to_owned(),
        Some(v) => {
            let fail = |why: &str| url_err(GOOGLE_JWKS_URL, why, &v);
            let url = parse_http_url(&v).map_err(fail)?;
            if !url.https && !url.loopback {
                return Err(fail(
                    "must use https:// (http:// is allowed only for localhost)",
                ));
            }
            v
        }
    };
    Ok(OAuthConfig {
        google: Some(GoogleConfig {
            client_id,
            jwks_url,
        }),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::testing::{assert_messages, load};
    use super::*;

    #[test]
    fn every_invalid_oauth_setting_has_its_own_one_line_message() {
        let cases: Vec<(Vec<(&str, &str)>, String)> = vec![
            (
                vec![("AUTHARA_OAUTH_PROVIDERS", "google,github")],
                r#"AUTHARA_OAUTH_PROVIDERS names unknown provider "github" (known: google)"#.into(),
            ),
            (
                vec![("AUTHARA_OAUTH_PROVIDERS", "google")],
                "AUTHARA_OAUTH_GOOGLE_CLIENT_ID is required when AUTHARA_OAUTH_PROVIDERS includes google".into(),
            ),
            (
                vec![("AUTHARA_OAUTH_PROVIDERS", "google"), ("AUTHARA_OAUTH_GOOGLE_CLIENT_ID", "a b")],
                r#"AUTHARA_OAUTH_GOOGLE_CLIENT_ID must be a client ID of at most 512 characters without spaces, got "a b""#.into(),
            ),
            (
                vec![
                    ("AUTHARA_OAUTH_PROVIDERS", "google"),
                    ("AUTHARA_OAUTH_GOOGLE_CLIENT_ID", "cid"),
                    ("AUTHARA_OAUTH_GOOGLE_JWKS_URL", "http://example.org/certs"),
                ],
                r#"AUTHARA_OAUTH_GOOGLE_JWKS_URL must use https:// (http:// is allowed only for localhost), got "http://example.org/certs""#.into(),
            ),
            (
                vec![
                    ("AUTHARA_OAUTH_PROVIDERS", "google"),
                    ("AUTHARA_OAUTH_GOOGLE_CLIENT_ID", "cid"),
                    ("AUTHARA_OAUTH_GOOGLE_JWKS_URL", "certs.json"),
                ],
                r#"AUTHARA_OAUTH_GOOGLE_JWKS_URL must start with http:// or https://, got "certs.json""#.into(),
            ),
        ];
        assert_messages(&cases);
    }

    #[test]
    fn google_settings_are_read() {
        let c = load(&[
            ("AUTHARA_OAUTH_PROVIDERS", " Google "),
            (
                "AUTHARA_OAUTH_GOOGLE_CLIENT_ID",
                "123-abc.apps.googleusercontent.com",
            ),
        ])
        .unwrap();
        let google = c.oauth.google.unwrap();
        assert_eq!(google.client_id, "123-abc.apps.googleusercontent.com");
        assert_eq!(google.jwks_url, DEFAULT_GOOGLE_JWKS_URL);

        let c = load(&[
            ("AUTHARA_OAUTH_PROVIDERS", "google"),
            ("AUTHARA_OAUTH_GOOGLE_CLIENT_ID", "cid"),
            (
                "AUTHARA_OAUTH_GOOGLE_JWKS_URL",
                "http://127.0.0.1:4555/certs",
            ),
        ])
        .unwrap();
        assert_eq!(
            c.oauth.google.unwrap().jwks_url,
            "http://127.0.0.1:4555/certs"
        );
    }
}
