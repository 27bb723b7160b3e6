//! Single flight: concurrent misses for one key share one lookup. The redirect's misses for one code (a link that
//! turns hot, or a burst of requests for a code nobody cached yet) cost Redis and PostgreSQL one request, not one
//! per visitor; the shortener's lookups of one API key while its cache is cold cost one query.
//!
//! Only misses come here (a cache hit never does), and the in-flight map is split into shards by key, so even
//! with a cache off no lock is shared by all requests. The lookup runs outside the lock, inside a
//! `OnceCell` that every request for the code awaits.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex, PoisonError},
};

use prometheus::IntCounter;
use tokio::sync::OnceCell;

type Cell<T> = Arc<OnceCell<T>>;
type Shard<T> = Mutex<HashMap<Box<str>, Cell<T>>>;

const SHARDS: usize = 16;

/// The lookups in flight, by key.
pub struct SingleFlight<T> {
    shards: [Shard<T>; SHARDS],
    merged: IntCounter,
}

impl<T: Clone> SingleFlight<T> {
    /// An empty map; `merged` counts requests that joined a lookup already running.
    pub fn new(merged: IntCounter) -> Self {
        Self {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            merged,
        }
    }

    /// The result of `lookup` for `key`, run once for all callers that arrive while it is running. If the
    /// caller running it goes away (its client disconnected), a waiting caller runs its own `lookup` instead.
    pub async fn run<F, Fut>(&self, key: &str, lookup: F) -> T
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let (cell, _leader) = self.join(key);
        cell.get_or_init(lookup).await.clone()
    }

    /// The cell for `key`, and for the caller that created it a guard that removes it when the caller is done,
    /// so the next miss after this one looks up afresh.
    fn join(&self, key: &str) -> (Cell<T>, Option<Leader<'_, T>>) {
        let mut in_flight = lock(self.shard(key));
        if let Some(cell) = in_flight.get(key) {
            self.merged.inc();
            return (cell.clone(), None);
        }
        let cell = Arc::new(OnceCell::new());
        in_flight.insert(key.into(), cell.clone());
        let leader = Leader {
            flight: self,
            key: key.into(),
            cell: cell.clone(),
        };
        (cell, Some(leader))
    }
}

impl<T> SingleFlight<T> {
    fn shard(&self, key: &str) -> &Shard<T> {
        // FNV-1a: a few cycles per byte, and codes are short.
        let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
        &self.shards[usize::try_from(hash % SHARDS as u64).unwrap_or(0)]
    }
}

fn lock<T>(shard: &Shard<T>) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Cell<T>>> {
    // The map holds no invariant a panicking holder could break half way.
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Removes the leader's cell when the leader finishes or is dropped.
struct Leader<'a, T> {
    flight: &'a SingleFlight<T>,
    key: Box<str>,
    cell: Cell<T>,
}

impl<T> Drop for Leader<'_, T> {
    fn drop(&mut self) {
        let mut in_flight = lock(self.flight.shard(&self.key));
        // A later leader may already have put its own cell under the key; leave that one alone.
        if in_flight
            .get(&self.key)
            .is_some_and(|cell| Arc::ptr_eq(cell, &self.cell))
        {
            in_flight.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn concurrent_callers_share_one_lookup() {
        let flight = Arc::new(SingleFlight::new(
            IntCounter::new("merged", "merged").expect("counter"),
        ));
        let lookups = Arc::new(AtomicUsize::new(0));
        let (release, released) = tokio::sync::watch::channel(false);
        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..10 {
            let (flight, lookups, mut released) =
                (flight.clone(), lookups.clone(), released.clone());
            callers.spawn(async move {
                flight
                    .run("code", || async move {
                        lookups.fetch_add(1, Ordering::SeqCst);
                        let _ = released.wait_for(|go| *go).await;
                        7
                    })
                    .await
            });
        }
        while flight.merged.get() < 9 {
            tokio::task::yield_now().await;
        }
        release.send_replace(true);
        while let Some(answer) = callers.join_next().await {
            assert_eq!(answer.expect("caller"), 7);
        }
        assert_eq!(lookups.load(Ordering::SeqCst), 1);
        assert!(
            lock(flight.shard("code")).is_empty(),
            "the finished lookup is forgotten"
        );
    }
}
