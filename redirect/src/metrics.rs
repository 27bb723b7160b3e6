//! The redirect's Prometheus series. Every labelled child the hot path touches is resolved once here, so a
//! request increments a plain atomic instead of hashing label values (`with_label_values`) each time.

pub use plumbing::breaker::BackendMetrics;
use plumbing::{breaker::BackendSeries, metrics::LATENCY_BUCKETS};
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

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

/// What became of replica misses: confirmed on the primary or not, and why not.
pub struct ConfirmationCounters {
    /// Asked of the primary: replica lag could explain the miss, and the budget had room.
    pub asked: IntCounter,
    /// Replica lag could explain the miss but the budget was spent: the replica's 404 stood.
    pub over_budget: IntCounter,
    /// Replica lag cannot explain the miss (not fresh, or from no worker minting now): the replica's 404 stood.
    pub ineligible: IntCounter,
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
    /// Lookups on the primary (misses confirmed, lookups while no replica answers).
    pub primary: BackendMetrics,
    /// Reads of codes changed a moment ago, on the primary's pool apart.
    pub primary_flush: BackendMetrics,
    /// Replica misses confirmed on the primary or not.
    pub confirmations: ConfirmationCounters,
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
    backends: BackendSeries,
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
        // Backends: redis, replicaN, primary.
        let backends = BackendSeries::register(registry, "redirect")?;
        let single_flight_merged = IntCounter::new(
            "redirect_single_flight_merged_total",
            "Requests that shared another request's lookup of the same code",
        )?;
        let confirmations = IntCounterVec::new(
            Opts::new(
                "redirect_miss_confirmations_total",
                "Replica misses: confirmed on the primary (asked), or left to stand (over_budget, ineligible)",
            ),
            &["outcome"],
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
        registry.register(Box::new(single_flight_merged.clone()))?;
        registry.register(Box::new(confirmations.clone()))?;
        registry.register(Box::new(hits_flushed.clone()))?;
        registry.register(Box::new(hits_dropped.clone()))?;
        registry.register(Box::new(hit_flush_failures.clone()))?;
        registry.register(Box::new(local_cache_entries.clone()))?;
        registry.register(Box::new(local_cache_bytes.clone()))?;
        registry.register(Box::new(invalidations.clone()))?;
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
            primary_flush: backends.backend("primary_flush"),
            confirmations: ConfirmationCounters {
                asked: confirmations.with_label_values(&["asked"]),
                over_budget: confirmations.with_label_values(&["over_budget"]),
                ineligible: confirmations.with_label_values(&["ineligible"]),
            },
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
