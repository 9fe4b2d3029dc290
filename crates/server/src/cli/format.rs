//! Human output helpers of the client commands: aligned tables, byte sizes, durations.
//!
//! Invariant: pure functions of their input (no terminal queries), so their output is testable.

/// Units of [`bytes`], each 1024 times the previous.
const BYTE_UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
/// Factor between two byte units.
const BYTES_PER_UNIT_STEP: f64 = 1024.0;

/// Rows as left-aligned columns separated by two spaces; the first row is the header.
pub fn table(rows: &[Vec<String>]) -> String {
    let n_columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n_columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[c].saturating_sub(cell.chars().count());
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `1.5 MiB`-style size (whole bytes below 1 KiB).
pub fn bytes(n_bytes: u64) -> String {
    let mut value = n_bytes as f64;
    let mut unit = 0;
    while value >= BYTES_PER_UNIT_STEP && unit + 1 < BYTE_UNITS.len() {
        value /= BYTES_PER_UNIT_STEP;
        unit += 1;
    }
    if unit == 0 {
        format!("{n_bytes} B")
    } else {
        format!("{value:.1} {}", BYTE_UNITS[unit])
    }
}

/// `1h02m03s`, `2m03s` or `3s`.
pub fn duration_secs(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// `yes` / `no`.
pub fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let rows = vec![
            vec!["NAME".to_owned(), "URL".to_owned()],
            vec!["a-long-name".to_owned(), "http://x".to_owned()],
        ];
        assert_eq!(table(&rows), "NAME         URL\na-long-name  http://x\n");
        assert_eq!(table(&[]), "");
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.0 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 + 512 * 1024), "3.5 MiB");
        assert!(bytes(u64::MAX).ends_with("PiB"));
    }

    #[test]
    fn durations() {
        assert_eq!(duration_secs(0), "0s");
        assert_eq!(duration_secs(125), "2m05s");
        assert_eq!(duration_secs(3723), "1h02m03s");
    }
}
