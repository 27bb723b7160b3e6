//! Resolving a code through the tiers below the local cache: Redis, then a read replica (round robin, skipping
//! one that fails), then the primary (when there is no replica, when every replica failed, or to confirm a
//! miss that replica lag can explain, within the budget of [`crate::tiers::confirm`]). A code changed a moment ago is
//! read from the primary through a pool apart, the one the hit flush writes through, so that no flood of misses
//! can starve either. Concurrent lookups share round trips: each HTTP worker asks Redis through its own client,
//! one `MGET` per batch ([`WorkerRedis`]), and each database answers one statement per batch ([`Database`]). What
//! the database says is written back to Redis, unknown codes included, so a burst of lookups for junk stays off
//! PostgreSQL; that write happens after the answer, not before it, one script call per batch of fills. Every
//! dependency sits behind a timeout and a breaker, so a dead one costs a request nothing once its breaker is open.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use links::{
    cache::{Cached, RedisCache},
    model::Resolution,
    store::Store,
};
use plumbing::chain::Chain;
use plumbing::{
    batch::{BatchFuture, Batcher, Limits},
    breaker::Breaker,
    clock::SharedClock,
};

use super::{confirm::Confirmations, fresh::Freshness};
use crate::metrics::Metrics;

/// No tier could answer: the answer is a 503.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("no tier could answer")]
pub struct Unavailable;

/// A database behind its breaker, its lookups batched: the lookups all workers make at the same moment go as one
/// statement (`code = ANY($1)`), within [`DATABASE_LOOKUPS`].
pub struct Database {
    /// The store.
    pub store: Store,
    /// Skips it while it keeps failing.
    pub breaker: Arc<Breaker>,
    lookups: Batcher<String, Option<Resolution>>,
}

/// How one database's lookups are batched: at most four statements in flight (no more than its pool's
/// connections, so a batch finds one free and the batches grow with the load instead of the statements), 128
/// codes each, and past 4,096 waiting a lookup is refused like a failed one: a flood of misses costs a bounded
/// queue.
const DATABASE_LOOKUPS: Limits = Limits {
    batch: 128,
    in_flight: 4,
    waiting: 4_096,
};

impl Database {
    /// `store` (a pool of `connections`) behind `breaker`; `which` names it in logs, each batch is bounded by
    /// `timeout`.
    pub fn new(
        store: Store,
        connections: usize,
        breaker: Breaker,
        which: &'static str,
        timeout: Duration,
    ) -> Self {
        let breaker = Arc::new(breaker);
        let (batch_store, batch_breaker) = (store.clone(), Arc::clone(&breaker));
        let limits = Limits {
            in_flight: connections.clamp(1, DATABASE_LOOKUPS.in_flight),
            ..DATABASE_LOOKUPS
        };
        let lookups = Batcher::new(limits, move |codes| {
            let (store, breaker) = (batch_store.clone(), Arc::clone(&batch_breaker));
            Box::pin(resolve_batch(store, breaker, which, timeout, codes))
                as BatchFuture<Option<Resolution>>
        });
        Self {
            store,
            breaker,
            lookups,
        }
    }
}

/// One batch of database lookups, counted once by the breaker; `None` for every code when it fails or takes
/// longer than `timeout`.
async fn resolve_batch(
    store: Store,
    breaker: Arc<Breaker>,
    which: &'static str,
    timeout: Duration,
    codes: Vec<String>,
) -> Vec<Option<Resolution>> {
    let lookup = store.resolve_many(&codes);
    match breaker.timed(tokio::time::timeout(timeout, lookup)).await {
        Ok(Ok(found)) => {
            breaker.succeeded();
            return found.into_iter().map(Some).collect();
        }
        Ok(Err(error)) => {
            breaker.failed();
            tracing::warn!(error = %Chain(&error), which, "database lookup failed");
        }
        Err(_) => {
            breaker.failed();
            tracing::warn!(which, "database lookup timed out");
        }
    }
    codes.iter().map(|_| None).collect()
}

/// A deferred fill that has not started this long after its lookup is dropped: the change mark it relies on
/// (see [`links::cache::RECENTLY_CHANGED`]) must outlive the whole lookup, fill included.
const DEFERRED_FILL_DEADLINE: Duration = Duration::from_secs(5);

/// How one worker's Redis lookups are batched. At most two batches in flight: while they are out, new lookups
/// queue for the next one, so the batches grow with the load; with one, a lookup arriving just after a batch
/// left waited for that whole round trip (closed loop over 100k links: 71k req/s against 80k with two). A batch
/// asks for at most 256 codes, and past 4,096 waiting a lookup is refused (it goes to the database as if Redis
/// had failed).
const REDIS_LOOKUPS: Limits = Limits {
    batch: 256,
    in_flight: 2,
    waiting: 4_096,
};

/// How one worker's fills of Redis are batched: one script call (or cluster pipeline) per batch of up to 256, at
/// most two in flight, and past 1,024 waiting a fill is skipped (the next lookup of that code asks the database
/// again), so a flood of misses against a slow Redis costs a bounded queue. One `SET` per miss cost the redirect
/// ~4 us and Redis ~3 us of a ~30 us database miss.
const REDIS_FILLS: Limits = Limits {
    batch: 256,
    in_flight: 2,
    waiting: 1_024,
};

/// One HTTP worker's way to Redis: a client of its own, connected on the worker's thread, and the worker's
/// concurrent lookups and fills batched through it (one `MGET` per batch instead of a `GET` per request, one
/// script call instead of a `SET` per miss: fred's per-command cost was the largest share of a Redis-answered
/// request that was ours to cut).
pub struct WorkerRedis {
    lookups: Batcher<String, Cached>,
    fills: Batcher<Fill, ()>,
}

/// Redis behind its breaker.
pub struct Redis {
    /// The process's client (readiness, and lookups made outside an HTTP worker); each worker asks Redis
    /// through a client of its own.
    pub cache: RedisCache,
    /// Skips Redis while it keeps failing (shared with the fills that run after an answer).
    pub breaker: Arc<Breaker>,
    /// TTL settings of found links.
    pub settings: links::cache::RedisArgs,
}

/// The tiers behind a code.
pub struct Tiers {
    /// Redis.
    pub redis: Redis,
    /// Read replicas, in the order given.
    pub replicas: Vec<Database>,
    /// The primary, for lookups: misses confirmed, and every lookup while no replica answers.
    pub primary: Database,
    /// The primary through a pool apart, shared with the hit flush: codes changed a moment ago.
    pub primary_flush: Database,
    /// Confirm replica misses on the primary (those [`Freshness`] says lag can explain).
    pub confirm_misses_on_primary: bool,
    /// How many of them, a second.
    pub confirmations: Confirmations,
    /// Which codes were created recently enough that a replica may not have them yet.
    pub freshness: Arc<Freshness>,
    /// TTL of an unknown code.
    pub negative_ttl: Duration,
    /// Bumped on each call, so successive lookups start at successive replicas.
    pub next_replica: AtomicUsize,
    /// Bounds a found link's Redis TTL by the time it has left.
    pub clock: SharedClock,
}

impl Redis {
    /// Redis for a worker whose own client is `client`: its lookups and fills batched, each batch timed and
    /// counted once by the breaker.
    pub fn for_worker(&self, client: RedisCache) -> WorkerRedis {
        let (lookup_client, lookup_breaker) = (client.clone(), Arc::clone(&self.breaker));
        let lookups = Batcher::new(REDIS_LOOKUPS, move |codes| {
            let (client, breaker) = (lookup_client.clone(), Arc::clone(&lookup_breaker));
            Box::pin(look_up_batch(client, breaker, codes)) as BatchFuture<Cached>
        });
        let fill_breaker = Arc::clone(&self.breaker);
        let fills = Batcher::new(REDIS_FILLS, move |fills| {
            let (client, breaker) = (client.clone(), Arc::clone(&fill_breaker));
            Box::pin(fill_batch(client, breaker, fills)) as BatchFuture<()>
        });
        WorkerRedis { lookups, fills }
    }
}

/// One batch of lookups: what Redis holds for each code, or nothing for all of them when it fails.
async fn look_up_batch(
    client: RedisCache,
    breaker: Arc<Breaker>,
    codes: Vec<String>,
) -> Vec<Cached> {
    match breaker.timed(client.lookup_many(&codes)).await {
        Ok(found) => {
            breaker.succeeded();
            found
        }
        Err(error) => {
            breaker.failed();
            tracing::debug!(error = %Chain(&error), "redis lookup failed; falling back to PostgreSQL");
            codes.iter().map(|_| Cached::Nothing).collect()
        }
    }
}

/// One batch of fills, counted once by the breaker. A fill that waited past [`DEFERRED_FILL_DEADLINE`] is left
/// out.
async fn fill_batch(client: RedisCache, breaker: Arc<Breaker>, fills: Vec<Fill>) -> Vec<()> {
    let count = fills.len();
    let due: Vec<_> = fills
        .iter()
        .filter(|fill| fill.looked_up.elapsed() <= DEFERRED_FILL_DEADLINE)
        .map(|fill| (fill.code.as_str(), &fill.target, fill.ttl))
        .collect();
    // A batch whose fills all came too late asks Redis nothing, so it tells the breaker nothing either.
    if due.is_empty() {
        return vec![(); count];
    }
    match breaker.timed(client.fill_many(&due)).await {
        Ok(_) => breaker.succeeded(),
        Err(error) => {
            breaker.failed();
            tracing::debug!(error = %Chain(&error), "redis fills skipped");
        }
    }
    vec![(); count]
}

impl Tiers {
    /// The target of `code`, from the first tier that knows; counts which tier answered. A code that changed
    /// a moment ago (`changed`) is read from the primary: Redis may have been refilled from a lagging replica
    /// by another instance, and the replicas may not have replayed the change yet. The primary's answer then
    /// overwrites Redis. Redis is asked through `redis`, the calling worker's own.
    ///
    /// # Errors
    /// [`Unavailable`] when Redis has nothing and no database answers.
    pub async fn resolve(
        &self,
        code: &str,
        metrics: &Metrics,
        changed: bool,
        redis: &WorkerRedis,
    ) -> Result<Resolution, Unavailable> {
        let tiers = &metrics.tier;
        if changed {
            let target = self
                .ask(&self.primary_flush, code)
                .await
                .ok_or(Unavailable)?;
            tiers.database.inc();
            self.fill_redis(code, &target, redis);
            return Ok(target);
        }
        let target = match self.ask_redis(code, redis).await {
            Cached::Found(target) => {
                match target {
                    Resolution::Unknown => tiers.negative.inc(),
                    _ => tiers.redis.inc(),
                }
                return Ok(target);
            }
            // Changed a moment ago, maybe on a replica not yet: whether or not we heard the announcement.
            Cached::RecentlyChanged => self
                .ask(&self.primary_flush, code)
                .await
                .ok_or(Unavailable)?,
            Cached::Nothing => self.ask_databases(code, metrics).await?,
        };
        tiers.database.inc();
        self.fill_redis(code, &target, redis);
        Ok(target)
    }

    async fn ask_redis(&self, code: &str, redis: &WorkerRedis) -> Cached {
        if !self.redis.breaker.allow() {
            return Cached::Nothing;
        }
        redis
            .lookups
            .call(code.to_owned())
            .await
            .unwrap_or(Cached::Nothing)
    }

    /// A replica's answer; a replica's 404 is confirmed on the primary only when lag can explain it and the
    /// budget has room. The primary answers alone when no replica does (there is none, or every one failed).
    async fn ask_databases(
        &self,
        code: &str,
        metrics: &Metrics,
    ) -> Result<Resolution, Unavailable> {
        if let Some(found) = self.ask_replicas(code).await {
            if found != Resolution::Unknown || !self.confirm_misses_on_primary {
                return Ok(found);
            }
            let outcomes = &metrics.confirmations;
            if !self.freshness.may_lag(code) {
                outcomes.ineligible.inc();
                return Ok(found);
            }
            if !self.confirmations.take() {
                outcomes.over_budget.inc();
                return Ok(found);
            }
            outcomes.asked.inc();
        }
        self.ask(&self.primary, code).await.ok_or(Unavailable)
    }

    /// The first replica's answer, trying each once from the round-robin position; `None` when none answers.
    async fn ask_replicas(&self, code: &str) -> Option<Resolution> {
        let count = self.replicas.len();
        let start = self.next_replica.fetch_add(1, Ordering::Relaxed);
        for offset in 0..count {
            let replica = &self.replicas[(start + offset) % count];
            if let Some(target) = self.ask(replica, code).await {
                return Some(target);
            }
        }
        None
    }

    /// One database's answer; `None` when its breaker is open, or it fails or takes too long.
    async fn ask(&self, database: &Database, code: &str) -> Option<Resolution> {
        if !database.breaker.allow() {
            return None;
        }
        database.lookups.call(code.to_owned()).await.flatten()
    }

    /// Writes what a database said of `code` back to Redis after the answer has gone: queued for the worker's
    /// next batch of fills, bounded in number and in how late it may be sent. Safe to delay because the fill only
    /// sets an absent key: a change made meanwhile has left its mark, which the fill cannot overwrite.
    fn fill_redis(&self, code: &str, target: &Resolution, redis: &WorkerRedis) {
        if !self.redis.breaker.allow() {
            return;
        }
        let ttl = match target {
            Resolution::Unknown => self.negative_ttl,
            _ => {
                links::cache::ttl_for(target, self.redis.settings.jittered_ttl(), self.clock.now())
            }
        };
        let fill = Fill {
            code: code.to_owned(),
            target: target.clone(),
            ttl,
            looked_up: Instant::now(),
        };
        if !redis.fills.submit(fill) {
            tracing::debug!("too many Redis fills waiting; this one is skipped");
        }
    }
}

/// One write-back of a database answer to Redis.
struct Fill {
    code: String,
    target: Resolution,
    ttl: Duration,
    looked_up: Instant,
}
