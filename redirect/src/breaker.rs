//! A circuit breaker per dependency: after a run of failures it opens and requests skip the dependency
//! instead of each waiting out its timeout; after a cooldown one request probes it (half-open), and an answer
//! closes the breaker again. Lock-free (three atomics), since every lookup that misses the local cache asks it.

use std::{
    sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering},
    time::{Duration, Instant},
};

use crate::metrics::BackendMetrics;

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// The breaker of one dependency.
pub struct Breaker {
    state: AtomicU8,
    consecutive_failures: AtomicU32,
    /// When the breaker last opened or let a probe through, in milliseconds since `origin`.
    changed_at_ms: AtomicU64,
    origin: Instant,
    threshold: u32,
    cooldown: Duration,
    metrics: BackendMetrics,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` consecutive failures and probes again after `cooldown`.
    pub fn new(threshold: u32, cooldown: Duration, metrics: BackendMetrics) -> Self {
        metrics.breaker_state.set(i64::from(CLOSED));
        Self {
            state: AtomicU8::new(CLOSED),
            consecutive_failures: AtomicU32::new(0),
            changed_at_ms: AtomicU64::new(0),
            origin: Instant::now(),
            threshold: threshold.max(1),
            cooldown,
            metrics,
        }
    }

    /// Whether to call the dependency now. While open, `false` until the cooldown has passed; then exactly one
    /// caller gets `true` (the probe). A probe that never reports (its request was cancelled) is replaced by
    /// another one a cooldown later, so the breaker cannot stay half-open for good.
    pub fn allow(&self) -> bool {
        let state = self.state.load(Ordering::Acquire);
        if state == CLOSED {
            return true;
        }
        let now = self.now_ms();
        let changed_at = self.changed_at_ms.load(Ordering::Acquire);
        if now.saturating_sub(changed_at) < self.cooldown_ms() {
            return false;
        }
        // Only the caller that moves the timestamp becomes the probe.
        let probe = self
            .changed_at_ms
            .compare_exchange(changed_at, now, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if probe {
            self.set_state(HALF_OPEN);
        }
        probe
    }

    /// The dependency answered.
    pub fn succeeded(&self) {
        self.consecutive_failures.store(0, Ordering::Relaxed);
        if self.state.load(Ordering::Acquire) != CLOSED {
            self.set_state(CLOSED);
        }
    }

    /// The dependency failed or timed out.
    pub fn failed(&self) {
        self.metrics.failures.inc();
        let failures = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        let state = self.state.load(Ordering::Acquire);
        if state == HALF_OPEN || (state == CLOSED && failures >= self.threshold) {
            self.changed_at_ms.store(self.now_ms(), Ordering::Release);
            if self.state.swap(OPEN, Ordering::AcqRel) != OPEN {
                self.metrics.breaker_opened.inc();
                self.metrics.breaker_state.set(i64::from(OPEN));
            }
        }
    }

    /// Whether requests currently skip the dependency.
    pub fn is_open(&self) -> bool {
        self.state.load(Ordering::Acquire) != CLOSED
    }

    /// The latency series of the dependency.
    pub fn metrics(&self) -> &BackendMetrics {
        &self.metrics
    }

    fn set_state(&self, state: u8) {
        self.state.store(state, Ordering::Release);
        self.metrics.breaker_state.set(i64::from(state));
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn cooldown_ms(&self) -> u64 {
        u64::try_from(self.cooldown.as_millis()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(cooldown: Duration) -> Breaker {
        let registry = prometheus::Registry::new();
        let metrics = crate::metrics::Metrics::register(&registry).expect("metrics");
        Breaker::new(3, cooldown, metrics.redis)
    }

    #[test]
    fn it_opens_after_the_threshold_and_skips_the_dependency() {
        let breaker = breaker(Duration::from_secs(60));
        breaker.failed();
        breaker.failed();
        assert!(breaker.allow(), "two failures are below the threshold");
        breaker.failed();
        assert!(!breaker.allow());
        assert_eq!(breaker.metrics().breaker_opened.get(), 1);
    }

    #[test]
    fn a_success_resets_the_count() {
        let breaker = breaker(Duration::from_secs(60));
        breaker.failed();
        breaker.failed();
        breaker.succeeded();
        breaker.failed();
        assert!(breaker.allow());
    }

    #[test]
    fn after_the_cooldown_one_probe_goes_through_and_its_answer_decides() {
        let breaker = breaker(Duration::ZERO);
        for _ in 0..3 {
            breaker.failed();
        }
        assert!(breaker.allow(), "the probe");
        breaker.failed();
        assert!(breaker.is_open(), "a failed probe opens it again");
        assert!(breaker.allow(), "the next probe");
        breaker.succeeded();
        assert!(!breaker.is_open());
        assert_eq!(breaker.metrics().breaker_state.get(), 0);
    }
}
