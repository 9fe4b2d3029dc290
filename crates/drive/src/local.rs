//! Local drive (being written).
