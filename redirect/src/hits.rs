//! Hit counting: every redirect adds one to its link's count in memory, and a background task writes all counts
//! to PostgreSQL's primary as one batched upsert per interval, so a popular link is never a hot row.
//!
//! Counts live in shards, each behind its own small mutex picked by the link id: requests for different links
//! rarely meet on one lock, and no lock is shared by all requests. A flush swaps each shard's map out, so the
//! lock is held for a pointer swap, never for I/O. A crash loses what was counted since the last flush (at most
//! one interval); a failed flush keeps its counts, up to a bound, for the next try.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use chrono::{DateTime, NaiveDate, Utc};
use links::{chain::Chain, store::Store};
use plumbing::shutdown::Shutdown;

use crate::{local::LocalCache, metrics::Metrics};

const SHARDS: usize = 32;
const SECONDS_PER_DAY: i64 = 86_400;

/// (link id, day as days since 1970-01-01) → hits. foldhash with a fixed seed rather than SipHash: the keys are
/// our own link ids, never chosen by a request, and every redirect hashes one under a shard's lock.
type Counts = HashMap<(i64, i32), u64, foldhash::fast::FixedState>;

/// The in-memory counts.
pub struct HitCounter {
    shards: [Mutex<Counts>; SHARDS],
}

impl Default for HitCounter {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| Mutex::new(Counts::default())),
        }
    }
}

impl HitCounter {
    /// Counts one hit of `link_id` at `now`.
    pub fn record(&self, link_id: i64, now: DateTime<Utc>) {
        let day = i32::try_from(now.timestamp().div_euclid(SECONDS_PER_DAY)).unwrap_or(i32::MAX);
        let mut shard = self.shard(link_id);
        *shard.entry((link_id, day)).or_insert(0) += 1;
    }

    fn shard(&self, link_id: i64) -> std::sync::MutexGuard<'_, Counts> {
        // Fibonacci hashing: sequential Snowflake ids spread over all shards.
        let index = (link_id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 59;
        let index = usize::try_from(index).unwrap_or(0) % SHARDS;
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes every count out. Each shard gets back the map it had a flush ago, emptied but with its capacity,
    /// so requests after a flush insert into a map already grown to the traffic instead of re-growing (and
    /// rehashing) an empty one under the shard's lock.
    fn drain_into(&self, pending: &mut Pending) {
        for (shard, spare) in self.shards.iter().zip(pending.spares.iter_mut()) {
            std::mem::swap(
                &mut *shard.lock().unwrap_or_else(PoisonError::into_inner),
                spare,
            );
        }
        let mut spares = std::mem::take(&mut pending.spares);
        for spare in &mut spares {
            pending.merge(spare);
        }
        pending.spares = spares;
    }
}

/// Counts taken out of the shards and not yet written.
struct Pending {
    counts: Counts,
    max: usize,
    dropped: u64,
    /// One map per shard, swapped in at each flush.
    spares: Vec<Counts>,
}

impl Pending {
    /// Nothing pending yet; at most `max` (link, day) pairs will be.
    fn new(max: usize) -> Self {
        Self {
            counts: Counts::default(),
            max,
            dropped: 0,
            spares: (0..SHARDS).map(|_| Counts::default()).collect(),
        }
    }

    /// Moves `counts` in, leaving it empty with its capacity.
    fn merge(&mut self, counts: &mut Counts) {
        for (key, hits) in counts.drain() {
            let room = self.counts.len() < self.max;
            match self.counts.get_mut(&key) {
                Some(total) => *total += hits,
                None if room => {
                    self.counts.insert(key, hits);
                }
                None => self.dropped += hits,
            }
        }
    }

    /// The counts as the three parallel columns of the upsert.
    fn columns(&self) -> (Vec<i64>, Vec<NaiveDate>, Vec<i64>) {
        let mut ids = Vec::with_capacity(self.counts.len());
        let mut days = Vec::with_capacity(self.counts.len());
        let mut hits = Vec::with_capacity(self.counts.len());
        for (&(id, day), &count) in &self.counts {
            let Some(date) = date_of(day) else { continue };
            ids.push(id);
            days.push(date);
            hits.push(i64::try_from(count).unwrap_or(i64::MAX));
        }
        (ids, days, hits)
    }
}

fn date_of(days_since_epoch: i32) -> Option<NaiveDate> {
    const DAYS_FROM_CE_TO_EPOCH: i32 = 719_163;
    NaiveDate::from_num_days_from_ce_opt(days_since_epoch.checked_add(DAYS_FROM_CE_TO_EPOCH)?)
}

/// What the flusher needs.
pub struct Flusher {
    /// The counts to write.
    pub counter: Arc<HitCounter>,
    /// Where to write them.
    pub primary: Store,
    /// How often.
    pub interval: Duration,
    /// Bound on one flush.
    pub timeout: Duration,
    /// Most (link, day) pairs kept while flushes fail.
    pub pending_max: usize,
    /// Counters; the local cache size is reported on the same tick.
    pub metrics: Arc<Metrics>,
    /// Reported on each tick.
    pub local: Arc<LocalCache>,
}

impl Flusher {
    /// Flushes every interval until `shutdown`, then once more so a clean stop loses nothing.
    pub async fn run(self, shutdown: Shutdown) {
        let mut pending = Pending::new(self.pending_max);
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = shutdown.wait() => break,
            }
            // The workers' copies last at most one tick past what the local cache itself still holds.
            self.local.retire_front_copies();
            self.flush(&mut pending).await;
            let (entries, bytes) = self.local.size();
            let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
            self.metrics.local_cache_entries.set(gauge(entries));
            self.metrics.local_cache_bytes.set(gauge(bytes));
        }
        self.flush(&mut pending).await;
        if !pending.counts.is_empty() {
            tracing::warn!(
                links = pending.counts.len(),
                "hit counts could not be written before shutdown"
            );
        }
    }

    async fn flush(&self, pending: &mut Pending) {
        self.counter.drain_into(pending);
        if pending.dropped > 0 {
            self.metrics.hits_dropped.inc_by(pending.dropped);
            pending.dropped = 0;
        }
        if pending.counts.is_empty() {
            return;
        }
        let (ids, days, hits) = pending.columns();
        let written =
            tokio::time::timeout(self.timeout, self.primary.record_hits(&ids, &days, &hits)).await;
        match written {
            Ok(Ok(_rows)) => {
                let total: i64 = hits.iter().sum();
                self.metrics
                    .hits_flushed
                    .inc_by(u64::try_from(total).unwrap_or(0));
                pending.counts.clear();
            }
            Ok(Err(error)) => self.note_failure(&Chain(&error)),
            Err(_) => self.note_failure(&"timed out"),
        }
    }

    fn note_failure(&self, error: &dyn std::fmt::Display) {
        self.metrics.hit_flush_failures.inc();
        tracing::warn!(%error, "hit flush failed; counts kept for the next one");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_are_counted_per_link_and_day() {
        let counter = HitCounter::default();
        let noon = DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        counter.record(7, noon);
        counter.record(7, noon);
        counter.record(7, noon + chrono::Duration::days(1));
        counter.record(8, noon);
        let mut pending = Pending::new(10);
        counter.drain_into(&mut pending);
        let (ids, days, hits) = pending.columns();
        let mut rows: Vec<_> = ids.into_iter().zip(days).zip(hits).collect();
        rows.sort();
        let day = |text: &str| NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date");
        assert_eq!(
            rows,
            vec![
                ((7, day("2026-11-23")), 2),
                ((7, day("2026-11-24")), 1),
                ((8, day("2026-11-23")), 1)
            ]
        );
    }

    #[test]
    fn pending_counts_are_bounded_but_known_pairs_keep_adding_up() {
        let mut pending = Pending::new(1);
        pending.merge(&mut Counts::from_iter([((1, 0), 2)]));
        pending.merge(&mut Counts::from_iter([((1, 0), 3), ((2, 0), 5)]));
        assert_eq!(pending.counts, Counts::from_iter([((1, 0), 5)]));
        assert_eq!(pending.dropped, 5);
    }

    #[test]
    fn a_flush_gives_each_shard_back_a_map_that_keeps_its_capacity() {
        let counter = HitCounter::default();
        let now = Utc::now();
        for id in 0..10_000 {
            counter.record(id, now);
        }
        let mut pending = Pending::new(100_000);
        counter.drain_into(&mut pending);
        counter.drain_into(&mut pending);
        let capacity: usize = counter
            .shards
            .iter()
            .map(|shard| shard.lock().expect("shard").capacity())
            .sum();
        assert!(capacity >= 10_000, "{capacity}");
        assert_eq!(pending.counts.len(), 10_000);
    }
}
