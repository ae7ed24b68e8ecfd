//! Characters no stored or echoed text field may hold, and the sanitiser for free text that is
//! recorded rather than validated (the user agent).

/// Whether `c` is a control character (C0 including tab, CR, LF and NUL; DEL; C1) or a
/// bidirectional formatting character (U+061C, U+200E, U+200F, U+202A–U+202E,
/// U+2066–U+2069), which can make a stored value display as something it is not. PostgreSQL
/// `text` cannot hold NUL at all.
pub fn is_forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// Whether `s` holds a [forbidden](is_forbidden_char) character.
pub fn has_forbidden_char(s: &str) -> bool {
    s.chars().any(is_forbidden_char)
}

/// `s` with every [forbidden](is_forbidden_char) character replaced by U+FFFD, cut to at most
/// `max_bytes` bytes on a character boundary.
pub fn sanitise(s: &str, max_bytes: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_bytes));
    for c in s.chars() {
        let c = if is_forbidden_char(c) { '\u{FFFD}' } else { c };
        if out.len() + c.len_utf8() > max_bytes {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_are_forbidden_text_is_not() {
        for c in [
            '\0', '\t', '\n', '\r', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}',
        ] {
            assert!(is_forbidden_char(c), "{c:?}");
        }
        for c in ['\u{202E}', '\u{2066}', '\u{200F}', '\u{061C}'] {
            assert!(is_forbidden_char(c), "{c:?}");
        }
        for c in ['a', ' ', 'é', '日', '\u{1F600}', '@', '~'] {
            assert!(!is_forbidden_char(c), "{c:?}");
        }
    }

    #[test]
    fn sanitise_replaces_and_bounds() {
        assert_eq!(
            sanitise("Mozilla/5.0\0x\u{202E}y", 100),
            "Mozilla/5.0\u{FFFD}x\u{FFFD}y"
        );
        assert_eq!(sanitise("abcdef", 3), "abc");
        // Never cuts a character in half.
        assert_eq!(sanitise("ééé", 5), "éé");
        assert_eq!(sanitise("\0\0", 4), "\u{FFFD}");
        assert!(sanitise(&"\0".repeat(1000), 512).len() <= 512);
    }
}
