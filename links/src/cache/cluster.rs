//! What a Redis Cluster (`redis-cluster://` URL) adds to the cache: re-reading the slot map when a node stops
//! answering, and the `redis_cluster` gauge.
//!
//! fred follows a failover by itself when a node's connection closes (a crash on the same host, a restart): it
//! re-reads `CLUSTER SLOTS` with backoff until the promoted replica is listed, and `MOVED` answers re-route single
//! commands. A master that hangs or is cut off closes nothing: its commands only time out, and fred would keep
//! sending them to it after its replica took over. So a timeout on a cluster asks fred to re-read the slot map,
//! at most once a second per client, in the background: the request that timed out has already degraded.
//!
//! Invalidations use classic `PUBLISH`, not sharded `SPUBLISH`: a cluster forwards a classic message to every
//! node over the bus, so a redirect replica subscribed on any node hears every code, and its subscription never
//! has to follow the slot of the channel to a new master; sharded pub/sub would pin the whole stream to one
//! slot's master and drop every subscriber at that master's failover. The cost, one bus message per node per
//! change, is nothing at the rate links change.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use fred::{clients::Client, error::ErrorKind, interfaces::ClusterInterface as _};
use prometheus::{IntGauge, Registry};

/// Fewer re-reads than this interval: a dead master times out every command of its slots until its replica is
/// promoted (a few seconds), and one re-read at a time is all that helps.
const RESYNC_EVERY: Duration = Duration::from_secs(1);

/// Rate-limited re-reads of a cluster's slot map.
#[derive(Debug)]
pub struct Resync {
    started: Instant,
    /// Milliseconds since `started` of the last re-read asked for, plus one (0: never).
    last: AtomicU64,
    /// Bound on one re-read (it may connect to new nodes).
    timeout: Duration,
}

impl Resync {
    /// A re-read bounded by a few command timeouts (connecting to a promoted node is part of it).
    pub fn new(command_timeout: Duration) -> Self {
        Self {
            started: Instant::now(),
            last: AtomicU64::new(0),
            timeout: command_timeout
                .saturating_mul(4)
                .max(Duration::from_secs(1)),
        }
    }

    /// After `error` on `client`: a timeout starts a re-read of the slot map unless one started within the last
    /// second. Needs a Tokio runtime (every caller runs on one).
    pub fn after(&self, client: &Client, error: &fred::error::Error) {
        if *error.kind() != ErrorKind::Timeout {
            return;
        }
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX) + 1;
        let last = self.last.load(Ordering::Relaxed);
        let every = u64::try_from(RESYNC_EVERY.as_millis()).unwrap_or(u64::MAX);
        if last != 0 && now < last.saturating_add(every) {
            return;
        }
        if self
            .last
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let (client, timeout) = (client.clone(), self.timeout);
        tokio::spawn(async move {
            match tokio::time::timeout(timeout, client.sync_cluster()).await {
                Ok(Ok(())) => tracing::info!("redis cluster: slot map re-read after a timeout"),
                Ok(Err(error)) => {
                    tracing::warn!(%error, "redis cluster: re-reading the slot map failed")
                }
                Err(_) => tracing::warn!(
                    timeout_ms = timeout.as_millis(),
                    "redis cluster: re-reading the slot map timed out"
                ),
            }
        });
    }
}

/// Registers the `redis_cluster` gauge: 1 when the URL names a Redis Cluster, 0 for one node. Set once: the
/// kind of deployment is fixed by the URL for the life of the process.
///
/// # Errors
/// When a metric of that name is registered already.
pub fn register_cluster_gauge(registry: &Registry, clustered: bool) -> prometheus::Result<()> {
    let gauge = IntGauge::new(
        "redis_cluster",
        "Whether Redis is a cluster (1, a redis-cluster:// URL) or a single node (0)",
    )?;
    gauge.set(i64::from(clustered));
    registry.register(Box::new(gauge))
}
