//! Distributed locks (being written).
