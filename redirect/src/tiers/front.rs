//! Each HTTP worker's own copy of the links it answered lately: a direct-mapped table in front of the shared
//! local cache, read without an atomic, a lock or a shared cache line.
//!
//! Why: under Zipf traffic over 100k links, moka's concurrent map, its access-order deque and its frequency
//! sketch were the largest user-space cost of a local hit (~15% of the worker's CPU in a profile of that run),
//! and each hit touched cache lines spread over a ~64 MB table. Here a hit is one hash, one slot (code
//! inline, no pointer to chase) and the entry itself; the hottest few thousand links stay in the core's caches.
//!
//! Exactness: a slot is valid only for the epoch of
//! [`LocalCache::front_stamp`](crate::tiers::local::LocalCache::front_stamp) it was filled under, and until its entry's `copies_until_ms` on the local cache's coarse clock. The epoch moves
//! after every invalidation has left the shared cache, and the clock on every flush tick, so a copy outlives
//! no change, and the shared cache's own expiry of its entry by at most one tick. Only live
//! links are copied: an unknown code's negative entry is dropped on create without moving the epoch (creates are
//! frequent), so it must never be copied here.

use std::sync::Arc;

use links::model::Resolution;

use super::local::{Entry, FrontStamp};

/// Longest code kept inline in a slot; longer codes (long aliases) are not copied here.
const MAX_CODE: usize = 22;

/// One slot: the code it holds, inline, and the entry as of `epoch`.
struct Slot {
    len: u8,
    code: [u8; MAX_CODE],
    epoch: u64,
    entry: Option<Arc<Entry>>,
}

impl Slot {
    const EMPTY: Self = Self {
        len: 0,
        code: [0; MAX_CODE],
        epoch: 0,
        entry: None,
    };

    fn holds(&self, code: &[u8]) -> bool {
        usize::from(self.len) == code.len() && &self.code[..code.len()] == code
    }
}

/// A worker's table. Not `Sync`: each worker owns one.
pub struct FrontCache {
    slots: Box<[Slot]>,
    mask: usize,
    hasher: foldhash::fast::RandomState,
}

impl FrontCache {
    /// A table of `slots` slots (rounded up to a power of two; 0 turns it off).
    pub fn new(slots: usize) -> Self {
        let slots = if slots == 0 {
            0
        } else {
            slots.next_power_of_two()
        };
        Self {
            slots: (0..slots).map(|_| Slot::EMPTY).collect(),
            mask: slots.wrapping_sub(1),
            // Seeded per process: codes come from requests, and a fixed hash would let a client pick codes that
            // all land in one slot (costing that worker its copies, nothing worse).
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    fn index(&self, code: &[u8]) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let hash = std::hash::BuildHasher::hash_one(&self.hasher, code);
        #[allow(clippy::cast_possible_truncation)] // the mask keeps the index in range
        Some(hash as usize & self.mask)
    }

    /// The entry copied for `code`, if it is still valid at `stamp`.
    pub fn get(&self, code: &str, stamp: FrontStamp) -> Option<&Arc<Entry>> {
        let slot = &self.slots[self.index(code.as_bytes())?];
        if slot.epoch == stamp.epoch && slot.holds(code.as_bytes()) {
            slot.entry
                .as_ref()
                .filter(|entry| stamp.now_ms < entry.copies_until_ms)
        } else {
            None
        }
    }

    /// Copies `entry` for `code`, valid while the epoch stays `epoch` (read before the lookup that found it).
    pub fn put(&mut self, code: &str, entry: &Arc<Entry>, epoch: u64) {
        let bytes = code.as_bytes();
        if bytes.len() > MAX_CODE || !matches!(entry.target, Resolution::Live { .. }) {
            return;
        }
        let Some(index) = self.index(bytes) else {
            return;
        };
        let slot = &mut self.slots[index];
        slot.code[..bytes.len()].copy_from_slice(bytes);
        #[allow(clippy::cast_possible_truncation)] // at most MAX_CODE
        {
            slot.len = bytes.len() as u8;
        }
        slot.epoch = epoch;
        slot.entry = Some(Arc::clone(entry));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use links::model::RedirectStatus;

    fn entry(target: Resolution) -> Arc<Entry> {
        Arc::new(Entry::new(target, 1_000))
    }

    /// Epoch `epoch` at 0 ms.
    fn at(epoch: u64) -> FrontStamp {
        FrontStamp { epoch, now_ms: 0 }
    }

    fn live(url: &str) -> Arc<Entry> {
        entry(Resolution::Live {
            long_url: url.into(),
            redirect: RedirectStatus::Found302,
            expires_at: None,
            id: 7,
            password_hash: None,
            limited: false,
            max_hits: None,
            routing: None,
            owner: None,
        })
    }

    #[test]
    fn a_copy_is_answered_only_under_the_epoch_it_was_made_in() {
        let mut front = FrontCache::new(1024);
        front.put("abc", &live("https://a.example/"), 3);
        assert!(front.get("abc", at(3)).is_some());
        assert!(
            front.get("abc", at(4)).is_none(),
            "an epoch later it is gone"
        );
        assert!(front.get("abd", at(3)).is_none(), "another code is not it");
    }

    #[test]
    fn a_copy_ends_when_the_shared_cache_lets_its_entry_expire() {
        let mut front = FrontCache::new(1024);
        front.put("abc", &live("https://a.example/"), 3);
        let stamp = |now_ms| FrontStamp { epoch: 3, now_ms };
        assert!(front.get("abc", stamp(999)).is_some());
        assert!(
            front.get("abc", stamp(1_000)).is_none(),
            "expired with the entry"
        );
    }

    #[test]
    fn unknown_and_gone_codes_are_never_copied() {
        let mut front = FrontCache::new(1024);
        front.put("abc", &entry(Resolution::Unknown), 1);
        front.put("abd", &entry(Resolution::Gone), 1);
        assert!(front.get("abc", at(1)).is_none());
        assert!(front.get("abd", at(1)).is_none());
    }

    #[test]
    fn codes_sharing_a_slot_never_answer_for_each_other() {
        // One slot: every code lands in it, and only the last one put is answered.
        let mut front = FrontCache::new(1);
        front.put("first", &live("https://first.example/"), 1);
        front.put("second", &live("https://second.example/"), 1);
        assert!(front.get("first", at(1)).is_none());
        let found = front.get("second", at(1)).expect("the last put");
        assert_eq!(
            found.location.as_ref().map(|value| value.as_bytes()),
            Some(&b"https://second.example/"[..])
        );
    }

    #[test]
    fn long_codes_and_a_zero_size_are_left_to_the_shared_cache() {
        let mut front = FrontCache::new(1024);
        let long = "a".repeat(MAX_CODE + 1);
        front.put(&long, &live("https://a.example/"), 1);
        assert!(front.get(&long, at(1)).is_none());
        let mut off = FrontCache::new(0);
        off.put("abc", &live("https://a.example/"), 1);
        assert!(off.get("abc", at(1)).is_none());
    }
}
