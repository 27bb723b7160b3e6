//! A circuit breaker per dependency: after a run of failures it opens and requests skip the dependency
//! instead of each waiting out its timeout; after a cooldown one request probes it (half-open), and an answer
//! closes the breaker again. Lock-free (three atomics), since every redirect that misses its local cache asks it.
//! With it, the series every service reports per dependency (`{service}_backend_*`, `{service}_breaker_*`).

use std::{
    sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering},
    time::{Duration, Instant},
};

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use crate::metrics::LATENCY_BUCKETS;

// Defaults, each written once for its flag and for `Default`, so the two cannot drift.
const DEFAULT_FAILURES: u32 = 5;
const DEFAULT_COOLDOWN_MS: u64 = 1_000;

/// How breakers trip and recover; the same flags on every service that has them.
#[derive(clap::Args, Debug, Clone)]
pub struct BreakerArgs {
    /// Consecutive failures of a dependency (Redis, each database) that open its breaker.
    #[arg(long, env = "BREAKER_FAILURES", default_value_t = DEFAULT_FAILURES)]
    pub breaker_failures: u32,
    /// How long an open breaker skips its dependency before one request probes it again, in milliseconds.
    #[arg(long, env = "BREAKER_COOLDOWN_MS", default_value_t = DEFAULT_COOLDOWN_MS)]
    pub breaker_cooldown_ms: u64,
}

impl Default for BreakerArgs {
    fn default() -> Self {
        Self {
            breaker_failures: DEFAULT_FAILURES,
            breaker_cooldown_ms: DEFAULT_COOLDOWN_MS,
        }
    }
}

impl BreakerArgs {
    /// A closed breaker with these settings, reporting to `metrics`.
    pub fn breaker(&self, metrics: BackendMetrics) -> Breaker {
        Breaker::new(
            self.breaker_failures,
            Duration::from_millis(self.breaker_cooldown_ms),
            metrics,
        )
    }
}

/// The series of one dependency, children resolved once so a call increments plain atomics.
#[derive(Clone)]
pub struct BackendMetrics {
    /// Time per call, success or not.
    pub latency: Histogram,
    /// Calls that failed or timed out (degraded around).
    pub failures: IntCounter,
    /// Breaker state: 0 closed, 1 open, 2 half-open.
    pub breaker_state: IntGauge,
    /// Times the breaker opened.
    pub breaker_opened: IntCounter,
}

/// The labelled families behind [`BackendMetrics`] (label `backend`), kept to name dependencies found at startup.
pub struct BackendSeries {
    latency: HistogramVec,
    failures: IntCounterVec,
    breaker_state: IntGaugeVec,
    breaker_opened: IntCounterVec,
}

impl BackendSeries {
    /// Creates `{service}_backend_duration_seconds`, `{service}_backend_failures_total`, `{service}_breaker_state`
    /// and `{service}_breaker_opened_total` and registers them in `registry`.
    ///
    /// # Errors
    /// When series of the same name are already registered.
    pub fn register(registry: &Registry, service: &str) -> prometheus::Result<Self> {
        let label = &["backend"];
        let latency = HistogramVec::new(
            HistogramOpts::new(
                format!("{service}_backend_duration_seconds"),
                "Time of one call to a backend, by backend",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            label,
        )?;
        let failures = IntCounterVec::new(
            Opts::new(
                format!("{service}_backend_failures_total"),
                "Backend calls that failed or timed out, by backend",
            ),
            label,
        )?;
        let breaker_state = IntGaugeVec::new(
            Opts::new(
                format!("{service}_breaker_state"),
                "Breaker state by backend: 0 closed, 1 open, 2 half-open",
            ),
            label,
        )?;
        let breaker_opened = IntCounterVec::new(
            Opts::new(
                format!("{service}_breaker_opened_total"),
                "Times a backend's breaker opened",
            ),
            label,
        )?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        registry.register(Box::new(breaker_state.clone()))?;
        registry.register(Box::new(breaker_opened.clone()))?;
        Ok(Self {
            latency,
            failures,
            breaker_state,
            breaker_opened,
        })
    }

    /// The series of the backend called `name` (a name from the code or the configuration, never a request).
    pub fn backend(&self, name: &str) -> BackendMetrics {
        BackendMetrics {
            latency: self.latency.with_label_values(&[name]),
            failures: self.failures.with_label_values(&[name]),
            breaker_state: self.breaker_state.with_label_values(&[name]),
            breaker_opened: self.breaker_opened.with_label_values(&[name]),
        }
    }
}

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

    /// Runs `call` and records its duration in the dependency's latency series (a call dropped unfinished is
    /// recorded when dropped).
    ///
    /// Not an `async fn`: one keeps `call` twice in its state (the argument, and the copy it awaits), and the
    /// redirect's Redis lookup is ~7 KB, so every lookup's future grew by that, allocated and copied per request.
    pub fn timed<F: std::future::Future>(
        &self,
        call: F,
    ) -> impl std::future::Future<Output = F::Output> {
        let timer = self.metrics.latency.start_timer();
        futures_util::FutureExt::map(call, move |result| {
            timer.observe_duration();
            result
        })
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
        let series = BackendSeries::register(&registry, "test").expect("metrics");
        Breaker::new(3, cooldown, series.backend("redis"))
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

    #[tokio::test]
    async fn a_timed_call_is_recorded_once_whether_it_finishes_or_is_dropped() {
        let breaker = breaker(Duration::from_secs(60));
        assert_eq!(breaker.timed(async { 7 }).await, 7);
        assert_eq!(breaker.metrics().latency.get_sample_count(), 1);
        let unfinished = breaker.timed(std::future::pending::<()>());
        drop(unfinished);
        assert_eq!(breaker.metrics().latency.get_sample_count(), 2);
    }

    #[test]
    fn a_timed_call_keeps_one_copy_of_its_future() {
        let breaker = breaker(Duration::from_secs(60));
        let call = async {
            let buffer = [0u8; 4096];
            std::future::ready(()).await;
            buffer.len()
        };
        let size = std::mem::size_of_val(&call);
        let timed = breaker.timed(call);
        assert!(
            std::mem::size_of_val(&timed) < size + 256,
            "{} bytes around a {size}-byte call",
            std::mem::size_of_val(&timed)
        );
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
