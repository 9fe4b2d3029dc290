//! MinIO-style ellipsis expansion of drive arguments: `/mnt/disk{1...4}` names four drives,
//! `{01...16}` keeps the zero padding, and several ellipses in one argument expand to their
//! cartesian product (leftmost varies slowest).
//!
//! Invariants: an argument without `{a...b}` is returned unchanged; a range must ascend; one
//! argument expands to at most [`EXPANSION_ITEMS_MAX`] paths.

/// Most paths one argument may expand to (guards against `{1...999999999}` typos).
pub const EXPANSION_ITEMS_MAX: u64 = 65_536;

/// Why an argument could not be expanded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EllipsisError {
    /// `{` without a matching `...}` pattern, or bounds that are not numbers.
    #[error("malformed ellipsis pattern in {arg:?}")]
    Malformed {
        /// The argument.
        arg: String,
    },
    /// `{b...a}` with a > b.
    #[error("descending range {{{first}...{last}}} in {arg:?}")]
    Descending {
        /// The argument.
        arg: String,
        /// First bound.
        first: u64,
        /// Last bound.
        last: u64,
    },
    /// The expansion is too large.
    #[error("{arg:?} expands to more than {max} paths")]
    TooMany {
        /// The argument.
        arg: String,
        /// The limit.
        max: u64,
    },
}

/// One piece of a pattern: literal text or a numeric range.
enum Piece {
    Literal(String),
    Range { first: u64, last: u64, width: usize },
}

fn parse(arg: &str) -> Result<Vec<Piece>, EllipsisError> {
    let malformed = || EllipsisError::Malformed { arg: arg.to_owned() };
    let mut pieces = Vec::new();
    let mut rest = arg;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').ok_or_else(malformed)? + open;
        let inner = &rest[open + 1..close];
        let Some((a, b)) = inner.split_once("...") else {
            return Err(malformed());
        };
        if a.is_empty()
            || b.is_empty()
            || !a.bytes().all(|c| c.is_ascii_digit())
            || !b.bytes().all(|c| c.is_ascii_digit())
        {
            return Err(malformed());
        }
        let first: u64 = a.parse().map_err(|_| malformed())?;
        let last: u64 = b.parse().map_err(|_| malformed())?;
        if first > last {
            return Err(EllipsisError::Descending {
                arg: arg.to_owned(),
                first,
                last,
            });
        }
        // Zero padding is asked for by a leading zero, as in `{01...16}`.
        let width = if (a.len() > 1 && a.starts_with('0')) || (b.len() > 1 && b.starts_with('0')) {
            a.len().max(b.len())
        } else {
            0
        };
        pieces.push(Piece::Literal(rest[..open].to_owned()));
        pieces.push(Piece::Range { first, last, width });
        rest = &rest[close + 1..];
    }
    if rest.contains('}') {
        return Err(malformed());
    }
    pieces.push(Piece::Literal(rest.to_owned()));
    Ok(pieces)
}

/// Expands one argument.
pub fn expand(arg: &str) -> Result<Vec<String>, EllipsisError> {
    let pieces = parse(arg)?;
    let mut total: u64 = 1;
    for p in &pieces {
        if let Piece::Range { first, last, .. } = p {
            total = total.saturating_mul(last - first + 1);
        }
    }
    if total > EXPANSION_ITEMS_MAX {
        return Err(EllipsisError::TooMany {
            arg: arg.to_owned(),
            max: EXPANSION_ITEMS_MAX,
        });
    }
    let mut out = vec![String::new()];
    for p in &pieces {
        match p {
            Piece::Literal(s) => out.iter_mut().for_each(|o| o.push_str(s)),
            Piece::Range { first, last, width } => {
                out = out
                    .iter()
                    .flat_map(|prefix| {
                        (*first..=*last).map(move |n| format!("{prefix}{n:0width$}", width = *width))
                    })
                    .collect();
            }
        }
    }
    Ok(out)
}

/// Expands every argument, in order.
pub fn expand_all(args: &[String]) -> Result<Vec<String>, EllipsisError> {
    let mut out = Vec::new();
    for a in args {
        out.extend(expand(a)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(arg: &str, expected: &[&str]) {
        assert_eq!(expand(arg).unwrap(), expected, "{arg}");
    }

    #[test]
    fn expansions() {
        check("/data", &["/data"]);
        check(
            "/mnt/disk{1...4}",
            &["/mnt/disk1", "/mnt/disk2", "/mnt/disk3", "/mnt/disk4"],
        );
        check(
            "/mnt/disk{01...03}",
            &["/mnt/disk01", "/mnt/disk02", "/mnt/disk03"],
        );
        check("/d{8...10}", &["/d8", "/d9", "/d10"]);
        check("/n{1...2}/d{1...2}", &["/n1/d1", "/n1/d2", "/n2/d1", "/n2/d2"]);
        check("/x{3...3}/y", &["/x3/y"]);
        assert_eq!(expand("/a{1...16}").unwrap().len(), 16);
    }

    #[test]
    fn errors() {
        assert!(matches!(expand("/d{1..4}"), Err(EllipsisError::Malformed { .. })));
        assert!(matches!(expand("/d{1...}"), Err(EllipsisError::Malformed { .. })));
        assert!(matches!(
            expand("/d{a...b}"),
            Err(EllipsisError::Malformed { .. })
        ));
        assert!(matches!(expand("/d{1...4"), Err(EllipsisError::Malformed { .. })));
        assert!(matches!(expand("/d1...4}"), Err(EllipsisError::Malformed { .. })));
        assert!(matches!(
            expand("/d{4...1}"),
            Err(EllipsisError::Descending { .. })
        ));
        assert!(matches!(
            expand("/a{1...1000}/b{1...1000}"),
            Err(EllipsisError::TooMany { .. })
        ));
    }

    #[test]
    fn expand_all_keeps_order() {
        let args = vec!["/a{1...2}".to_owned(), "/b".to_owned()];
        assert_eq!(expand_all(&args).unwrap(), ["/a1", "/a2", "/b"]);
    }
}
