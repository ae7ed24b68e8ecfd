//! Durations as operators write them (Go's syntax: `250ms`, `90s`, `1h30m`, `1.5h`), and back.

use super::env::shown;
use std::time::Duration;

/// A duration in the units [`parse_duration`] reads, e.g. `720h` or `5m`.
pub(super) fn human(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s, ms) = (secs / 3600, secs % 3600 / 60, secs % 60, d.subsec_millis());
    let mut out = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s"), (u64::from(ms), "ms")] {
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(unit);
        }
    }
    if out.is_empty() {
        out.push('0');
    }
    out
}

/// Parses a Go-style duration: one or more `<number><unit>` parts with units `ms`, `s`, `m`
/// and `h`, e.g. `250ms`, `90s`, `1h30m`, `1.5h`; a plain `0` is zero. Negative values, a
/// missing or unknown unit, and values beyond `u64::MAX` seconds are refused.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    if s.is_empty() {
        return Err("the value is empty".into());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.starts_with('-') {
        return Err("negative durations are not allowed".into());
    }
    let too_large = || "the duration is too large".to_owned();
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int, after) = rest.split_at_checked(int_len).ok_or_else(too_large)?;
        let (frac, after) = match after.strip_prefix('.') {
            Some(f) => {
                let len = f.bytes().take_while(u8::is_ascii_digit).count();
                f.split_at_checked(len).ok_or_else(too_large)?
            }
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(format!("expected a number at {}", shown(rest)));
        }
        let unit_len = after
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(after.len(), |(i, _)| i);
        let (unit, after) = after.split_at_checked(unit_len).ok_or_else(too_large)?;
        let per_unit: u128 = match unit {
            "ms" => 1_000_000,
            "s" => NANOS_PER_SEC,
            "m" => 60 * NANOS_PER_SEC,
            "h" => 3600 * NANOS_PER_SEC,
            "" => {
                return Err(format!(
                    "missing unit after {} (use ms, s, m or h)",
                    shown(s.strip_suffix(after).unwrap_or(s))
                ))
            }
            other => return Err(format!("unknown unit {} (use ms, s, m or h)", shown(other))),
        };
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| too_large())?
        };
        let mut part = int.checked_mul(per_unit).ok_or_else(too_large)?;
        // Digits beyond nanosecond precision cannot matter; 18 keeps the arithmetic in range.
        let frac = frac.get(..frac.len().min(18)).unwrap_or("");
        if !frac.is_empty() {
            let digits: u128 = frac.parse().map_err(|_| too_large())?;
            let scale = 10u128.pow(u32::try_from(frac.len()).map_err(|_| too_large())?);
            part = part
                .checked_add(digits * per_unit / scale)
                .ok_or_else(too_large)?;
        }
        total = total.checked_add(part).ok_or_else(too_large)?;
        rest = after;
    }
    let secs = u64::try_from(total / NANOS_PER_SEC).map_err(|_| too_large())?;
    let nanos = u32::try_from(total % NANOS_PER_SEC).map_err(|_| too_large())?;
    Ok(Duration::new(secs, nanos))
}

/// `d` as a `time::Duration`, saturating (the configured maxima keep it far from the limit).
pub(super) fn to_time(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::super::limits::MAX_RATE_WINDOW;
    use super::super::session::MAX_ROTATION;
    use super::*;

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        let ok: &[(&str, Duration)] = &[
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("0h0m", Duration::ZERO),
            ("1ms", ms(1)),
            ("1500ms", ms(1500)),
            ("10s", s(10)),
            ("1m", s(60)),
            ("24h", s(86_400)),
            ("1h30m", s(5400)),
            ("90m", s(5400)),
            ("1h30m15s500ms", ms(5_415_500)),
            ("2m0s", s(120)),
            ("1s1s", s(2)),
            ("1.5h", s(5400)),
            ("0.25s", ms(250)),
            (".5s", ms(500)),
            ("1.s", s(1)),
            ("1.0000000000000000001s", s(1)),
            ("0.000000001s", Duration::from_nanos(1)),
            ("0010s", s(10)),
            ("18446744073709551615s", s(u64::MAX)),
            ("5124095576030431h", s(5_124_095_576_030_431 * 3600)),
        ];
        for (input, expected) in ok {
            assert_eq!(parse_duration(input), Ok(*expected), "{input}");
        }
        let bad: &[(&str, &str)] = &[
            ("", "the value is empty"),
            ("-1s", "negative durations are not allowed"),
            ("-0", "negative durations are not allowed"),
            ("+1s", "expected a number at \"+1s\""),
            ("10", "missing unit after \"10\" (use ms, s, m or h)"),
            ("1h30", "missing unit after \"1h30\" (use ms, s, m or h)"),
            ("0.0", "missing unit after \"0.0\" (use ms, s, m or h)"),
            ("1..5s", "missing unit after \"1.\" (use ms, s, m or h)"),
            ("5d", "unknown unit \"d\" (use ms, s, m or h)"),
            ("1us", "unknown unit \"us\" (use ms, s, m or h)"),
            ("1µs", "unknown unit \"µs\" (use ms, s, m or h)"),
            ("1ns", "unknown unit \"ns\" (use ms, s, m or h)"),
            ("1H", "unknown unit \"H\" (use ms, s, m or h)"),
            ("1e3s", "unknown unit \"e\" (use ms, s, m or h)"),
            ("1h 30m", "unknown unit \"h \" (use ms, s, m or h)"),
            (" 1s", "expected a number at \" 1s\""),
            ("s", "expected a number at \"s\""),
            ("h1", "expected a number at \"h1\""),
            ("18446744073709551616s", "the duration is too large"),
            ("5124095576030432h", "the duration is too large"),
            (
                "99999999999999999999999999999999999999999h",
                "the duration is too large",
            ),
        ];
        for (input, expected) in bad {
            assert_eq!(
                parse_duration(input),
                Err((*expected).to_owned()),
                "{input}"
            );
        }
    }

    #[test]
    fn human_durations_read_back() {
        for d in [
            Duration::ZERO,
            Duration::from_millis(1),
            Duration::from_secs(300),
            Duration::from_millis(5_415_500),
            MAX_RATE_WINDOW,
            MAX_ROTATION,
        ] {
            assert_eq!(parse_duration(&human(d)), Ok(d), "{}", human(d));
        }
    }
}
