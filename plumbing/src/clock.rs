//! The wall clock the services read "now" from, injected so that tests decide when a link expires and which day
//! a hit falls on instead of sleeping through real seconds or failing across UTC midnight.
//!
//! Timers, timeouts and rate limits stay on `Instant`/tokio time: they measure intervals, not dates. idgen keeps
//! its own millisecond clock (`idgen::clock`): an ID generator's time is checked against ZooKeeper
//! reservations, so a test that moves the services' wall clock must not move it.

use std::{
    fmt::Debug,
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc,
    },
};

use chrono::{DateTime, TimeDelta, Utc};

/// A source of the current UTC time.
pub trait Clock: Debug + Send + Sync + 'static {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// How services hold their clock: one virtual call per read, no lock, no allocation, so it costs the redirect's
/// hot path nothing worth measuring.
pub type SharedClock = Arc<dyn Clock>;

/// The system's clock, what every service runs on outside tests.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to (tests). Clones share one reading, so the test keeps a clone and
/// advances the one it handed to the services.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock reading `at` (to the nanosecond; readings between 1677 and 2262, as chrono's nanoseconds allow).
    pub fn at(at: DateTime<Utc>) -> Self {
        Self(Arc::new(AtomicI64::new(nanos(at))))
    }

    /// Moves the reading forwards by `by` (backwards when negative).
    pub fn advance(&self, by: TimeDelta) {
        let by = by.num_nanoseconds().unwrap_or(i64::MAX);
        self.0.fetch_add(by, Ordering::SeqCst);
    }

    /// Sets the reading.
    pub fn set(&self, at: DateTime<Utc>) {
        self.0.store(nanos(at), Ordering::SeqCst);
    }

    /// This clock as a service takes it.
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.0.load(Ordering::SeqCst))
    }
}

fn nanos(at: DateTime<Utc>) -> i64 {
    at.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let start = DateTime::from_timestamp_nanos(1_800_000_000_123_456_789);
        let clock = ManualClock::at(start);
        let handed_out = clock.shared();

        clock.advance(TimeDelta::milliseconds(1500));

        assert_eq!(handed_out.now(), start + TimeDelta::milliseconds(1500));
        clock.set(start);
        assert_eq!(handed_out.now(), start);
    }

    #[test]
    fn the_system_clock_follows_utc() {
        let before = Utc::now();
        let now = system().now();
        assert!(before <= now && now <= Utc::now());
    }
}
