//! The process's file-descriptor budget: at start the `RLIMIT_NOFILE` soft limit is raised to
//! the hard limit (a systemd service starts with a soft limit of 1024, far below what thousands
//! of connections plus the drives' files need), and the connection cap is fitted to what was
//! got.
//!
//! Invariant: client connections get at most half of the descriptor limit (one
//! [`CONNECTION_DESCRIPTORS_SHARE_DIVISOR`]th), so the drives, node-to-node connections and audit files always find
//! descriptors; the accept loop waits for a slot instead of taking the last descriptors.

/// Client connections may use at most 1/this of the descriptor limit.
pub const CONNECTION_DESCRIPTORS_SHARE_DIVISOR: u64 = 2;

/// The descriptor limit before and after raising it (`None` is unlimited).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NofileLimit {
    /// Soft limit the process started with.
    pub soft_before: Option<u64>,
    /// Soft limit now.
    pub soft: Option<u64>,
    /// Hard limit.
    pub hard: Option<u64>,
}

/// Raises the soft descriptor limit to the hard limit. Returns the limits, and the error if
/// raising failed (the process then keeps its soft limit).
pub fn raise_nofile_limit() -> (NofileLimit, Option<std::io::Error>) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let before = getrlimit(Resource::Nofile);
    let mut limit = NofileLimit {
        soft_before: before.current,
        soft: before.current,
        hard: before.maximum,
    };
    if before.current == before.maximum {
        return (limit, None);
    }
    let raised = Rlimit {
        current: before.maximum,
        maximum: before.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            limit.soft = getrlimit(Resource::Nofile).current;
            (limit, None)
        }
        Err(e) => (limit, Some(e.into())),
    }
}

/// Logs what [`raise_nofile_limit`] got.
pub fn log_nofile_limit(limit: NofileLimit, error: Option<&std::io::Error>) {
    let show = |v: Option<u64>| v.map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
    match error {
        None => tracing::info!(
            soft = %show(limit.soft),
            soft_before = %show(limit.soft_before),
            hard = %show(limit.hard),
            "file descriptor limit"
        ),
        Some(e) => tracing::warn!(
            soft = %show(limit.soft),
            hard = %show(limit.hard),
            error = %e,
            "cannot raise the file descriptor limit to the hard limit; keeping the soft limit"
        ),
    }
}

/// The connection cap to use: the configured one, lowered to a share of the descriptor limit.
pub fn connections_max_for(configured: usize, soft_limit: Option<u64>) -> usize {
    match soft_limit {
        None => configured,
        Some(soft) => {
            let share = usize::try_from(soft / CONNECTION_DESCRIPTORS_SHARE_DIVISOR).unwrap_or(usize::MAX);
            configured.min(share).max(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_half_the_descriptors() {
        let cases: &[(usize, Option<u64>, usize)] = &[
            (4096, None, 4096),
            (4096, Some(1_048_576), 4096),
            (4096, Some(8192), 4096),
            (4096, Some(1024), 512),
            (4096, Some(256), 128),
            (100, Some(256), 100),
            (4096, Some(1), 1),
        ];
        for &(configured, soft, want) in cases {
            assert_eq!(
                connections_max_for(configured, soft),
                want,
                "{configured} {soft:?}"
            );
        }
    }

    #[test]
    fn raising_gets_the_hard_limit() {
        // The test process may already run at its hard limit; either way soft ends at hard.
        let (limit, error) = raise_nofile_limit();
        assert!(error.is_none(), "{error:?}");
        assert_eq!(limit.soft, limit.hard);
    }
}
