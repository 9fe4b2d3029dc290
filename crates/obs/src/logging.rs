//! Log setup: `tracing` events to stderr as human-readable text or one JSON object per line.
//! The filter is `RUST_LOG` when set, else the configured level, else [`DEFAULT_LOG_FILTER`].
//! The server opens a `request` span carrying `request_id` around each request, so every line
//! logged while serving it names the request (JSON lines carry the span's fields).
//!
//! Invariant: installed once per process; a second call changes nothing.

use tracing_subscriber::EnvFilter;

use crate::error::ObsError;

/// Filter when neither `RUST_LOG` nor a configured level is given. s3s logs every S3 error
/// response at error level, which the server's per-request line already covers.
pub const DEFAULT_LOG_FILTER: &str = "info,s3s=off";

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogStyle {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The filter to use: `rust_log` (the `RUST_LOG` value) beats `configured` beats the default.
pub fn filter_spec(rust_log: Option<&str>, configured: Option<&str>) -> String {
    rust_log
        .filter(|s| !s.trim().is_empty())
        .or(configured.filter(|s| !s.trim().is_empty()))
        .unwrap_or(DEFAULT_LOG_FILTER)
        .to_owned()
}

/// Installs the global subscriber.
pub fn init(style: LogStyle, configured_level: Option<&str>) -> Result<(), ObsError> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let spec = filter_spec(rust_log.as_deref(), configured_level);
    let filter = EnvFilter::try_new(&spec).map_err(|e| ObsError::LogFilter {
        filter: spec.clone(),
        reason: e.to_string(),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `try_init` fails only when a subscriber is already installed: keep that one.
    let _ = match style {
        LogStyle::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogStyle::Text => builder.try_init(),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence() {
        assert_eq!(filter_spec(None, None), DEFAULT_LOG_FILTER);
        assert_eq!(filter_spec(None, Some("debug")), "debug");
        assert_eq!(filter_spec(Some("warn"), Some("debug")), "warn");
        assert_eq!(filter_spec(Some(" "), Some("debug")), "debug");
        assert!(init(LogStyle::Text, Some("info,[")).is_err() || std::env::var("RUST_LOG").is_ok());
    }
}
