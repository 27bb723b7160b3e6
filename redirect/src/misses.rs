//! A bound on unknown codes per client: a client that keeps asking for codes that do not exist (a scanner, a
//! broken crawler) gets 429 with `Retry-After` for its unknown codes once past the bound, while its real links
//! keep redirecting. Only 404 answers count, so the hot path of found links never touches the limiter. The same
//! bound, keyed by client and code, limits password tries on a protected link ([`crate::unlock`]).
//!
//! GCRA per client (the `governor` crate, as the shortener's rate limits); a client is what
//! [`plumbing::client_ip`] says (an IPv4 address or an IPv6 /64, behind trusted proxies). The map of clients is bounded: idle ones are forgotten every
//! minute, and while it is full, clients not in it get 429 for unknown codes (never for real links).

use std::{hash::Hash, num::NonZeroU32, time::Duration};

use governor::{
    clock::{Clock, DefaultClock},
    DefaultKeyedRateLimiter, Quota,
};
use plumbing::{client_ip::ClientKey, shutdown::Shutdown};

/// Most clients tracked at once (~100 bytes each in governor's map).
const MAX_CLIENTS: usize = 100_000;

/// How often clients whose bound has fully recovered are forgotten.
pub const FORGET_IDLE_EVERY: Duration = Duration::from_secs(60);

/// A bound per key (a client, or a client and a code); off when configured with 0.
pub struct KeyedLimit<K: Hash + Eq + Clone> {
    limiter: Option<DefaultKeyedRateLimiter<K>>,
    clock: DefaultClock,
}

/// The per-client bound on unknown codes.
pub type MissLimit = KeyedLimit<ClientKey>;

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

    /// Forgets idle clients every [`FORGET_IDLE_EVERY`] until `shutdown`.
    pub async fn forget_idle(&self, shutdown: Shutdown) {
        let Some(limiter) = &self.limiter else {
            return shutdown.wait().await;
        };
        let mut every = tokio::time::interval(FORGET_IDLE_EVERY);
        loop {
            tokio::select! {
                _ = every.tick() => {
                    limiter.retain_recent();
                    limiter.shrink_to_fit();
                }
                () = shutdown.wait() => return,
            }
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
    fn zero_turns_it_off() {
        let limit = MissLimit::new(0);
        for _ in 0..1000 {
            assert!(limit.count(ClientKey::of([192, 0, 2, 1].into())).is_ok());
        }
    }
}
