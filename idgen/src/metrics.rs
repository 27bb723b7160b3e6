//! The Prometheus series of the generator and its lease, and of the code counter's blocks.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// The `reason` label of `idgen_worker_ids_skipped_total` for a mark too far ahead. Here rather than in the
/// lease, which counts it, so that the series' module depends on nothing above it.
pub(crate) const SKIPPED_MARK_AHEAD: &str = "mark_ahead";

/// Counters and gauges shared by the generator and the lease keeper.
#[derive(Clone)]
pub struct IdgenMetrics {
    /// IDs handed out.
    pub ids_issued: IntCounter,
    /// Requests refused because the clock went back further than tolerated.
    pub clock_backwards: IntCounter,
    /// 1 while a worker ID is leased, else 0.
    pub lease_held: IntGauge,
    /// The leased worker ID, -1 when none.
    pub worker_id: IntGauge,
    /// Times the lease was lost or fenced.
    pub lease_losses: IntCounter,
    /// Worker IDs passed over while claiming, by `reason` (`mark_ahead`: its recorded clock mark was further
    /// ahead of this clock than is waited out). A rising count means a clock far behind, or marks from one
    /// far ahead.
    pub worker_ids_skipped: IntCounterVec,
}

impl IdgenMetrics {
    /// Series registered nowhere (tests, embedding without metrics).
    ///
    /// # Panics
    /// Never: the names and help texts are constant and valid.
    pub fn unregistered() -> Self {
        #[expect(clippy::unwrap_used, reason = "constant, valid metric names")]
        let series = Self {
            ids_issued: IntCounter::new("idgen_ids_issued_total", "IDs issued").unwrap(),
            clock_backwards: IntCounter::new(
                "idgen_clock_backwards_total",
                "ID requests refused: clock went back",
            )
            .unwrap(),
            lease_held: IntGauge::new("idgen_lease_held", "1 while a worker ID is leased").unwrap(),
            worker_id: IntGauge::new("idgen_worker_id", "The leased worker ID, -1 when none")
                .unwrap(),
            lease_losses: IntCounter::new(
                "idgen_lease_losses_total",
                "Times the worker-ID lease was lost or fenced",
            )
            .unwrap(),
            worker_ids_skipped: IntCounterVec::new(
                Opts::new(
                    "idgen_worker_ids_skipped_total",
                    "Worker IDs passed over while claiming one, by reason",
                ),
                &["reason"],
            )
            .unwrap(),
        };
        series.worker_id.set(-1);
        // Present at 0 from the start, so an alert on its rate needs no `absent()`.
        series
            .worker_ids_skipped
            .with_label_values(&[SKIPPED_MARK_AHEAD]);
        series
    }

    /// Series registered in `registry`.
    ///
    /// # Errors
    /// When the names are already registered there.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let series = Self::unregistered();
        registry.register(Box::new(series.ids_issued.clone()))?;
        registry.register(Box::new(series.clock_backwards.clone()))?;
        registry.register(Box::new(series.lease_held.clone()))?;
        registry.register(Box::new(series.worker_id.clone()))?;
        registry.register(Box::new(series.lease_losses.clone()))?;
        registry.register(Box::new(series.worker_ids_skipped.clone()))?;
        Ok(series)
    }
}

/// The code counter's series: blocks leased from it and numbers issued from them.
#[derive(Clone)]
pub struct BlockMetrics {
    /// Blocks leased from the counter.
    pub blocks_leased: IntCounter,
    /// Lease attempts that found the counter moved since it was read (another process leased first) and read
    /// it again.
    pub lease_conflicts: IntCounter,
    /// Leases that failed (ZooKeeper unreachable or too slow, or too many conflicts in a row).
    pub lease_failures: IntCounter,
    /// Numbers handed out from blocks.
    pub numbers_issued: IntCounter,
    /// Size of the last block leased: grows while blocks last under a second, shrinks while they last minutes.
    pub block_size: IntGauge,
}

impl BlockMetrics {
    /// Series registered nowhere (tests, embedding without metrics).
    ///
    /// # Panics
    /// Never: the names and help texts are constant and valid.
    pub fn unregistered() -> Self {
        #[expect(clippy::unwrap_used, reason = "constant, valid metric names")]
        let counter = |name: &str, help: &str| IntCounter::new(name, help).unwrap();
        #[expect(clippy::unwrap_used, reason = "constant, valid metric names")]
        let block_size = IntGauge::new(
            "idgen_code_block_size",
            "Size of the last block of the code counter leased",
        )
        .unwrap();
        Self {
            blocks_leased: counter(
                "idgen_code_blocks_leased_total",
                "Blocks of the code counter leased from ZooKeeper",
            ),
            lease_conflicts: counter(
                "idgen_code_block_lease_conflicts_total",
                "Code counter leases retried because another process moved the counter first",
            ),
            lease_failures: counter(
                "idgen_code_block_lease_failures_total",
                "Code counter leases that failed",
            ),
            numbers_issued: counter(
                "idgen_code_numbers_issued_total",
                "Numbers issued from blocks of the code counter",
            ),
            block_size,
        }
    }

    /// Series registered in `registry`.
    ///
    /// # Errors
    /// When the names are already registered there.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let series = Self::unregistered();
        registry.register(Box::new(series.blocks_leased.clone()))?;
        registry.register(Box::new(series.lease_conflicts.clone()))?;
        registry.register(Box::new(series.lease_failures.clone()))?;
        registry.register(Box::new(series.numbers_issued.clone()))?;
        registry.register(Box::new(series.block_size.clone()))?;
        Ok(series)
    }
}
