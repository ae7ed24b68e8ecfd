//! [`Secret`]: a configured secret whose `Debug` prints `<redacted>`.

use std::fmt;

/// A secret (a password as `Secret<String>`, key material as `Secret<Vec<u8>>`) whose `Debug`
/// prints `<redacted>`.
#[derive(Clone)]
pub struct Secret<T = String>(T);

impl<T> Secret<T> {
    /// Wraps a secret.
    pub fn new(value: T) -> Self {
        Self(value)
    }
}

impl Secret<String> {
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Secret<Vec<u8>> {
    /// The secret bytes, for the one place that needs them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_no_secret() {
        assert_eq!(format!("{:?}", Secret::new("s3cret")), "<redacted>");
        assert_eq!(format!("{:#?}", Secret::new(vec![7u8; 32])), "<redacted>");
    }
}
