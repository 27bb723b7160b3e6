//! The Redis tier: one multiplexed client with timeouts and reconnects, key names under a configurable prefix
//! (tests isolate themselves with it), and the compact value the redirect decodes on every cache hit.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use fred::prelude::{
    ClientLike, Config, Expiration, KeysInterface, PubsubInterface, ReconnectPolicy,
};

use crate::model::{RedirectStatus, Target};

/// A Redis failure: the caller degrades (skips write-through, falls back to PostgreSQL) and counts it.
#[derive(Debug, thiserror::Error)]
#[error("redis failed")]
pub struct CacheError(#[from] fred::error::Error);

/// Redis settings.
#[derive(Debug, Clone)]
pub struct CacheOptions {
    /// `redis://host:port[/db]`.
    pub url: String,
    /// Prepended to every key, e.g. `snowlink:`.
    pub prefix: String,
    /// Bound on every command and on connecting.
    pub timeout: Duration,
}

impl CacheOptions {
    /// A client builder bounded by `timeout` on connecting and on every command, reconnecting with backoff
    /// (50 ms doubling to 2 s, for ever): the one Redis client setup, shared by the cache and the redirect's
    /// invalidation subscriber.
    ///
    /// # Errors
    /// When the URL is invalid.
    pub fn client_builder(&self) -> Result<fred::types::Builder, fred::error::Error> {
        let timeout = self.timeout;
        let mut builder = fred::types::Builder::from_config(Config::from_url(&self.url)?);
        builder
            .with_connection_config(|connection| {
                connection.connection_timeout = timeout;
                connection.internal_command_timeout = timeout;
            })
            .with_performance_config(|performance| performance.default_command_timeout = timeout)
            .set_policy(ReconnectPolicy::new_exponential(0, 50, 2_000, 2));
        Ok(builder)
    }
}

/// The link cache in Redis.
#[derive(Clone)]
pub struct RedisCache {
    client: fred::clients::Client,
    prefix: String,
}

impl RedisCache {
    /// Builds the client and starts connecting. A Redis that is down now is logged, not fatal: the services
    /// degrade without it and the client keeps reconnecting with backoff.
    ///
    /// # Errors
    /// When the URL is invalid.
    pub async fn connect(options: &CacheOptions) -> Result<Self, CacheError> {
        let timeout = options.timeout;
        // One attempt per command: a request must not wait through retries on a Redis that is going away.
        let client = options
            .client_builder()?
            .with_connection_config(|connection| connection.max_command_attempts = 1)
            .build()?;
        let _reconnect_task = client.connect();
        match tokio::time::timeout(timeout, client.wait_for_connect()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "redis is not reachable yet; continuing without it")
            }
            Err(_) => tracing::warn!(
                timeout_ms = timeout.as_millis(),
                "redis did not answer in time; continuing without it"
            ),
        }
        Ok(Self {
            client,
            prefix: options.prefix.clone(),
        })
    }

    /// The Redis key of a code.
    pub fn key(&self, code: &str) -> String {
        format!("{}l:{code}", self.prefix)
    }

    /// The cached target of `code`; `None` when Redis holds nothing for it.
    ///
    /// # Errors
    /// When Redis fails or times out.
    pub async fn get(&self, code: &str) -> Result<Option<Target>, CacheError> {
        let value: Option<String> = self.client.get(self.key(code)).await?;
        Ok(value.as_deref().and_then(decode))
    }

    /// Caches `target` for `ttl` (at least one millisecond).
    ///
    /// # Errors
    /// When Redis fails or times out.
    pub async fn put(&self, code: &str, target: &Target, ttl: Duration) -> Result<(), CacheError> {
        self.client
            .set::<(), _, _>(self.key(code), encode(target), Some(px(ttl)), None, false)
            .await?;
        Ok(())
    }

    /// Caches freshly created links and announces their codes on the invalidation channel, in one pipelined
    /// round trip: a replica that cached "unknown" for one of these codes a moment ago drops that at once.
    ///
    /// # Errors
    /// When Redis fails or times out (the links are durable regardless; the caller counts it).
    pub async fn put_created(
        &self,
        entries: &[(&str, Target, Duration)],
    ) -> Result<(), CacheError> {
        if entries.is_empty() {
            return Ok(());
        }
        let pipeline = self.client.pipeline();
        let channel = self.invalidation_channel();
        for (code, target, ttl) in entries {
            pipeline
                .set::<(), _, _>(self.key(code), encode(target), Some(px(*ttl)), None, false)
                .await?;
            pipeline
                .publish::<(), _, _>(&channel, format!("{CREATED_MARK}{code}"))
                .await?;
        }
        pipeline.all::<()>().await?;
        Ok(())
    }

    /// Drops `code` from Redis.
    ///
    /// # Errors
    /// When Redis fails or times out.
    pub async fn delete(&self, code: &str) -> Result<(), CacheError> {
        self.client.del::<i64, _>(self.key(code)).await?;
        Ok(())
    }

    /// The pub/sub channel on which changed codes are announced (`{prefix}invalidate`, one code per message, see
    /// [`announcement`]): the shortener publishes on delete, cleanup and create; every redirect replica drops the
    /// code locally.
    pub fn invalidation_channel(&self) -> String {
        invalidation_channel(&self.prefix)
    }

    /// Drops `code` from Redis and tells every redirect replica to forget it.
    ///
    /// # Errors
    /// When Redis fails or times out.
    pub async fn invalidate(&self, code: &str) -> Result<(), CacheError> {
        self.delete(code).await?;
        self.publish_invalidation(code).await
    }

    /// Announces on the invalidation channel that `code` changed.
    ///
    /// # Errors
    /// When Redis fails or times out.
    pub async fn publish_invalidation(&self, code: &str) -> Result<(), CacheError> {
        self.client
            .publish::<i64, _, _>(self.invalidation_channel(), code)
            .await?;
        Ok(())
    }

    /// `PING`, for readiness.
    ///
    /// # Errors
    /// When Redis fails or times out.
    pub async fn ping(&self) -> Result<(), CacheError> {
        self.client.ping::<String>(None).await?;
        Ok(())
    }

    /// Closes the connection (on shutdown).
    pub async fn quit(&self) {
        let _ = self.client.quit().await;
    }
}

/// A TTL in milliseconds, at least one (Redis refuses zero).
fn px(ttl: Duration) -> Expiration {
    Expiration::PX(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1))
}

/// Prefix of a message announcing a created code (`+code`); a bare `code` means changed or removed. `+` is not
/// a code character, so the two cannot be confused.
pub const CREATED_MARK: char = '+';

/// What an invalidation message says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announcement<'a> {
    /// A new link: drop a negative entry, nothing else can be stale.
    Created(&'a str),
    /// Deleted, expired or purged: every copy is stale, and replicas may not have replayed it yet.
    Changed(&'a str),
}

/// Reads an invalidation message.
pub fn announcement(message: &str) -> Announcement<'_> {
    match message.strip_prefix(CREATED_MARK) {
        Some(code) => Announcement::Created(code),
        None => Announcement::Changed(message),
    }
}

/// The invalidation channel for a key prefix (see [`RedisCache::invalidation_channel`]).
pub fn invalidation_channel(prefix: &str) -> String {
    format!("{prefix}invalidate")
}

/// How long a target may stay cached: `base`, shortened to the time the link has left, and never past it.
pub fn ttl_for(target: &Target, base: Duration, now: DateTime<Utc>) -> Duration {
    match target {
        Target::Live {
            expires_at: Some(expires_at),
            ..
        } => {
            let left = (*expires_at - now).to_std().unwrap_or(Duration::ZERO);
            base.min(left).max(Duration::from_millis(1))
        }
        _ => base,
    }
}

/// The value stored for a target: `1|status|expires_ms|id|url` for a live link (empty `expires_ms` for
/// never), `g` for gone, `u` for unknown (the negative entry). Short and parsed without allocation of fields.
pub fn encode(target: &Target) -> String {
    match target {
        Target::Live {
            long_url,
            redirect,
            expires_at,
            id,
        } => {
            let expires = expires_at
                .map(|at| at.timestamp_millis().to_string())
                .unwrap_or_default();
            format!("1|{}|{expires}|{id}|{long_url}", redirect.code())
        }
        Target::Gone => "g".to_owned(),
        Target::Unknown => "u".to_owned(),
    }
}

/// Reads a value written by [`encode`]; `None` for anything else (treated as a miss, then overwritten).
pub fn decode(value: &str) -> Option<Target> {
    match value {
        "g" => return Some(Target::Gone),
        "u" => return Some(Target::Unknown),
        _ => {}
    }
    let mut fields = value.strip_prefix("1|")?.splitn(4, '|');
    let redirect = RedirectStatus::from_code(fields.next()?.parse().ok()?)?;
    let expires_at = match fields.next()? {
        "" => None,
        millis => Some(Utc.timestamp_millis_opt(millis.parse().ok()?).single()?),
    };
    let id = fields.next()?.parse().ok()?;
    let long_url = fields.next()?.to_owned();
    Some(Target::Live {
        long_url,
        redirect,
        expires_at,
        id,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn announcements_tell_created_from_changed_codes() {
        assert_eq!(
            super::announcement("+abc"),
            super::Announcement::Created("abc")
        );
        assert_eq!(
            super::announcement("abc"),
            super::Announcement::Changed("abc")
        );
        assert!(!crate::code::is_code_byte(super::CREATED_MARK as u8));
    }

    use super::*;

    fn live(expires_at: Option<DateTime<Utc>>) -> Target {
        Target::Live {
            long_url: "https://example.com/a|b?c=d".into(),
            redirect: RedirectStatus::Permanent308,
            expires_at,
            id: 42,
        }
    }

    #[test]
    fn every_target_survives_a_round_trip() {
        let at = Utc.timestamp_millis_opt(1_800_000_000_123).single();
        for target in [live(None), live(at), Target::Gone, Target::Unknown] {
            assert_eq!(decode(&encode(&target)), Some(target));
        }
    }

    #[test]
    fn foreign_values_are_misses() {
        for junk in ["", "x", "1|", "1|200||1|u", "1|302|abc|1|u", "2|302||1|u"] {
            assert_eq!(decode(junk), None, "{junk}");
        }
    }

    #[test]
    fn the_ttl_never_outlives_the_link() {
        let now = Utc::now();
        let base = Duration::from_secs(3600);
        assert_eq!(ttl_for(&live(None), base, now), base);
        assert_eq!(
            ttl_for(&live(Some(now + chrono::Duration::seconds(10))), base, now),
            Duration::from_secs(10)
        );
        assert_eq!(
            ttl_for(&live(Some(now - chrono::Duration::seconds(10))), base, now),
            Duration::from_millis(1)
        );
    }
}

/// Redis flags shared by the services: they must agree on the URL and the prefix.
#[derive(Debug, Clone, clap::Args)]
pub struct RedisArgs {
    /// Redis, `redis://host:port[/db]`.
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:56379",
        hide_env_values = true
    )]
    pub redis_url: String,
    /// Prefix of every key (and channel) this deployment uses in Redis.
    #[arg(long, env = "REDIS_PREFIX", default_value = "snowlink:")]
    pub redis_prefix: String,
    /// Bound on every Redis command and on connecting, in milliseconds.
    #[arg(long, env = "REDIS_TIMEOUT_MS", default_value_t = 250)]
    pub redis_timeout_ms: u64,
    /// How long a link stays cached, in seconds (jittered by ±10%, never past the link's expiry).
    #[arg(long, env = "CACHE_TTL_SECS", default_value_t = 86_400)]
    pub cache_ttl_secs: u64,
}

impl RedisArgs {
    /// Defaults for `url` and `prefix` (tests build settings this way).
    pub fn new(url: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            redis_url: url.into(),
            redis_prefix: prefix.into(),
            redis_timeout_ms: 250,
            cache_ttl_secs: 86_400,
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
