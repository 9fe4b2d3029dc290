//! Anti-replay: each client session's sliding window of accepted sequence numbers
//! ([`ReplayWindow`], as in IPsec/DTLS), and the bounded set of live sessions a server keeps
//! ([`ReplayGuard`]).
//!
//! A window is the highest sequence number accepted so far (`highest`) and a ring of
//! [`REPLAY_WINDOW_SEQS`] bits, bit `seq % REPLAY_WINDOW_SEQS` standing for `seq` while
//! `highest - REPLAY_WINDOW_SEQS < seq <= highest`. A number above `highest` moves the window
//! (clearing the bits it passes) and is accepted; one inside the window is accepted once, when
//! its bit is clear; one at or below `highest - REPLAY_WINDOW_SEQS` is refused (it may have
//! been accepted once). Requests sent concurrently arrive out of order by far fewer than the
//! window's 65,536 numbers, since each client session talks to one server.
//!
//! **Invariant:** a sequence number is accepted at most once per session while the session is
//! remembered, and a session is forgotten only once every request it ever had accepted is
//! refused as stale by its date anyway (its newest accepted date is more than
//! [`CLOCK_SKEW_SECS_MAX`] behind the server's clock) and it has been idle for twice that by
//! the monotonic clock. At [`REPLAY_SESSIONS_MAX`] live sessions, new sessions are refused; live
//! ones are never evicted.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::auth::AuthFailure;
use crate::{CLOCK_SKEW_SECS_MAX, REPLAY_SESSIONS_MAX, REPLAY_WINDOW_SEQS};

const WINDOW_WORDS: usize = (REPLAY_WINDOW_SEQS / 64) as usize;
const _: () = assert!(REPLAY_WINDOW_SEQS.is_multiple_of(64) && REPLAY_WINDOW_SEQS > 0);

/// Sessions are swept for expired ones at most this often (and whenever the set is full).
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// The accepted sequence numbers of one session (see the module docs).
#[derive(Debug)]
pub(crate) struct ReplayWindow {
    /// Highest sequence number accepted; 0 before the first (sequence numbers start at 1).
    highest: u64,
    bits: Box<[u64; WINDOW_WORDS]>,
}

impl ReplayWindow {
    pub(crate) fn new() -> Self {
        ReplayWindow {
            highest: 0,
            bits: Box::new([0; WINDOW_WORDS]),
        }
    }

    fn slot(seq: u64) -> (usize, u64) {
        let pos = seq % REPLAY_WINDOW_SEQS;
        // `pos / 64 < WINDOW_WORDS`, so the index fits.
        ((pos / 64) as usize, 1u64 << (pos % 64))
    }

    /// Accepts `seq` if it was not accepted before and is inside the window.
    pub(crate) fn accept(&mut self, seq: u64) -> Result<(), AuthFailure> {
        if seq == 0 {
            return Err(AuthFailure::OutsideWindow);
        }
        if seq > self.highest {
            if seq - self.highest >= REPLAY_WINDOW_SEQS {
                self.bits.fill(0);
            } else {
                let mut s = self.highest + 1;
                while s < seq {
                    let (word, bit) = Self::slot(s);
                    if bit == 1 && seq - s >= 64 {
                        self.bits[word] = 0;
                        s += 64;
                    } else {
                        self.bits[word] &= !bit;
                        s += 1;
                    }
                }
            }
            let (word, bit) = Self::slot(seq);
            self.bits[word] |= bit;
            self.highest = seq;
            return Ok(());
        }
        if self.highest - seq >= REPLAY_WINDOW_SEQS {
            return Err(AuthFailure::OutsideWindow);
        }
        let (word, bit) = Self::slot(seq);
        if self.bits[word] & bit != 0 {
            return Err(AuthFailure::Replay);
        }
        self.bits[word] |= bit;
        Ok(())
    }
}

#[derive(Debug)]
struct Session {
    window: ReplayWindow,
    /// Newest date of a request accepted in this session.
    date_max_secs: u64,
    last_used: Instant,
}

impl Session {
    /// Whether every request this session had accepted is now refused as stale, and it has
    /// been idle for long enough that forgetting it cannot let one through.
    fn expired(&self, now_secs: u64, now: Instant) -> bool {
        now_secs > self.date_max_secs.saturating_add(CLOCK_SKEW_SECS_MAX)
            && now.saturating_duration_since(self.last_used) > Duration::from_secs(2 * CLOCK_SKEW_SECS_MAX)
    }
}

#[derive(Debug)]
struct Sessions {
    by_id: HashMap<u128, Session>,
    swept_at: Instant,
}

/// The live sessions of one server and their windows.
#[derive(Debug)]
pub(crate) struct ReplayGuard {
    sessions: Mutex<Sessions>,
    replays_refused: AtomicU64,
}

impl ReplayGuard {
    pub(crate) fn new() -> Self {
        ReplayGuard {
            sessions: Mutex::new(Sessions {
                by_id: HashMap::new(),
                swept_at: Instant::now(),
            }),
            replays_refused: AtomicU64::new(0),
        }
    }

    /// Requests refused as replays or as older than their window, since the server started.
    pub(crate) fn replays_refused(&self) -> u64 {
        self.replays_refused.load(Ordering::Relaxed)
    }

    /// Accepts request `seq` of `session`, dated `date_secs` (already verified to be within
    /// the clock skew of `now_secs`), at most once.
    pub(crate) fn check(
        &self,
        session: u128,
        seq: u64,
        date_secs: u64,
        now_secs: u64,
        now: Instant,
    ) -> Result<(), AuthFailure> {
        let mut guard = match self.sessions.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let sessions = &mut *guard;
        if !sessions.by_id.contains_key(&session) {
            if sessions.by_id.len() >= REPLAY_SESSIONS_MAX
                || now.saturating_duration_since(sessions.swept_at) >= SWEEP_INTERVAL
            {
                sessions.by_id.retain(|_, s| !s.expired(now_secs, now));
                sessions.swept_at = now;
            }
            if sessions.by_id.len() >= REPLAY_SESSIONS_MAX {
                return Err(AuthFailure::SessionsFull);
            }
        }
        let entry = sessions.by_id.entry(session).or_insert_with(|| Session {
            window: ReplayWindow::new(),
            date_max_secs: date_secs,
            last_used: now,
        });
        match entry.window.accept(seq) {
            Ok(()) => {
                entry.date_max_secs = entry.date_max_secs.max(date_secs);
                entry.last_used = now;
                Ok(())
            }
            Err(failure) => {
                self.replays_refused.fetch_add(1, Ordering::Relaxed);
                Err(failure)
            }
        }
    }

    #[cfg(test)]
    fn n_sessions(&self) -> usize {
        self.sessions.lock().map(|s| s.by_id.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn window_cases() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.accept(0), Err(AuthFailure::OutsideWindow));
        assert_eq!(w.accept(5), Ok(()));
        assert_eq!(w.accept(5), Err(AuthFailure::Replay));
        assert_eq!(w.accept(3), Ok(()));
        assert_eq!(w.accept(3), Err(AuthFailure::Replay));
        assert_eq!(w.accept(1), Ok(()));
        // Moving by exactly the window drops everything behind it.
        let top = 5 + REPLAY_WINDOW_SEQS;
        assert_eq!(w.accept(top), Ok(()));
        assert_eq!(w.accept(5), Err(AuthFailure::OutsideWindow));
        assert_eq!(w.accept(6), Ok(()));
        assert_eq!(w.accept(6), Err(AuthFailure::Replay));
        // A big jump clears the ring: the numbers it passed are new.
        assert_eq!(w.accept(top + 3 * REPLAY_WINDOW_SEQS), Ok(()));
        assert_eq!(w.accept(top + 3 * REPLAY_WINDOW_SEQS - 1), Ok(()));
        assert_eq!(
            w.accept(top + 2 * REPLAY_WINDOW_SEQS),
            Err(AuthFailure::OutsideWindow)
        );
        assert_eq!(w.accept(u64::MAX), Ok(()));
        assert_eq!(w.accept(u64::MAX), Err(AuthFailure::Replay));
    }

    proptest! {
        /// Any order of distinct numbers spanning less than the window is accepted exactly
        /// once; each number again is refused.
        #[test]
        fn distinct_seqs_within_the_window_are_accepted_exactly_once(
            base in 1u64..u64::MAX / 2,
            offsets in proptest::collection::hash_set(0..REPLAY_WINDOW_SEQS, 1..300),
            shuffle_seed in any::<u64>(),
            replays in proptest::collection::vec(any::<proptest::sample::Index>(), 1..50),
        ) {
            let mut seqs: Vec<u64> = offsets.into_iter().map(|o| base + o).collect();
            // Deterministic shuffle from the seed (xorshift Fisher-Yates).
            let mut x = shuffle_seed | 1;
            for i in (1..seqs.len()).rev() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                seqs.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let mut w = ReplayWindow::new();
            for (idx, &seq) in seqs.iter().enumerate() {
                prop_assert_eq!(w.accept(seq), Ok(()));
                // Replays of anything accepted so far, interleaved.
                let again = replays[idx % replays.len()].index(idx + 1);
                prop_assert_eq!(w.accept(seqs[again]), Err(AuthFailure::Replay));
            }
            for &seq in &seqs {
                prop_assert_eq!(w.accept(seq), Err(AuthFailure::Replay));
            }
        }

        /// Whatever was accepted, no number is ever accepted twice (from any history).
        #[test]
        fn nothing_is_accepted_twice(seqs in proptest::collection::vec(1u64..4 * REPLAY_WINDOW_SEQS, 1..400)) {
            let mut w = ReplayWindow::new();
            let mut accepted = std::collections::HashSet::new();
            for seq in seqs {
                if w.accept(seq).is_ok() {
                    prop_assert!(accepted.insert(seq), "{} accepted twice", seq);
                }
            }
        }
    }

    #[test]
    fn sessions_are_bounded_and_expire_only_when_stale() {
        let guard = ReplayGuard::new();
        let start = Instant::now();
        let date = 1_700_000_000;
        for session in 0..REPLAY_SESSIONS_MAX as u128 {
            assert_eq!(guard.check(session, 1, date, date, start), Ok(()));
        }
        // Full: a new session is refused, a live one still works, nothing was evicted.
        assert_eq!(
            guard.check(u128::MAX, 1, date, date, start),
            Err(AuthFailure::SessionsFull)
        );
        assert_eq!(guard.check(0, 2, date, date, start), Ok(()));
        assert_eq!(guard.check(0, 2, date, date, start), Err(AuthFailure::Replay));
        assert_eq!(guard.replays_refused(), 1);
        // Idle long enough by the monotonic clock, but the dates are not stale yet.
        let later = start + Duration::from_secs(2 * CLOCK_SKEW_SECS_MAX + 1);
        assert_eq!(
            guard.check(u128::MAX, 1, date, date + CLOCK_SKEW_SECS_MAX, later),
            Err(AuthFailure::SessionsFull)
        );
        // Stale by date and idle: forgotten, and the new session fits.
        let now_secs = date + CLOCK_SKEW_SECS_MAX + 1;
        assert_eq!(guard.check(u128::MAX, 1, now_secs, now_secs, later), Ok(()));
        assert_eq!(guard.n_sessions(), 1);
    }
}
