//! The bound on password tries on one link, whoever makes them: a budget a minute, then a lock that doubles each
//! time the budget is spent again. Bounds per client ([`crate::http::unlock`]) do not stop guessing from many
//! addresses (a botnet, or the 65,536 /64s of one IPv6 /48); this one does, at the price that while a link is
//! locked its own visitors wait too (429 with `Retry-After`, at most [`MAX_LOCK`]).
//!
//! Every try counts as wrong until its password is found right (a right one forgets the link's tries and locks),
//! so tries checked at once cannot slip past the budget. A link's locks are forgotten [`MAX_LOCK`] after its
//! last try or lock ended. The map is bounded: past [`MAX_LINKS`] links with recent tries, tries on other links are refused.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// The window a budget is spent in.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

/// The first lock of a link whose budget is spent; each next one is twice as long, up to [`MAX_LOCK`].
const FIRST_LOCK: Duration = Duration::from_secs(60);

/// The longest lock, and how long after its last try a link's tries are forgotten.
pub const MAX_LOCK: Duration = Duration::from_secs(15 * 60);

/// Most links whose tries are kept at once (~64 bytes each).
const MAX_LINKS: usize = 100_000;

/// One link's tries.
#[derive(Debug, Clone, Copy)]
struct Link {
    window_started: Instant,
    tries: u32,
    /// Locks since the link's tries were last forgotten: the next lock is `FIRST_LOCK × 2^locks`.
    locks: u32,
    locked_until: Option<Instant>,
    last_try: Instant,
}

/// Tries per link (keyed by a seeded hash of its code).
pub struct LinkTries {
    budget: u32,
    links: Mutex<HashMap<u64, Link, foldhash::fast::FixedState>>,
}

impl LinkTries {
    /// At most `per_minute` tries a minute on one link before it locks (0: no bound).
    pub fn new(per_minute: u32) -> Self {
        Self {
            budget: per_minute,
            links: Mutex::default(),
        }
    }

    /// Counts a try on `link` at `now`.
    ///
    /// # Errors
    /// How long until the link takes tries again: it is locked (or the map of links is full).
    pub fn begin(&self, link: u64, now: Instant) -> Result<(), Duration> {
        if self.budget == 0 {
            return Ok(());
        }
        let mut links = self.links.lock().unwrap_or_else(PoisonError::into_inner);
        if links.len() >= MAX_LINKS && !links.contains_key(&link) {
            links.retain(|_, state| !idle(state, now));
            if links.len() >= MAX_LINKS {
                return Err(WINDOW);
            }
        }
        let state = links.entry(link).or_insert(Link {
            window_started: now,
            tries: 0,
            locks: 0,
            locked_until: None,
            last_try: now,
        });
        if idle(state, now) {
            state.locks = 0;
        }
        if let Some(until) = state.locked_until {
            if now < until {
                return Err(until - now);
            }
            state.locked_until = None;
            state.window_started = now;
            state.tries = 0;
        }
        if now.duration_since(state.window_started) >= WINDOW {
            state.window_started = now;
            state.tries = 0;
        }
        state.last_try = now;
        state.tries += 1;
        if state.tries >= self.budget {
            let lock = FIRST_LOCK
                .saturating_mul(1 << state.locks.min(16))
                .min(MAX_LOCK);
            state.locks += 1;
            state.locked_until = Some(now + lock);
        }
        Ok(())
    }

    /// The password tried on `link` was right: its tries and locks are forgotten.
    pub fn succeeded(&self, link: u64) {
        if self.budget > 0 {
            self.links
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&link);
        }
    }

    /// Forgets the links whose tries and locks are over; run every [`WINDOW`].
    pub fn forget_idle(&self) {
        let now = Instant::now();
        let mut links = self.links.lock().unwrap_or_else(PoisonError::into_inner);
        links.retain(|_, state| !idle(state, now));
        links.shrink_to_fit();
    }
}

/// Whether `state`'s last try and lock ended [`MAX_LOCK`] ago.
fn idle(state: &Link, now: Instant) -> bool {
    let busy_until = state
        .locked_until
        .map_or(state.last_try, |until| until.max(state.last_try));
    now.saturating_duration_since(busy_until) >= MAX_LOCK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_its_budget_a_link_locks_for_twice_as_long_each_time() {
        let tries = LinkTries::new(3);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(tries.begin(7, start), Ok(()));
        }
        assert_eq!(tries.begin(7, start), Err(FIRST_LOCK));
        assert_eq!(tries.begin(8, start), Ok(()), "another link is its own");

        let unlocked = start + FIRST_LOCK;
        for _ in 0..3 {
            assert_eq!(tries.begin(7, unlocked), Ok(()));
        }
        assert_eq!(tries.begin(7, unlocked), Err(FIRST_LOCK * 2));

        let later = unlocked + FIRST_LOCK * 2;
        for _ in 0..3 {
            assert_eq!(tries.begin(7, later), Ok(()));
        }
        assert_eq!(tries.begin(7, later), Err(FIRST_LOCK * 4));
    }

    #[test]
    fn the_lock_grows_no_longer_than_its_bound() {
        let tries = LinkTries::new(1);
        let mut now = Instant::now();
        for _ in 0..40 {
            assert_eq!(tries.begin(7, now), Ok(()));
            let wait = tries.begin(7, now).expect_err("locked");
            assert!(wait <= MAX_LOCK, "{wait:?}");
            now += wait;
        }
        assert_eq!(tries.begin(7, now), Ok(()));
        assert_eq!(tries.begin(7, now), Err(MAX_LOCK));
    }

    #[test]
    fn a_right_password_or_a_quiet_link_forgets_the_tries() {
        let tries = LinkTries::new(2);
        let start = Instant::now();
        assert_eq!(tries.begin(7, start), Ok(()));
        tries.succeeded(7);
        assert_eq!(tries.begin(7, start), Ok(()));
        assert_eq!(tries.begin(7, start), Ok(()));
        assert!(tries.begin(7, start).is_err());

        // A second lock after a quiet spell is a first lock again.
        let quiet = start + FIRST_LOCK + MAX_LOCK;
        assert_eq!(tries.begin(7, quiet), Ok(()));
        assert_eq!(tries.begin(7, quiet), Ok(()));
        assert_eq!(tries.begin(7, quiet), Err(FIRST_LOCK));
    }

    #[test]
    fn a_window_that_did_not_spend_the_budget_starts_over() {
        let tries = LinkTries::new(2);
        let start = Instant::now();
        assert_eq!(tries.begin(7, start), Ok(()));
        assert_eq!(tries.begin(7, start + WINDOW), Ok(()));
        assert_eq!(tries.begin(7, start + WINDOW), Ok(()));
        assert!(tries.begin(7, start + WINDOW).is_err());
    }

    #[test]
    fn zero_turns_it_off() {
        let tries = LinkTries::new(0);
        let now = Instant::now();
        for _ in 0..1000 {
            assert_eq!(tries.begin(7, now), Ok(()));
        }
    }
}
