//! [`Layout`]: how many data and parity shards a stripe has, and the quorums that follow.
//!
//! Invariant: a constructed `Layout` always satisfies `1 <= n_data`, `n_parity <= n_data`
//! and `SET_DRIVES_MIN <= n_data + n_parity <= SET_DRIVES_MAX`; nothing else can build one.

use crate::{ErasureError, SET_DRIVES_MAX, SET_DRIVES_MIN};

/// The data/parity split of an erasure stripe (one shard per drive of an erasure set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Layout {
    n_data: usize,
    n_parity: usize,
}

impl Layout {
    /// A layout of `n_data` data and `n_parity` parity shards.
    ///
    /// Needs `1 <= n_data`, `n_parity <= n_data` (more parity than data would let a
    /// minority of drives form a quorum) and `SET_DRIVES_MIN <= n_data + n_parity <= SET_DRIVES_MAX`.
    pub fn new(n_data: usize, n_parity: usize) -> Result<Layout, ErasureError> {
        let n_total = n_data.checked_add(n_parity);
        let total_ok = n_total.is_some_and(|n| (SET_DRIVES_MIN..=SET_DRIVES_MAX).contains(&n));
        if n_data == 0 || n_parity > n_data || !total_ok {
            return Err(ErasureError::InvalidLayout { n_data, n_parity });
        }
        Ok(Layout { n_data, n_parity })
    }

    /// MinIO's default parity for an erasure set of `n_drives` drives: 2–3 drives: 1,
    /// 4–5: 2, 6–7: 3, 8–16: 4. The remaining drives hold data shards.
    pub fn default_for_set(n_drives: usize) -> Result<Layout, ErasureError> {
        let n_parity = match n_drives {
            2..=3 => 1,
            4..=5 => 2,
            6..=7 => 3,
            8..=SET_DRIVES_MAX => 4,
            _ => return Err(ErasureError::InvalidSetSize { n_drives }),
        };
        Layout::new(n_drives - n_parity, n_parity)
    }

    /// Data shards per stripe.
    pub fn n_data(&self) -> usize {
        self.n_data
    }

    /// Parity shards per stripe: how many shards may be lost without losing data.
    pub fn n_parity(&self) -> usize {
        self.n_parity
    }

    /// Data + parity shards per stripe (= drives in the set).
    pub fn n_total(&self) -> usize {
        self.n_data + self.n_parity
    }

    /// Intact shards needed to read: the data shard count.
    pub fn read_quorum(&self) -> usize {
        self.n_data
    }

    /// Shards that must be durably written before a write is acknowledged: the data shard
    /// count, plus one when data = parity (so two disjoint halves can never both succeed).
    pub fn write_quorum(&self) -> usize {
        if self.n_data == self.n_parity {
            self.n_data + 1
        } else {
            self.n_data
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_checks_bounds() {
        let cases: &[(usize, usize, bool)] = &[
            (0, 0, false),
            (1, 0, false),
            (0, 2, false),
            (1, 1, true),
            (2, 0, true),
            (1, 2, false),
            (2, 2, true),
            (12, 4, true),
            (8, 8, true),
            (13, 4, false),
            (16, 0, true),
            (9, 8, false),
            (usize::MAX, 1, false),
        ];
        for &(n_data, n_parity, ok) in cases {
            let got = Layout::new(n_data, n_parity);
            assert_eq!(got.is_ok(), ok, "{n_data}+{n_parity}: {got:?}");
            if !ok {
                assert_eq!(got, Err(ErasureError::InvalidLayout { n_data, n_parity }));
            }
        }
    }

    #[test]
    fn defaults_follow_minio() {
        let expected_parity = [
            (2, 1),
            (3, 1),
            (4, 2),
            (5, 2),
            (6, 3),
            (7, 3),
            (8, 4),
            (12, 4),
            (16, 4),
        ];
        for (n_drives, n_parity) in expected_parity {
            let layout = Layout::default_for_set(n_drives).unwrap();
            assert_eq!(layout.n_parity(), n_parity, "{n_drives} drives");
            assert_eq!(layout.n_total(), n_drives);
        }
        for n_drives in [0, 1, 17, 32] {
            assert_eq!(
                Layout::default_for_set(n_drives),
                Err(ErasureError::InvalidSetSize { n_drives })
            );
        }
    }

    #[test]
    fn quorums() {
        let cases = [
            ((2, 2), 2, 3),
            ((1, 1), 1, 2),
            ((4, 2), 4, 4),
            ((12, 4), 12, 12),
            ((8, 8), 8, 9),
        ];
        for ((n_data, n_parity), read, write) in cases {
            let layout = Layout::new(n_data, n_parity).unwrap();
            assert_eq!(layout.read_quorum(), read);
            assert_eq!(layout.write_quorum(), write, "{n_data}+{n_parity}");
        }
    }
}
