//! Issuing IDs. The last (time, sequence) pair lives in one atomic word and every ID is a compare-and-swap on
//! it, so threads never share a lock and two callers can never get the same pair. The worker ID is a second
//! atomic that the lease keeper sets while it holds the lease and clears (fences) the moment it may not.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use crate::{clock::Clock, layout::Layout, metrics::IdgenMetrics};

/// Worker value meaning "no lease: do not issue".
const FENCED: u64 = u64::MAX;

/// Why no ID was issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// No worker ID is leased right now (starting, or ZooKeeper unreachable): retry shortly.
    #[error("no worker ID is leased right now")]
    NotLeased,
    /// The clock went back further than the tolerated step.
    #[error("the clock went back by {by_ms} ms, more than tolerated")]
    ClockMovedBackwards {
        /// How far back it went.
        by_ms: u64,
    },
    /// The clock did not advance past an exhausted millisecond in time.
    #[error("the clock is not advancing")]
    ClockStalled,
    /// The clock is before the layout's epoch, or past what its time bits can hold.
    #[error("the clock is outside the layout's time range")]
    OutOfTimeRange,
}

/// A thread-safe ID generator for one layout.
pub struct Generator {
    layout: Layout,
    clock: Box<dyn Clock>,
    worker: AtomicU64,
    /// `elapsed_ms << sequence_bits | sequence` of the last ID issued.
    state: AtomicU64,
    max_backwards: u64,
    metrics: IdgenMetrics,
}

impl Generator {
    /// A generator that issues nothing until [`Generator::set_worker`]. A clock step back of up to
    /// `max_backwards` is waited out; a larger one is refused.
    pub fn new(
        layout: Layout,
        clock: impl Clock,
        max_backwards: Duration,
        metrics: IdgenMetrics,
    ) -> Self {
        Self {
            layout,
            clock: Box::new(clock),
            worker: AtomicU64::new(FENCED),
            state: AtomicU64::new(0),
            max_backwards: u64::try_from(max_backwards.as_millis()).unwrap_or(u64::MAX),
            metrics,
        }
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Starts issuing with `worker` (the lease is held).
    pub fn set_worker(&self, worker: u64) {
        debug_assert!(worker < self.layout.worker_count());
        self.worker.store(worker, Ordering::SeqCst);
        self.metrics
            .worker_id
            .set(i64::try_from(worker).unwrap_or(-1));
        self.metrics.lease_held.set(1);
    }

    /// Stops issuing at once (the lease may be lost).
    pub fn fence(&self) {
        if self.worker.swap(FENCED, Ordering::SeqCst) != FENCED {
            self.metrics.lease_losses.inc();
        }
        self.metrics.worker_id.set(-1);
        self.metrics.lease_held.set(0);
    }

    /// The worker ID in use, if any.
    pub fn worker(&self) -> Option<u64> {
        Some(self.worker.load(Ordering::SeqCst)).filter(|worker| *worker != FENCED)
    }

    /// One new ID.
    ///
    /// # Errors
    /// [`GenerateError`]: no lease, or a clock that cannot be trusted.
    pub fn next_id(&self) -> Result<u64, GenerateError> {
        let worker = self.worker().ok_or(GenerateError::NotLeased)?;
        let sequence_bits = self.layout.sequence_bits();
        let max_sequence = self.layout.max_sequence();
        let started = Instant::now();
        loop {
            let now = self.elapsed_now()?;
            let previous = self.state.load(Ordering::Acquire);
            let (last, sequence) = (previous >> sequence_bits, previous & max_sequence);
            if now.saturating_add(self.max_backwards) < last {
                self.metrics.clock_backwards.inc();
                return Err(GenerateError::ClockMovedBackwards { by_ms: last - now });
            }
            let next = if now > last {
                now << sequence_bits
            } else if sequence < max_sequence {
                // Same millisecond, or a tolerated step back: keep counting on the last millisecond.
                previous + 1
            } else {
                // This millisecond is used up: wait for the clock to pass it, but never forever.
                if started.elapsed() > self.stall_limit() {
                    return Err(GenerateError::ClockStalled);
                }
                std::thread::yield_now();
                continue;
            };
            if self
                .state
                .compare_exchange_weak(previous, next, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                self.metrics.ids_issued.inc();
                return Ok(self
                    .layout
                    .compose(next >> sequence_bits, worker, next & max_sequence));
            }
        }
    }

    /// `count` new IDs, ascending.
    ///
    /// # Errors
    /// As [`Generator::next_id`]; IDs issued before the error are dropped, never reused.
    pub fn next_ids(&self, count: usize) -> Result<Vec<u64>, GenerateError> {
        (0..count).map(|_| self.next_id()).collect()
    }

    fn elapsed_now(&self) -> Result<u64, GenerateError> {
        let elapsed = self
            .clock
            .now_ms()
            .checked_sub(self.layout.epoch_ms())
            .ok_or(GenerateError::OutOfTimeRange)?;
        if elapsed > self.layout.max_elapsed_ms() {
            return Err(GenerateError::OutOfTimeRange);
        }
        Ok(elapsed)
    }

    fn stall_limit(&self) -> Duration {
        Duration::from_millis(self.max_backwards.saturating_mul(2).max(100))
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::HashSet, sync::Arc};

    use super::*;
    use crate::clock::{ManualClock, SystemClock};

    const T0: u64 = crate::layout::DEFAULT_EPOCH_MS + 1_000_000;

    fn manual(worker: u64) -> (Generator, ManualClock) {
        let clock = ManualClock::at(T0);
        let generator = Generator::new(
            Layout::default(),
            clock.clone(),
            Duration::from_millis(5),
            IdgenMetrics::unregistered(),
        );
        generator.set_worker(worker);
        (generator, clock)
    }

    #[test]
    fn nothing_is_issued_without_a_lease() {
        let (generator, _clock) = manual(1);
        generator.fence();
        assert_eq!(generator.next_id(), Err(GenerateError::NotLeased));
        generator.set_worker(2);
        let id = generator.next_id().expect("leased again");
        assert_eq!(generator.layout().decode(id).map(|d| d.worker), Some(2));
    }

    #[test]
    fn ids_carry_time_worker_and_sequence() {
        let (generator, _clock) = manual(7);
        let first = generator.next_id().expect("id");
        let second = generator.next_id().expect("id");
        let decoded = generator.layout().decode(second).expect("ours");
        assert_eq!(
            (decoded.unix_ms, decoded.worker, decoded.sequence),
            (T0, 7, 1)
        );
        assert!(second > first);
    }

    #[test]
    fn a_small_step_back_keeps_ids_increasing() {
        let (generator, clock) = manual(1);
        let before = generator.next_id().expect("id");
        clock.set(T0 - 3);
        let after = generator.next_id().expect("a 3 ms step back is tolerated");
        assert!(after > before);
    }

    #[test]
    fn a_large_step_back_is_refused_and_counted() {
        let (generator, clock) = manual(1);
        generator.next_id().expect("id");
        clock.set(T0 - 1_000);
        assert_eq!(
            generator.next_id(),
            Err(GenerateError::ClockMovedBackwards { by_ms: 1_000 })
        );
        assert_eq!(generator.metrics.clock_backwards.get(), 1);
    }

    #[test]
    fn an_exhausted_millisecond_waits_for_the_clock_but_not_forever() {
        let (generator, clock) = manual(1);
        let ids = generator.next_ids(4_096).expect("a full millisecond");
        assert_eq!(ids.len(), 4_096);
        assert_eq!(generator.next_id(), Err(GenerateError::ClockStalled));
        clock.set(T0 + 1);
        let next = generator.next_id().expect("the next millisecond");
        assert_eq!(
            generator
                .layout()
                .decode(next)
                .map(|d| (d.unix_ms, d.sequence)),
            Some((T0 + 1, 0))
        );
    }

    #[test]
    fn threads_racing_never_get_the_same_id() {
        let generator = Arc::new(Generator::new(
            Layout::default(),
            SystemClock,
            Duration::from_millis(5),
            IdgenMetrics::unregistered(),
        ));
        generator.set_worker(3);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let generator = Arc::clone(&generator);
                std::thread::spawn(move || generator.next_ids(50_000).expect("ids"))
            })
            .collect();
        let mut all = HashSet::new();
        for thread in threads {
            let ids = thread.join().expect("thread");
            assert!(
                ids.windows(2).all(|pair| pair[0] < pair[1]),
                "each thread sees increasing IDs"
            );
            all.extend(ids);
        }
        assert_eq!(all.len(), 200_000);
    }
}
