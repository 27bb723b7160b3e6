//! The Redis tier: one multiplexed client with timeouts and reconnects, and key names under a configurable
//! prefix (tests isolate themselves with it). What is stored ([`codec`]), what the invalidation channel carries
//! ([`channel`]) and the flags ([`args`]) each have their own module; their items are re-exported here.
//!
//! A `redis-cluster://` URL gives fred's cluster client: every command sent to a cluster names one key (or none),
//! so each goes to its slot's master and no command ever spans slots; pipelines are split by fred per node. The
//! batched commands that name many keys (`MGET`, the fill script) are sent to a single Redis only; on a cluster
//! they become such pipelines. What the cluster adds is in [`cluster`].

use std::time::Duration;

use fred::{
    interfaces::LuaInterface,
    prelude::{ClientLike, Expiration, KeysInterface, PubsubInterface, ReconnectPolicy},
    types::SetOptions,
};
use secrecy::{ExposeSecret as _, SecretString};

use crate::model::Resolution;

mod args;
mod channel;
mod cluster;
mod codec;

pub use args::RedisArgs;
pub use channel::{
    announcement, block_announcement, invalidation_channel, Announcement, BLOCK_MARK, CREATED_MARK,
    WATCHERS_CHANGED,
};
pub use cluster::register_cluster_gauge;
pub use codec::{decode, encode, ttl_for, Cached, CHANGED_MARK, RECENTLY_CHANGED};

/// A Redis failure: the caller degrades (skips write-through, falls back to PostgreSQL) and counts it.
#[derive(Debug, thiserror::Error)]
#[error("redis failed")]
pub struct CacheError(#[from] fred::error::Error);

/// Redis settings.
#[derive(Debug, Clone)]
pub struct CacheOptions {
    /// `redis://[user:password@]host:port[/db]` (`rediss://…[?sslrootcert=PATH]` for TLS), exposed only to
    /// build the client.
    pub url: SecretString,
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
    /// When the URL is invalid or its TLS settings cannot be met (`rediss://`, `sslrootcert`: `database::tls`).
    pub fn client_builder(&self) -> Result<fred::types::Builder, fred::error::Error> {
        let timeout = self.timeout;
        let mut builder =
            fred::types::Builder::from_config(database::tls::redis(self.url.expose_secret())?);
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
    /// Present on a cluster only: re-reads the slot map after a timeout (see [`Resync`]).
    resync: Option<std::sync::Arc<cluster::Resync>>,
}

impl RedisCache {
    /// Builds the client and starts connecting. A Redis that is down now is logged, not fatal: the services
    /// degrade without it and the client keeps reconnecting with backoff.
    ///
    /// # Errors
    /// When the URL is invalid.
    pub async fn connect(options: &CacheOptions) -> Result<Self, CacheError> {
        let timeout = options.timeout;
        let cache = Self::start(options)?;
        match tokio::time::timeout(timeout, cache.client.wait_for_connect()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "redis is not reachable yet; continuing without it")
            }
            Err(_) => tracing::warn!(
                timeout_ms = timeout.as_millis(),
                "redis did not answer in time; continuing without it"
            ),
        }
        Ok(cache)
    }

    /// Builds the client and starts connecting on the current runtime, without waiting: commands sent before
    /// the connection is up queue behind it, each within the command timeout. The redirect starts one per HTTP
    /// worker this way, so a lookup's command, its answer and the request it serves stay on one thread.
    ///
    /// # Errors
    /// When the URL is invalid.
    pub fn start(options: &CacheOptions) -> Result<Self, CacheError> {
        // One attempt per command: a request must not wait through retries on a Redis that is going away. A
        // first connection that fails is retried like any other (the services start without Redis).
        let client = options
            .client_builder()?
            .with_connection_config(|connection| connection.max_command_attempts = 1)
            .with_config(|config| config.fail_fast = false)
            .build()?;
        let _reconnect_task = client.connect();
        let resync = client
            .is_clustered()
            .then(|| std::sync::Arc::new(cluster::Resync::new(options.timeout)));
        Ok(Self {
            client,
            prefix: options.prefix.clone(),
            resync,
        })
    }

    /// Whether the URL named a Redis Cluster (`redis-cluster://`), for `/readyz` and the `redis_cluster` gauge.
    pub fn is_clustered(&self) -> bool {
        self.resync.is_some()
    }

    /// Wraps a failed command's error; on a cluster, a timeout also asks for the slot map to be re-read.
    fn failed(&self, error: fred::error::Error) -> CacheError {
        if let Some(resync) = &self.resync {
            resync.after(&self.client, &error);
        }
        CacheError(error)
    }

    /// The Redis key of a code.
    pub fn key(&self, code: &str) -> String {
        format!("{}l:{code}", self.prefix)
    }

    /// The cached target of `code`; `None` when Redis holds nothing for it (or only the mark of a recent change).
    ///
    /// # Errors
    /// When Redis fails or times out.
    pub async fn get(&self, code: &str) -> Result<Option<Resolution>, CacheError> {
        Ok(self.lookup(code).await?.found())
    }

    /// What Redis holds for `code`, a recent change included.
    ///
    /// # Errors
    /// When Redis fails or times out.
    pub async fn lookup(&self, code: &str) -> Result<Cached, CacheError> {
        let value: Option<String> = self
            .client
            .get(self.key(code))
            .await
            .map_err(|error| self.failed(error))?;
        Ok(Cached::from_value(value.as_deref()))
    }

    /// What Redis holds for each of `codes`, in order, in one round trip: one `MGET`, or on a cluster (where the
    /// keys of one `MGET` must share a slot) a pipeline of `GET`s that fred splits per node.
    ///
    /// # Errors
    /// When Redis fails or times out; then none is known.
    pub async fn lookup_many(&self, codes: &[String]) -> Result<Vec<Cached>, CacheError> {
        let keys: Vec<String> = codes.iter().map(|code| self.key(code)).collect();
        let values: Vec<Option<String>> = if self.is_clustered() {
            let pipeline = self.client.pipeline();
            for key in keys {
                pipeline.get::<(), _>(key).await?;
            }
            pipeline
                .try_all::<Option<String>>()
                .await
                .into_iter()
                .collect()
        } else {
            self.client.mget(keys).await
        }
        .map_err(|error| self.failed(error))?;
        if values.len() != codes.len() {
            return Err(CacheError(fred::error::Error::new(
                fred::error::ErrorKind::Protocol,
                "MGET answered a different number of values than keys asked",
            )));
        }
        Ok(values
            .iter()
            .map(|value| Cached::from_value(value.as_deref()))
            .collect())
    }

    /// Caches what a database said of `code`, unless Redis holds something already: another fill, a create's
    /// write-through, or the mark of a change made while this lookup was in flight. Returns whether it was stored.
    ///
    /// # Errors
    /// When Redis fails or times out.
    pub async fn fill(
        &self,
        code: &str,
        target: &Resolution,
        ttl: Duration,
    ) -> Result<bool, CacheError> {
        let stored = self.fill_many(&[(code, target, ttl)]).await?;
        Ok(stored == 1)
    }

    /// [`fill`](Self::fill) for many codes in one round trip: on a single Redis one script call (`SET … NX` per
    /// key inside it), on a cluster a pipeline of `SET … NX` that fred splits per node (a script's keys must
    /// share a slot). Returns how many were stored.
    ///
    /// # Errors
    /// When Redis fails or times out; then none of them is known to be stored.
    pub async fn fill_many(
        &self,
        fills: &[(&str, &Resolution, Duration)],
    ) -> Result<usize, CacheError> {
        if fills.is_empty() {
            return Ok(0);
        }
        let stored = if self.is_clustered() {
            let pipeline = self.client.pipeline();
            for (code, target, ttl) in fills {
                pipeline
                    .set::<(), _, _>(
                        self.key(code),
                        encode(target),
                        Some(px(*ttl)),
                        Some(SetOptions::NX),
                        false,
                    )
                    .await?;
            }
            let answers: Result<Vec<Option<String>>, _> = pipeline.all().await;
            answers.map(|answers| answers.iter().filter(|answer| answer.is_some()).count())
        } else {
            let keys: Vec<String> = fills.iter().map(|(code, ..)| self.key(code)).collect();
            let mut args = Vec::with_capacity(fills.len() * 2);
            for (_, target, ttl) in fills {
                args.push(encode(target));
                args.push(px_millis(*ttl).to_string());
            }
            self.client
                .eval::<i64, _, _, _>(FILL_SCRIPT, keys, args)
                .await
                .map(|stored| usize::try_from(stored).unwrap_or(0))
        };
        stored.map_err(|error| self.failed(error))
    }

    /// Caches `target` for `ttl` (at least one millisecond).
    ///
    /// # Errors
    /// When Redis fails or times out.
    pub async fn put(
        &self,
        code: &str,
        target: &Resolution,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        self.client
            .set::<(), _, _>(self.key(code), encode(target), Some(px(ttl)), None, false)
            .await
            .map_err(|error| self.failed(error))?;
        Ok(())
    }

    /// Caches freshly created links and announces their codes on the invalidation channel, in one pipelined
    /// round trip: a replica that cached "unknown" for one of these codes a moment ago drops that at once.
    ///
    /// # Errors
    /// When Redis fails or times out (the links are durable regardless; the caller counts it).
    pub async fn put_created(
        &self,
        entries: &[(&str, Resolution, Duration)],
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
        pipeline
            .all::<()>()
            .await
            .map_err(|error| self.failed(error))?;
        Ok(())
    }

    /// Drops `code` from Redis.
    ///
    /// # Errors
    /// When Redis fails or times out.
    pub async fn delete(&self, code: &str) -> Result<(), CacheError> {
        self.client
            .del::<i64, _>(self.key(code))
            .await
            .map_err(|error| self.failed(error))?;
        Ok(())
    }

    /// The pub/sub channel on which changed codes are announced (`{prefix}invalidate`, one code per message, see
    /// [`announcement`]): the shortener publishes on delete, cleanup and create; every redirect replica drops the
    /// code locally.
    pub fn invalidation_channel(&self) -> String {
        invalidation_channel(&self.prefix)
    }

    /// Replaces `code`'s entry with the mark of a change (see [`CHANGED_MARK`]) and tells every redirect replica
    /// to forget it, in one pipelined round trip.
    ///
    /// # Errors
    /// When Redis fails or times out.
    pub async fn invalidate(&self, code: &str) -> Result<(), CacheError> {
        self.invalidate_all(&[code.to_owned()]).await
    }

    /// [`invalidate`](Self::invalidate) for many codes in one pipelined round trip (the cleanup purges a thousand
    /// at a time; one by one, a Redis that is down would cost a timeout per code).
    ///
    /// # Errors
    /// When Redis fails or times out; then none of them is known to be done.
    pub async fn invalidate_all(&self, codes: &[String]) -> Result<(), CacheError> {
        if codes.is_empty() {
            return Ok(());
        }
        let pipeline = self.client.pipeline();
        let channel = self.invalidation_channel();
        for code in codes {
            pipeline
                .set::<(), _, _>(
                    self.key(code),
                    CHANGED_MARK,
                    Some(px(RECENTLY_CHANGED)),
                    None,
                    false,
                )
                .await?;
            pipeline
                .publish::<(), _, _>(&channel, code.as_str())
                .await?;
        }
        pipeline
            .all::<()>()
            .await
            .map_err(|error| self.failed(error))?;
        Ok(())
    }

    /// Announces on the invalidation channel that `code` changed.
    ///
    /// # Errors
    /// When Redis fails or times out.
    pub async fn publish_invalidation(&self, code: &str) -> Result<(), CacheError> {
        self.client
            .publish::<i64, _, _>(self.invalidation_channel(), code)
            .await
            .map_err(|error| self.failed(error))?;
        Ok(())
    }

    /// Announces on the invalidation channel the blocks of the code counter this process issues from, in one
    /// pipelined round trip (see [`Announcement::Block`]).
    ///
    /// # Errors
    /// When Redis fails or times out.
    pub async fn announce_blocks(&self, blocks: &[std::ops::Range<u64>]) -> Result<(), CacheError> {
        if blocks.is_empty() {
            return Ok(());
        }
        let pipeline = self.client.pipeline();
        let channel = self.invalidation_channel();
        for block in blocks {
            pipeline
                .publish::<(), _, _>(&channel, block_announcement(block))
                .await?;
        }
        pipeline
            .all::<()>()
            .await
            .map_err(|error| self.failed(error))?;
        Ok(())
    }

    /// `PING`, for readiness.
    ///
    /// # Errors
    /// When Redis fails or times out.
    pub async fn ping(&self) -> Result<(), CacheError> {
        self.client
            .ping::<String>(None)
            .await
            .map_err(|error| self.failed(error))?;
        Ok(())
    }

    /// Closes the connection (on shutdown).
    pub async fn quit(&self) {
        let _ = self.client.quit().await;
    }
}

/// A TTL in milliseconds, at least one (Redis refuses zero).
fn px(ttl: Duration) -> Expiration {
    Expiration::PX(px_millis(ttl))
}

/// `ttl` in whole milliseconds, at least one (Redis refuses a zero expiry).
fn px_millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1)
}

/// [`RedisCache::fill_many`] on a single Redis: `SET key value PX ttl NX` for each key, `ARGV` holding each key's
/// value and TTL in turn; answers how many were stored. One command per batch instead of one per key: Redis's
/// per-command cost (parse, dispatch, reply) was most of what a fill cost it, and fred's most of what it cost us.
/// Sent with `EVAL` (Redis caches the compiled script by its hash), so nothing need be loaded after a restart.
const FILL_SCRIPT: &str = "local stored = 0
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, ARGV[2 * i - 1], 'PX', ARGV[2 * i], 'NX') then stored = stored + 1 end
end
return stored";
