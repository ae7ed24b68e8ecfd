//! Third-party sign-in: `AUTHARA_OAUTH_PROVIDERS`, Google's client settings, and each code-flow
//! provider's `AUTHARA_OAUTH_<NAME>_*` (GitHub, and any OpenID Connect issuer).

use super::env::{err, shown, Env};
use super::url::{parse_http_url, url_err};
use super::{ConfigError, Secret};
use authara_core::identity::is_provider_name;

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
    /// The code-flow providers (GitHub and OpenID Connect issuers), in the order listed.
    pub code_flow: Vec<CodeFlowConfig>,
}

/// Google sign-in settings.
#[derive(Debug, Clone)]
pub struct GoogleConfig {
    /// The OAuth client ID (the expected `aud` of Google's ID tokens).
    pub client_id: String,
    /// Where Google's signing keys are fetched.
    pub jwks_url: String,
}

/// A provider signed in to with the authorization code flow.
#[derive(Debug, Clone)]
pub struct CodeFlowConfig {
    /// Its name in `AUTHARA_OAUTH_PROVIDERS`, in its routes and in stored identities.
    pub name: String,
    /// The button's "Continue with …".
    pub display_name: String,
    pub client_id: String,
    /// Absent for a public client (PKCE only); GitHub requires one.
    pub client_secret: Option<Secret>,
    pub scopes: Vec<String>,
    pub kind: CodeFlowKind,
}

/// What a code-flow provider is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeFlowKind {
    /// An OpenID Connect issuer, found by discovery.
    Oidc { issuer: String },
    /// GitHub (or a GitHub Enterprise Server) at these bases.
    GitHub { web_url: String, api_url: String },
}

/// The built-in GitHub preset's name.
pub const GITHUB: &str = "github";
/// The scopes asked of an OpenID Connect provider by default.
pub const DEFAULT_OIDC_SCOPES: &str = "openid email profile";
/// The scopes asked of GitHub by default: the profile and the email addresses.
pub const DEFAULT_GITHUB_SCOPES: &str = "read:user user:email";
const MAX_SCOPES: usize = 20;
const MAX_DISPLAY_NAME: usize = 64;

/// The variable `AUTHARA_OAUTH_<NAME>_<suffix>` of provider `name` (`-` becomes `_`).
pub fn provider_variable(name: &str, suffix: &str) -> String {
    format!(
        "AUTHARA_OAUTH_{}_{suffix}",
        name.to_ascii_uppercase().replace('-', "_")
    )
}

/// The settings a code-flow provider has, after `AUTHARA_OAUTH_<NAME>_`.
pub const PROVIDER_SUFFIXES: [&str; 7] = [
    "ISSUER",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "SCOPES",
    "DISPLAY_NAME",
    "URL",
    "API_URL",
];

/// Whether `var` is a provider's variable (`AUTHARA_OAUTH_<NAME>_<suffix>`).
pub fn is_provider_variable(var: &str) -> bool {
    var.strip_prefix("AUTHARA_OAUTH_").is_some_and(|rest| {
        PROVIDER_SUFFIXES
            .iter()
            .any(|s| rest.len() > s.len() + 1 && rest.ends_with(&format!("_{s}")))
    })
}

/// The section: which providers are enabled, and their settings.
pub(super) fn read(e: &Env<'_>) -> Result<OAuthConfig, ConfigError> {
    let mut google = false;
    let mut names = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    if let Some(v) = e.get(OAUTH_PROVIDERS) {
        for p in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let name = p.to_ascii_lowercase();
            if !is_provider_name(&name) {
                return Err(err(
                    OAUTH_PROVIDERS,
                    format!(
                        "names {} (a provider is 1 to 50 of a-z 0-9 _ -, starting with a letter, and not password)",
                        shown(p)
                    ),
                ));
            }
            // `a-b` and `a_b` would share their variables.
            let key = name.replace('-', "_");
            if seen.contains(&key) {
                return Err(err(
                    OAUTH_PROVIDERS,
                    format!("names provider {} twice", shown(p)),
                ));
            }
            seen.push(key);
            if name == "google" {
                google = true;
            } else {
                names.push(name);
            }
        }
    }
    // The list is checked whole before any provider's settings.
    let code_flow = names
        .into_iter()
        .map(|name| code_flow_provider(e, name))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(OAuthConfig {
        google: if google {
            Some(google_config(e)?)
        } else {
            None
        },
        code_flow,
    })
}

fn google_config(e: &Env<'_>) -> Result<GoogleConfig, ConfigError> {
    let client_id = e.get(GOOGLE_CLIENT_ID).ok_or_else(|| {
        err(
            GOOGLE_CLIENT_ID,
            "is required when AUTHARA_OAUTH_PROVIDERS includes google",
        )
    })?;
    check_client_id(GOOGLE_CLIENT_ID.into(), &client_id)?;
    let jwks_url = match e.get(GOOGLE_JWKS_URL) {
        None => DEFAULT_GOOGLE_JWKS_URL.to_owned(),
        Some(v) => endpoint(GOOGLE_JWKS_URL.to_owned(), v)?,
    };
    Ok(GoogleConfig {
        client_id,
        jwks_url,
    })
}

fn check_client_id(var: String, client_id: &str) -> Result<(), ConfigError> {
    if client_id.len() > 512
        || client_id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(err(
            var,
            format!(
                "must be a client ID of at most 512 characters without spaces, got {}",
                shown(client_id)
            ),
        ));
    }
    Ok(())
}

/// An `https://` URL (or `http://` to localhost), without a query or fragment.
fn endpoint(var: String, v: String) -> Result<String, ConfigError> {
    let url = match parse_http_url(&v) {
        Ok(url) => url,
        Err(why) => return Err(url_err(var, why, &v)),
    };
    if !url.https && !url.loopback {
        return Err(url_err(
            var,
            "must use https:// (http:// is allowed only for localhost)",
            &v,
        ));
    }
    if url.rest.contains(['?', '#']) {
        return Err(url_err(var, "must not contain a query or fragment", &v));
    }
    Ok(v)
}

fn code_flow_provider(e: &Env<'_>, name: String) -> Result<CodeFlowConfig, ConfigError> {
    let var = |suffix: &str| provider_variable(&name, suffix);
    let github = name == GITHUB;
    let client_id = e.get(&var("CLIENT_ID")).ok_or_else(|| {
        err(
            var("CLIENT_ID"),
            format!("is required when AUTHARA_OAUTH_PROVIDERS includes {name}"),
        )
    })?;
    check_client_id(var("CLIENT_ID"), &client_id)?;
    let client_secret = e.raw(&var("CLIENT_SECRET")).map(Secret::new);
    if github && client_secret.is_none() {
        return Err(err(
            var("CLIENT_SECRET"),
            "is required for GitHub (its OAuth apps have no public clients)",
        ));
    }
    let kind = if github {
        CodeFlowKind::GitHub {
            web_url: match e.get(&var("URL")) {
                None => authara_oidc::github::GITHUB_WEB.to_owned(),
                Some(v) => endpoint(var("URL"), v)?,
            },
            api_url: match e.get(&var("API_URL")) {
                None => authara_oidc::github::GITHUB_API.to_owned(),
                Some(v) => endpoint(var("API_URL"), v)?,
            },
        }
    } else {
        let issuer = e.get(&var("ISSUER")).ok_or_else(|| {
            err(
                var("ISSUER"),
                format!(
                    "is required when AUTHARA_OAUTH_PROVIDERS includes {name} (the OpenID Connect issuer URL)"
                ),
            )
        })?;
        CodeFlowKind::Oidc {
            issuer: endpoint(var("ISSUER"), issuer)?,
        }
    };
    let default_scopes = if github {
        DEFAULT_GITHUB_SCOPES
    } else {
        DEFAULT_OIDC_SCOPES
    };
    let scopes_value = e.get(&var("SCOPES"));
    let scopes: Vec<String> = scopes_value
        .as_deref()
        .unwrap_or(default_scopes)
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    // RFC 6749 §3.3's scope-token: printable ASCII but space, `"` and `\`.
    let token_ok = |s: &String| {
        s.len() <= 128
            && s.bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
    };
    if scopes.is_empty() || scopes.len() > MAX_SCOPES || !scopes.iter().all(token_ok) {
        return Err(err(
            var("SCOPES"),
            format!(
                "must be 1 to {MAX_SCOPES} scopes separated by spaces or commas, got {}",
                shown(scopes_value.as_deref().unwrap_or_default())
            ),
        ));
    }
    if !github && !scopes.iter().any(|s| s == "openid") {
        return Err(err(
            var("SCOPES"),
            "must include openid (the provider's ID token is how Authara learns who signed in)",
        ));
    }
    let display_name = match e.get(&var("DISPLAY_NAME")) {
        None if github => "GitHub".to_owned(),
        None => {
            let mut chars = name.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        }
        Some(v) if v.chars().count() <= MAX_DISPLAY_NAME && !v.chars().any(char::is_control) => v,
        Some(v) => {
            return Err(err(
                var("DISPLAY_NAME"),
                format!(
                    "must be at most {MAX_DISPLAY_NAME} characters, got {}",
                    shown(&v)
                ),
            ))
        }
    };
    Ok(CodeFlowConfig {
        name,
        display_name,
        client_id,
        client_secret,
        scopes,
        kind,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::super::testing::{assert_messages, load};
    use super::*;

    #[test]
    fn every_invalid_oauth_setting_has_its_own_one_line_message() {
        let long_name = "x".repeat(65 + 20);
        let cases: Vec<(Vec<(&str, &str)>, String)> = vec![
            (
                vec![("AUTHARA_OAUTH_PROVIDERS", "google,Google")],
                r#"AUTHARA_OAUTH_PROVIDERS names provider "Google" twice"#.into(),
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
            (
                vec![("AUTHARA_OAUTH_PROVIDERS", "acme,Password")],
                r#"AUTHARA_OAUTH_PROVIDERS names "Password" (a provider is 1 to 50 of a-z 0-9 _ -, starting with a letter, and not password)"#.into(),
            ),
            (
                vec![("AUTHARA_OAUTH_PROVIDERS", "my-idp,my_idp")],
                r#"AUTHARA_OAUTH_PROVIDERS names provider "my_idp" twice"#.into(),
            ),
            (
                vec![("AUTHARA_OAUTH_PROVIDERS", "acme")],
                "AUTHARA_OAUTH_ACME_CLIENT_ID is required when AUTHARA_OAUTH_PROVIDERS includes acme".into(),
            ),
            (
                vec![("AUTHARA_OAUTH_PROVIDERS", "acme"), ("AUTHARA_OAUTH_ACME_CLIENT_ID", "c")],
                "AUTHARA_OAUTH_ACME_ISSUER is required when AUTHARA_OAUTH_PROVIDERS includes acme (the OpenID Connect issuer URL)".into(),
            ),
            (
                vec![
                    ("AUTHARA_OAUTH_PROVIDERS", "acme"),
                    ("AUTHARA_OAUTH_ACME_CLIENT_ID", "c"),
                    ("AUTHARA_OAUTH_ACME_ISSUER", "http://idp.example/realms/x"),
                ],
                r#"AUTHARA_OAUTH_ACME_ISSUER must use https:// (http:// is allowed only for localhost), got "http://idp.example/realms/x""#.into(),
            ),
            (
                vec![
                    ("AUTHARA_OAUTH_PROVIDERS", "acme"),
                    ("AUTHARA_OAUTH_ACME_CLIENT_ID", "c"),
                    ("AUTHARA_OAUTH_ACME_ISSUER", "https://idp.example/?x=1"),
                ],
                r#"AUTHARA_OAUTH_ACME_ISSUER must not contain a query or fragment, got "https://idp.example/?x=1""#.into(),
            ),
            (
                vec![
                    ("AUTHARA_OAUTH_PROVIDERS", "acme"),
                    ("AUTHARA_OAUTH_ACME_CLIENT_ID", "c"),
                    ("AUTHARA_OAUTH_ACME_ISSUER", "https://idp.example"),
                    ("AUTHARA_OAUTH_ACME_SCOPES", "email profile"),
                ],
                "AUTHARA_OAUTH_ACME_SCOPES must include openid (the provider's ID token is how Authara learns who signed in)".into(),
            ),
            (
                vec![
                    ("AUTHARA_OAUTH_PROVIDERS", "acme"),
                    ("AUTHARA_OAUTH_ACME_CLIENT_ID", "c"),
                    ("AUTHARA_OAUTH_ACME_ISSUER", "https://idp.example"),
                    ("AUTHARA_OAUTH_ACME_SCOPES", r#"openid "x""#),
                ],
                r#"AUTHARA_OAUTH_ACME_SCOPES must be 1 to 20 scopes separated by spaces or commas, got "openid \"x\"""#.into(),
            ),
            (
                vec![("AUTHARA_OAUTH_PROVIDERS", "github"), ("AUTHARA_OAUTH_GITHUB_CLIENT_ID", "c")],
                "AUTHARA_OAUTH_GITHUB_CLIENT_SECRET is required for GitHub (its OAuth apps have no public clients)".into(),
            ),
            (
                vec![
                    ("AUTHARA_OAUTH_PROVIDERS", "github"),
                    ("AUTHARA_OAUTH_GITHUB_CLIENT_ID", "c"),
                    ("AUTHARA_OAUTH_GITHUB_CLIENT_SECRET", "hunter2"),
                    ("AUTHARA_OAUTH_GITHUB_DISPLAY_NAME", &long_name),
                ],
                format!(r#"AUTHARA_OAUTH_GITHUB_DISPLAY_NAME must be at most 64 characters, got "{}"..."#, "x".repeat(80)),
            ),
        ];
        assert_messages(&cases);
    }

    #[test]
    fn code_flow_providers_are_read_in_order_with_their_defaults() {
        let c = load(&[
            ("AUTHARA_OAUTH_PROVIDERS", "github, keycloak"),
            ("AUTHARA_OAUTH_GITHUB_CLIENT_ID", "gh-client"),
            ("AUTHARA_OAUTH_GITHUB_CLIENT_SECRET", "gh-secret"),
            ("AUTHARA_OAUTH_KEYCLOAK_CLIENT_ID", "authara"),
            (
                "AUTHARA_OAUTH_KEYCLOAK_ISSUER",
                "https://sso.example/realms/staff",
            ),
            ("AUTHARA_OAUTH_KEYCLOAK_DISPLAY_NAME", "Staff SSO"),
        ])
        .unwrap();
        assert!(c.oauth.google.is_none());
        let [gh, kc] = c.oauth.code_flow.as_slice() else {
            panic!("two providers expected")
        };
        assert_eq!(
            (gh.name.as_str(), gh.display_name.as_str()),
            ("github", "GitHub")
        );
        assert_eq!(gh.scopes, ["read:user", "user:email"]);
        assert_eq!(gh.client_secret.as_ref().unwrap().expose(), "gh-secret");
        assert_eq!(
            gh.kind,
            CodeFlowKind::GitHub {
                web_url: "https://github.com".into(),
                api_url: "https://api.github.com".into()
            }
        );
        assert_eq!(
            (kc.name.as_str(), kc.display_name.as_str()),
            ("keycloak", "Staff SSO")
        );
        assert_eq!(kc.scopes, ["openid", "email", "profile"]);
        assert!(kc.client_secret.is_none());
        assert_eq!(
            kc.kind,
            CodeFlowKind::Oidc {
                issuer: "https://sso.example/realms/staff".into()
            }
        );
        // The secret never shows in the configuration's Debug.
        assert!(!format!("{c:?}").contains("gh-secret"));

        let c = load(&[
            ("AUTHARA_OAUTH_PROVIDERS", "acme"),
            ("AUTHARA_OAUTH_ACME_CLIENT_ID", "c"),
            ("AUTHARA_OAUTH_ACME_ISSUER", "http://127.0.0.1:9000"),
            ("AUTHARA_OAUTH_ACME_SCOPES", "openid,email groups"),
        ])
        .unwrap();
        assert_eq!(c.oauth.code_flow[0].display_name, "Acme");
        assert_eq!(c.oauth.code_flow[0].scopes, ["openid", "email", "groups"]);
    }

    #[test]
    fn provider_variables_are_recognised() {
        assert_eq!(
            provider_variable("my-idp", "ISSUER"),
            "AUTHARA_OAUTH_MY_IDP_ISSUER"
        );
        assert!(is_provider_variable("AUTHARA_OAUTH_ACME_CLIENT_SECRET"));
        assert!(is_provider_variable("AUTHARA_OAUTH_GITHUB_API_URL"));
        assert!(!is_provider_variable("AUTHARA_OAUTH_PROVIDERS"));
        assert!(!is_provider_variable("AUTHARA_OAUTH__ISSUER"));
        assert!(!is_provider_variable("AUTHARA_JWT_ISSUER"));
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
