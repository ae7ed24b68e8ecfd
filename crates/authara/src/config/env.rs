//! Reading variables: [`Env`] treats empty values as unset and trims the rest, and its typed
//! readers (whole numbers, booleans, durations) word every error the same way. [`err`] builds a
//! [`ConfigError`]; [`shown`] quotes a value for a message.

use super::duration::{human, parse_duration};
use super::ConfigError;
use std::time::Duration;

/// Longest part of a value echoed in a message.
const MAX_SHOWN: usize = 80;

/// The error for `var`.
pub(super) fn err(
    var: impl Into<std::borrow::Cow<'static, str>>,
    message: impl Into<String>,
) -> ConfigError {
    ConfigError {
        var: var.into(),
        message: message.into(),
    }
}

/// A value quoted for a message: escaped (so the message stays one line) and shortened.
pub(super) fn shown(value: &str) -> String {
    let mut chars = value.chars();
    let head: String = chars.by_ref().take(MAX_SHOWN).collect();
    if chars.next().is_some() {
        format!("{head:?}...")
    } else {
        format!("{head:?}")
    }
}

/// Reads variables through a lookup function, treating empty values as unset.
pub(super) struct Env<'a> {
    /// The lookup: a variable's value, if set.
    pub(super) get: &'a dyn Fn(&str) -> Option<String>,
}

impl Env<'_> {
    /// The value as given, `None` when unset or empty.
    pub(super) fn raw(&self, name: &str) -> Option<String> {
        (self.get)(name).filter(|v| !v.is_empty())
    }

    /// The trimmed value, `None` when unset or blank.
    pub(super) fn get(&self, name: &str) -> Option<String> {
        self.raw(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A whole number in `min..=max`; `unit` is worded into the message (e.g. " of days").
    pub(super) fn whole<T: TryFrom<u64>>(
        &self,
        name: &'static str,
        default: T,
        min: u64,
        max: u64,
        unit: &str,
    ) -> Result<T, ConfigError> {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        let n = if v.bytes().all(|b| b.is_ascii_digit()) {
            v.parse::<u64>().ok()
        } else {
            None
        };
        n.filter(|n| (min..=max).contains(n))
            .and_then(|n| T::try_from(n).ok())
            .ok_or_else(|| {
                err(
                    name,
                    format!(
                        "must be a whole number{unit} from {min} to {max}, got {}",
                        shown(&v)
                    ),
                )
            })
    }

    /// `true`/`false` and the usual spellings (`1`/`0`, `yes`/`no`, `on`/`off`).
    pub(super) fn boolean(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(err(
                name,
                format!(
                    "must be true or false (or 1/0, yes/no, on/off), got {}",
                    shown(&v)
                ),
            )),
        }
    }

    /// A duration in `0..=max` (`1ms..=max` unless `allow_zero`).
    pub(super) fn duration(
        &self,
        name: &'static str,
        default: Duration,
        max: Duration,
        allow_zero: bool,
    ) -> Result<Duration, ConfigError> {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        let d = parse_duration(&v).map_err(|why| {
            err(
                name,
                format!(
                    "must be a duration such as 10s, 15m or 1h30m (units ms, s, m, h), got {}: {why}",
                    shown(&v)
                ),
            )
        })?;
        if d.is_zero() && !allow_zero {
            return Err(err(
                name,
                format!("must be longer than 0, got {}", shown(&v)),
            ));
        }
        if d > max {
            return Err(err(
                name,
                format!("must be at most {}, got {}", human(max), shown(&v)),
            ));
        }
        Ok(d)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::testing::{load, load_err};

    #[test]
    fn a_value_with_a_newline_is_escaped_so_the_message_stays_one_line() {
        let e = load_err(&[("LOG_LEVEL", "info\nroot logged in")]);
        assert!(!e.to_string().contains('\n'));
        assert!(e.to_string().contains(r#""info\nroot logged in""#));
    }

    #[test]
    fn booleans_accept_the_usual_spellings() {
        for (value, expected) in [
            ("true", true),
            ("TRUE", true),
            ("1", true),
            ("yes", true),
            ("On", true),
            ("false", false),
            ("0", false),
            ("no", false),
            ("OFF", false),
        ] {
            let c = load(&[("AUTHARA_AUTO_MIGRATE", value)]).unwrap();
            assert_eq!(c.auto_migrate, expected, "{value}");
        }
    }
}
