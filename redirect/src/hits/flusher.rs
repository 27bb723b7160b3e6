//! The background task that writes the counts to PostgreSQL's primary as batched upserts, so a popular link is
//! never a hot row: the limited lane every tick (`--hits-flush-interval-ms`), the paced lane a chunk per
//! `PACE` over each sources interval (`--hit-sources-flush-interval-ms`), and everything once more at
//! shutdown. A crash loses what was counted since the last flush (at most one interval); a failed flush keeps
//! its counts, up to a bound, for the next try.

use std::{sync::Arc, time::Duration};

use links::{cache::RedisCache, hits::HitRows, store::Store};
use plumbing::chain::Chain;
use plumbing::shutdown::Shutdown;

use super::{
    counter::HitCounter,
    exhausted,
    pending::{put_back, take_links, Pending, FLUSH_CHUNK_LINKS, PACE},
    rows::{hit_rows, source_rows},
};
use crate::{metrics::Metrics, tiers::local::LocalCache};

/// How long the write of everything pending at shutdown may take, at least: within the 30 s Kubernetes gives a pod
/// by default, with room for the HTTP server's own drain.
const SHUTDOWN_WRITE_TIME: Duration = Duration::from_secs(20);

/// What the flusher needs.
pub struct Flusher {
    /// The counts to write.
    pub counter: Arc<HitCounter>,
    /// Where to write them.
    pub primary: Store,
    /// Where links that reached their visit limit are invalidated.
    pub cache: RedisCache,
    /// How often people's hits are written.
    pub interval: Duration,
    /// How often where visits came from is written (at least every `interval`).
    pub sources_interval: Duration,
    /// Links whose counts the paced write writes a second, at most.
    pub writes_per_second: u64,
    /// Bound on one flush.
    pub timeout: Duration,
    /// Most counts kept while flushes fail.
    pub pending_max: usize,
    /// Counters; the local cache size is reported on the same tick.
    pub metrics: Arc<Metrics>,
    /// Reported on each tick.
    pub local: Arc<LocalCache>,
}

impl Flusher {
    /// Flushes every interval (and writes the paced lane a chunk per [`PACE`]) until `shutdown`, then everything
    /// once more so a clean stop loses nothing.
    pub async fn run(self, shutdown: Shutdown) {
        let mut pending = Pending::new(self.pending_max);
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pace = tokio::time::interval(PACE);
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut interval_started = tokio::time::Instant::now();
        // A paced chunk that failed waits for the next tick, so a database that is down is retried (and logged)
        // once a tick, not four times a second.
        let mut paced_failed = false;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = pace.tick() => {
                    if !paced_failed {
                        let deadline = tokio::time::Instant::now() + self.timeout;
                        paced_failed = !self.write_sources(&mut pending, 1, deadline).await;
                    }
                    continue;
                }
                () = shutdown.wait() => break,
            }
            // The workers' copies last at most one tick past what the local cache itself still holds.
            self.local.tick();
            self.counter.drain_into(&mut pending);
            if interval_started.elapsed() >= self.sources_interval && pending.writing.is_empty() {
                pending.start_writing_sources(self.sources_interval, self.writes_per_second);
                interval_started = tokio::time::Instant::now();
            }
            paced_failed = false;
            let deadline = tokio::time::Instant::now() + self.timeout;
            self.write_limited(&mut pending, deadline).await;
            let (entries, bytes) = self.local.size();
            let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
            self.metrics.local_cache_entries.set(gauge(entries));
            self.metrics.local_cache_bytes.set(gauge(bytes));
        }
        // Everything, at once: the interval being written, then whatever was counted after. Up to two sources
        // intervals of hits may be pending, more than one statement timeout's worth on a busy database.
        let deadline = tokio::time::Instant::now() + self.timeout.max(SHUTDOWN_WRITE_TIME);
        self.counter.drain_into(&mut pending);
        self.write_limited(&mut pending, deadline).await;
        pending.chunk_links = FLUSH_CHUNK_LINKS;
        self.write_sources(&mut pending, usize::MAX, deadline).await;
        pending.start_writing_sources(self.sources_interval, u64::MAX);
        pending.chunk_links = FLUSH_CHUNK_LINKS;
        self.write_sources(&mut pending, usize::MAX, deadline).await;
        let sources = pending.sources.len() + pending.writing.len();
        if !pending.counts.is_empty() || sources > 0 {
            tracing::warn!(
                counts = pending.counts.len(),
                sources,
                "hit counts could not be written before shutdown"
            );
        }
    }

    /// Writes the pending hits of links with a visit limit, a chunk at a time, each its own statement, all before
    /// `deadline`: what is written stays written when a later chunk fails, and the rest waits for the next tick.
    async fn write_limited(&self, pending: &mut Pending, deadline: tokio::time::Instant) {
        if pending.dropped > 0 {
            self.metrics.hits_dropped.inc_by(pending.dropped);
            pending.dropped = 0;
        }
        while !pending.counts.is_empty() {
            let chunk = take_links(&mut pending.counts, FLUSH_CHUNK_LINKS);
            let hits = hit_rows(&chunk, false);
            let Some(exhausted) = self.within(deadline, self.primary.record_hits(&hits)).await
            else {
                put_back(&mut pending.counts, chunk);
                return;
            };
            self.count_flushed(&hits);
            exhausted::invalidate(&self.primary, &self.cache, self.timeout, exhausted).await;
        }
    }

    /// Writes up to `chunks` chunks of the sources interval being written, each with the hits of its links that
    /// have no visit limit, all before `deadline`; answers whether none failed.
    async fn write_sources(
        &self,
        pending: &mut Pending,
        chunks: usize,
        deadline: tokio::time::Instant,
    ) -> bool {
        for _ in 0..chunks {
            if pending.writing.is_empty() {
                pending.writing_domains.clear();
                return true;
            }
            let chunk = take_links(&mut pending.writing, pending.chunk_links);
            let hits = hit_rows(&chunk, true);
            let sources = source_rows(&chunk, &pending.writing_domains);
            if self
                .within(deadline, self.primary.record_sources(&hits, &sources))
                .await
                .is_none()
            {
                put_back(&mut pending.writing, chunk);
                return false;
            }
            self.count_flushed(&hits);
        }
        true
    }

    fn count_flushed(&self, hits: &HitRows) {
        self.metrics
            .hits_flushed
            .inc_by(u64::try_from(hits.total()).unwrap_or(0));
    }

    /// `write`'s answer if it succeeds before `deadline`; a failure is logged and counted.
    async fn within<T>(
        &self,
        deadline: tokio::time::Instant,
        write: impl std::future::Future<Output = Result<T, database::DbError>>,
    ) -> Option<T> {
        match tokio::time::timeout_at(deadline, write).await {
            Ok(Ok(written)) => Some(written),
            Ok(Err(error)) => {
                self.note_failure(&Chain(&error));
                None
            }
            Err(_) => {
                self.note_failure(&"timed out");
                None
            }
        }
    }

    fn note_failure(&self, error: &dyn std::fmt::Display) {
        self.metrics.hit_flush_failures.inc();
        tracing::warn!(%error, "hit flush failed; counts kept for the next one");
    }
}
