//! The redirect's Prometheus series. Every labelled child the hot path touches is resolved once here, so a
//! request increments a plain atomic instead of hashing label values (`with_label_values`) each time.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// Buckets from 50 µs: cached answers live well under a millisecond, a database round trip around one.
const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5,
];

/// Answers by HTTP status.
pub struct StatusCounters {
    /// 301.
    pub moved_permanently: IntCounter,
    /// 302.
    pub found: IntCounter,
    /// 307.
    pub temporary_redirect: IntCounter,
    /// 308.
    pub permanent_redirect: IntCounter,
    /// 404.
    pub not_found: IntCounter,
    /// 410.
    pub gone: IntCounter,
    /// 429: past the bound on unknown codes.
    pub too_many_requests: IntCounter,
    /// 503.
    pub unavailable: IntCounter,
}

impl StatusCounters {
    /// The counter of `status` (statuses the redirect never sends count as 503s: there are none).
    pub fn of(&self, status: u16) -> &IntCounter {
        match status {
            301 => &self.moved_permanently,
            302 => &self.found,
            307 => &self.temporary_redirect,
            308 => &self.permanent_redirect,
            404 => &self.not_found,
            410 => &self.gone,
            429 => &self.too_many_requests,
            _ => &self.unavailable,
        }
    }
}

/// Which tier answered a lookup.
pub struct TierCounters {
    /// The in-process cache had a link (live or gone).
    pub local: IntCounter,
    /// Redis had a link.
    pub redis: IntCounter,
    /// A database answered.
    pub database: IntCounter,
    /// A negative entry (local or Redis) said the code is unknown.
    pub negative: IntCounter,
}

/// Latency and count of calls to one backend.
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

/// Every series of the redirect.
pub struct Metrics {
    /// Answers by status.
    pub status: StatusCounters,
    /// Answers by tier.
    pub tier: TierCounters,
    /// Time to answer a `GET`/`HEAD /{code}`.
    pub request_latency: Histogram,
    /// Redis calls.
    pub redis: BackendMetrics,
    /// Lookups on the primary.
    pub primary: BackendMetrics,
    /// Requests that waited on another request's lookup of the same code instead of making their own.
    pub single_flight_merged: IntCounter,
    /// Hits written to PostgreSQL.
    pub hits_flushed: IntCounter,
    /// Hits thrown away because flushes kept failing and the pending counts were full.
    pub hits_dropped: IntCounter,
    /// Flushes that failed (their counts are kept for the next one).
    pub hit_flush_failures: IntCounter,
    /// Entries in the in-process cache (updated on every flush tick).
    pub local_cache_entries: IntGauge,
    /// What those entries weigh, in bytes (bounded by `--local-cache-memory-mb`).
    pub local_cache_bytes: IntGauge,
    /// Invalidation messages applied, and whole-cache drops after reconnects.
    pub invalidations: IntCounterVec,
    backends: BackendVecs,
}

/// The labelled families behind [`BackendMetrics`], kept to make the children of replicas named at startup.
struct BackendVecs {
    latency: HistogramVec,
    failures: IntCounterVec,
    breaker_state: IntGaugeVec,
    breaker_opened: IntCounterVec,
}

impl BackendVecs {
    fn backend(&self, name: &str) -> BackendMetrics {
        BackendMetrics {
            latency: self.latency.with_label_values(&[name]),
            failures: self.failures.with_label_values(&[name]),
            breaker_state: self.breaker_state.with_label_values(&[name]),
            breaker_opened: self.breaker_opened.with_label_values(&[name]),
        }
    }
}

impl Metrics {
    /// Creates every series and registers it in `registry`.
    ///
    /// # Errors
    /// When a series of the same name is already registered.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let status = IntCounterVec::new(
            Opts::new("redirect_answers_total", "Redirect answers, by HTTP status"),
            &["status"],
        )?;
        let tier = IntCounterVec::new(
            Opts::new(
                "redirect_tier_answers_total",
                "Lookups answered, by tier (local, redis, database, negative)",
            ),
            &["tier"],
        )?;
        let request_latency = Histogram::with_opts(
            HistogramOpts::new(
                "redirect_request_duration_seconds",
                "Time to answer GET/HEAD /{code}",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "redirect_backend_duration_seconds",
                "Time of one call to a backend, by backend (redis, replicaN, primary)",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["backend"],
        )?;
        let failures = IntCounterVec::new(
            Opts::new(
                "redirect_backend_failures_total",
                "Backend calls that failed or timed out, by backend",
            ),
            &["backend"],
        )?;
        let breaker_state = IntGaugeVec::new(
            Opts::new(
                "redirect_breaker_state",
                "Breaker state by backend: 0 closed, 1 open, 2 half-open",
            ),
            &["backend"],
        )?;
        let breaker_opened = IntCounterVec::new(
            Opts::new(
                "redirect_breaker_opened_total",
                "Times a backend's breaker opened",
            ),
            &["backend"],
        )?;
        let single_flight_merged = IntCounter::new(
            "redirect_single_flight_merged_total",
            "Requests that shared another request's lookup of the same code",
        )?;
        let hits_flushed =
            IntCounter::new("redirect_hits_flushed_total", "Hits written to PostgreSQL")?;
        let hits_dropped = IntCounter::new(
            "redirect_hits_dropped_total",
            "Hits dropped while flushes failed and pending counts were full",
        )?;
        let hit_flush_failures = IntCounter::new(
            "redirect_hit_flush_failures_total",
            "Hit flushes that failed (counts kept for the next one)",
        )?;
        let local_cache_entries = IntGauge::new(
            "redirect_local_cache_entries",
            "Entries in the in-process cache",
        )?;
        let local_cache_bytes = IntGauge::new(
            "redirect_local_cache_bytes",
            "Bytes the in-process cache's entries weigh",
        )?;
        let invalidations = IntCounterVec::new(
            Opts::new(
                "redirect_invalidations_total",
                "Invalidations applied to the in-process cache (code, or all after a reconnect)",
            ),
            &["scope"],
        )?;
        registry.register(Box::new(status.clone()))?;
        registry.register(Box::new(tier.clone()))?;
        registry.register(Box::new(request_latency.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        registry.register(Box::new(breaker_state.clone()))?;
        registry.register(Box::new(breaker_opened.clone()))?;
        registry.register(Box::new(single_flight_merged.clone()))?;
        registry.register(Box::new(hits_flushed.clone()))?;
        registry.register(Box::new(hits_dropped.clone()))?;
        registry.register(Box::new(hit_flush_failures.clone()))?;
        registry.register(Box::new(local_cache_entries.clone()))?;
        registry.register(Box::new(local_cache_bytes.clone()))?;
        registry.register(Box::new(invalidations.clone()))?;
        let backends = BackendVecs {
            latency,
            failures,
            breaker_state,
            breaker_opened,
        };
        Ok(Self {
            status: StatusCounters {
                moved_permanently: status.with_label_values(&["301"]),
                found: status.with_label_values(&["302"]),
                temporary_redirect: status.with_label_values(&["307"]),
                permanent_redirect: status.with_label_values(&["308"]),
                not_found: status.with_label_values(&["404"]),
                gone: status.with_label_values(&["410"]),
                too_many_requests: status.with_label_values(&["429"]),
                unavailable: status.with_label_values(&["503"]),
            },
            tier: TierCounters {
                local: tier.with_label_values(&["local"]),
                redis: tier.with_label_values(&["redis"]),
                database: tier.with_label_values(&["database"]),
                negative: tier.with_label_values(&["negative"]),
            },
            request_latency,
            redis: backends.backend("redis"),
            primary: backends.backend("primary"),
            single_flight_merged,
            hits_flushed,
            hits_dropped,
            hit_flush_failures,
            local_cache_entries,
            local_cache_bytes,
            invalidations,
            backends,
        })
    }

    /// The series of the read replica at `index` (`replica0`, `replica1`, … in the order given).
    pub fn replica(&self, index: usize) -> BackendMetrics {
        self.backends.backend(&format!("replica{index}"))
    }
}
