//! S3 front door (being written).
