//! A bound on unknown codes per client: a client that keeps asking for codes that do not exist (a scanner, a
//! broken crawler) gets 429 with `Retry-After` once past the bound. Only 404 answers count, so the hot path of
//! found links never touches the limiter. The same bound, keyed by client and code, limits password tries on a
//! protected link ([`crate::http::unlock`]).
//!
//! The bound sheds work, not only answers: it is checked before Redis or a database is asked for a code
//! ([`MissLimit::admits`]), so a client past it costs no lookup. Whether a code is unknown is known only after a
//! lookup, so a refusal is remembered until its `Retry-After` has passed, and until then the client's codes are
//! answered from what the process holds in memory (the local cache: its real links that anyone followed lately
//! keep redirecting) or 429. A client past its bound can therefore make at most its bound of lookups a minute.
//!
//! GCRA per client (the `governor` crate, as the shortener's rate limits); a client is what
//! [`plumbing::client_ip`] says (an IPv4 address or an IPv6 /64, behind trusted proxies). The map of clients is bounded: idle ones are forgotten every
//! minute, and while it is full, clients not in it get 429 for unknown codes (never for real links).

use std::{
    hash::Hash,
    num::NonZeroU32,
    time::{Duration, Instant},
};

use governor::{
    clock::{Clock, DefaultClock},
    DefaultKeyedRateLimiter, Quota,
};
use moka::sync::Cache;
use plumbing::client_ip::ClientKey;

/// Most clients tracked at once (~100 bytes each in governor's map).
const MAX_CLIENTS: usize = 100_000;

/// How often clients whose bound has fully recovered are forgotten.
pub const FORGET_IDLE_EVERY: Duration = Duration::from_secs(60);

/// A bound per key (a client, or a client and a code); off when configured with 0.
pub struct KeyedLimit<K: Hash + Eq + Clone> {
    limiter: Option<DefaultKeyedRateLimiter<K>>,
    clock: DefaultClock,
}

/// The per-client bound on unknown codes, and the clients refused lately, so that the bound is checked before a
/// lookup (governor can count, not look).
pub struct MissLimit {
    limit: KeyedLimit<ClientKey>,
    /// Until when each refused client is refused.
    refused: Cache<ClientKey, Instant>,
}

impl MissLimit {
    /// At most `per_minute` unknown codes per client and minute (0: no bound).
    pub fn new(per_minute: u32) -> Self {
        Self {
            limit: KeyedLimit::new(per_minute),
            // A refusal lasts at most a minute: the wait for one more code of a per-minute quota, or the
            // refusal while the map of clients is full.
            refused: Cache::builder()
                .max_capacity(u64::try_from(MAX_CLIENTS).unwrap_or(u64::MAX))
                .time_to_live(FORGET_IDLE_EVERY)
                .build(),
        }
    }

    /// Whether `client` may have a code looked up below the in-process cache.
    ///
    /// # Errors
    /// How long the client should still wait, while its last refusal holds.
    pub fn admits(&self, client: ClientKey) -> Result<(), Duration> {
        if self.limit.limiter.is_none() {
            return Ok(());
        }
        match self.refused.get(&client) {
            Some(until) => match until.checked_duration_since(Instant::now()) {
                Some(wait) if !wait.is_zero() => Err(wait),
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// Counts an unknown code asked for by `client`.
    ///
    /// # Errors
    /// How long the client should wait, once it is past its bound (or the map of clients is full); the refusal
    /// holds for that long ([`admits`](Self::admits)).
    pub fn count(&self, client: ClientKey) -> Result<(), Duration> {
        self.limit.count(client).inspect_err(|wait| {
            self.refused.insert(client, Instant::now() + *wait);
        })
    }

    /// Forgets idle clients; run every [`FORGET_IDLE_EVERY`].
    pub fn forget_idle(&self) {
        self.limit.forget_idle();
    }
}

impl<K: Hash + Eq + Clone> KeyedLimit<K> {
    /// At most `per_minute` counts per key and minute, all of them at once if they come in a burst.
    pub fn new(per_minute: u32) -> Self {
        let limiter = NonZeroU32::new(per_minute)
            .map(|rate| DefaultKeyedRateLimiter::keyed(Quota::per_minute(rate)));
        Self {
            limiter,
            clock: DefaultClock::default(),
        }
    }

    /// Counts one for `key` (an unknown code asked for by a client, a password try).
    ///
    /// # Errors
    /// How long the client should wait, once it is past its bound (or the map of keys is full).
    pub fn count(&self, key: K) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if limiter.len() >= MAX_CLIENTS {
            limiter.retain_recent();
            if limiter.len() >= MAX_CLIENTS {
                return Err(FORGET_IDLE_EVERY);
            }
        }
        limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets the clients whose bound has recovered; run every [`FORGET_IDLE_EVERY`].
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_bound_a_client_waits_and_others_do_not() {
        let limit = MissLimit::new(3);
        let client = ClientKey::of([192, 0, 2, 1].into());
        for _ in 0..3 {
            assert!(limit.count(client).is_ok());
        }
        let wait = limit
            .count(client)
            .expect_err("the fourth unknown code is refused");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(limit.count(ClientKey::of([192, 0, 2, 2].into())).is_ok());
    }

    #[test]
    fn a_refused_client_is_not_admitted_until_its_wait_is_over_and_others_are() {
        let limit = MissLimit::new(1);
        let client = ClientKey::of([192, 0, 2, 1].into());
        assert!(limit.admits(client).is_ok());
        assert!(limit.count(client).is_ok());
        assert!(limit.admits(client).is_ok(), "within its bound");

        let wait = limit.count(client).expect_err("past its bound");

        let still = limit.admits(client).expect_err("refused before any lookup");
        assert!(still <= wait && still > Duration::ZERO, "{still:?}");
        assert!(limit.admits(ClientKey::of([192, 0, 2, 2].into())).is_ok());
    }

    #[test]
    fn zero_turns_it_off() {
        let limit = MissLimit::new(0);
        for _ in 0..1000 {
            assert!(limit.count(ClientKey::of([192, 0, 2, 1].into())).is_ok());
        }
    }
}
