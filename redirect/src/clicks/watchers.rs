//! The owners whose links take click events: those with a click webhook that is not paused (from the database)
//! and those with a live stream open (from the queue's registrations). Shared by a process's threads and swapped
//! whole; each redirect HTTP worker keeps its own copy and compares a version (one relaxed load) per request.
//! Read again every few seconds, and at once when the invalidation channel says they changed.

use std::{
    collections::HashSet,
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use arc_swap::ArcSwap;
use events::Queue;
use links::store::Store;
use tokio::sync::Notify;

/// How often the owners are read again without being told.
const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// What each source said last.
#[derive(Default)]
struct Sources {
    hooks: Vec<i64>,
    streams: Vec<i64>,
}

/// The current owners.
#[derive(Clone, Default)]
pub struct Watchers {
    owners: Arc<ArcSwap<HashSet<i64>>>,
    version: Arc<AtomicU64>,
    changed: Arc<Notify>,
}

impl Watchers {
    /// The owners as last read; `None` when there are none, so a worker's check is one branch.
    pub fn load(&self) -> Option<Arc<HashSet<i64>>> {
        let owners = self.owners.load_full();
        (!owners.is_empty()).then_some(owners)
    }

    /// Which set is held: it moves whenever one is stored.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Says the owners changed: the reloader reads them at once.
    pub fn changed(&self) {
        self.changed.notify_one();
    }

    fn store(&self, owners: HashSet<i64>) {
        if **self.owners.load() != owners {
            self.owners.store(Arc::new(owners));
            self.version.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Reads the owners from `store` and `queue`; a source that fails keeps what it said last time.
    async fn reload(&self, store: &Store, queue: &Queue, last: &mut Sources) {
        let now = chrono::Utc::now();
        let (hooks, streams) = tokio::join!(
            tokio::time::timeout(RELOAD_EVERY, store.click_webhook_owners()),
            queue.watchers(now),
        );
        match hooks {
            Ok(Ok(hooks)) => last.hooks = hooks,
            Ok(Err(error)) => {
                tracing::warn!(%error, "the owners with click webhooks could not be read; keeping the last ones");
            }
            Err(_) => tracing::warn!(
                "reading the owners with click webhooks timed out; keeping the last ones"
            ),
        }
        match streams {
            Ok(streams) => last.streams = streams,
            Err(error) => {
                tracing::warn!(%error, "the owners with a live stream could not be read; keeping the last ones");
            }
        }
        self.store(last.hooks.iter().chain(&last.streams).copied().collect());
    }

    /// Reads the owners now (before the redirect serves: a visit in its first moments is taken too), and returns
    /// the task that reads them every [`RELOAD_EVERY`] and whenever told, until `stop` completes.
    pub async fn load_then_keep(
        self,
        store: Store,
        queue: Queue,
        stop: impl Future<Output = ()>,
    ) -> impl Future<Output = ()> {
        let mut last = Sources::default();
        self.reload(&store, &queue, &mut last).await;
        self.keep_loaded(store, queue, last, stop)
    }

    async fn keep_loaded(
        self,
        store: Store,
        queue: Queue,
        mut last: Sources,
        stop: impl Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        let mut every =
            tokio::time::interval_at(tokio::time::Instant::now() + RELOAD_EVERY, RELOAD_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => self.reload(&store, &queue, &mut last).await,
                () = self.changed.notified() => self.reload(&store, &queue, &mut last).await,
                () = &mut stop => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_moves_only_when_the_owners_do() {
        let watchers = Watchers::default();
        assert!(watchers.load().is_none());
        let before = watchers.version();
        watchers.store(HashSet::from([7]));
        let after = watchers.version();
        assert_ne!(before, after);
        watchers.store(HashSet::from([7]));
        assert_eq!(watchers.version(), after);
        assert!(watchers.load().is_some_and(|owners| owners.contains(&7)));
    }
}
