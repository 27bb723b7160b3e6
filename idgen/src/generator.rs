//! Issuing IDs. The last ID issued lives in one atomic word, its worker bits those of the leased worker ID and
//! its top (sign) bit a fence, and every ID (or run of IDs) is a compare-and-swap on it: threads never share a
//! lock, two callers can never get the same ID, and fencing freezes the word so the last ID is known exactly.
//! Beside it sit the two limits of the current lease: a monotonic deadline (ZooKeeper may have expired us after
//! it) and a ceiling on timestamps (the high-water mark recorded in ZooKeeper; the next holder of the worker ID
//! starts above it).

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use crate::{clock::Clock, layout::Layout, metrics::IdgenMetrics};

/// Set in the state word while nothing may be issued. IDs never use the sign bit, so it is free.
const FENCE_BIT: u64 = 1 << 63;

/// Why no ID was issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// No worker ID is leased right now (starting, or ZooKeeper unreachable): retry shortly.
    #[error("no worker ID is leased right now")]
    NotLeased,
    /// The clock ran past the high-water mark recorded in ZooKeeper before a new one was recorded.
    #[error("the clock is past the high-water mark recorded in ZooKeeper")]
    PastRecordedMark,
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

/// What the lease keeper lets the generator do: issue with `worker` until `valid_until`, with timestamps up to
/// `ceiling_unix_ms`.
#[derive(Debug, Clone, Copy)]
pub struct Grant {
    /// The leased worker ID.
    pub worker: u64,
    /// When ZooKeeper may no longer consider us the holder (last contact + session timeout − safety margin).
    pub valid_until: Instant,
    /// The high-water mark recorded in ZooKeeper: no ID may carry a later timestamp.
    pub ceiling_unix_ms: u64,
}

/// A thread-safe ID generator for one layout.
pub struct Generator {
    layout: Layout,
    clock: Box<dyn Clock>,
    /// The last ID issued, with [`FENCE_BIT`] set while fenced.
    state: AtomicU64,
    /// Nanoseconds after `origin` from which the lease may be gone.
    valid_until_ns: AtomicU64,
    /// Latest time offset (ms since the epoch) the recorded mark allows.
    ceiling_ms: AtomicU64,
    /// Zero of `valid_until_ns`: a monotonic clock, so wall-clock steps cannot stretch a lease.
    origin: Instant,
    max_backwards: u64,
    metrics: IdgenMetrics,
}

impl Generator {
    /// A generator that issues nothing until [`Generator::grant`]. A clock step back of up to
    /// `max_backwards` is ridden out on the last millisecond; a larger one is refused.
    pub fn new(
        layout: Layout,
        clock: impl Clock,
        max_backwards: Duration,
        metrics: IdgenMetrics,
    ) -> Self {
        Self {
            layout,
            clock: Box::new(clock),
            state: AtomicU64::new(FENCE_BIT),
            valid_until_ns: AtomicU64::new(0),
            ceiling_ms: AtomicU64::new(0),
            origin: Instant::now(),
            max_backwards: u64::try_from(max_backwards.as_millis()).unwrap_or(u64::MAX),
            metrics,
        }
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The series this generator updates.
    pub fn metrics(&self) -> &IdgenMetrics {
        &self.metrics
    }

    /// The generator's clock, in Unix milliseconds.
    pub fn now_unix_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The timestamp of the last ID issued (the epoch if none), in Unix milliseconds.
    pub fn last_unix_ms(&self) -> u64 {
        self.unix_ms_of(self.state.load(Ordering::SeqCst))
    }

    /// Issues (again) under `grant`: sets its limits first, then unfences with its worker ID, so no caller sees
    /// the worker without the limits that go with it.
    pub fn grant(&self, grant: Grant) {
        debug_assert!(grant.worker < self.layout.worker_count());
        let ceiling = grant.ceiling_unix_ms.saturating_sub(self.layout.epoch_ms());
        self.ceiling_ms.store(ceiling, Ordering::SeqCst);
        self.valid_until_ns
            .store(self.nanos_since_origin(grant.valid_until), Ordering::SeqCst);
        let worker_bits = (grant.worker << self.layout.worker_shift()) & self.layout.worker_mask();
        let _ = self
            .state
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |state| {
                let granted = (state & !FENCE_BIT & !self.layout.worker_mask()) | worker_bits;
                (granted != state).then_some(granted)
            });
        self.metrics
            .worker_id
            .set(i64::try_from(grant.worker).unwrap_or(-1));
        self.metrics.lease_held.set(1);
    }

    /// Stops issuing at once and returns the timestamp of the last ID issued, in Unix milliseconds: exact,
    /// since no compare-and-swap can succeed on the fenced word.
    pub fn fence(&self) -> u64 {
        let state = self.state.fetch_or(FENCE_BIT, Ordering::SeqCst);
        self.metrics.worker_id.set(-1);
        self.metrics.lease_held.set(0);
        self.unix_ms_of(state)
    }

    /// The worker ID in use, if the generator may issue right now.
    pub fn worker(&self) -> Option<u64> {
        let state = self.state.load(Ordering::SeqCst);
        (state & FENCE_BIT == 0 && self.lease_valid())
            .then(|| (state & self.layout.worker_mask()) >> self.layout.worker_shift())
    }

    /// One new ID.
    ///
    /// # Errors
    /// [`GenerateError`]: no lease, or a clock that cannot be trusted.
    pub fn next_id(&self) -> Result<u64, GenerateError> {
        let (id, _) = self.issue_run(1)?;
        self.metrics.ids_issued.inc();
        Ok(id)
    }

    /// `count` new IDs, ascending, taken a run of sequence numbers at a time.
    ///
    /// # Errors
    /// As [`Generator::next_id`]; IDs issued before the error are dropped, never reused.
    pub fn next_ids(&self, count: usize) -> Result<Vec<u64>, GenerateError> {
        let mut ids = Vec::with_capacity(count);
        let mut outcome = Ok(());
        while ids.len() < count {
            let wanted = u64::try_from(count - ids.len()).unwrap_or(u64::MAX);
            match self.issue_run(wanted) {
                Ok((first, run)) => ids.extend(first..first + run),
                Err(error) => {
                    outcome = Err(error);
                    break;
                }
            }
        }
        self.metrics
            .ids_issued
            .inc_by(u64::try_from(ids.len()).unwrap_or(u64::MAX));
        outcome.map(|()| ids)
    }

    /// Claims up to `wanted` consecutive IDs of one millisecond; returns the first and how many.
    fn issue_run(&self, wanted: u64) -> Result<(u64, u64), GenerateError> {
        let time_shift = self.layout.time_shift();
        let max_sequence = self.layout.max_sequence();
        let mut stalled_since = None;
        loop {
            let previous = self.state.load(Ordering::Acquire);
            if previous & FENCE_BIT != 0 || !self.lease_valid() {
                return Err(GenerateError::NotLeased);
            }
            let now = self.elapsed_now()?;
            let last = previous >> time_shift;
            let sequence = previous & max_sequence;
            if now.saturating_add(self.max_backwards) < last {
                self.metrics.clock_backwards.inc();
                return Err(GenerateError::ClockMovedBackwards { by_ms: last - now });
            }
            let (first, run) = if now > last {
                let worker_bits = previous & self.layout.worker_mask();
                (
                    (now << time_shift) | worker_bits,
                    wanted.min(max_sequence + 1),
                )
            } else if sequence < max_sequence {
                // Same millisecond, or a tolerated step back: keep counting on the last millisecond.
                (previous + 1, wanted.min(max_sequence - sequence))
            } else {
                // This millisecond is used up: wait for the clock to pass it, but never forever.
                let since = *stalled_since.get_or_insert_with(Instant::now);
                if since.elapsed() > self.stall_limit() {
                    return Err(GenerateError::ClockStalled);
                }
                std::hint::spin_loop();
                continue;
            };
            if first >> time_shift > self.ceiling_ms.load(Ordering::Acquire) {
                return Err(GenerateError::PastRecordedMark);
            }
            if self
                .state
                .compare_exchange_weak(
                    previous,
                    first + run - 1,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
            {
                return Ok((first, run));
            }
        }
    }

    fn lease_valid(&self) -> bool {
        self.nanos_since_origin(Instant::now()) < self.valid_until_ns.load(Ordering::Acquire)
    }

    fn nanos_since_origin(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }

    fn unix_ms_of(&self, state: u64) -> u64 {
        self.layout.epoch_ms() + ((state & !FENCE_BIT) >> self.layout.time_shift())
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
    const HOUR: Duration = Duration::from_secs(3_600);

    fn open_grant(worker: u64) -> Grant {
        Grant {
            worker,
            valid_until: Instant::now() + HOUR,
            ceiling_unix_ms: u64::MAX,
        }
    }

    fn manual(worker: u64) -> (Generator, ManualClock) {
        let clock = ManualClock::at(T0);
        let generator = Generator::new(
            Layout::default(),
            clock.clone(),
            Duration::from_millis(5),
            IdgenMetrics::unregistered(),
        );
        generator.grant(open_grant(worker));
        (generator, clock)
    }

    #[test]
    fn nothing_is_issued_while_fenced() {
        let (generator, _clock) = manual(1);
        generator.fence();
        assert_eq!(generator.next_id(), Err(GenerateError::NotLeased));
        assert_eq!(generator.worker(), None);
        generator.grant(open_grant(2));
        let id = generator.next_id().expect("leased again");
        assert_eq!(generator.layout().decode(id).map(|d| d.worker), Some(2));
    }

    #[test]
    fn nothing_is_issued_once_the_lease_deadline_has_passed() {
        let (generator, _clock) = manual(1);
        generator.grant(Grant {
            valid_until: Instant::now() - Duration::from_millis(1),
            ..open_grant(1)
        });
        assert_eq!(generator.next_id(), Err(GenerateError::NotLeased));
        assert_eq!(generator.worker(), None);
        generator.grant(open_grant(1));
        assert!(generator.next_id().is_ok(), "a renewed lease issues again");
    }

    #[test]
    fn nothing_is_issued_past_the_recorded_mark() {
        let (generator, clock) = manual(1);
        generator.grant(Grant {
            ceiling_unix_ms: T0,
            ..open_grant(1)
        });
        assert!(generator.next_id().is_ok(), "the mark itself is allowed");
        clock.set(T0 + 1);
        assert_eq!(generator.next_id(), Err(GenerateError::PastRecordedMark));
    }

    #[test]
    fn fencing_reports_the_last_timestamp_issued() {
        let (generator, clock) = manual(1);
        clock.set(T0 + 7);
        generator.next_id().expect("id");
        clock.set(T0 + 9);
        assert_eq!(generator.fence(), T0 + 7);
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
    fn a_batch_takes_consecutive_sequence_numbers_and_is_counted() {
        let (generator, _clock) = manual(1);
        generator.next_ids(4_000).expect("most of a millisecond");
        let ids = generator.next_ids(96).expect("the rest of it");
        assert!(ids.windows(2).all(|pair| pair[1] == pair[0] + 1));
        let last = generator.layout().decode(ids[95]).expect("ours");
        assert_eq!((last.unix_ms, last.sequence), (T0, 4_095));
        assert_eq!(generator.metrics.ids_issued.get(), 4_096);
    }

    #[test]
    fn threads_racing_never_get_the_same_id() {
        let generator = Arc::new(Generator::new(
            Layout::default(),
            SystemClock,
            Duration::from_millis(5),
            IdgenMetrics::unregistered(),
        ));
        generator.grant(open_grant(3));
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let generator = Arc::clone(&generator);
                std::thread::spawn(move || {
                    if thread % 2 == 0 {
                        generator.next_ids(50_000).expect("ids")
                    } else {
                        (0..50_000)
                            .map(|_| generator.next_id().expect("id"))
                            .collect()
                    }
                })
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
