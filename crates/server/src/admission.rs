//! Who gets a connection: the per-client connection count ([`ClientSlots`]), the rate-limited
//! account of refused connections ([`Refusals`]), and the accept loop's handling of failed
//! accepts ([`AcceptErrors`]).
//!
//! Invariants:
//! - A client (an IPv4 address, or an IPv6 /64, since one host commonly owns a whole /64) holds
//!   at most `per_client_max` connections; the table only has entries for clients holding at
//!   least one, so it is bounded by the global connection cap.
//! - A refusal is counted every time and logged at most once per [`REFUSAL_LOG_INTERVAL`], with
//!   the count since the previous line (never once per connection).
//! - An accept that fails for lack of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM, or an error
//!   we do not know) makes the loop pause [`ACCEPT_ERROR_BACKOFF`] before the next try (the
//!   pending connection keeps the listener readable, so retrying at once would spin), and is
//!   logged once per episode: when the first error arrives and when accepts work again.
//!   Errors about one connection only (it was aborted or reset) are retried at once.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Shortest time between two log lines about refused connections.
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Pause of the accept loop after an accept failed for lack of resources.
pub const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);
/// An accept-error episode ends at the first successful accept this long after the last error.
pub const ACCEPT_ERRORS_QUIET: Duration = Duration::from_secs(5);
/// Leading bits of an IPv6 address that name one client.
const IPV6_CLIENT_PREFIX_BITS: u32 = 64;

/// The address a connection counts against: IPv4 as is (also when mapped into IPv6), IPv6
/// masked to its /64.
pub fn client_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let mask = u128::MAX << (128 - IPV6_CLIENT_PREFIX_BITS);
            IpAddr::V6(Ipv6Addr::from(v6.to_bits() & mask))
        }
    }
}

/// Connections held per client.
#[derive(Debug)]
pub struct ClientSlots {
    per_client_max: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

impl ClientSlots {
    /// A table letting each client hold `per_client_max` connections.
    pub fn new(per_client_max: usize) -> Arc<ClientSlots> {
        Arc::new(ClientSlots {
            per_client_max,
            held: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a connection from `ip`, or `None` when its client already holds the most.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        let client = client_of(ip);
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let n = held.entry(client).or_insert(0);
        if *n >= self.per_client_max {
            if *n == 0 {
                held.remove(&client);
            }
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            slots: Arc::clone(self),
            client,
        })
    }

    /// Connections `ip`'s client holds now.
    #[cfg(test)]
    fn held_by(&self, ip: IpAddr) -> usize {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.get(&client_of(ip)).copied().unwrap_or(0)
    }
}

/// One connection's place in [`ClientSlots`], given back on drop.
#[derive(Debug)]
pub struct ClientSlot {
    slots: Arc<ClientSlots>,
    client: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = held.get_mut(&self.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.client);
            }
        }
    }
}

/// Refused connections: counted always, reported at most once per interval.
#[derive(Debug, Default)]
pub struct Refusals {
    total: u64,
    since_report: u64,
    last_report: Option<Instant>,
}

/// What to log about refusals.
#[derive(Debug, PartialEq, Eq)]
pub struct RefusalReport {
    /// Refused since the previous report (this one included).
    pub n_since_last: u64,
    /// Refused since start.
    pub n_total: u64,
}

impl Refusals {
    /// Counts one refusal at `now`; `Some` when a line is due.
    pub fn refused(&mut self, now: Instant) -> Option<RefusalReport> {
        self.total += 1;
        self.since_report += 1;
        let due = self
            .last_report
            .is_none_or(|t| now.saturating_duration_since(t) >= REFUSAL_LOG_INTERVAL);
        if !due {
            return None;
        }
        self.last_report = Some(now);
        let report = RefusalReport {
            n_since_last: self.since_report,
            n_total: self.total,
        };
        self.since_report = 0;
        Some(report)
    }
}

/// Whether a failed accept is about that one connection only (retry at once).
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// Whether a failed accept means the process or system is out of descriptors.
fn is_out_of_descriptors(e: &io::Error) -> bool {
    use rustix::io::Errno;
    matches!(
        e.raw_os_error().map(Errno::from_raw_os_error),
        Some(Errno::MFILE | Errno::NFILE)
    )
}

/// The accept loop's failed accepts, as episodes.
#[derive(Debug, Default)]
pub struct AcceptErrors {
    episode: Option<Episode>,
}

#[derive(Debug)]
struct Episode {
    started: Instant,
    last_error: Instant,
    n_errors: u64,
}

impl AcceptErrors {
    /// Accounts for a failed accept at `now`; returns how long the loop should pause.
    pub fn failed(&mut self, e: &io::Error, now: Instant) -> Option<Duration> {
        if is_per_connection(e) {
            tracing::debug!(error = %e, "accept failed for one connection");
            return None;
        }
        match &mut self.episode {
            Some(ep) => {
                ep.n_errors += 1;
                ep.last_error = now;
            }
            None => {
                if is_out_of_descriptors(e) {
                    tracing::warn!(
                        error = %e,
                        backoff_ms = ACCEPT_ERROR_BACKOFF.as_millis(),
                        "cannot accept connections: out of file descriptors; accepting more slowly until some are free (logged once per episode)"
                    );
                } else {
                    tracing::warn!(
                        error = %e,
                        backoff_ms = ACCEPT_ERROR_BACKOFF.as_millis(),
                        "cannot accept connections; retrying more slowly (logged once per episode)"
                    );
                }
                self.episode = Some(Episode {
                    started: now,
                    last_error: now,
                    n_errors: 1,
                });
            }
        }
        Some(ACCEPT_ERROR_BACKOFF)
    }

    /// Accounts for a successful accept at `now`; ends an episode that has been quiet long
    /// enough. Returns whether one ended.
    pub fn accepted(&mut self, now: Instant) -> bool {
        let Some(ep) = &self.episode else {
            return false;
        };
        if now.saturating_duration_since(ep.last_error) < ACCEPT_ERRORS_QUIET {
            return false;
        }
        tracing::info!(
            n_errors = ep.n_errors,
            episode_ms = u64::try_from(ep.last_error.saturating_duration_since(ep.started).as_millis())
                .unwrap_or(u64::MAX),
            "accepting connections normally again"
        );
        self.episode = None;
        true
    }

    /// Failed accepts in the current episode.
    #[cfg(test)]
    fn n_errors(&self) -> u64 {
        self.episode.as_ref().map_or(0, |e| e.n_errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_addresses_and_ipv6_slash_64s() {
        let cases: &[(&str, &str)] = &[
            ("192.0.2.7", "192.0.2.7"),
            ("::ffff:192.0.2.7", "192.0.2.7"),
            ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::"),
            ("2001:db8:1:3::1", "2001:db8:1:3::"),
            ("::1", "::"),
        ];
        for (ip, client) in cases {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(client_of(ip), client.parse::<IpAddr>().unwrap(), "{ip}");
        }
    }

    #[test]
    fn a_client_holds_at_most_its_share() {
        let slots = ClientSlots::new(3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let mut held: Vec<_> = (0..3).map(|_| slots.try_acquire(a).unwrap()).collect();
        assert!(slots.try_acquire(a).is_none());
        assert!(slots.try_acquire(b).is_some(), "another client is not affected");
        drop(held.pop());
        assert_eq!(slots.held_by(a), 2);
        let again = slots.try_acquire(a).unwrap();
        assert!(slots.try_acquire(a).is_none());
        drop(again);
        // Two addresses of one /64 are one client.
        let v6 = ClientSlots::new(1);
        let _one = v6.try_acquire("2001:db8::1".parse().unwrap()).unwrap();
        assert!(v6.try_acquire("2001:db8::2".parse().unwrap()).is_none());
        assert!(v6.try_acquire("2001:db8:0:1::2".parse().unwrap()).is_some());
    }

    #[test]
    fn the_table_forgets_clients_that_left() {
        let slots = ClientSlots::new(2);
        for i in 0..100u8 {
            let ip = IpAddr::from([10, 0, 0, i]);
            drop(slots.try_acquire(ip).unwrap());
        }
        assert!(slots.held.lock().unwrap().is_empty());
        let zero = ClientSlots::new(0);
        assert!(zero.try_acquire(IpAddr::from([10, 0, 0, 1])).is_none());
        assert!(zero.held.lock().unwrap().is_empty());
    }

    #[test]
    fn refusals_are_reported_once_per_interval() {
        let mut r = Refusals::default();
        let t0 = Instant::now();
        assert_eq!(
            r.refused(t0),
            Some(RefusalReport {
                n_since_last: 1,
                n_total: 1
            })
        );
        for i in 1..100u32 {
            assert_eq!(r.refused(t0 + Duration::from_millis(u64::from(i))), None);
        }
        assert_eq!(
            r.refused(t0 + REFUSAL_LOG_INTERVAL),
            Some(RefusalReport {
                n_since_last: 100,
                n_total: 101
            })
        );
    }

    #[test]
    fn out_of_descriptors_pauses_and_is_one_episode() {
        let mut errors = AcceptErrors::default();
        let t0 = Instant::now();
        let emfile = io::Error::from_raw_os_error(rustix::io::Errno::MFILE.raw_os_error());
        let enfile = io::Error::from_raw_os_error(rustix::io::Errno::NFILE.raw_os_error());
        assert!(is_out_of_descriptors(&emfile) && is_out_of_descriptors(&enfile));
        for i in 0..50u64 {
            let e = if i % 2 == 0 { &emfile } else { &enfile };
            assert_eq!(
                errors.failed(e, t0 + Duration::from_millis(i * 100)),
                Some(ACCEPT_ERROR_BACKOFF)
            );
        }
        assert_eq!(errors.n_errors(), 50);
        let last_error = t0 + Duration::from_millis(49 * 100);
        // A success soon after does not end it (the next accept will likely fail again) ...
        assert!(!errors.accepted(last_error + Duration::from_millis(1)));
        assert!(
            errors
                .failed(&emfile, last_error + Duration::from_millis(2))
                .is_some()
        );
        assert_eq!(errors.n_errors(), 51);
        // ... a quiet period does.
        assert!(errors.accepted(last_error + ACCEPT_ERRORS_QUIET + Duration::from_millis(2)));
        assert_eq!(errors.n_errors(), 0);
        assert!(!errors.accepted(last_error + ACCEPT_ERRORS_QUIET * 2));
    }

    #[test]
    fn a_connection_aborted_before_accept_is_retried_at_once() {
        let mut errors = AcceptErrors::default();
        let aborted = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(errors.failed(&aborted, Instant::now()), None);
        assert_eq!(errors.n_errors(), 0);
        let other = io::Error::from_raw_os_error(rustix::io::Errno::NOBUFS.raw_os_error());
        assert_eq!(errors.failed(&other, Instant::now()), Some(ACCEPT_ERROR_BACKOFF));
    }
}
