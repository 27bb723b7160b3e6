//! Rate limits (GCRA, the `governor` crate): per client on every /v1 call before any database work, per API
//! key once the caller is known, and a stricter per-client limit for anonymous creation. A client is an IPv4
//! address or an IPv6 /64, found behind trusted proxies by [`plumbing::client_ip`]. API keys the database does
//! not know are bounded per client too ([`UnknownKeys`]), so a flood of made-up keys cannot cost a query each. A refused request gets 429
//! `rate_limited` with `Retry-After`.

use std::{
    hash::Hash,
    num::NonZeroU32,
    time::{Duration, Instant},
};

use governor::{
    clock::{Clock, DefaultClock},
    DefaultKeyedRateLimiter, Quota,
};
use plumbing::client_ip::ClientKey;

use crate::errors::ApiError;

/// One limit: a sustained rate and a burst. A rate of 0 turns it off.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Requests per minute, sustained.
    pub per_minute: u32,
    /// Requests allowed at once above the sustained rate.
    pub burst: u32,
}

/// The configured limiters.
pub struct RateLimits {
    per_ip: Option<DefaultKeyedRateLimiter<ClientKey>>,
    per_key: Option<DefaultKeyedRateLimiter<i64>>,
    anonymous: Option<DefaultKeyedRateLimiter<ClientKey>>,
    unknown_keys: Option<UnknownKeys>,
    clock: DefaultClock,
}

/// Most clients refused for unknown keys at once: past it, the oldest refusals are forgotten early.
const MAX_REFUSED_CLIENTS: u64 = 100_000;

/// Longest a refusal is remembered; the wait a limit gives is far shorter unless its rate is tiny.
const REFUSED_AT_MOST: Duration = Duration::from_secs(60);

/// The bound on keys the database does not know, per client. Only unknown keys count, so a client using many
/// good keys (a backend holding its customers' keys) is never refused when the cache is cold; a client past the
/// bound is refused before the lookup, so its made-up keys stop costing queries.
struct UnknownKeys {
    limiter: DefaultKeyedRateLimiter<ClientKey>,
    /// Clients past the bound, until when.
    refused_until: moka::sync::Cache<ClientKey, Instant>,
}

fn limiter<K: Clone + Hash + Eq>(limit: Limit) -> Option<DefaultKeyedRateLimiter<K>> {
    let per_minute = NonZeroU32::new(limit.per_minute)?;
    let burst = NonZeroU32::new(limit.burst).unwrap_or(NonZeroU32::MIN);
    Some(DefaultKeyedRateLimiter::keyed(
        Quota::per_minute(per_minute).allow_burst(burst),
    ))
}

impl RateLimits {
    /// Limiters for the three limits, without a bound on unknown keys (see [`RateLimits::with_unknown_keys`]).
    pub fn new(per_ip: Limit, per_key: Limit, anonymous: Limit) -> Self {
        Self {
            per_ip: limiter(per_ip),
            per_key: limiter(per_key),
            anonymous: limiter(anonymous),
            unknown_keys: None,
            clock: DefaultClock::default(),
        }
    }

    /// Counts a request from `client`.
    ///
    /// # Errors
    /// [`ApiError::RateLimited`] when the IP is over its limit.
    pub fn check_ip(&self, client: ClientKey) -> Result<(), ApiError> {
        self.check(self.per_ip.as_ref(), &client)
    }

    /// These limits, and at most `unknown_keys` API keys per client that the database does not know.
    #[must_use]
    pub fn with_unknown_keys(self, unknown_keys: Limit) -> Self {
        Self {
            unknown_keys: limiter(unknown_keys).map(|limiter| UnknownKeys {
                limiter,
                refused_until: moka::sync::Cache::builder()
                    .max_capacity(MAX_REFUSED_CLIENTS)
                    .time_to_live(REFUSED_AT_MOST)
                    .build(),
            }),
            ..self
        }
    }

    /// Whether `client` may have a key looked up in the database: not while it is past its bound on unknown keys.
    ///
    /// # Errors
    /// [`ApiError::RateLimited`] while the client is past its bound.
    pub fn check_key_lookup(&self, client: ClientKey) -> Result<(), ApiError> {
        let Some(unknown) = &self.unknown_keys else {
            return Ok(());
        };
        match unknown.refused_until.get(&client) {
            Some(until) if until > Instant::now() => {
                Err(ApiError::RateLimited(until - Instant::now()))
            }
            _ => Ok(()),
        }
    }

    /// Counts a key `client` presented that the database did not know; past the bound, its next lookups are
    /// refused until the bound has recovered.
    pub fn count_unknown_key(&self, client: ClientKey) {
        let Some(unknown) = &self.unknown_keys else {
            return;
        };
        if let Err(not_until) = unknown.limiter.check_key(&client) {
            let wait = not_until.wait_time_from(self.clock.now());
            unknown.refused_until.insert(client, Instant::now() + wait);
        }
    }

    /// Counts a request signed by the key `owner_id`.
    ///
    /// # Errors
    /// [`ApiError::RateLimited`] when the key is over its limit.
    pub fn check_key(&self, owner_id: i64) -> Result<(), ApiError> {
        self.check(self.per_key.as_ref(), &owner_id)
    }

    /// Counts an anonymous creation from `client`.
    ///
    /// # Errors
    /// [`ApiError::RateLimited`] when the IP is over the anonymous limit.
    pub fn check_anonymous(&self, client: ClientKey) -> Result<(), ApiError> {
        self.check(self.anonymous.as_ref(), &client)
    }

    fn check<K: Clone + Hash + Eq>(
        &self,
        limiter: Option<&DefaultKeyedRateLimiter<K>>,
        key: &K,
    ) -> Result<(), ApiError> {
        let Some(limiter) = limiter else {
            return Ok(());
        };
        limiter
            .check_key(key)
            .map_err(|not_until| ApiError::RateLimited(not_until.wait_time_from(self.clock.now())))
    }

    /// Forgets keys whose limit has fully recovered, so the maps stay as small as the set of recent clients.
    pub fn forget_idle(&self) {
        let unknown_keys = self.unknown_keys.as_ref().map(|unknown| &unknown.limiter);
        for limiter in [self.per_ip.as_ref(), self.anonymous.as_ref(), unknown_keys]
            .into_iter()
            .flatten()
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(limiter) = &self.per_key {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_passes_and_the_next_request_waits() {
        let off = Limit {
            per_minute: 0,
            burst: 0,
        };
        let limits = RateLimits::new(
            off,
            Limit {
                per_minute: 60,
                burst: 3,
            },
            off,
        );
        for _ in 0..3 {
            assert!(limits.check_key(7).is_ok());
        }
        let Err(ApiError::RateLimited(wait)) = limits.check_key(7) else {
            panic!("the fourth request in a burst of three must be refused");
        };
        assert!(
            wait <= Duration::from_secs(1),
            "one per second refills: {wait:?}"
        );
        assert!(limits.check_key(8).is_ok(), "keys are limited separately");
        assert!(
            limits
                .check_ip(ClientKey::of([127, 0, 0, 1].into()))
                .is_ok(),
            "a zero rate is off"
        );
    }
}
