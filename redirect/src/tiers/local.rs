//! The in-process cache: the tier that answers hot links without leaving the process.
//!
//! moka's `sync::Cache` rather than its `future::Cache`: a hit is a plain function call on a lock-free hash
//! table (no future to build and poll), and nothing here needs to await inside the cache, since misses are
//! coalesced by [`plumbing::flight`] before they reach the lower tiers. Values are `Arc`s, so a hit copies a
//! pointer, not a URL.
//!
//! Bounded by memory, not by entry count: each entry weighs the bytes it holds (code, URL twice, as text and as
//! the prebuilt `Location`, and the fixed parts) plus moka's own bookkeeping per entry, so a pod given more
//! memory holds more links whatever their URLs' lengths, and one given less is never pushed past its limit by
//! long URLs.

use std::{
    hash::BuildHasher as _,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use actix_web::http::header::HeaderValue;
use links::model::Resolution;
use moka::{sync::Cache, Expiry};

/// A resolved code, shared by every answer that uses it.
#[derive(Debug)]
pub struct Entry {
    /// What the tiers said. Expiry is checked on every answer, not here.
    pub target: Resolution,
    /// The `Location` header of a live link, built once so an answer clones a reference count, not the URL.
    pub location: Option<HeaderValue>,
    /// When this cache's own expiry of the entry comes, on [`LocalCache`]'s coarse clock: the workers' copies
    /// are answered only before it.
    pub copies_until_ms: u64,
}

impl Entry {
    /// The entry for `target`, copied by workers until `copies_until_ms`. A URL that is not a valid header value
    /// cannot be stored by the shortener; it is answered as unknown rather than with a broken header.
    pub fn new(target: Resolution, copies_until_ms: u64) -> Self {
        let location = match &target {
            Resolution::Live { long_url, .. } => HeaderValue::from_str(long_url).ok(),
            _ => None,
        };
        Self {
            target,
            location,
            copies_until_ms,
        }
    }
}

/// What a worker's copy is checked against: the epoch of invalidations and the coarse clock, read together
/// before a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrontStamp {
    /// Moves after every invalidation has left the local cache.
    pub epoch: u64,
    /// Milliseconds since the cache started, as of the last tick.
    pub now_ms: u64,
}

/// What moka and the allocator spend per entry beyond the key and value themselves (hash-table slot, access
/// and write order nodes, frequency sketch share, timer wheel node, allocation headers). Measured (release
/// build, 2026-12-02): 1 M entries of 10-character codes and 41-byte URLs grew the process's RSS by 641 bytes
/// each, of which the key and value account for ~210.
const PER_ENTRY_OVERHEAD: usize = 430;

/// The bytes `code` and `entry` hold in the cache, for moka's weigher.
fn weight(code: &str, entry: &Entry) -> u32 {
    let url = match &entry.target {
        Resolution::Live {
            long_url,
            password_hash,
            routing,
            ..
        } => {
            long_url.capacity()
                + password_hash.as_ref().map_or(0, String::capacity)
                + routing.as_ref().map_or(0, |routing| {
                    std::mem::size_of::<links::routing::Routing>() + routing.heap_bytes()
                })
        }
        _ => 0,
    };
    let location = entry.location.as_ref().map_or(0, |value| value.len());
    let bytes = code.len()
        + url
        + location
        + std::mem::size_of::<Entry>()
        + std::mem::size_of::<Box<str>>()
        + PER_ENTRY_OVERHEAD;
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// How long an entry may stay: found links (live or gone) for the cache TTL, unknown codes for the short
/// negative TTL so a code created a moment later is not hidden for long.
struct EntryLifetime {
    ttl: Duration,
    negative_ttl: Duration,
}

impl Expiry<Box<str>, Arc<Entry>> for EntryLifetime {
    fn expire_after_create(
        &self,
        _code: &Box<str>,
        entry: &Arc<Entry>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(match entry.target {
            Resolution::Unknown => self.negative_ttl,
            _ => self.ttl,
        })
    }
}

/// The bounded in-process cache, or nothing when its memory budget is 0.
pub struct LocalCache {
    cache: Option<Cache<Box<str>, Arc<Entry>, foldhash::fast::RandomState>>,
    /// Generations by stripe of codes: an invalidation bumps its code's stripe, so a lookup of a code in that
    /// stripe that started before it does not store what it read. One generation for all codes had every edit
    /// discard every lookup in flight: at 400 edits/s under a 15k/s Zipf load, lookups of edited codes (read from
    /// the primary, ~5–30 ms on a busy machine) were never stored, and each request for a popular edited link went
    /// to the primary again (25.7k database answers in 20 s on one replica; p99 0.3–1.5 s).
    generations: Box<[AtomicU64]>,
    /// Bumped when everything is forgotten; part of every stripe's generation.
    all_generation: AtomicU64,
    stripes: foldhash::fast::RandomState,
    /// Moves after every invalidation has left this cache: the workers' copies ([`crate::tiers::front::FrontCache`])
    /// are valid only for the epoch they were made in.
    front_epoch: AtomicU64,
    /// Milliseconds since `started`, moved on every flush tick ([`LocalCache::tick`]) rather than read from
    /// the system on every answer. It lags by at most a tick, so a copy outlives this cache's expiry of its
    /// entry by at most a tick; before, every tick retired every copy, and under Zipf traffic a third of the
    /// answers were a worker refilling its copies.
    clock_ms: AtomicU64,
    started: Instant,
    ttl_ms: u64,
    negative_ttl_ms: u64,
    /// Codes announced as changed in the last [`CHANGED_WINDOW`]: read from the primary, not from Redis or a
    /// replica, which may still hold (or replay late) the state from before the change.
    changed: Cache<Box<str>, (), foldhash::fast::RandomState>,
}

/// Stripes of [`LocalCache::generation`]: an invalidation discards the lookups in flight of one code in this many.
const GENERATION_STRIPES: usize = 1024;

/// How long a changed code is read from the primary only: longer than any replica lag we tolerate.
pub const CHANGED_WINDOW: Duration = Duration::from_secs(30);

impl LocalCache {
    /// A cache holding at most `memory_bytes` of entries (0: off).
    pub fn new(memory_bytes: u64, ttl: Duration, negative_ttl: Duration) -> Self {
        let cache = (memory_bytes > 0).then(|| {
            Cache::<Box<str>, Arc<Entry>>::builder()
                .max_capacity(memory_bytes)
                .weigher(|code, entry| weight(code, entry))
                .expire_after(EntryLifetime { ttl, negative_ttl })
                // foldhash rather than SipHash: keyed per process all the same, at a fraction of the cost per
                // lookup on the hot path.
                .build_with_hasher(foldhash::fast::RandomState::default())
        });
        let millis = |ttl: Duration| u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        Self {
            cache,
            generations: (0..GENERATION_STRIPES).map(|_| AtomicU64::new(0)).collect(),
            all_generation: AtomicU64::new(0),
            stripes: foldhash::fast::RandomState::default(),
            front_epoch: AtomicU64::new(0),
            clock_ms: AtomicU64::new(0),
            started: Instant::now(),
            ttl_ms: millis(ttl),
            negative_ttl_ms: millis(negative_ttl),
            // foldhash, as for the entries: every miss asks this set, and SipHash was ~1% of a miss's CPU.
            changed: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(CHANGED_WINDOW)
                .build_with_hasher(foldhash::fast::RandomState::default()),
        }
    }

    /// The entry for `code`, if cached.
    pub fn get(&self, code: &str) -> Option<Arc<Entry>> {
        self.cache.as_ref()?.get(code)
    }

    /// [`get`](Self::get) for a second look just after a miss: a code still absent is not counted as another
    /// read (moka records each `get`, miss or not, for its admission sketch; two per miss cost ~1% of a
    /// database miss's CPU).
    pub fn get_again(&self, code: &str) -> Option<Arc<Entry>> {
        let cache = self.cache.as_ref()?;
        if cache.contains_key(code) {
            cache.get(code)
        } else {
            None
        }
    }

    fn stripe(&self, code: &str) -> &AtomicU64 {
        let hash =
            usize::try_from(self.stripes.hash_one(code) % GENERATION_STRIPES as u64).unwrap_or(0);
        &self.generations[hash]
    }

    /// The current generation of `code`, read before a lookup and handed to [`LocalCache::fill`]. Both parts only
    /// grow, so their sum changes whenever either does.
    pub fn generation(&self, code: &str) -> u64 {
        self.all_generation
            .load(Ordering::Acquire)
            .wrapping_add(self.stripe(code).load(Ordering::Acquire))
    }

    /// Stores what a lookup of `code` that started at `generation` found, unless an invalidation of a code in its
    /// stripe came in meanwhile (the lookup may have read the state from before the change).
    pub fn fill(&self, code: &str, entry: Arc<Entry>, generation: u64) {
        let Some(cache) = &self.cache else { return };
        cache.insert(code.into(), entry);
        // Checked after the insert: an invalidation either bumped the generation before this load (and the
        // entry goes), or comes after the insert (and removes it itself).
        if self.generation(code) != generation {
            cache.invalidate(code);
        }
    }

    /// The entry for what the tiers said, stamped with when this cache will let it expire.
    pub fn entry(&self, target: Resolution) -> Entry {
        let ttl_ms = match target {
            Resolution::Unknown => self.negative_ttl_ms,
            _ => self.ttl_ms,
        };
        let now_ms = self.clock_ms.load(Ordering::Relaxed);
        Entry::new(target, now_ms.saturating_add(ttl_ms))
    }

    /// What the workers' copies are checked against: read before a lookup, and its epoch handed with the
    /// answer to [`crate::tiers::front::FrontCache::put`].
    pub fn front_stamp(&self) -> FrontStamp {
        FrontStamp {
            epoch: self.front_epoch.load(Ordering::Acquire),
            now_ms: self.clock_ms.load(Ordering::Relaxed),
        }
    }

    /// Moves the coarse clock the workers' copies expire by; called on every flush tick.
    pub fn tick(&self) {
        let elapsed = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.clock_ms.store(elapsed, Ordering::Relaxed);
    }

    /// Makes every worker's copies stale.
    fn retire_front_copies(&self) {
        self.front_epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether `code` was announced as changed within [`CHANGED_WINDOW`].
    pub fn changed_recently(&self, code: &str) -> bool {
        self.changed.contains_key(code)
    }

    /// Forgets `code` (it changed or went away) and reads it from the primary for a while.
    pub fn invalidate(&self, code: &str) {
        self.changed.insert(code.into(), ());
        self.stripe(code).fetch_add(1, Ordering::AcqRel);
        self.forget(code);
        // After the entry left: a worker that reads the new epoch can no longer find the old entry here.
        self.retire_front_copies();
    }

    /// Drops a (negative) entry for a code that was just created. The generation is left alone: creates are
    /// frequent, and bumping it would discard every lookup in flight; the worst case, a negative entry stored
    /// by a lookup that started before the create, lives only the short negative TTL.
    pub fn forget(&self, code: &str) {
        if let Some(cache) = &self.cache {
            cache.invalidate(code);
        }
    }

    /// Forgets everything (messages may have been missed while the subscriber was disconnected).
    pub fn invalidate_all(&self) {
        self.all_generation.fetch_add(1, Ordering::AcqRel);
        if let Some(cache) = &self.cache {
            cache.invalidate_all();
        }
        self.retire_front_copies();
    }

    /// Entries held and the bytes they weigh (approximate: moka applies writes in batches).
    pub fn size(&self) -> (u64, u64) {
        self.cache.as_ref().map_or((0, 0), |cache| {
            cache.run_pending_tasks();
            (cache.entry_count(), cache.weighted_size())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use links::model::RedirectStatus;

    fn live() -> Arc<Entry> {
        Arc::new(Entry::new(
            Resolution::Live {
                long_url: "https://example.com/".into(),
                redirect: RedirectStatus::Found302,
                expires_at: None,
                id: 1,
                password_hash: None,
                limited: false,
                max_hits: None,
                routing: None,
                owner: None,
            },
            u64::MAX,
        ))
    }

    /// The rules and variants `make bench` routes with: 5 rules and 2 variants.
    const BENCH_ROUTING: &str = r#"{"rules":[{"when":{"os":"ios"},"long_url":"https://example.com/ios"},{"when":{"os":"android"},"long_url":"https://example.com/android"},{"when":{"device":"tablet"},"long_url":"https://example.com/tablet"},{"when":{"language":"de"},"long_url":"https://example.com/de"},{"when":{"query":{"utm_source":"bench"}},"long_url":"https://example.com/campaign"}],"variants":[{"long_url":"https://example.com/a","weight":50},{"long_url":"https://example.com/b","weight":50}]}"#;

    #[test]
    fn an_entry_with_rules_and_variants_weighs_what_they_hold() {
        let plain = live();
        let routing = links::model::routing_of(Some(BENCH_ROUTING)).expect("a routing");
        let heap = routing.heap_bytes();
        let mut target = plain.target.clone();
        if let Resolution::Live { routing: slot, .. } = &mut target {
            *slot = Some(routing);
        }
        let routed = Entry::new(target, u64::MAX);
        let (plain_weight, routed_weight) = (weight("abcdefg", &plain), weight("abcdefg", &routed));
        println!("weight of a cached link: plain {plain_weight} bytes, with 5 rules and 2 variants {routed_weight} bytes ({heap} of them on the heap of the rules)");
        assert_eq!(
            routed_weight as usize,
            plain_weight as usize + std::mem::size_of::<links::routing::Routing>() + heap
        );
        assert!(heap > 5 * "https://example.com/ios".len());
    }

    #[test]
    fn a_filled_entry_is_answered_until_invalidated() {
        let cache = LocalCache::new(1 << 20, Duration::from_secs(60), Duration::from_secs(5));
        cache.fill("abc", live(), cache.generation("abc"));
        assert!(cache.get("abc").is_some());
        cache.invalidate("abc");
        assert!(cache.get("abc").is_none());
    }

    #[test]
    fn a_lookup_that_overlapped_an_invalidation_is_not_stored() {
        let cache = LocalCache::new(1 << 20, Duration::from_secs(60), Duration::from_secs(5));
        let generation = cache.generation("abc");
        cache.invalidate("abc");
        cache.fill("abc", live(), generation);
        assert!(cache.get("abc").is_none());

        let generation = cache.generation("abc");
        cache.invalidate_all();
        cache.fill("abc", live(), generation);
        assert!(
            cache.get("abc").is_none(),
            "forgetting everything counts too"
        );
    }

    #[test]
    fn an_invalidation_of_another_code_does_not_discard_a_lookup() {
        let cache = LocalCache::new(1 << 20, Duration::from_secs(60), Duration::from_secs(5));
        let other = (0..10_000)
            .map(|n| format!("other{n}"))
            .find(|code| !std::ptr::eq(cache.stripe(code), cache.stripe("abc")))
            .expect("a code in another stripe");
        let generation = cache.generation("abc");
        cache.invalidate(&other);
        cache.fill("abc", live(), generation);
        assert!(
            cache.get("abc").is_some(),
            "an edit of one link made every lookup in flight go to the database again"
        );
    }

    #[test]
    fn a_zero_budget_turns_it_off() {
        let cache = LocalCache::new(0, Duration::from_secs(60), Duration::from_secs(5));
        cache.fill("abc", live(), cache.generation("abc"));
        assert!(cache.get("abc").is_none());
    }

    fn live_to(long_url: String, id: i64) -> Arc<Entry> {
        Arc::new(Entry::new(
            Resolution::Live {
                long_url,
                redirect: RedirectStatus::Found302,
                expires_at: None,
                id,
                password_hash: None,
                limited: false,
                max_hits: None,
                routing: None,
                owner: None,
            },
            u64::MAX,
        ))
    }

    #[test]
    fn the_budget_is_in_bytes_so_long_urls_mean_fewer_entries() {
        let budget = 1 << 20;
        let short = LocalCache::new(budget, Duration::from_secs(60), Duration::from_secs(5));
        let long = LocalCache::new(budget, Duration::from_secs(60), Duration::from_secs(5));
        for id in 0..20_000 {
            let code = format!("code{id}");
            short.fill(&code, live_to("https://a.example/".into(), id), 0);
            long.fill(
                &code,
                live_to(format!("https://a.example/{}", "x".repeat(2000)), id),
                0,
            );
        }
        let ((short_entries, short_bytes), (long_entries, long_bytes)) =
            (short.size(), long.size());
        assert!(
            short_bytes <= budget && long_bytes <= budget,
            "{short_bytes} {long_bytes}"
        );
        assert!(
            long_entries * 4 < short_entries,
            "{long_entries} vs {short_entries}"
        );
        assert!(long_entries > 0);
    }

    #[test]
    fn entries_are_copied_until_this_cache_lets_them_expire_on_its_clock() {
        let cache = LocalCache::new(1 << 20, Duration::from_secs(60), Duration::from_secs(5));
        let found = cache.entry(Resolution::Gone);
        let unknown = cache.entry(Resolution::Unknown);
        assert_eq!(found.copies_until_ms, 60_000);
        assert_eq!(unknown.copies_until_ms, 5_000);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            cache.front_stamp().now_ms,
            0,
            "the clock moves on ticks only"
        );
        cache.tick();
        let later = cache.front_stamp().now_ms;
        assert!(later >= 20, "{later}");
        assert_eq!(
            cache.entry(Resolution::Gone).copies_until_ms,
            later + 60_000
        );
    }

    #[test]
    fn an_invalidation_moves_the_epoch_and_a_tick_does_not() {
        let cache = LocalCache::new(1 << 20, Duration::from_secs(60), Duration::from_secs(5));
        let before = cache.front_stamp().epoch;
        cache.tick();
        assert_eq!(cache.front_stamp().epoch, before);
        cache.invalidate("abc");
        assert_ne!(cache.front_stamp().epoch, before);
        let again = cache.front_stamp().epoch;
        cache.invalidate_all();
        assert_ne!(cache.front_stamp().epoch, again);
    }

    #[test]
    fn the_location_header_is_built_once() {
        assert_eq!(
            live().location.as_ref().map(HeaderValue::as_bytes),
            Some(&b"https://example.com/"[..])
        );
    }
}
