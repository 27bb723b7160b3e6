//! The generator's and lease's Prometheus series.

use prometheus::{IntCounter, IntGauge, Registry};

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
        };
        series.worker_id.set(-1);
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
        Ok(series)
    }
}
