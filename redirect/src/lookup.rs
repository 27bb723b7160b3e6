//! Resolving a code through the tiers: Redis, then a read replica (round robin, skipping one that fails), then
//! the primary (when there is no replica, when every replica failed, or to confirm a miss). What the database
//! says is written back to Redis, unknown codes included, so a burst of lookups for junk stays off PostgreSQL.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use chrono::Utc;
use links::{cache::RedisCache, db::DbError, model::Target, store::Store};
use prometheus::IntCounterVec;

/// Every tier failed: the answer is a 503.
#[derive(Debug, thiserror::Error)]
#[error("no tier could answer")]
pub struct Unavailable;

/// The tiers behind a code.
pub struct Tiers {
    /// Redis.
    pub cache: RedisCache,
    /// Read replicas, in the order given.
    pub replicas: Vec<Store>,
    /// The primary.
    pub primary: Store,
    /// Confirm replica misses on the primary.
    pub confirm_misses_on_primary: bool,
    /// Redis TTL of a found link (before shortening to its expiry).
    pub redis: links::cache::RedisArgs,
    /// Redis TTL of an unknown code.
    pub negative_ttl: Duration,
    /// Answers by tier (`redis`, `replica`, `primary`).
    pub answered_by: IntCounterVec,
    /// Failures degraded around, by dependency.
    pub degraded: IntCounterVec,
    next_replica: AtomicUsize,
}

impl Tiers {
    /// Tiers with the round robin starting at the first replica.
    #[expect(
        clippy::too_many_arguments,
        reason = "one constructor, called once at startup"
    )]
    pub fn new(
        cache: RedisCache,
        replicas: Vec<Store>,
        primary: Store,
        confirm_misses_on_primary: bool,
        redis: links::cache::RedisArgs,
        negative_ttl: Duration,
        answered_by: IntCounterVec,
        degraded: IntCounterVec,
    ) -> Self {
        Self {
            cache,
            replicas,
            primary,
            confirm_misses_on_primary,
            redis,
            negative_ttl,
            answered_by,
            degraded,
            next_replica: AtomicUsize::new(0),
        }
    }

    /// The target of `code`, from the first tier that knows.
    ///
    /// # Errors
    /// [`Unavailable`] when Redis has nothing and no database answers.
    pub async fn resolve(&self, code: &str) -> Result<Target, Unavailable> {
        match self.cache.get(code).await {
            Ok(Some(target)) => {
                self.answered_by.with_label_values(&["redis"]).inc();
                return Ok(target);
            }
            Ok(None) => {}
            Err(error) => {
                self.degraded.with_label_values(&["redis"]).inc();
                tracing::debug!(%error, "redis lookup failed; falling back to PostgreSQL");
            }
        }
        let target = self.ask_database(code).await?;
        self.fill(code, &target).await;
        Ok(target)
    }

    async fn ask_database(&self, code: &str) -> Result<Target, Unavailable> {
        if let Some(found) = self.ask_replicas(code).await {
            if found != Target::Unknown || !self.confirm_misses_on_primary {
                self.answered_by.with_label_values(&["replica"]).inc();
                return Ok(found);
            }
        }
        match self.primary.find_target(code).await {
            Ok(target) => {
                self.answered_by.with_label_values(&["primary"]).inc();
                Ok(target)
            }
            Err(error) => {
                self.note_db_failure("primary", &error);
                Err(Unavailable)
            }
        }
    }

    /// The first replica's answer, trying each once from the round-robin position; `None` when none answers.
    async fn ask_replicas(&self, code: &str) -> Option<Target> {
        let count = self.replicas.len();
        let start = self.next_replica.fetch_add(1, Ordering::Relaxed);
        for offset in 0..count {
            let replica = &self.replicas[(start + offset) % count];
            match replica.find_target(code).await {
                Ok(target) => return Some(target),
                Err(error) => self.note_db_failure("replica", &error),
            }
        }
        None
    }

    fn note_db_failure(&self, which: &str, error: &DbError) {
        self.degraded.with_label_values(&[which]).inc();
        tracing::warn!(%error, which, "database lookup failed");
    }

    async fn fill(&self, code: &str, target: &Target) {
        let ttl = match target {
            Target::Unknown => self.negative_ttl,
            _ => links::cache::ttl_for(target, self.redis.jittered_ttl(), Utc::now()),
        };
        if let Err(error) = self.cache.put(code, target, ttl).await {
            self.degraded.with_label_values(&["redis"]).inc();
            tracing::debug!(%error, "redis fill skipped");
        }
    }
}
