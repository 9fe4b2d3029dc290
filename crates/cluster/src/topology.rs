//! Endpoint arguments to pools, erasure sets and drives (being written).
