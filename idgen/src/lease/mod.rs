//! The worker-ID lease: an ephemeral znode `{root}/workers/{id}` per worker ID, the first free one won by an
//! atomic create ([`claim`]), and a clock high-water mark per worker ID ([`mark`]). The keeper renews the lease
//! every mark interval by recording a new mark; every renewal ZooKeeper takes proves our session was alive when
//! we sent it, so the generator may issue until that moment + session timeout − safety margin, and no longer.
//!
//! Why renewals and not the session state: the client's own pings are invisible to us, and it reports
//! `Expired` only ~1.4 × the session timeout after last contact, when the server may already have handed our
//! worker ID to another generator (shared/notes/zookeeper-client.md). `Disconnected` alone changes nothing: the
//! deadline runs out on its own, and an answer on the same session before then (or after, since a live
//! session still owns its node) lets the generator issue again. `Expired` or `Closed` fence at once, and the
//! keeper claims a worker ID again, possibly another one, with a new session.
//!
//! Renewals write the mark only while the worker node and the mark are still ours (one multi-op, [`mark`]): a
//! renewal refused so means someone else holds the worker ID, and the lease is lost at once. A worker ID whose
//! mark is further ahead of our clock than we wait out is skipped for the next free one ([`claim`]).

mod claim;
mod mark;

use std::{sync::Arc, time::Duration};

use plumbing::{
    shutdown::Shutdown,
    tasks::{Need, Supervisor, Task},
};
use tokio::time::Instant as TokioInstant;
use zookeeper_client as zk;

use crate::{
    generator::{Generator, Grant},
    zookeeper::ZooKeeperOptions,
};
use claim::Claim;

/// Where and how to lease.
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    /// Where ZooKeeper is and as whom we connect; its session timeout is how long the lease survives a silent
    /// generator.
    pub zookeeper: ZooKeeperOptions,
    /// Root under which worker and mark nodes live, e.g. `/snowlink/idgen`.
    pub root: String,
    /// Bound on every ZooKeeper call.
    pub call_timeout: Duration,
    /// Stop issuing this long before ZooKeeper could expire our session (covers clock-rate differences and
    /// the time an ID takes to leave the process).
    pub safety_margin: Duration,
    /// How often the holder records its high-water mark, which also renews the lease.
    pub mark_interval: Duration,
    /// Longest wait for the clock to pass an inherited mark; a mark further ahead is refused as absurd.
    pub max_mark_wait: Duration,
    /// Lease only worker IDs below this (default: every one the layout has).
    pub max_workers: Option<u64>,
}

/// Why a lease could not be taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {
    /// ZooKeeper did not answer in time.
    #[error("ZooKeeper did not answer within {timeout_ms} ms")]
    Timeout {
        /// The bound.
        timeout_ms: u128,
    },
    /// ZooKeeper answered with an error.
    #[error("ZooKeeper: {0}")]
    ZooKeeper(#[from] zk::Error),
    /// Every worker ID is held by another generator.
    #[error("all {0} worker IDs are leased by other generators")]
    AllTaken(u64),
    /// The safety margin leaves no time to issue in.
    #[error("the lease safety margin ({margin_ms} ms) must be shorter than the negotiated ZooKeeper session timeout ({session_ms} ms)")]
    MarginTooLarge {
        /// The margin.
        margin_ms: u128,
        /// The session timeout the server granted.
        session_ms: u128,
    },
    /// Every worker ID not leased by another generator has a recorded mark implausibly far ahead of our clock.
    #[error("none of the {count} worker IDs can be leased: {mark_ahead} have a recorded clock mark more than {max_ms} ms ahead of this clock (is this clock far behind, or were the marks written by a clock far ahead?), the rest are leased by other generators")]
    NoneUsable {
        /// Worker IDs tried.
        count: u64,
        /// Of those, skipped for a mark too far ahead.
        mark_ahead: u64,
        /// The most we wait.
        max_ms: u64,
    },
    /// A mark node that does not hold a number.
    #[error("the clock mark at {0} is not a number of milliseconds")]
    MarkUnreadable(String),
    /// Shutdown started before the lease was taken.
    #[error("shutting down")]
    ShuttingDown,
}

/// Holds a worker ID for a generator until shutdown.
pub struct LeaseKeeper {
    task: Task,
}

impl LeaseKeeper {
    /// Claims a worker ID, lets `generator` issue with it, and keeps the lease in a task of `supervisor` until
    /// its shutdown, when it fences the generator, records its final mark and deletes its node so the ID is
    /// free at once.
    ///
    /// # Errors
    /// When ZooKeeper is unreachable at start, every worker ID is taken, or the worker ID's mark is absurd.
    pub async fn start(
        options: LeaseOptions,
        generator: Arc<Generator>,
        supervisor: &Supervisor,
    ) -> Result<Self, LeaseError> {
        let shutdown = supervisor.shutdown().clone();
        let (claim, valid_until) = claim::claim(&options, &generator, &shutdown).await?;
        tracing::info!(worker = claim.worker, path = %claim.path, "worker ID leased");
        // Essential: without the keeper the generator stops issuing for good once its deadline passes.
        let task = supervisor.spawn(
            "idgen_lease",
            Need::Essential,
            keep(claim, valid_until, options, generator, shutdown),
        );
        Ok(Self { task })
    }

    /// Waits until the keeper has released the lease (after shutdown).
    pub async fn stopped(self) {
        self.task.stopped().await;
    }
}

/// Bounds a ZooKeeper call.
async fn call<T>(
    timeout: Duration,
    future: impl std::future::Future<Output = Result<T, zk::Error>>,
) -> Result<T, LeaseError> {
    crate::zookeeper::bounded(timeout, future).await
}

impl crate::zookeeper::CallError for LeaseError {
    fn timed_out(timeout: Duration) -> Self {
        Self::Timeout {
            timeout_ms: timeout.as_millis(),
        }
    }
}

/// Records a new mark (the generator's clock, or its last ID if later, plus the session timeout) and, once
/// ZooKeeper has taken it, returns the grant it earns: until `sent + horizon`, with the mark as ceiling. The
/// write reached the server after `sent`, so the server cannot have expired us before `sent + session timeout`.
async fn renew(
    claim: &mut Claim,
    timeout: Duration,
    generator: &Generator,
) -> Result<Grant, LeaseError> {
    let sent = std::time::Instant::now();
    let reach = u64::try_from(claim.session_timeout().as_millis()).unwrap_or(u64::MAX);
    let mark = generator
        .now_unix_ms()
        .max(generator.last_unix_ms())
        .saturating_add(reach);
    claim.mark_version = mark::advance(&claim.client, &fence(claim), mark, timeout).await?;
    Ok(Grant {
        worker: claim.worker,
        valid_until: sent + claim.horizon,
        ceiling_unix_ms: mark,
    })
}

/// What our writes must find in ZooKeeper for the worker ID to still be ours.
fn fence(claim: &Claim) -> mark::Fence<'_> {
    mark::Fence {
        worker_path: &claim.path,
        worker_version: claim.worker_version,
        mark_path: &claim.mark_path,
        mark_version: claim.mark_version,
    }
}

/// How holding a claim ended.
enum Held {
    ShuttingDown,
    Lost(String),
}

async fn keep(
    mut claim: Claim,
    mut valid_until: std::time::Instant,
    options: LeaseOptions,
    generator: Arc<Generator>,
    shutdown: Shutdown,
) {
    loop {
        match hold(&mut claim, valid_until, &options, &generator, &shutdown).await {
            Held::ShuttingDown => break,
            Held::Lost(why) => {
                tracing::warn!(
                    worker = claim.worker,
                    why,
                    "worker-ID lease lost; claiming a new one"
                );
                let Some((new_claim, until)) = reclaim(&options, &generator, &shutdown).await
                else {
                    return;
                };
                (claim, valid_until) = (new_claim, until);
                tracing::info!(worker = claim.worker, "worker ID leased again");
            }
        }
    }
    release(&claim, &options, &generator).await;
}

/// Renews the lease until it is lost or shutdown starts; fences the generator when the deadline passes
/// without a renewal.
async fn hold(
    claim: &mut Claim,
    mut valid_until: std::time::Instant,
    options: &LeaseOptions,
    generator: &Generator,
    shutdown: &Shutdown,
) -> Held {
    let mut states = claim.client.state_watcher();
    let every = claim.renew_every(options);
    let worker = claim.worker;
    let mut ticks = tokio::time::interval_at(TokioInstant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut issuing = true;
    // The generator refuses by itself once `valid_until` passes; this fences it formally too, for the
    // metrics and the log, and remembers to unfence on the next renewal.
    let lapse = |issuing: &mut bool| {
        generator.fence();
        generator.metrics().lease_losses.inc();
        *issuing = false;
        tracing::warn!(
            worker,
            "nothing heard from ZooKeeper for the session timeout less the safety margin; IDs fenced"
        );
    };
    loop {
        let deadline = TokioInstant::from_std(valid_until);
        let verify_first = tokio::select! {
            () = shutdown.wait() => return Held::ShuttingDown,
            () = tokio::time::sleep_until(deadline), if issuing => {
                lapse(&mut issuing);
                continue;
            }
            state = states.changed() => match state {
                zk::SessionState::SyncConnected => true,
                zk::SessionState::Disconnected | zk::SessionState::ConnectedReadOnly => {
                    tracing::warn!(
                        worker,
                        issuing_for_ms = valid_until.saturating_duration_since(std::time::Instant::now()).as_millis(),
                        "ZooKeeper connection lost; issuing until the lease deadline unless it is back"
                    );
                    continue;
                }
                other => return lost(generator, issuing, format!("session {other}")),
            },
            _ = ticks.tick() => false,
        };
        if verify_first && !still_ours(claim, options).await {
            return lost(generator, issuing, "worker node no longer ours".into());
        }
        let renewed = renew(claim, every, generator).await;
        if issuing && std::time::Instant::now() >= valid_until {
            lapse(&mut issuing);
        }
        match renewed {
            Ok(grant) => {
                generator.grant(grant);
                if !issuing {
                    tracing::info!(worker, "ZooKeeper answered again; issuing");
                }
                (valid_until, issuing) = (grant.valid_until, true);
            }
            // The worker node is gone or not the one we made, or another holder has written the mark.
            Err(LeaseError::ZooKeeper(zk::Error::NoNode | zk::Error::BadVersion)) => {
                return lost(
                    generator,
                    issuing,
                    "worker node or mark no longer ours".into(),
                )
            }
            Err(LeaseError::ZooKeeper(
                error @ (zk::Error::SessionExpired
                | zk::Error::SessionMoved
                | zk::Error::ClientClosed
                | zk::Error::AuthFailed
                | zk::Error::NoAuth),
            )) => return lost(generator, issuing, error.to_string()),
            Err(error) => tracing::debug!(worker, %error, "lease renewal failed"),
        }
    }
}

fn lost(generator: &Generator, issuing: bool, why: String) -> Held {
    generator.fence();
    if issuing {
        generator.metrics().lease_losses.inc();
    }
    Held::Lost(why)
}

/// Whether our session still owns the node. A live session keeps its ephemeral node, but an operator may
/// have deleted it, and another session may have created it again since.
async fn still_ours(claim: &Claim, options: &LeaseOptions) -> bool {
    match call(options.call_timeout, claim.client.check_stat(&claim.path)).await {
        Ok(Some(stat)) => stat.ephemeral_owner == claim.client.session_id().0,
        Ok(None) => false,
        // No answer proves nothing either way; the lease deadline decides.
        Err(_) => true,
    }
}

/// Claims again with backoff until it works or shutdown starts.
async fn reclaim(
    options: &LeaseOptions,
    generator: &Generator,
    shutdown: &Shutdown,
) -> Option<(Claim, std::time::Instant)> {
    let cap = options
        .zookeeper
        .session_timeout
        .min(Duration::from_secs(5));
    let mut backoff = Duration::from_millis(100);
    loop {
        match claim::claim(options, generator, shutdown).await {
            Ok(claimed) => return Some(claimed),
            Err(LeaseError::ShuttingDown) => return None,
            Err(error) => {
                tracing::warn!(%error, retry_ms = backoff.as_millis(), "cannot lease a worker ID yet");
            }
        }
        tokio::select! {
            () = shutdown.wait() => return None,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(cap);
    }
}

/// Fences, records the exact final mark (so the next holder need not wait out our reservation) and frees the
/// worker ID, both only while the worker ID is still ours. Best effort: if ZooKeeper does not answer, the
/// reservation stays and the node expires with us.
async fn release(claim: &Claim, options: &LeaseOptions, generator: &Generator) {
    let last_issued = generator.fence();
    let final_mark = last_issued.max(claim.inherited_mark);
    match mark::finish(
        &claim.client,
        &fence(claim),
        final_mark,
        options.call_timeout,
    )
    .await
    {
        Ok(()) => tracing::info!(worker = claim.worker, "worker ID released"),
        Err(error) => tracing::warn!(
            worker = claim.worker,
            %error,
            "cannot record the final clock mark and free the worker ID; they go with the session"
        ),
    }
}
