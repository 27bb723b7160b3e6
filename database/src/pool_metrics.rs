//! Connection-pool usage as Prometheus gauges, read from the pool at scrape time (nothing to update on the
//! request path): open connections, idle ones, and requests waiting for one — the first sign of a slow database.

use deadpool_postgres::Pool;
use prometheus::{
    core::{Collector, Desc},
    proto::MetricFamily,
    IntGaugeVec, Opts,
};

/// A collector for named pools (`pool` label), registered once in a service's registry: one collector for every
/// pool, since a registry refuses a second collector of the same series.
pub struct PoolMetrics {
    pools: Vec<(String, Pool)>,
    gauges: IntGaugeVec,
}

impl PoolMetrics {
    /// Gauges `db_pool_connections{pool, state="open|idle|waiting|max"}` for `pool`.
    ///
    /// # Errors
    /// When the series cannot be described.
    pub fn new(pool: Pool, name: &str) -> prometheus::Result<Self> {
        let gauges = IntGaugeVec::new(
            Opts::new(
                "db_pool_connections",
                "PostgreSQL pool connections by state",
            ),
            &["pool", "state"],
        )?;
        Ok(Self {
            pools: vec![(name.to_owned(), pool)],
            gauges,
        })
    }

    /// These gauges and those of `pool`, named `name`.
    #[must_use]
    pub fn and(mut self, pool: Pool, name: &str) -> Self {
        self.pools.push((name.to_owned(), pool));
        self
    }
}

impl Collector for PoolMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.gauges.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        for (name, pool) in &self.pools {
            let status = pool.status();
            for (state, value) in [
                ("open", status.size),
                ("idle", status.available),
                ("waiting", status.waiting),
                ("max", status.max_size),
            ] {
                self.gauges
                    .with_label_values(&[name.as_str(), state])
                    .set(i64::try_from(value).unwrap_or(i64::MAX));
            }
        }
        self.gauges.collect()
    }
}
