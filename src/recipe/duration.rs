//! Durations as people write them in a recipe: `90s`, `30m`, `1h30m`, `2h`.
//!
//! A duration is at most [`MAX_DURATION`] (7 days): no build runs longer, and a larger value
//! is a typo that would overflow a deadline.

use std::time::Duration;

/// The longest duration a recipe may give: 7 days (`168h`).
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Parse `1h30m`, `45s`, `5m`: whole numbers with units `h`, `m`, `s`, largest first.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("expected a duration such as `30m`, `90s` or `1h30m`, found: `{text}`");
    let mut total = 0u64;
    let mut digits = String::new();
    let mut last_unit = u64::MAX;
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        if digits.is_empty() || unit >= last_unit {
            return Err(bad());
        }
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
        digits.clear();
        last_unit = unit;
    }
    if !digits.is_empty() || last_unit == u64::MAX {
        return Err(bad());
    }
    let d = Duration::from_secs(total);
    if d > MAX_DURATION {
        return Err(format!(
            "a duration is at most 7 days (`168h`), found: `{text}`"
        ));
    }
    Ok(d)
}

/// Write a duration back in the same form.
pub(crate) fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, s % 3600 / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

pub(super) mod serde_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        for (text, secs) in [
            ("30m", 1800),
            ("90s", 90),
            ("1h30m", 5400),
            ("2h", 7200),
            ("0s", 0),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        for bad in ["", "30", "m", "1m1h", "1.5h", "5 m", "-1s", "1m1m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_duration("168h"), Ok(MAX_DURATION));
        for huge in [
            "168h1s",
            "604801s",
            "18446744073709551615s",
            "5124095576030431h",
        ] {
            let err = parse_duration(huge).unwrap_err();
            assert!(err.contains("at most 7 days"), "{huge}: {err}");
        }
    }

    proptest::proptest! {
        #[test]
        fn roundtrip(secs in 0u64..=MAX_DURATION.as_secs()) {
            let d = Duration::from_secs(secs);
            proptest::prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }

        #[test]
        fn never_panics(text in ".*") {
            let _ = parse_duration(&text);
        }
    }
}
