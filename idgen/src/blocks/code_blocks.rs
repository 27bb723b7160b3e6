//! What an embedder (the shortener) holds: numbers issued from a current block under a short std lock, and a
//! spare leased by a background task once half the current block is used, so a ZooKeeper outage shorter than a
//! block's life does not stop creates. A std `Mutex`, not tokio's: the section only copies a few numbers and
//! never awaits, and `take` runs once per create (20k/s).

use std::{
    ops::Range,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use plumbing::{
    shutdown::Shutdown,
    tasks::{Need, Supervisor, Task},
};
use tokio::sync::{watch, Notify};

use super::{supply::Supply, BlockError, BlockOptions, Counter};
use crate::metrics::BlockMetrics;

/// First pause after a failed lease; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Numbers never issued before, from blocks of the code counter.
pub struct CodeBlocks {
    supply: Mutex<Supply>,
    /// Wakes the refill task: half the current block is used, or a taker found both blocks used up.
    refill: Notify,
    /// The live blocks ([`Supply::live`]); also how takers waiting for a block learn one came.
    live: watch::Sender<Vec<Range<u64>>>,
    /// How long a taker waits for a block when both are used up.
    wait_limit: Duration,
    metrics: BlockMetrics,
    /// The refill task, until [`CodeBlocks::stopped`] waits for it.
    task: Mutex<Option<Task>>,
}

impl CodeBlocks {
    /// Connects, leases the first block and spawns the task that leases spares on `supervisor`; it stops on the
    /// supervisor's shutdown.
    ///
    /// # Errors
    /// Sizes out of order, ZooKeeper unreachable at start, or the counter unusable.
    pub async fn start(
        options: BlockOptions,
        metrics: BlockMetrics,
        supervisor: &Supervisor,
    ) -> Result<Arc<Self>, BlockError> {
        let BlockOptions {
            counter,
            min_block,
            max_block,
        } = options;
        if min_block == 0 || min_block > max_block {
            return Err(BlockError::InvalidSize(format!(
                "blocks from {min_block} to {max_block} numbers"
            )));
        }
        let wait_limit = counter.call_timeout;
        let counter = Counter::connect(counter, metrics.clone()).await?;
        let first = counter.lease(min_block).await?;
        metrics.block_size.set(gauge(min_block));
        let supply = Supply::new(first, min_block, max_block, Instant::now());
        let blocks = Arc::new(Self {
            live: watch::Sender::new(supply.live()),
            supply: Mutex::new(supply),
            refill: Notify::new(),
            wait_limit,
            metrics,
            task: Mutex::new(None),
        });
        let shutdown = supervisor.shutdown().clone();
        // Essential: without it creates stop once the blocks held are used up.
        let task = supervisor.spawn(
            "idgen_code_blocks",
            Need::Essential,
            refill(Arc::clone(&blocks), counter, shutdown),
        );
        *lock(&blocks.task) = Some(task);
        Ok(blocks)
    }

    /// `count` numbers never issued before, in increasing order within a block (they may run from the current
    /// block into the spare). Waits only when both blocks are used up: it wakes the refill and waits for a block,
    /// at most the ZooKeeper call timeout. Numbers taken before such a failure are dropped, never issued.
    ///
    /// # Errors
    /// [`BlockError::NoBlock`] when no block came in time: temporary (503).
    pub async fn take(&self, count: usize) -> Result<Vec<u64>, BlockError> {
        let mut numbers = Vec::with_capacity(count);
        if self.take_now(&mut numbers, count) {
            return Ok(self.issued(numbers));
        }
        let started = tokio::time::Instant::now();
        loop {
            // Subscribed before looking, so a block added after the look is seen as a change.
            let mut changes = self.live.subscribe();
            if self.take_now(&mut numbers, count) {
                return Ok(self.issued(numbers));
            }
            self.refill.notify_one();
            let changed =
                tokio::time::timeout_at(started + self.wait_limit, changes.changed()).await;
            if !matches!(changed, Ok(Ok(()))) {
                return Err(BlockError::NoBlock {
                    waited_ms: started.elapsed().as_millis(),
                });
            }
        }
    }

    /// The blocks this process may still issue from (current and spare), for announcing to redirect replicas;
    /// it changes whenever a block is leased or used up.
    pub fn live_blocks(&self) -> watch::Receiver<Vec<Range<u64>>> {
        self.live.subscribe()
    }

    /// Waits until the refill task has stopped (after the supervisor's shutdown).
    pub async fn stopped(&self) {
        let task = lock(&self.task).take();
        if let Some(task) = task {
            task.stopped().await;
        }
    }

    /// Takes what the blocks hold towards `count`; whether `numbers` is full.
    fn take_now(&self, numbers: &mut Vec<u64>, count: usize) -> bool {
        let mut supply = lock(&self.supply);
        let took = supply.take_into(numbers, count, Instant::now);
        if took.live_changed {
            self.live.send_replace(supply.live());
        }
        drop(supply);
        if took.wants_spare {
            self.refill.notify_one();
        }
        numbers.len() >= count
    }

    fn issued(&self, numbers: Vec<u64>) -> Vec<u64> {
        self.metrics
            .numbers_issued
            .inc_by(u64::try_from(numbers.len()).unwrap_or(u64::MAX));
        numbers
    }

    /// The size of the spare to lease, when one is wanted.
    fn spare_wanted(&self) -> Option<u64> {
        let supply = lock(&self.supply);
        supply
            .wants_spare()
            .then(|| supply.next_size(Instant::now()))
    }

    fn add_spare(&self, spare: Range<u64>) {
        self.metrics.block_size.set(gauge(spare.end - spare.start));
        let mut supply = lock(&self.supply);
        supply.add_spare(spare);
        self.live.send_replace(supply.live());
    }
}

/// Leases a spare whenever one is wanted, retrying with backoff, until shutdown. A lease cut short by shutdown
/// is abandoned, like one that timed out.
async fn refill(blocks: Arc<CodeBlocks>, counter: Counter, shutdown: Shutdown) {
    loop {
        tokio::select! {
            () = shutdown.wait() => return,
            () = blocks.refill.notified() => {}
        }
        let mut backoff = FIRST_BACKOFF;
        while let Some(size) = blocks.spare_wanted() {
            let leased = tokio::select! {
                () = shutdown.wait() => return,
                leased = counter.lease(size) => leased,
            };
            match leased {
                Ok(spare) => blocks.add_spare(spare),
                Err(error) => {
                    tracing::warn!(%error, retry_ms = backoff.as_millis(), "cannot lease a block of the code counter");
                    tokio::select! {
                        () = shutdown.wait() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn gauge(size: u64) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}
