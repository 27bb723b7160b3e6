//! Hit counting: every redirect adds one to its visit's count in memory, and a background task writes all counts
//! to PostgreSQL's primary as batched upserts, so a popular link is never a hot row.
//!
//! Two lanes. The hits of links with a visit limit are written every tick (`--hits-flush-interval-ms`), so the
//! limit is enforced promptly. Everything else, where visits came from and the hits of every other link (almost
//! all of them), is summed in memory for a sources interval (`--hit-sources-flush-interval-ms`) and then written
//! a chunk at a time, spread over the next interval: a link visited all the time costs a few rows per sources
//! interval instead of one per tick, and the database sees a steady trickle instead of a burst each tick. (The
//! hits flush was the largest cost beside the redirect itself in `make bench`: ~17k upserts a second under
//! uniform traffic, 14-40 µs of PostgreSQL each on the core the load generator and Redis share.)
//!
//! A visit is counted under its link, day, device class, country and referrer domain ([`crate::visit`]); the flush
//! turns those into the per-day hits (people only: bots are counted apart, though a limited link's bots count
//! toward its limit and are written on its ticks with its hits) and the per-day sources behind
//! `GET /v1/urls/{code}/stats`. Counts live in shards, each behind its own small mutex picked by the link id:
//! requests for different links rarely meet on one lock, and no lock is shared by all requests. A flush swaps each
//! shard's maps out, so the lock is held for a pointer swap, never for I/O. A crash loses what was counted since
//! the last flush (at most one interval); a failed flush keeps its counts, up to a bound, for the next try.
//!
//! Whatever requests send, memory stays bounded: a shard keeps at most [`MAX_DOMAINS`] referrer domains and
//! [`MAX_KEYS`] counts per interval (past them, new domains count as "other", then new keys are dropped and
//! counted), and a flush writes at most [`MAX_REFERRERS_PER_FLUSH`] domains per link and day.
//!
//! The flush also ends links at their visit limit: once the visits it wrote take a link to its `max_hits`, the
//! link is marked exhausted and its invalidation queued in the same transaction as the hits (a failed flush keeps
//! neither, so its retry never counts twice), then delivered through Redis like a delete's, so every replica
//! answers 410 within a moment.

use std::{
    collections::{HashMap, HashSet},
    hash::{BuildHasher, Hasher},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use chrono::{DateTime, NaiveDate, Utc};
use links::{
    cache::RedisCache,
    hits::{HitRows, SourceKind, SourceRows},
    outbox::Owed,
    store::Store,
};
use plumbing::chain::Chain;
use plumbing::shutdown::Shutdown;

use crate::{
    local::LocalCache,
    metrics::Metrics,
    visit::{Device, Visit, MAX_DOMAIN_LEN},
};

const SHARDS: usize = 32;
const SECONDS_PER_DAY: i64 = 86_400;

/// Distinct referrer domains a shard keeps per interval; past it a new domain counts as "other".
pub const MAX_DOMAINS: usize = 1024;

/// Counts a shard keeps per interval; past it a new one is dropped (and counted as dropped).
pub const MAX_KEYS: usize = 16_384;

/// Referrer domains written per link and day by one flush; the rest are summed as "other". (The database keeps
/// at most this many per link and day too: see `links::hits`.)
pub const MAX_REFERRERS_PER_FLUSH: usize = 50;

/// Links whose counts one flush statement writes: a tick with more pending writes several transactions, each
/// small enough to commit well inside the statement timeout on a busy database (about 0.1 s for 2,000 links and
/// their sources on the machine `make bench` runs on). One transaction for everything was seen to time out past
/// ~50,000 links: rolled back, retried with more, never written, the database kept busy for nothing.
const FLUSH_CHUNK_LINKS: usize = 2_000;

/// How long the write of everything pending at shutdown may take, at least: within the 30 s Kubernetes gives a pod
/// by default, with room for the HTTP server's own drain.
const SHUTDOWN_WRITE_TIME: Duration = Duration::from_secs(20);

/// How often the paced write (sources, and the hits of links without a visit limit) writes its next chunk.
const PACE: Duration = Duration::from_millis(PACE_MILLIS);
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

/// The referrer of a direct visit (no usable `Referer`).
const DIRECT: u64 = 0;
/// The referrer of visits whose domains were past a bound.
const OTHER: u64 = 1;

/// What one count is kept under: a link, a day, and where the visit came from. The referrer is a seeded hash of
/// its lower-cased domain (or [`DIRECT`], [`OTHER`]); the shard keeps the domain itself once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct VisitKey {
    link_id: i64,
    /// The link has a visit limit: its hits are written every tick.
    limited: bool,
    day: i32,
    device: Device,
    /// `[0, 0]` when no country header is configured.
    country: [u8; 2],
    referrer: u64,
}

/// foldhash with a fixed seed for the counts: the keys' link ids are our own, never chosen by a request. The
/// referrer's hash inside a key comes from the counter's random seed, so a request cannot aim at a collision.
type Counts = HashMap<VisitKey, u64, foldhash::fast::FixedState>;
type Domains = HashMap<u64, Box<str>, foldhash::fast::FixedState>;

/// One shard's counts and the domains they name.
#[derive(Default)]
struct Shard {
    counts: Counts,
    domains: Domains,
    dropped: u64,
}

/// Links whose visits one shard of [`HitCounter::admit`] keeps; past it the shard starts over.
const MAX_ADMITTED: usize = 8_192;

/// The in-memory counts.
pub struct HitCounter {
    shards: [Mutex<Shard>; SHARDS],
    /// Visits this process has answered per link with a known visit limit, by the same shards (see
    /// [`HitCounter::admit`]).
    admitted: [Mutex<HashMap<i64, u64, foldhash::fast::FixedState>>; SHARDS],
    seed: foldhash::quality::RandomState,
}

impl Default for HitCounter {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| Mutex::new(Shard::default())),
            admitted: std::array::from_fn(|_| Mutex::default()),
            seed: foldhash::quality::RandomState::default(),
        }
    }
}

impl HitCounter {
    /// Whether this process may answer one more visit of link `link_id`, whose visit limit is `max_hits`;
    /// counts it if so. A process answers at most `max_hits` visits of a link itself, so a limit holds within
    /// what each replica answers, before any flush and while flushes fail (with the flush alone every replica
    /// answered a whole interval's visits, and everything while flushes failed). Counted over the process's life,
    /// each admitted visit also counted for the flush, so it is never more than the visits the database counts
    /// for the link (unless counts were dropped, see [`MAX_KEYS`]) and never refuses a visit the limit still
    /// allows (a raised limit is simply compared anew). The map is bounded: a full shard starts over, which only
    /// leaves its links to the flush's bound.
    pub fn admit(&self, link_id: i64, max_hits: i64) -> bool {
        let max = u64::try_from(max_hits).unwrap_or(0);
        let mut admitted = self.admitted[shard_index(link_id)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if admitted.len() >= MAX_ADMITTED && !admitted.contains_key(&link_id) {
            admitted.clear();
        }
        let answered = admitted.entry(link_id).or_insert(0);
        if *answered >= max {
            return false;
        }
        *answered += 1;
        true
    }

    /// Counts one hit of `link_id` (`limited`: it has a visit limit) at `now`, from `visit`. A bot's visit keeps
    /// only its device class.
    pub fn record(&self, link_id: i64, limited: bool, now: DateTime<Utc>, visit: &Visit<'_>) {
        let day = i32::try_from(now.timestamp().div_euclid(SECONDS_PER_DAY)).unwrap_or(i32::MAX);
        let bot = visit.device == Device::Bot;
        let (referrer, domain) = if bot || visit.referrer.is_empty() {
            (DIRECT, None)
        } else {
            self.domain_key(visit.referrer)
        };
        let mut key = VisitKey {
            link_id,
            limited,
            day,
            device: visit.device,
            country: if bot {
                [0, 0]
            } else {
                visit.country.unwrap_or([0, 0])
            },
            referrer,
        };
        let mut shard = self.shard(link_id);
        let shard = &mut *shard;
        if let Some(lowered) = domain {
            if !shard.domains.contains_key(&key.referrer) {
                if shard.domains.len() < MAX_DOMAINS {
                    shard.domains.insert(key.referrer, lowered.into());
                } else {
                    key.referrer = OTHER;
                }
            }
        }
        if let Some(count) = shard.counts.get_mut(&key) {
            *count += 1;
        } else if shard.counts.len() < MAX_KEYS {
            shard.counts.insert(key, 1);
        } else {
            shard.dropped += 1;
        }
    }

    /// The key of a referrer domain and, lower-cased, the domain itself (a copy on the stack: the shard copies it
    /// to the heap only the first time it sees it in an interval).
    fn domain_key(&self, host: &[u8]) -> (u64, Option<DomainBuf>) {
        let lowered = DomainBuf::lowered(host);
        let mut hasher = self.seed.build_hasher();
        hasher.write(lowered.bytes());
        let hash = hasher.finish();
        // DIRECT and OTHER are not hashes of a domain.
        (hash.max(OTHER + 1), Some(lowered))
    }

    fn shard(&self, link_id: i64) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[shard_index(link_id)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes every count out. Each shard gets back the maps it had a flush ago, emptied but with their capacity,
    /// so requests after a flush insert into maps already grown to the traffic instead of re-growing (and
    /// rehashing) empty ones under the shard's lock.
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

/// The shard of `link_id`'s counts. Fibonacci hashing: sequential Snowflake ids spread over all shards.
fn shard_index(link_id: i64) -> usize {
    let index = (link_id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 59;
    usize::try_from(index).unwrap_or(0) % SHARDS
}

/// A lower-cased referrer domain of at most [`MAX_DOMAIN_LEN`] bytes, on the stack.
struct DomainBuf {
    bytes: [u8; MAX_DOMAIN_LEN],
    len: usize,
}

impl DomainBuf {
    fn lowered(host: &[u8]) -> Self {
        let mut bytes = [0; MAX_DOMAIN_LEN];
        let len = host.len().min(MAX_DOMAIN_LEN);
        for (to, from) in bytes.iter_mut().zip(&host[..len]) {
            *to = from.to_ascii_lowercase();
        }
        Self { bytes, len }
    }

    fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl From<DomainBuf> for Box<str> {
    fn from(domain: DomainBuf) -> Self {
        // `referrer_host` lets only ASCII letters, digits, '.', '-' and '_' through.
        String::from_utf8_lossy(domain.bytes()).into()
    }
}

/// Counts taken out of the shards and not yet written: a limited link's count twice, once until its hits are
/// written (each tick) and once until its sources are (each sources interval); every other count once, until its
/// sources and hits are written together.
struct Pending {
    /// Counts of links with a visit limit whose hits are not written yet.
    counts: Counts,
    /// Counts whose sources are not written yet (with their hits, for links without a limit), and the domains
    /// they name.
    sources: Counts,
    domains: Domains,
    /// The last sources interval's counts, being written a chunk per [`PACE`], and the domains they name.
    writing: Counts,
    writing_domains: Domains,
    /// Links per chunk of `writing`.
    chunk_links: usize,
    max: usize,
    dropped: u64,
    /// One shard's maps per shard, swapped in at each flush.
    spares: Vec<Shard>,
}

impl Pending {
    /// Nothing pending yet; at most `max` counts will be.
    fn new(max: usize) -> Self {
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
    fn merge(&mut self, shard: &mut Shard) {
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
    fn start_writing_sources(&mut self, interval: Duration, per_second: u64) {
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
    fn rows(&self) -> (HitRows, SourceRows) {
        let mut all = self.counts.clone();
        for (key, hits) in self.sources.iter().filter(|(key, _)| !key.limited) {
            *all.entry(*key).or_default() += hits;
        }
        (
            hit_rows(&all, false),
            source_rows(&self.sources, &self.domains),
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
fn take_links(counts: &mut Counts, max_links: usize) -> Counts {
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
fn put_back(counts: &mut Counts, chunk: Counts) {
    for (key, hits) in chunk {
        *counts.entry(key).or_default() += hits;
    }
}

/// The people's hits per link and day of `counts`, as the columns of the hits upsert. For the tick's write
/// (`paced` false: the links with a visit limit), the people's hits and the bots' visits (their column only):
/// both count toward the limit, so both are written every tick. For the paced write, the hits of the links
/// without a limit, with the visits of every count by device class, but not a limited link's hits or bots
/// (written on its ticks).
fn hit_rows(counts: &Counts, paced: bool) -> HitRows {
    let mut per_day: HashMap<(i64, i32), (i64, [i64; 4]), foldhash::fast::FixedState> =
        HashMap::default();
    for (key, &count) in counts {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        let bot = key.device == Device::Bot;
        let (people, device) = match (paced, key.limited) {
            (false, _) => (!bot, bot),
            (true, true) => (false, !bot),
            (true, false) => (!bot, true),
        };
        if !people && !device {
            continue;
        }
        let (hits, devices) = per_day.entry((key.link_id, key.day)).or_default();
        if people {
            *hits += count;
        }
        if device {
            // Device's discriminants are HitRows' device columns: desktop, mobile, tablet, bot.
            devices[key.device as usize] += count;
        }
    }
    let mut rows = HitRows::default();
    for (&(link_id, day), &(hits, devices)) in &per_day {
        let Some(date) = date_of(day) else { continue };
        rows.push(link_id, date, hits, devices);
    }
    rows
}

/// Where the visits of `counts` came from, as the columns of the sources upsert, referrers named from `domains`.
fn source_rows(counts: &Counts, domains: &Domains) -> SourceRows {
    let mut sources: HashMap<(i64, i32, SourceKind, u64), i64, foldhash::fast::FixedState> =
        HashMap::default();
    let mut referrers_per_day: HashMap<(i64, i32), usize, foldhash::fast::FixedState> =
        HashMap::default();
    for (key, &count) in counts {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        let link_day = (key.link_id, key.day);
        if key.device == Device::Bot {
            continue;
        }
        if key.country != [0, 0] {
            let country = u64::from(u16::from_be_bytes(key.country));
            *sources
                .entry((key.link_id, key.day, SourceKind::Country, country))
                .or_default() += count;
        }
        let referrer = (key.link_id, key.day, SourceKind::Referrer, key.referrer);
        let referrer = if sources.contains_key(&referrer) || key.referrer <= OTHER {
            referrer
        } else {
            let seen = referrers_per_day.entry(link_day).or_default();
            *seen += 1;
            if *seen <= MAX_REFERRERS_PER_FLUSH {
                referrer
            } else {
                (key.link_id, key.day, SourceKind::Referrer, OTHER)
            }
        };
        *sources.entry(referrer).or_default() += count;
    }
    let mut rows = SourceRows::default();
    for (&(link_id, day, kind, code), &count) in &sources {
        let Some(date) = date_of(day) else { continue };
        let key = match kind {
            // Device classes are columns of the hit rows.
            SourceKind::Device => continue,
            SourceKind::Country => country_name(code),
            SourceKind::Referrer => match code {
                DIRECT => "direct".to_owned(),
                OTHER => "other".to_owned(),
                hash => domains
                    .get(&hash)
                    .map_or_else(|| "other".to_owned(), |domain| domain.to_string()),
            },
        };
        rows.push(link_id, date, kind, key, count);
    }
    rows
}

fn country_name(code: u64) -> String {
    let [first, second] = u16::try_from(code).unwrap_or(0).to_be_bytes();
    if first.is_ascii_uppercase() && second.is_ascii_uppercase() {
        String::from_utf8_lossy(&[first, second]).into_owned()
    } else {
        "unknown".to_owned()
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
            self.invalidate(exhausted).await;
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

    /// Tells every replica, through Redis, that links reached their visit limit. What Redis does not take stays
    /// in the outbox, which the shortener delivers once Redis is back.
    async fn invalidate(&self, exhausted: Vec<Owed>) {
        if exhausted.is_empty() {
            return;
        }
        let codes: Vec<String> = exhausted.iter().map(|owed| owed.code.clone()).collect();
        let delivered = tokio::time::timeout(self.timeout, self.cache.invalidate_all(&codes)).await;
        if !matches!(delivered, Ok(Ok(()))) {
            tracing::warn!(
                links = codes.len(),
                "links at their visit limit not invalidated yet; the outbox retries"
            );
            return;
        }
        if let Err(error) = self.primary.invalidations_delivered(&exhausted).await {
            tracing::warn!(error = %Chain(&error), "delivered invalidations stay in the outbox");
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

    fn visit(device: Device, referrer: &'static str, country: Option<[u8; 2]>) -> Visit<'static> {
        Visit {
            device,
            referrer: referrer.as_bytes(),
            country,
        }
    }

    fn noon() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc)
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
    }

    fn drained(counter: &HitCounter) -> Pending {
        let mut pending = Pending::new(100_000);
        counter.drain_into(&mut pending);
        pending
    }

    fn sorted_sources(rows: &SourceRows) -> Vec<(i64, NaiveDate, i16, String, i64)> {
        let mut all: Vec<_> = (0..rows.link_ids.len())
            .map(|i| {
                (
                    rows.link_ids[i],
                    rows.days[i],
                    rows.kinds[i],
                    rows.keys[i].clone(),
                    rows.hits[i],
                )
            })
            .collect();
        all.sort();
        all
    }

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
    fn a_process_admits_no_more_visits_of_a_link_than_its_limit() {
        let counter = HitCounter::default();
        assert!(counter.admit(7, 2));
        assert!(counter.admit(7, 2));
        assert!(!counter.admit(7, 2));
        assert!(counter.admit(8, 1), "another link is its own");
        assert!(counter.admit(7, 3), "a raised limit is compared anew");
        assert!(!counter.admit(7, 3));
    }

    #[test]
    fn hits_are_counted_per_link_and_day() {
        let counter = HitCounter::default();
        let desktop = visit(Device::Desktop, "", None);
        counter.record(7, false, noon(), &desktop);
        counter.record(7, false, noon(), &desktop);
        counter.record(7, false, noon() + chrono::Duration::days(1), &desktop);
        counter.record(8, true, noon(), &desktop);
        let (hits, _) = drained(&counter).rows();
        let mut rows: Vec<_> = hits
            .link_ids
            .into_iter()
            .zip(hits.days)
            .zip(hits.hits)
            .collect();
        rows.sort();
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
    fn bots_are_counted_apart_and_sources_by_kind() {
        let counter = HitCounter::default();
        counter.record(
            7,
            false,
            noon(),
            &visit(Device::Mobile, "News.Example.com", Some(*b"DE")),
        );
        counter.record(
            7,
            false,
            noon(),
            &visit(Device::Desktop, "news.example.com", Some(*b"??")),
        );
        counter.record(7, false, noon(), &visit(Device::Desktop, "", Some(*b"DE")));
        counter.record(
            7,
            false,
            noon(),
            &visit(Device::Bot, "spam.example", Some(*b"FR")),
        );
        let pending = drained(&counter);
        let (hits, sources) = pending.rows();
        assert_eq!(hits.hits, vec![3], "the bot is not a hit");
        let paced = hit_rows(&pending.sources, true);
        assert_eq!(
            paced.devices,
            [vec![2], vec![1], vec![0], vec![1]],
            "desktop, mobile, tablet, bot: written with the paced hits"
        );
        let d = day("2026-11-23");
        let row = |kind: SourceKind, key: &str, hits| (7, d, kind as i16, key.to_owned(), hits);
        let mut expected = vec![
            row(SourceKind::Referrer, "news.example.com", 2),
            row(SourceKind::Referrer, "direct", 1),
            row(SourceKind::Country, "DE", 2),
            row(SourceKind::Country, "unknown", 1),
        ];
        expected.sort();
        assert_eq!(sorted_sources(&sources), expected);
    }

    #[test]
    fn a_flood_of_referrers_stays_bounded_and_is_summed_as_other() {
        let counter = HitCounter::default();
        let domains: Vec<String> = (0..5_000).map(|n| format!("d{n}.example")).collect();
        for domain in &domains {
            counter.record(
                7,
                false,
                noon(),
                &Visit {
                    device: Device::Desktop,
                    referrer: domain.as_bytes(),
                    country: None,
                },
            );
        }
        let shard_domains: usize = counter
            .shards
            .iter()
            .map(|shard| shard.lock().expect("shard").domains.len())
            .sum();
        assert_eq!(
            shard_domains, MAX_DOMAINS,
            "one link's shard keeps its bound"
        );
        let (hits, sources) = drained(&counter).rows();
        assert_eq!(hits.hits, vec![5_000], "every hit still counts");
        let referrers: Vec<_> = sorted_sources(&sources)
            .into_iter()
            .filter(|row| row.2 == SourceKind::Referrer as i16)
            .collect();
        assert_eq!(referrers.len(), MAX_REFERRERS_PER_FLUSH + 1);
        let other = referrers
            .iter()
            .find(|row| row.3 == "other")
            .expect("an other row");
        assert_eq!(other.4, 5_000 - MAX_REFERRERS_PER_FLUSH as i64);
    }

    #[test]
    fn past_the_key_bound_new_counts_are_dropped_and_counted() {
        let counter = HitCounter::default();
        let desktop = visit(Device::Desktop, "", None);
        // Ids that all land on one shard (the shard index is the top 5 bits of id × the Fibonacci constant).
        let on_shard_zero: Vec<i64> = (0..)
            .filter(|id: &i64| ((*id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 59) == 0)
            .take(MAX_KEYS + 10)
            .collect();
        for id in &on_shard_zero {
            counter.record(*id, true, noon(), &desktop);
        }
        let pending = drained(&counter);
        assert_eq!(pending.counts.len(), MAX_KEYS);
        assert_eq!(pending.dropped, 10);
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
    fn a_flush_gives_each_shard_back_maps_that_keep_their_capacity() {
        let counter = HitCounter::default();
        let desktop = visit(Device::Desktop, "", None);
        for id in 0..10_000 {
            counter.record(id, true, noon(), &desktop);
        }
        let mut pending = Pending::new(100_000);
        counter.drain_into(&mut pending);
        counter.drain_into(&mut pending);
        let capacity: usize = counter
            .shards
            .iter()
            .map(|shard| shard.lock().expect("shard").counts.capacity())
            .sum();
        assert!(capacity >= 10_000, "{capacity}");
        assert_eq!(pending.counts.len(), 10_000);
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

    #[test]
    fn hits_of_links_without_a_limit_wait_for_the_paced_write_of_their_sources() {
        let counter = HitCounter::default();
        let visit = visit(Device::Mobile, "news.example.com", None);
        let mut pending = Pending::new(100_000);
        for _ in 0..3 {
            counter.record(9, false, noon(), &visit);
        }
        counter.record(8, true, noon(), &visit);
        counter.drain_into(&mut pending);
        let ticked: HashSet<i64> = pending.counts.keys().map(|key| key.link_id).collect();
        assert_eq!(
            ticked,
            HashSet::from([8]),
            "only the limited link is written each tick"
        );

        pending.start_writing_sources(Duration::from_secs(30), 4_000);
        let chunk = take_links(&mut pending.writing, pending.chunk_links);
        let hits = hit_rows(&chunk, true);
        let mut rows: Vec<_> = hits.link_ids.into_iter().zip(hits.hits).collect();
        rows.sort_unstable();
        assert_eq!(
            rows,
            vec![(8, 0), (9, 3)],
            "the limited link's row carries its devices, not its hits again"
        );
        let sources = source_rows(&chunk, &pending.writing_domains);
        let mut links = sources.link_ids.clone();
        links.sort_unstable();
        links.dedup();
        assert_eq!(links, vec![8, 9], "sources of both lanes");
    }
}
