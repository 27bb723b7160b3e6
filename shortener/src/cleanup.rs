//! The expiry cleanup: purges expired and deleted links from PostgreSQL in batches, keeps their codes as
//! tombstones (`retired_codes`, so the short URL keeps answering 410 and the code is never handed out again),
//! and drops them from Redis and every redirect replica's local cache. The same pass purges `Idempotency-Key`
//! answers past their 24 hours.
//!
//! Inside `serve` it runs every interval on the instance elected leader ([`crate::leader`]); `shortener cleanup
//! --once` runs one pass without an election. Both are safe to run at once: each batch locks its rows with
//! `FOR UPDATE SKIP LOCKED`, so two passes take disjoint rows and never wait on each other.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use database::DbError;
use links::{cache::RedisCache, store::Store};
use plumbing::chain::Chain;
use plumbing::{
    shutdown::Shutdown,
    tasks::{Need, Supervisor, Task},
};
use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, Registry};
use tokio::sync::watch;

/// The cleanup's Prometheus series.
#[derive(Clone)]
pub struct CleanupMetrics {
    deleted: IntCounter,
    pass_duration: Histogram,
    failed_passes: IntCounter,
    redis_failures: IntCounter,
    /// 1 while this instance holds the cleanup leadership.
    pub leader: IntGauge,
}

impl CleanupMetrics {
    /// Creates the series and registers them in `registry`.
    ///
    /// # Errors
    /// When series of the same name are already registered.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let deleted = IntCounter::new(
            "shortener_cleanup_deleted_links_total",
            "Expired and deleted links purged by the cleanup",
        )?;
        let pass_duration = Histogram::with_opts(
            HistogramOpts::new(
                "shortener_cleanup_pass_duration_seconds",
                "Time taken by one cleanup pass",
            )
            .buckets(vec![
                0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0,
            ]),
        )?;
        let failed_passes = IntCounter::new(
            "shortener_cleanup_failed_passes_total",
            "Cleanup passes cut short by a database failure",
        )?;
        let redis_failures = IntCounter::new(
            "shortener_cleanup_redis_failures_total",
            "Purged codes whose Redis key or invalidation message failed (the cache TTL bounds the staleness)",
        )?;
        let leader = IntGauge::new(
            "shortener_cleanup_leader",
            "1 while this instance holds the cleanup leadership",
        )?;
        registry.register(Box::new(deleted.clone()))?;
        registry.register(Box::new(pass_duration.clone()))?;
        registry.register(Box::new(failed_passes.clone()))?;
        registry.register(Box::new(redis_failures.clone()))?;
        registry.register(Box::new(leader.clone()))?;
        Ok(Self {
            deleted,
            pass_duration,
            failed_passes,
            redis_failures,
            leader,
        })
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassSummary {
    /// Links purged.
    pub deleted: u64,
    /// Statements run.
    pub batches: u64,
    /// Purged codes that could not be dropped from Redis or announced.
    pub redis_failures: u64,
    /// How long it took.
    pub duration: Duration,
}

/// Runs cleanup passes.
#[derive(Clone)]
pub struct Cleaner {
    /// The primary (statements are bounded by the pool's `statement_timeout`).
    store: Store,
    cache: RedisCache,
    batch: i64,
    /// Days a purged code stays taken before a pass frees it; `None`: forever.
    grace_days: Option<i32>,
    metrics: CleanupMetrics,
}

impl Cleaner {
    /// A cleaner purging `batch` links per statement, keeping purged codes taken forever (see
    /// [`Cleaner::freeing_codes_after`]).
    pub fn new(store: Store, cache: RedisCache, batch: u32, metrics: CleanupMetrics) -> Self {
        Self {
            store,
            cache,
            batch: i64::from(batch),
            grace_days: None,
            metrics,
        }
    }

    /// This cleaner, freeing purged codes `grace_days` after they were purged (0: never).
    #[must_use]
    pub fn freeing_codes_after(self, grace_days: u32) -> Self {
        Self {
            grace_days: i32::try_from(grace_days).ok().filter(|days| *days > 0),
            ..self
        }
    }

    /// Purges batch after batch until one comes back short, or `keep_going` says stop (leadership lost,
    /// shutdown) between batches.
    ///
    /// # Errors
    /// When the database fails; batches committed before that stay purged.
    pub async fn pass(&self, keep_going: impl Fn() -> bool) -> Result<PassSummary, DbError> {
        let started = Instant::now();
        let mut summary = PassSummary::default();
        let result = loop {
            if !keep_going() {
                break Ok(());
            }
            let codes = match self.purge_batch().await {
                Ok(codes) => codes,
                Err(error) => break Err(error),
            };
            let purged = codes.len() as u64;
            summary.batches += 1;
            summary.deleted += purged;
            self.metrics.deleted.inc_by(purged);
            summary.redis_failures += self.invalidate(codes).await;
            // Short: nothing more is due, or the rest is locked by a concurrent pass that will purge it.
            if i64::try_from(purged).unwrap_or(i64::MAX) < self.batch {
                break Ok(());
            }
        };
        let result = match result {
            Ok(()) => self.purge_idempotency_keys(&keep_going).await,
            failed => failed,
        };
        let result = match result {
            Ok(()) => self.free_retired_codes(&keep_going).await,
            failed => failed,
        };
        summary.duration = started.elapsed();
        self.metrics
            .pass_duration
            .observe(summary.duration.as_secs_f64());
        if result.is_err() {
            self.metrics.failed_passes.inc();
        }
        result.map(|()| summary)
    }

    /// Deletes answers to `Idempotency-Key` requests past their 24 hours, a batch at a time.
    async fn purge_idempotency_keys(&self, keep_going: impl Fn() -> bool) -> Result<(), DbError> {
        while keep_going() {
            let purged = self.store.purge_expired_answers(self.batch).await?;
            if i64::try_from(purged).unwrap_or(i64::MAX) < self.batch {
                break;
            }
        }
        Ok(())
    }

    /// Frees codes purged more than the grace period ago, a batch at a time, and drops them from the caches
    /// (a replica may hold one as gone, and a new link may take it now).
    async fn free_retired_codes(&self, keep_going: impl Fn() -> bool) -> Result<(), DbError> {
        let Some(grace_days) = self.grace_days else {
            return Ok(());
        };
        while keep_going() {
            let codes = self
                .store
                .free_retired_codes(self.batch, grace_days)
                .await?;
            let freed = codes.len();
            self.invalidate(codes).await;
            if i64::try_from(freed).unwrap_or(i64::MAX) < self.batch {
                break;
            }
        }
        Ok(())
    }

    async fn purge_batch(&self) -> Result<Vec<String>, DbError> {
        self.store.retire_expired_links(self.batch).await
    }

    /// Drops the codes from Redis and announces them, in one pipeline per batch. Returns the number that failed
    /// (the whole batch when the pipeline fails): logged and counted, not fatal, since the cache TTL bounds the
    /// staleness and a redirect checks expiry on every answer.
    async fn invalidate(&self, codes: Vec<String>) -> u64 {
        let Err(error) = self.cache.invalidate_all(&codes).await else {
            return 0;
        };
        let failures = codes.len() as u64;
        self.metrics.redis_failures.inc_by(failures);
        tracing::warn!(failures, error = %Chain(&error), "purged links not dropped from Redis; their cache TTL bounds the staleness");
        failures
    }
}

/// `shortener cleanup --once`: one pass without an election (a CronJob's runs may overlap a leader's pass or
/// each other: `SKIP LOCKED` keeps them apart). Applies pending migrations first, since the pass needs them.
///
/// # Errors
/// When PostgreSQL is unreachable or the pass fails; Redis failures are only counted.
pub async fn run_once(
    args: &crate::config::CleanupCommandArgs,
    shutdown: &Shutdown,
) -> anyhow::Result<PassSummary> {
    let store = crate::stores::connect_and_migrate(&args.database).await?;
    let cache = RedisCache::connect(&args.redis.options())
        .await
        .context("invalid --redis-url (REDIS_URL)")?;
    let metrics = CleanupMetrics::register(&Registry::new())?;
    let cleaner = Cleaner::new(
        store.clone(),
        cache.clone(),
        args.purge.cleanup_batch,
        metrics,
    )
    .freeing_codes_after(args.purge.retired_code_grace_days);
    let summary = cleaner.pass(|| !shutdown.is_triggered()).await;
    // Serving instances retry owed invalidations too; a CronJob's pass is one more chance, not the only one.
    let outbox = crate::outbox::Invalidations::register(store, cache.clone(), &Registry::new())?;
    if let Err(error) = outbox.drain_once().await {
        tracing::warn!(error = %Chain(&error), "owed invalidations not delivered; running shorteners retry them");
    }
    cache.quit().await;
    summary.context("the cleanup pass failed")
}

/// The recurring cleanup of `serve`: a pass every interval while this instance leads.
pub struct CleanupTask {
    task: Task,
}

impl CleanupTask {
    /// Starts ticking in a task of `supervisor`; a tick purges only while `leader` says so.
    pub fn start(
        cleaner: Cleaner,
        leader: watch::Receiver<bool>,
        interval: Duration,
        supervisor: &Supervisor,
    ) -> Self {
        let shutdown = supervisor.shutdown().clone();
        let task = supervisor.spawn(
            "cleanup",
            Need::Optional,
            run(cleaner, leader, interval, shutdown),
        );
        Self { task }
    }

    /// Waits until the task has finished its batch in flight and stopped (after shutdown).
    pub async fn stopped(self) {
        self.task.stopped().await;
    }
}

async fn run(
    cleaner: Cleaner,
    leader: watch::Receiver<bool>,
    interval: Duration,
    shutdown: Shutdown,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.wait() => break,
            _ = ticks.tick() => {}
        }
        if !*leader.borrow() {
            continue;
        }
        let keep_going = || *leader.borrow() && !shutdown.is_triggered();
        match cleaner.pass(keep_going).await {
            Ok(summary) if summary.deleted > 0 => tracing::info!(
                deleted = summary.deleted,
                batches = summary.batches,
                redis_failures = summary.redis_failures,
                "cleanup pass done"
            ),
            Ok(_) => tracing::debug!("cleanup pass found nothing to purge"),
            Err(error) => {
                tracing::warn!(error = %Chain(&error), "cleanup pass failed; retrying next interval")
            }
        }
    }
}
