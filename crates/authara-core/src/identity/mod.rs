//! Sign-in methods: a user signs in with a password (optional), with external identities (a
//! provider and the provider's subject: Google, GitHub, an OpenID Connect issuer), and later
//! passkeys. This module holds the external identities (upstream's `auth_providers`); the
//! password stays on the user. A user keeps at least one way to sign in.

pub mod store;

/// The longest provider name (`AUTHARA_OAUTH_PROVIDERS` entries; upstream's `varchar(50)`).
pub const MAX_PROVIDER: usize = 50;
/// The longest provider subject (OpenID Connect: at most 255 ASCII characters).
pub const MAX_SUBJECT: usize = 255;

/// Whether `name` can name a provider: 1 to 50 of `a-z0-9_-`, starting with a letter, and not
/// `password` (the password is not an external identity).
pub fn is_provider_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= MAX_PROVIDER
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && name != "password"
}

/// Whether `subject` can be a provider's subject: 1 to 255 bytes, no control character.
pub fn is_subject(subject: &str) -> bool {
    !subject.is_empty() && subject.len() <= MAX_SUBJECT && !subject.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_are_short_lowercase_words() {
        for ok in ["google", "github", "acme", "my-idp_2", "a"] {
            assert!(is_provider_name(ok), "{ok}");
        }
        let long = "a".repeat(51);
        for bad in [
            "",
            "Google",
            "2fa",
            "-x",
            "a b",
            "password",
            "ünï",
            long.as_str(),
        ] {
            assert!(!is_provider_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn subjects_are_bounded_and_printable() {
        assert!(is_subject("110169484474386276334"));
        assert!(is_subject(&"s".repeat(255)));
        assert!(!is_subject(""));
        assert!(!is_subject(&"s".repeat(256)));
        assert!(!is_subject("a\nb"));
    }
}
