//! The worker-ID lease: an ephemeral znode `{root}/workers/{id}` per worker ID, the first free one won by an
//! atomic create. The node lives as long as our ZooKeeper session, so the keeper fences the generator as soon
//! as the session is in doubt (disconnected, expired) and re-claims a worker ID once ZooKeeper is back.
//!
//! Fencing on `Disconnected` rather than `Expired` is deliberate: the client reports `Expired` only ~1.4 × the
//! session timeout after last contact, by which time the server may have handed our ID to another generator
//! (shared/notes/zookeeper-client.md).

use std::{sync::Arc, time::Duration};

use plumbing::shutdown::Shutdown;
use tokio::task::JoinHandle;
use zookeeper_client as zk;

use crate::generator::Generator;

/// Where and how to lease.
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    /// ZooKeeper connect string, optionally with a chroot (`host:port,host:port/chroot`).
    pub connect: String,
    /// Root under which worker nodes live, e.g. `/snowlink/idgen`.
    pub root: String,
    /// ZooKeeper session timeout: how long the lease survives a silent generator.
    pub session_timeout: Duration,
    /// Bound on every ZooKeeper call.
    pub call_timeout: Duration,
}

/// Why a lease could not be taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {
    /// ZooKeeper did not answer in time.
    #[error("ZooKeeper at {connect} did not answer within {timeout_ms} ms")]
    Timeout {
        /// The connect string.
        connect: String,
        /// The bound.
        timeout_ms: u128,
    },
    /// ZooKeeper answered with an error.
    #[error("ZooKeeper: {0}")]
    ZooKeeper(#[from] zk::Error),
    /// Every worker ID is held by another generator.
    #[error("all {0} worker IDs are leased by other generators")]
    AllTaken(u64),
}

struct Claim {
    client: zk::Client,
    worker: u64,
    path: String,
}

/// Holds a worker ID for a generator until shutdown.
pub struct LeaseKeeper {
    task: JoinHandle<()>,
}

impl LeaseKeeper {
    /// Claims a worker ID, lets `generator` issue with it, and keeps the lease in the background until
    /// `shutdown`, when it fences the generator and deletes its node so the ID is free at once.
    ///
    /// # Errors
    /// When ZooKeeper is unreachable at start or every worker ID is taken.
    pub async fn start(
        options: LeaseOptions,
        generator: Arc<Generator>,
        shutdown: Shutdown,
    ) -> Result<Self, LeaseError> {
        let claim = claim(&options, generator.layout().worker_count()).await?;
        tracing::info!(worker = claim.worker, path = %claim.path, "worker ID leased");
        generator.set_worker(claim.worker);
        let task = tokio::spawn(keep(claim, options, generator, shutdown));
        Ok(Self { task })
    }

    /// Waits until the keeper has released the lease (after shutdown).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

async fn call<T>(
    options: &LeaseOptions,
    future: impl std::future::Future<Output = Result<T, zk::Error>>,
) -> Result<T, LeaseError> {
    tokio::time::timeout(options.call_timeout, future)
        .await
        .map_err(|_| LeaseError::Timeout {
            connect: options.connect.clone(),
            timeout_ms: options.call_timeout.as_millis(),
        })?
        .map_err(LeaseError::from)
}

async fn claim(options: &LeaseOptions, worker_count: u64) -> Result<Claim, LeaseError> {
    let connector = zk::Client::connector().with_session_timeout(options.session_timeout);
    let client = call(options, connector.connect(&options.connect)).await?;
    let directory = format!("{}/workers", options.root.trim_end_matches('/'));
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    call(options, client.mkdir(&directory, &persistent)).await?;
    let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    let owner = format!("{}:{}", hostname(), std::process::id());
    for worker in 0..worker_count {
        let path = format!("{directory}/{worker:04}");
        match call(options, client.create(&path, owner.as_bytes(), &ephemeral)).await {
            Ok(_) => {
                return Ok(Claim {
                    client,
                    worker,
                    path,
                })
            }
            Err(LeaseError::ZooKeeper(zk::Error::NodeExists)) => continue,
            Err(error) => return Err(error),
        }
    }
    Err(LeaseError::AllTaken(worker_count))
}

/// Whether our session still owns the node: after a reconnect the node could in theory belong to someone else.
async fn still_ours(claim: &Claim, options: &LeaseOptions) -> bool {
    match call(options, claim.client.check_stat(&claim.path)).await {
        Ok(Some(stat)) => stat.ephemeral_owner == claim.client.session_id().0,
        _ => false,
    }
}

async fn keep(
    mut claim: Claim,
    options: LeaseOptions,
    generator: Arc<Generator>,
    shutdown: Shutdown,
) {
    let mut states = claim.client.state_watcher();
    loop {
        let state = tokio::select! {
            () = shutdown.wait() => break,
            state = states.changed() => state,
        };
        match state {
            zk::SessionState::SyncConnected => {
                if still_ours(&claim, &options).await {
                    generator.set_worker(claim.worker);
                    tracing::info!(worker = claim.worker, "ZooKeeper back; issuing again");
                    continue;
                }
                generator.fence();
            }
            zk::SessionState::Disconnected | zk::SessionState::ConnectedReadOnly => {
                generator.fence();
                tracing::warn!(
                    worker = claim.worker,
                    "ZooKeeper connection lost; IDs fenced until it is back"
                );
                continue;
            }
            _ => generator.fence(),
        }
        tracing::warn!(
            worker = claim.worker,
            ?state,
            "worker-ID lease lost; claiming a new one"
        );
        let Some(new_claim) = reclaim(&options, &generator, &shutdown).await else {
            break;
        };
        claim = new_claim;
        states = claim.client.state_watcher();
        generator.set_worker(claim.worker);
        tracing::info!(worker = claim.worker, "worker ID leased again");
    }
    generator.fence();
    let _ = call(&options, claim.client.delete(&claim.path, None)).await;
    tracing::info!(worker = claim.worker, "worker ID released");
}

/// Claims again with backoff until it works or shutdown starts.
async fn reclaim(
    options: &LeaseOptions,
    generator: &Generator,
    shutdown: &Shutdown,
) -> Option<Claim> {
    let mut backoff = Duration::from_millis(100);
    loop {
        match claim(options, generator.layout().worker_count()).await {
            Ok(claim) => return Some(claim),
            Err(error) => {
                tracing::warn!(%error, retry_ms = backoff.as_millis(), "cannot lease a worker ID yet")
            }
        }
        tokio::select! {
            () = shutdown.wait() => return None,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}
