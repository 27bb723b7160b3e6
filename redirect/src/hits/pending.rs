//! Counts taken out of the counter and not yet written, in two lanes: the hits of links with a visit limit, written
//! every tick so the limit is enforced promptly, and everything else (where visits came from, and the hits of
//! every other link), summed for a sources interval and then written a chunk at a time, spread over the next
//! interval. Also how pending counts are cut into chunks of whole links. A failed write puts its chunk back, up to
//! a bound, for the next try.

use std::{collections::HashSet, time::Duration};

use super::counts::{Counts, Domains, Shard, VisitKey, SHARDS};

/// Links whose counts one flush statement writes: a tick with more pending writes several transactions, each
/// small enough to commit well inside the statement timeout on a busy database (about 0.1 s for 2,000 links and
/// their sources on the machine `make bench` runs on). One transaction for everything was seen to time out past
/// ~50,000 links: rolled back, retried with more, never written, the database kept busy for nothing.
pub(super) const FLUSH_CHUNK_LINKS: usize = 2_000;

/// How often the paced write (sources, and the hits of links without a visit limit) writes its next chunk.
pub(super) const PACE: Duration = Duration::from_millis(PACE_MILLIS);
const PACE_MILLIS: u64 = 250;

/// Links per paced chunk, at least (fewer, bigger statements past it: see [`paced_chunk_links`]).
const MIN_PACED_CHUNK_LINKS: usize = 500;

/// Links per paced chunk so that `links` are written within 80% of `interval` at one chunk per [`PACE`] (done
/// before the next interval's write is due, with room for a slow or failed chunk), but never more than
/// `per_second` links a second: past that the write takes longer than an interval, and the next one starts when
/// it ends. Without the bound the chunk grew with the links visited, and a flood over a million links asked the
/// primary for ~80k row upserts a second (make bench's uniform run over 1M links: PostgreSQL 5.7 us of CPU per
/// request on the core it shared with the load generator).
fn paced_chunk_links(links: usize, interval: Duration, per_second: u64) -> usize {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // small and positive
    let chunks = ((interval.as_secs_f64() * 0.8 / PACE.as_secs_f64()) as usize).max(1);
    let most = usize::try_from(per_second.saturating_mul(PACE_MILLIS) / 1_000)
        .unwrap_or(usize::MAX)
        .max(1);
    links.div_ceil(chunks).max(MIN_PACED_CHUNK_LINKS).min(most)
}

/// Counts taken out of the shards and not yet written: a limited link's count twice, once until its hits are
/// written (each tick) and once until its sources are (each sources interval); every other count once, until its
/// sources and hits are written together.
pub(super) struct Pending {
    /// Counts of links with a visit limit whose hits are not written yet.
    pub(super) counts: Counts,
    /// Counts whose sources are not written yet (with their hits, for links without a limit), and the domains
    /// they name.
    pub(super) sources: Counts,
    pub(super) domains: Domains,
    /// The last sources interval's counts, being written a chunk per [`PACE`], and the domains they name.
    pub(super) writing: Counts,
    pub(super) writing_domains: Domains,
    /// Links per chunk of `writing`.
    pub(super) chunk_links: usize,
    max: usize,
    pub(super) dropped: u64,
    /// One shard's maps per shard, swapped in at each flush.
    pub(super) spares: Vec<Shard>,
}

impl Pending {
    /// Nothing pending yet; at most `max` counts will be.
    pub(super) fn new(max: usize) -> Self {
        Self {
            counts: Counts::default(),
            sources: Counts::default(),
            domains: Domains::default(),
            writing: Counts::default(),
            writing_domains: Domains::default(),
            chunk_links: MIN_PACED_CHUNK_LINKS,
            max,
            dropped: 0,
            spares: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }

    /// Moves `shard`'s counts in, leaving it empty with its capacity.
    pub(super) fn merge(&mut self, shard: &mut Shard) {
        self.dropped += std::mem::take(&mut shard.dropped);
        for (key, hits) in shard.counts.drain() {
            if key.limited {
                self.dropped += add_bounded(&mut self.counts, key, hits, self.max);
                // A source dropped here is still a hit: it is counted as dropped only where the hit is.
                add_bounded(&mut self.sources, key, hits, self.max);
            } else {
                self.dropped += add_bounded(&mut self.sources, key, hits, self.max);
            }
        }
        for (key, domain) in shard.domains.drain() {
            if self.domains.len() < self.max {
                self.domains.entry(key).or_insert(domain);
            }
        }
    }

    /// Starts writing the sources counted so far (once the previous ones are all written), spread over
    /// `interval` at no more than `per_second` links a second, so counts that arrive while they are written wait
    /// for the next interval instead of keeping the write from ever ending. The maps swap places: the next
    /// interval counts into the emptied maps of the last write, already grown to the traffic; fresh ones were
    /// re-grown (up to a million counts, rehashed at each doubling) every interval on the core the requests use.
    pub(super) fn start_writing_sources(&mut self, interval: Duration, per_second: u64) {
        if self.writing.is_empty() {
            std::mem::swap(&mut self.writing, &mut self.sources);
            std::mem::swap(&mut self.writing_domains, &mut self.domains);
            // Emptied a chunk at a time, the last write's map may be all tombstones: clear() makes every slot
            // free again (a pass over its control bytes) so the interval does not start with a rehash.
            self.sources.clear();
            self.domains.clear();
            self.chunk_links = paced_chunk_links(self.writing.len(), interval, per_second);
        }
    }

    /// Everything pending as rows: all hits, of either lane, and the sources.
    #[cfg(test)]
    pub(super) fn rows(&self) -> (links::hits::HitRows, links::hits::SourceRows) {
        let mut all = self.counts.clone();
        for (key, hits) in self.sources.iter().filter(|(key, _)| !key.limited) {
            *all.entry(*key).or_default() += hits;
        }
        (
            super::rows::hit_rows(&all, false),
            super::rows::source_rows(&self.sources, &self.domains),
        )
    }
}

/// Adds `hits` under `key` unless that would make `counts` hold more than `max` keys; answers what it dropped.
fn add_bounded(counts: &mut Counts, key: VisitKey, hits: u64, max: usize) -> u64 {
    let room = counts.len() < max;
    match counts.get_mut(&key) {
        Some(total) => *total += hits,
        None if room => {
            counts.insert(key, hits);
        }
        None => return hits,
    }
    0
}

/// Takes out of `counts` those of up to `max_links` links (all of each link's counts, so a link's referrer bound
/// is applied within one statement).
pub(super) fn take_links(counts: &mut Counts, max_links: usize) -> Counts {
    let mut links: HashSet<i64, foldhash::fast::FixedState> = HashSet::default();
    for key in counts.keys() {
        if links.len() == max_links {
            break;
        }
        links.insert(key.link_id);
    }
    counts
        .extract_if(|key, _| links.contains(&key.link_id))
        .collect()
}

/// Puts back into `counts` what a failed write took out (they were counted in before, so no bound applies).
pub(super) fn put_back(counts: &mut Counts, chunk: Counts) {
    for (key, hits) in chunk {
        *counts.entry(key).or_default() += hits;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hits::{
        counter::HitCounter,
        counts::DIRECT,
        fixtures::{drained, noon, visit},
        rows::{hit_rows, source_rows},
        visit::Device,
    };

    #[test]
    fn an_interval_is_written_within_the_next_in_chunks_of_at_least_the_minimum() {
        let (thirty, unbounded) = (Duration::from_secs(30), u64::MAX);
        // 30 s at 4 chunks a second, within 80%: 96 chunks.
        assert_eq!(paced_chunk_links(1_000_000, thirty, unbounded), 10_417);
        assert_eq!(paced_chunk_links(96_000, thirty, unbounded), 1_000);
        assert_eq!(
            paced_chunk_links(10, thirty, unbounded),
            MIN_PACED_CHUNK_LINKS
        );
        assert_eq!(
            paced_chunk_links(1_000_000, Duration::ZERO, unbounded),
            1_000_000
        );
    }

    #[test]
    fn the_paced_write_never_asks_for_more_links_a_second_than_its_bound() {
        let thirty = Duration::from_secs(30);
        // 4,000 links a second at 4 chunks a second.
        assert_eq!(paced_chunk_links(1_000_000, thirty, 4_000), 1_000);
        assert_eq!(paced_chunk_links(96_000, thirty, 4_000), 1_000);
        // Within the bound the interval's own pace stands, and a bound below the minimum chunk wins over it.
        assert_eq!(paced_chunk_links(48_000, thirty, 4_000), 500);
        assert_eq!(paced_chunk_links(48_000, thirty, 400), 100);
        assert_eq!(paced_chunk_links(48_000, thirty, 1), 1);
    }

    #[test]
    fn pending_counts_are_bounded_but_known_keys_keep_adding_up() {
        let mut pending = Pending::new(1);
        let key = |link_id| VisitKey {
            link_id,
            limited: true,
            day: 0,
            device: Device::Desktop,
            country: [0, 0],
            referrer: DIRECT,
            variant: 0,
        };
        let mut shard = Shard::default();
        shard.counts.insert(key(1), 2);
        pending.merge(&mut shard);
        shard.counts.insert(key(1), 3);
        shard.counts.insert(key(2), 5);
        pending.merge(&mut shard);
        assert_eq!(pending.counts, Counts::from_iter([(key(1), 5)]));
        assert_eq!(pending.dropped, 5);
    }

    #[test]
    fn a_big_flush_is_taken_a_few_links_at_a_time_each_with_all_its_counts() {
        let counter = HitCounter::default();
        let sources = [
            visit(Device::Desktop, "", None),
            visit(Device::Mobile, "news.example.com", None),
            visit(Device::Bot, "", None),
        ];
        for id in 0..5_000 {
            for source in &sources {
                counter.record(id, true, noon(), source);
            }
        }
        let mut pending = drained(&counter);
        let all = pending.counts.clone();
        // A failed write puts its chunk back as it was.
        let chunk = take_links(&mut pending.counts, FLUSH_CHUNK_LINKS);
        put_back(&mut pending.counts, chunk);
        assert_eq!(pending.counts, all);
        let mut seen = HashSet::new();
        let mut chunks = 0;
        while !pending.counts.is_empty() {
            let chunk = take_links(&mut pending.counts, FLUSH_CHUNK_LINKS);
            let links: HashSet<i64> = chunk.keys().map(|key| key.link_id).collect();
            assert!(links.len() <= FLUSH_CHUNK_LINKS, "{}", links.len());
            assert_eq!(
                chunk.len(),
                links.len() * sources.len(),
                "every count of a link in its chunk"
            );
            assert!(
                links.iter().all(|id| seen.insert(*id)),
                "a link in one chunk only"
            );
            chunks += 1;
        }
        assert_eq!(seen.len(), 5_000);
        assert_eq!(chunks, 3);
        assert_eq!(all.len(), 15_000);
    }

    #[test]
    fn hits_are_taken_each_tick_while_sources_keep_adding_up_until_theirs() {
        let counter = HitCounter::default();
        let visit = visit(Device::Mobile, "news.example.com", None);
        let mut pending = Pending::new(100_000);
        for _tick in 0..3 {
            counter.record(7, true, noon(), &visit);
            counter.record(7, true, noon(), &visit);
            counter.drain_into(&mut pending);
            let hits = hit_rows(&take_links(&mut pending.counts, FLUSH_CHUNK_LINKS), false);
            assert_eq!(hits.hits, vec![2], "each tick writes that tick's hits only");
        }
        let sources = source_rows(&pending.sources, &pending.domains);
        let mut written: Vec<(String, i64)> = sources.keys.into_iter().zip(sources.hits).collect();
        written.sort();
        assert_eq!(
            written,
            vec![("news.example.com".to_owned(), 6)],
            "the sources of all three ticks in one write"
        );
        let paced = hit_rows(&pending.sources, true);
        assert_eq!(
            (paced.hits, paced.devices[Device::Mobile as usize].clone()),
            (vec![0], vec![6]),
            "the limited link's hits were written on its ticks; its devices go with the sources"
        );
    }

    #[test]
    fn each_sources_interval_counts_into_maps_already_grown_to_the_traffic() {
        let counter = HitCounter::default();
        let visit = visit(Device::Desktop, "a.example", None);
        let mut pending = Pending::new(100_000);
        for link in 0..5_000 {
            counter.record(link, false, noon(), &visit);
        }
        counter.drain_into(&mut pending);
        pending.start_writing_sources(Duration::from_secs(30), u64::MAX);
        while !pending.writing.is_empty() {
            take_links(&mut pending.writing, FLUSH_CHUNK_LINKS);
        }
        pending.start_writing_sources(Duration::from_secs(30), u64::MAX);
        assert!(
            pending.sources.is_empty() && pending.domains.is_empty(),
            "nothing of the last interval is counted again"
        );
        assert!(
            pending.sources.capacity() >= 5_000,
            "the next interval's map keeps the capacity of the last: {}",
            pending.sources.capacity()
        );
    }

    #[test]
    fn sources_counted_while_an_interval_is_written_wait_for_the_next() {
        let counter = HitCounter::default();
        let visit = visit(Device::Desktop, "a.example", None);
        let mut pending = Pending::new(100_000);
        counter.record(1, false, noon(), &visit);
        counter.drain_into(&mut pending);
        pending.start_writing_sources(Duration::from_secs(30), 4_000);
        assert_eq!(pending.writing.len(), 1);
        assert!(pending.sources.is_empty() && pending.domains.is_empty());
        assert_eq!(
            pending.writing_domains.len(),
            1,
            "the domain goes with its counts"
        );

        counter.record(2, false, noon(), &visit);
        counter.drain_into(&mut pending);
        pending.start_writing_sources(Duration::from_secs(30), 4_000);
        assert_eq!(
            pending.writing.len(),
            1,
            "the interval being written is not added to"
        );
        assert_eq!(pending.sources.len(), 1);
        let next = source_rows(&pending.sources, &pending.domains);
        assert!(
            next.keys.contains(&"a.example".to_owned()),
            "{:?}",
            next.keys
        );
    }
}
