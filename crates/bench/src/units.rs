//! Parsing of the command line's sizes (`4KiB`, `1MiB`, `64MiB`, `5MB`, `4096`) and durations
//! (`30s`, `500ms`, `2m`, `1m30s`, `10`).
//!
//! Invariant: parsing is exact or fails: no rounding, no overflow (checked arithmetic), no
//! silently ignored trailing text.

use std::time::Duration;

/// Parses a byte size: a whole number with an optional unit, case-insensitive: `B`, binary
/// `KiB`/`MiB`/`GiB`/`TiB` (also `K`/`M`/`G`/`T`), decimal `KB`/`MB`/`GB`/`TB`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits_end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    if number.is_empty() {
        return Err(format!(
            "size {text:?} must start with a whole number, e.g. 4KiB, 1MiB, 4096"
        ));
    }
    let value: u64 = number
        .parse()
        .map_err(|_| format!("size {text:?} is too large"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => {
            return Err(format!(
                "size {text:?} has unknown unit {other:?} (use B, KiB, MiB, GiB, KB, MB, GB)"
            ));
        }
    };
    value
        .checked_mul(multiplier)
        .ok_or_else(|| format!("size {text:?} is too large"))
}

/// Parses a duration: one or more `<number><unit>` terms (`h`, `m`, `s`, `ms`), or a plain
/// number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("duration is empty (e.g. 30s, 500ms, 2m)".into());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits_end == 0 {
            return Err(format!("duration {text:?}: expected a number at {rest:?}"));
        }
        let value: u64 = rest[..digits_end]
            .parse()
            .map_err(|_| format!("duration {text:?} is too large"))?;
        rest = &rest[digits_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let term = match &rest[..unit_end] {
            "h" => value.checked_mul(3600).map(Duration::from_secs),
            "m" => value.checked_mul(60).map(Duration::from_secs),
            "s" => Some(Duration::from_secs(value)),
            "ms" => Some(Duration::from_millis(value)),
            other => {
                return Err(format!(
                    "duration {text:?} has unknown unit {other:?} (use h, m, s, ms)"
                ));
            }
        };
        total = term
            .and_then(|term| total.checked_add(term))
            .ok_or_else(|| format!("duration {text:?} is too large"))?;
        rest = &rest[unit_end..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let cases = [
            ("0", 0),
            ("4096", 4096),
            ("17B", 17),
            ("4KiB", 4096),
            ("4kib", 4096),
            ("4K", 4096),
            ("1MiB", 1 << 20),
            ("64MiB", 64 << 20),
            ("2GiB", 2 << 30),
            ("1TiB", 1 << 40),
            ("5MB", 5_000_000),
            ("1kb", 1000),
            (" 3 GiB ", 3 << 30),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_size(text), Ok(expected), "{text}");
        }
        for bad in [
            "",
            "MiB",
            "1.5MiB",
            "4 parsecs",
            "-1",
            "99999999999999999999",
            "20000000TiB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        let cases = [
            ("30", Duration::from_secs(30)),
            ("30s", Duration::from_secs(30)),
            ("500ms", Duration::from_millis(500)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("1m30s", Duration::from_secs(90)),
            ("1s250ms", Duration::from_millis(1250)),
            ("0s", Duration::ZERO),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
        for bad in ["", "s", "5x", "1.5s", "5 s", "-3s", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
