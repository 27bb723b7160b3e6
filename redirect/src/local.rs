//! The in-process cache: the tier that answers hot links without leaving the process.
//!
//! moka's `sync::Cache` rather than its `future::Cache`: a hit is a plain function call on a lock-free hash
//! table (no future to build and poll), and nothing here needs to await inside the cache, since misses are
//! coalesced by [`crate::flight`] before they reach the lower tiers. Values are `Arc`s, so a hit copies a
//! pointer, not a URL.

use std::{
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
}

impl Entry {
    /// The entry for `target`. A URL that is not a valid header value cannot be stored by the shortener; it
    /// is answered as unknown rather than with a broken header.
    pub fn new(target: Resolution) -> Self {
        let location = match &target {
            Resolution::Live { long_url, .. } => HeaderValue::from_str(long_url).ok(),
            _ => None,
        };
        Self { target, location }
    }
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

/// The bounded in-process cache, or nothing when its capacity is 0.
pub struct LocalCache {
    cache: Option<Cache<Box<str>, Arc<Entry>>>,
    /// Bumped by every invalidation, so a lookup that started before one does not store what it read.
    generation: AtomicU64,
    /// Codes announced as changed in the last [`CHANGED_WINDOW`]: read from the primary, not from Redis or a
    /// replica, which may still hold (or replay late) the state from before the change.
    changed: Cache<Box<str>, ()>,
}

/// How long a changed code is read from the primary only: longer than any replica lag we tolerate.
pub const CHANGED_WINDOW: Duration = Duration::from_secs(30);

impl LocalCache {
    /// A cache of at most `capacity` entries (0: off).
    pub fn new(capacity: u64, ttl: Duration, negative_ttl: Duration) -> Self {
        let cache = (capacity > 0).then(|| {
            Cache::builder()
                .max_capacity(capacity)
                .expire_after(EntryLifetime { ttl, negative_ttl })
                .build()
        });
        Self {
            cache,
            generation: AtomicU64::new(0),
            changed: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(CHANGED_WINDOW)
                .build(),
        }
    }

    /// The entry for `code`, if cached.
    pub fn get(&self, code: &str) -> Option<Arc<Entry>> {
        self.cache.as_ref()?.get(code)
    }

    /// The current generation, read before a lookup and handed to [`LocalCache::fill`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Stores what a lookup that started at `generation` found, unless an invalidation came in meanwhile (the
    /// lookup may have read the state from before the change).
    pub fn fill(&self, code: &str, entry: Arc<Entry>, generation: u64) {
        let Some(cache) = &self.cache else { return };
        cache.insert(code.into(), entry);
        // Checked after the insert: an invalidation either bumped the generation before this load (and the
        // entry goes), or comes after the insert (and removes it itself).
        if self.generation() != generation {
            cache.invalidate(code);
        }
    }

    /// Whether `code` was announced as changed within [`CHANGED_WINDOW`].
    pub fn changed_recently(&self, code: &str) -> bool {
        self.changed.contains_key(code)
    }

    /// Forgets `code` (it changed or went away) and reads it from the primary for a while.
    pub fn invalidate(&self, code: &str) {
        self.changed.insert(code.into(), ());
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.forget(code);
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
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(cache) = &self.cache {
            cache.invalidate_all();
        }
    }

    /// Entries held (approximate: moka applies writes in batches).
    pub fn entry_count(&self) -> u64 {
        self.cache.as_ref().map_or(0, |cache| {
            cache.run_pending_tasks();
            cache.entry_count()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use links::model::RedirectStatus;

    fn live() -> Arc<Entry> {
        Arc::new(Entry::new(Resolution::Live {
            long_url: "https://example.com/".into(),
            redirect: RedirectStatus::Found302,
            expires_at: None,
            id: 1,
        }))
    }

    #[test]
    fn a_filled_entry_is_answered_until_invalidated() {
        let cache = LocalCache::new(100, Duration::from_secs(60), Duration::from_secs(5));
        cache.fill("abc", live(), cache.generation());
        assert!(cache.get("abc").is_some());
        cache.invalidate("abc");
        assert!(cache.get("abc").is_none());
    }

    #[test]
    fn a_lookup_that_overlapped_an_invalidation_is_not_stored() {
        let cache = LocalCache::new(100, Duration::from_secs(60), Duration::from_secs(5));
        let generation = cache.generation();
        cache.invalidate("other");
        cache.fill("abc", live(), generation);
        assert!(cache.get("abc").is_none());
    }

    #[test]
    fn capacity_zero_turns_it_off() {
        let cache = LocalCache::new(0, Duration::from_secs(60), Duration::from_secs(5));
        cache.fill("abc", live(), cache.generation());
        assert!(cache.get("abc").is_none());
    }

    #[test]
    fn the_location_header_is_built_once() {
        assert_eq!(
            live().location.as_ref().map(HeaderValue::as_bytes),
            Some(&b"https://example.com/"[..])
        );
    }
}
