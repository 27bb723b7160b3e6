//! The Redis flags the services share: they must agree on the URL and the key prefix.

use std::time::Duration;

use secrecy::SecretString;

use super::CacheOptions;

// Defaults, each written once for its flag and for `RedisArgs::new`, so the two cannot drift.
const DEFAULT_REDIS_TIMEOUT_MS: u64 = 250;
const DEFAULT_CACHE_TTL_SECS: u64 = 86_400;

/// Redis flags shared by the services: they must agree on the URL and the prefix.
#[derive(Debug, Clone, clap::Args)]
pub struct RedisArgs {
    /// Redis, `redis://[user:password@]host:port[/db]`; TLS with `rediss://`, a private CA with
    /// `?sslrootcert=PATH`. Secret: it may carry a password.
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:56379",
        hide_env_values = true
    )]
    pub redis_url: SecretString,
    /// Prefix of every key (and channel) this deployment uses in Redis.
    #[arg(long, env = "REDIS_PREFIX", default_value = "snowlink:")]
    pub redis_prefix: String,
    /// Bound on every Redis command and on connecting, in milliseconds.
    #[arg(long, env = "REDIS_TIMEOUT_MS", default_value_t = DEFAULT_REDIS_TIMEOUT_MS)]
    pub redis_timeout_ms: u64,
    /// How long a link stays cached, in seconds (jittered by ±10%, never past the link's expiry).
    #[arg(long, env = "CACHE_TTL_SECS", default_value_t = DEFAULT_CACHE_TTL_SECS)]
    pub cache_ttl_secs: u64,
}

impl RedisArgs {
    /// Defaults for `url` and `prefix` (tests build settings this way).
    pub fn new(url: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            redis_url: SecretString::from(url.into()),
            redis_prefix: prefix.into(),
            redis_timeout_ms: DEFAULT_REDIS_TIMEOUT_MS,
            cache_ttl_secs: DEFAULT_CACHE_TTL_SECS,
        }
    }

    /// The client settings.
    pub fn options(&self) -> CacheOptions {
        CacheOptions {
            url: self.redis_url.clone(),
            prefix: self.redis_prefix.clone(),
            timeout: Duration::from_millis(self.redis_timeout_ms),
        }
    }

    /// The cache TTL with ±10% random jitter, so keys written together do not expire together.
    pub fn jittered_ttl(&self) -> Duration {
        use rand::Rng;
        let base = self.cache_ttl_secs.saturating_mul(1000);
        let spread = base / 10;
        let millis = base - spread + rand::rng().random_range(0..=spread.saturating_mul(2));
        Duration::from_millis(millis)
    }
}
