//! Object layer (being written).
