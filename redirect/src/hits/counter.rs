//! The in-memory counts every redirect adds to: one under its visit's link, day, device class, country and
//! referrer domain ([`crate::hits::visit`]). Counts live in shards, each behind its own small mutex picked by the
//! link id: requests for different links rarely meet on one lock, and no lock is shared by all requests. A flush
//! swaps each shard's maps out, so the lock is held for a pointer swap, never for I/O.
//!
//! Whatever requests send, memory stays bounded: a shard keeps at most [`MAX_DOMAINS`] referrer domains and
//! [`MAX_KEYS`] counts per interval (past them, new domains count as "other", then new keys are dropped and
//! counted). A link with a visit limit is also counted here per process, so the limit holds before any flush
//! ([`HitCounter::admit`]).

use std::{
    collections::HashMap,
    hash::{BuildHasher, Hasher},
    sync::{Mutex, PoisonError},
};

use chrono::{DateTime, Utc};

use super::{
    counts::{Shard, VisitKey, DIRECT, OTHER, SHARDS},
    pending::Pending,
    visit::{Device, Visit, MAX_DOMAIN_LEN},
};

const SECONDS_PER_DAY: i64 = 86_400;

/// Distinct referrer domains a shard keeps per interval; past it a new domain counts as "other".
pub const MAX_DOMAINS: usize = 1024;

/// Counts a shard keeps per interval; past it a new one is dropped (and counted as dropped).
pub const MAX_KEYS: usize = 16_384;

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
            variant: visit.variant.map_or(0, |index| index.saturating_add(1)),
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
    pub(super) fn drain_into(&self, pending: &mut Pending) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use links::hits::SourceKind;

    use crate::hits::{
        fixtures::{day, drained, noon, sorted_sources, visit},
        rows::MAX_REFERRERS_PER_FLUSH,
    };

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
                    variant: None,
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
}
