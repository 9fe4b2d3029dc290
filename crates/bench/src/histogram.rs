//! [`LatencyHistogram`]: a log-bucketed latency histogram in the spirit of HDR histograms,
//! with microsecond resolution and a bounded relative error.
//!
//! Invariants:
//! - Values below 2^[`SUB_BUCKET_BITS`] µs are counted exactly; above, each power of two is
//!   split into 2^([`SUB_BUCKET_BITS`] - 1) equal sub-buckets, so a reported percentile is
//!   within 1/2^([`SUB_BUCKET_BITS`] - 1) (under 1.6 %) of a recorded value.
//! - Memory is fixed ([`BUCKETS_COUNT`] counters) whatever is recorded; `max` and `min` are
//!   exact; percentiles never exceed `max`.

use std::time::Duration;

/// Bits of precision per power of two.
pub const SUB_BUCKET_BITS: u32 = 7;
const LINEAR_BUCKETS_COUNT: usize = 1 << SUB_BUCKET_BITS;
const HALF_BUCKETS_COUNT: usize = 1 << (SUB_BUCKET_BITS - 1);
/// Counters needed to cover every `u64` microsecond value.
pub const BUCKETS_COUNT: usize = LINEAR_BUCKETS_COUNT + (64 - SUB_BUCKET_BITS as usize) * HALF_BUCKETS_COUNT;
const _: () = assert!(SUB_BUCKET_BITS >= 2 && SUB_BUCKET_BITS < 16);

/// Latencies recorded in microseconds.
#[derive(Clone, Debug)]
pub struct LatencyHistogram {
    counts: Box<[u64]>,
    n_values: u64,
    sum_micros: u128,
    min_micros: u64,
    max_micros: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

fn bucket_idx(micros: u64) -> usize {
    if micros < LINEAR_BUCKETS_COUNT as u64 {
        return micros as usize;
    }
    let exponent = 63 - micros.leading_zeros(); // >= SUB_BUCKET_BITS
    let shift = exponent + 1 - SUB_BUCKET_BITS;
    let mantissa = (micros >> shift) as usize; // in [HALF, LINEAR)
    LINEAR_BUCKETS_COUNT
        + (exponent - SUB_BUCKET_BITS) as usize * HALF_BUCKETS_COUNT
        + (mantissa - HALF_BUCKETS_COUNT)
}

/// Largest value counted in bucket `idx`.
fn bucket_high(idx: usize) -> u64 {
    if idx < LINEAR_BUCKETS_COUNT {
        return idx as u64;
    }
    let offset = idx - LINEAR_BUCKETS_COUNT;
    let exponent = (offset / HALF_BUCKETS_COUNT) as u32 + SUB_BUCKET_BITS;
    let mantissa = (offset % HALF_BUCKETS_COUNT + HALF_BUCKETS_COUNT) as u64;
    let shift = exponent + 1 - SUB_BUCKET_BITS;
    // The bucket is [mantissa << shift, (mantissa + 1) << shift); the top one ends at u64::MAX.
    ((mantissa + 1) << shift).wrapping_sub(1).max(mantissa << shift)
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS_COUNT].into_boxed_slice(),
            n_values: 0,
            sum_micros: 0,
            min_micros: u64::MAX,
            max_micros: 0,
        }
    }

    /// Records one latency (rounded down to whole microseconds).
    pub fn record(&mut self, latency: Duration) {
        self.record_micros(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    /// Records one latency in microseconds.
    pub fn record_micros(&mut self, micros: u64) {
        if let Some(count) = self.counts.get_mut(bucket_idx(micros)) {
            *count += 1;
        }
        self.n_values += 1;
        self.sum_micros += u128::from(micros);
        self.min_micros = self.min_micros.min(micros);
        self.max_micros = self.max_micros.max(micros);
    }

    /// Adds every value recorded in `other`.
    pub fn merge(&mut self, other: &Self) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
        self.n_values += other.n_values;
        self.sum_micros += other.sum_micros;
        self.min_micros = self.min_micros.min(other.min_micros);
        self.max_micros = self.max_micros.max(other.max_micros);
    }

    /// Values recorded.
    pub fn len(&self) -> u64 {
        self.n_values
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.n_values == 0
    }

    /// The value at quantile `q` (0.0..=1.0): the smallest bucket bound below which at least
    /// `q` of the values lie, clamped to the exact maximum. Zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.n_values == 0 {
            return Duration::ZERO;
        }
        let q = q.clamp(0.0, 1.0);
        // Rank of the value wanted, 1-based: ceil(q * n), at least 1.
        let rank = ((q * self.n_values as f64).ceil() as u64).clamp(1, self.n_values);
        let mut seen = 0u64;
        for (idx, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Duration::from_micros(bucket_high(idx).clamp(self.min_micros, self.max_micros));
            }
        }
        Duration::from_micros(self.max_micros)
    }

    /// The exact largest value (zero when empty).
    pub fn max(&self) -> Duration {
        Duration::from_micros(self.max_micros)
    }

    /// The exact mean (zero when empty).
    pub fn mean(&self) -> Duration {
        match self.n_values {
            0 => Duration::ZERO,
            n => Duration::from_micros(u64::try_from(self.sum_micros / u128::from(n)).unwrap_or(u64::MAX)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(d: Duration) -> u64 {
        d.as_micros() as u64
    }

    #[test]
    fn buckets_cover_u64_monotonically() {
        assert_eq!(bucket_idx(u64::MAX), BUCKETS_COUNT - 1);
        assert_eq!(bucket_high(BUCKETS_COUNT - 1), u64::MAX);
        let mut samples: Vec<u64> = (0..64)
            .flat_map(|shift| {
                let base = 1u64 << shift;
                [
                    base,
                    base + 1,
                    base.saturating_add(base / 2),
                    base.saturating_add(base - 1),
                ]
            })
            .collect();
        samples.push(u64::MAX);
        samples.sort_unstable();
        let mut last_idx = 0;
        for v in samples {
            let idx = bucket_idx(v);
            assert!(idx >= last_idx, "{v}: buckets must grow with values");
            assert!(bucket_high(idx) >= v, "{v} above its bucket");
            last_idx = idx;
        }
        for v in 0..100_000u64 {
            let idx = bucket_idx(v);
            assert!(bucket_high(idx) >= v);
            assert!(idx == 0 || bucket_high(idx - 1) < v, "{v} in too high a bucket");
        }
    }

    #[test]
    fn percentiles_of_uniform_values_are_within_the_error_bound() {
        let mut h = LatencyHistogram::new();
        for v in 1..=100_000u64 {
            h.record_micros(v);
        }
        assert_eq!(h.len(), 100_000);
        for (q, exact) in [(0.5, 50_000u64), (0.9, 90_000), (0.99, 99_000), (0.999, 99_900)] {
            let got = micros(h.quantile(q));
            let error = got.abs_diff(exact) as f64 / exact as f64;
            assert!(error <= 1.0 / HALF_BUCKETS_COUNT as f64, "q{q}: {got} vs {exact}");
            assert!(
                got >= exact,
                "a percentile is reported at its bucket's upper bound"
            );
        }
        assert_eq!(micros(h.quantile(1.0)), 100_000);
        assert_eq!(micros(h.quantile(0.0)), 1);
        assert_eq!(micros(h.max()), 100_000);
        assert_eq!(micros(h.mean()), 50_000);
    }

    #[test]
    fn small_values_are_exact_and_skew_is_seen() {
        let mut h = LatencyHistogram::new();
        for _ in 0..99 {
            h.record(Duration::from_micros(100));
        }
        h.record(Duration::from_secs(2));
        assert_eq!(micros(h.quantile(0.5)), 100);
        assert_eq!(micros(h.quantile(0.99)), 100);
        assert_eq!(h.quantile(0.999), Duration::from_secs(2));
        assert_eq!(h.max(), Duration::from_secs(2));
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let mut a = LatencyHistogram::new();
        let mut b = LatencyHistogram::new();
        let mut all = LatencyHistogram::new();
        for v in 0..5000u64 {
            let value = v * v % 1_000_003;
            if v % 3 == 0 { &mut a } else { &mut b }.record_micros(value);
            all.record_micros(value);
        }
        a.merge(&b);
        for q in [0.1, 0.5, 0.9, 0.99, 1.0] {
            assert_eq!(a.quantile(q), all.quantile(q));
        }
        assert_eq!(a.len(), all.len());
        assert_eq!(a.mean(), all.mean());
        let empty = LatencyHistogram::new();
        assert!(empty.is_empty());
        assert_eq!(empty.quantile(0.5), Duration::ZERO);
        assert_eq!(empty.mean(), Duration::ZERO);
    }
}
