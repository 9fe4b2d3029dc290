//! Erasure coding (placeholder until the erasure helper lands it).
