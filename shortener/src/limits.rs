//! Rate limits (GCRA, the `governor` crate): per client on every /v1 call before any database work, per API
//! key once the caller is known, and a stricter per-client limit for anonymous creation. A client is an IPv4
//! address or an IPv6 /64, found behind trusted proxies by [`plumbing::client_ip`]. Database lookups of API
//! keys the cache does not hold are bounded per client too, so a flood of made-up keys cannot cost a query each. A refused request gets 429
//! `rate_limited` with `Retry-After`.

use std::{hash::Hash, num::NonZeroU32};

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
    key_lookups: Option<DefaultKeyedRateLimiter<ClientKey>>,
    clock: DefaultClock,
}

fn limiter<K: Clone + Hash + Eq>(limit: Limit) -> Option<DefaultKeyedRateLimiter<K>> {
    let per_minute = NonZeroU32::new(limit.per_minute)?;
    let burst = NonZeroU32::new(limit.burst).unwrap_or(NonZeroU32::MIN);
    Some(DefaultKeyedRateLimiter::keyed(
        Quota::per_minute(per_minute).allow_burst(burst),
    ))
}

impl RateLimits {
    /// Limiters for the three limits, without a bound on key lookups (see [`RateLimits::with_key_lookups`]).
    pub fn new(per_ip: Limit, per_key: Limit, anonymous: Limit) -> Self {
        Self {
            per_ip: limiter(per_ip),
            per_key: limiter(per_key),
            anonymous: limiter(anonymous),
            key_lookups: None,
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

    /// These limits, and at most `key_lookups` database lookups of API keys not in the cache per client.
    #[must_use]
    pub fn with_key_lookups(self, key_lookups: Limit) -> Self {
        Self {
            key_lookups: limiter(key_lookups),
            ..self
        }
    }

    /// Counts a database lookup of an API key that `client` presented and the cache does not hold.
    ///
    /// # Errors
    /// [`ApiError::RateLimited`] when the client is over its bound: it keeps trying keys nobody knows.
    pub fn check_key_lookup(&self, client: ClientKey) -> Result<(), ApiError> {
        self.check(self.key_lookups.as_ref(), &client)
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
        for limiter in [&self.per_ip, &self.anonymous, &self.key_lookups]
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
