//! The code counter znode and the versioned lease of a block from it (why it is safe: the [`super`] module's
//! doc). One ZooKeeper session per [`Counter`], replaced when it expires.

use std::{
    hash::{BuildHasher as _, RandomState},
    ops::Range,
    time::Duration,
};

use zookeeper_client as zk;

use super::{call, BlockError};
use crate::{metrics::BlockMetrics, zookeeper::ZooKeeperOptions};

/// Attempts of one lease while others keep moving the counter. Embedders lease about once a second each, so
/// a conflict is rare there; the HTTP service runs a few leases at once, which collide more often.
const ATTEMPTS: u32 = 16;
/// Longest pause before an attempt after a conflict. The pause is random and its bound doubles with each
/// conflict (1, 2, 4 … ms), so leasers who collided spread out instead of colliding again.
const MAX_BACKOFF_MS: u64 = 64;

/// Where the counter is and how to reach it.
#[derive(Debug, Clone)]
pub struct CounterOptions {
    /// Where ZooKeeper is and as whom we connect.
    pub zookeeper: ZooKeeperOptions,
    /// The counter node, e.g. `/snowlink/idgen/code-counter`.
    pub path: String,
    /// Bound on every ZooKeeper call.
    pub call_timeout: Duration,
}

/// Leases blocks of the counter. Leases may run concurrently.
pub struct Counter {
    options: CounterOptions,
    /// The session, replaced once it has expired or closed (held only to clone or replace it).
    session: tokio::sync::Mutex<zk::Client>,
    metrics: BlockMetrics,
}

impl Counter {
    /// Opens a session and creates the counter at 0 if it does not exist yet (with its parents, with our ACL).
    ///
    /// # Errors
    /// ZooKeeper unreachable or refusing, or a counter node that is not a number.
    pub async fn connect(
        options: CounterOptions,
        metrics: BlockMetrics,
    ) -> Result<Self, BlockError> {
        let client = connect(&options).await?;
        let persistent = zk::CreateMode::Persistent.with_acls(options.zookeeper.acls());
        if let Some((parent, _)) = options
            .path
            .rsplit_once('/')
            .filter(|(parent, _)| !parent.is_empty())
        {
            call(options.call_timeout, client.mkdir(parent, &persistent)).await?;
        }
        match call(
            options.call_timeout,
            client.create(&options.path, b"0", &persistent),
        )
        .await
        {
            Ok(_) | Err(BlockError::ZooKeeper(zk::Error::NodeExists)) => {}
            Err(error) => return Err(error),
        }
        let counter = Self {
            options,
            session: tokio::sync::Mutex::new(client),
            metrics,
        };
        counter.read(&counter.client().await?).await?;
        Ok(counter)
    }

    /// Leases `[start, start + size)`: numbers no other lease, of this process or any other, ever returns.
    ///
    /// # Errors
    /// A size of 0, ZooKeeper unreachable or too slow (a write whose answer timed out is abandoned, its range
    /// never used), the counter moved by others on every attempt, deleted, unreadable or exhausted.
    pub async fn lease(&self, size: u64) -> Result<Range<u64>, BlockError> {
        if size == 0 {
            return Err(BlockError::InvalidSize(
                "a block holds at least one number".into(),
            ));
        }
        let leased = self.try_lease(size).await;
        match &leased {
            Ok(_) => self.metrics.blocks_leased.inc(),
            Err(_) => self.metrics.lease_failures.inc(),
        }
        leased
    }

    async fn try_lease(&self, size: u64) -> Result<Range<u64>, BlockError> {
        let client = self.client().await?;
        let timeout = self.options.call_timeout;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let (start, version) = self.read(&client).await?;
            let end = start.checked_add(size).ok_or(BlockError::Exhausted)?;
            let written = call(
                timeout,
                client.set_data(
                    &self.options.path,
                    end.to_string().as_bytes(),
                    Some(version),
                ),
            )
            .await;
            match written {
                Ok(_) => return Ok(start..end),
                // Someone leased between our read and our write, or we read from a lagging follower.
                Err(BlockError::ZooKeeper(zk::Error::BadVersion)) => {
                    self.metrics.lease_conflicts.inc()
                }
                Err(BlockError::ZooKeeper(zk::Error::NoNode)) => {
                    return Err(BlockError::Deleted(self.options.path.clone()))
                }
                Err(error) => return Err(error),
            }
        }
        Err(BlockError::Contended { attempts: ATTEMPTS })
    }

    /// The counter's value and version.
    async fn read(&self, client: &zk::Client) -> Result<(u64, i32), BlockError> {
        let path = &self.options.path;
        let (data, stat) = match call(self.options.call_timeout, client.get_data(path)).await {
            Err(BlockError::ZooKeeper(zk::Error::NoNode)) => {
                return Err(BlockError::Deleted(path.clone()))
            }
            read => read?,
        };
        let value = std::str::from_utf8(&data)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .ok_or_else(|| BlockError::Unreadable(path.clone()))?;
        Ok((value, stat.version))
    }

    /// The session, a new one if it has expired or closed (the client never recovers from those by itself).
    async fn client(&self) -> Result<zk::Client, BlockError> {
        let mut session = self.session.lock().await;
        if session.state().is_terminated() {
            tracing::info!("code counter: ZooKeeper session ended; opening a new one");
            *session = connect(&self.options).await?;
        }
        Ok(session.clone())
    }
}

async fn connect(options: &CounterOptions) -> Result<zk::Client, BlockError> {
    let zookeeper = &options.zookeeper;
    call(
        options.call_timeout,
        zookeeper.connector().connect(&zookeeper.connect),
    )
    .await
}

/// A random pause before attempt `attempt` (from 1): up to 2^(attempt-1) ms, at most [`MAX_BACKOFF_MS`]. A fresh
/// `RandomState` is randomly keyed, so every call draws anew.
fn backoff(attempt: u32) -> Duration {
    let bound = 1_u64
        .checked_shl(attempt.saturating_sub(1))
        .unwrap_or(u64::MAX)
        .min(MAX_BACKOFF_MS);
    let random = RandomState::new().hash_one(std::time::Instant::now());
    Duration::from_micros(random % (bound * 1_000 + 1))
}
