//! Taking a worker ID: a new ZooKeeper session, the first free ephemeral `{root}/workers/{NNNN}` won by an
//! atomic create whose recorded mark is not absurdly far ahead (such a worker ID is skipped, not retried
//! forever), the mark taken over, then the wait past it and the first renewal, after which the generator may
//! issue.

use std::time::{Duration, Instant};

use plumbing::shutdown::Shutdown;
use zookeeper_client as zk;

use super::{call, mark, renew, LeaseError, LeaseOptions};
use crate::{metrics::SKIPPED_MARK_AHEAD, Generator};

/// A worker ID held by one ZooKeeper session.
pub(super) struct Claim {
    /// The session; the worker node lives as long as it does.
    pub client: zk::Client,
    /// The worker ID.
    pub worker: u64,
    /// `{root}/workers/{NNNN}`.
    pub path: String,
    /// The version our worker node had when we created it: renewals check it, release deletes only it.
    pub worker_version: i32,
    /// `{root}/marks/{NNNN}`.
    pub mark_path: String,
    /// The version of the mark node after our last write. Every holder takes the mark over when it claims
    /// (see [`mark::take`]), so a write expecting this version fails once anyone else holds the worker ID.
    pub mark_version: i32,
    /// The mark found when claiming: every ID earlier holders issued with this worker ID is at or below it,
    /// so the final mark written at release never goes lower.
    pub inherited_mark: u64,
    /// How long after a successful call the lease is still ours for sure: session timeout − safety margin.
    pub horizon: Duration,
}

impl Claim {
    /// The negotiated session timeout (the server may have changed what we asked for).
    pub fn session_timeout(&self) -> Duration {
        self.client.session_timeout()
    }

    /// How often to renew: every mark interval, and at least three times per horizon so one lost answer does
    /// not fence.
    pub fn renew_every(&self, options: &LeaseOptions) -> Duration {
        options
            .mark_interval
            .min(self.horizon / 3)
            .max(Duration::from_millis(10))
    }
}

/// A worker node we created and the mark we took over with it.
struct Chosen {
    worker: u64,
    path: String,
    version: i32,
    mark_path: String,
    mark: mark::Taken,
}

/// Claims a worker ID and lets `generator` issue with it.
///
/// # Errors
/// ZooKeeper unreachable, every worker ID taken or skipped, or shutdown while waiting.
pub(super) async fn claim(
    options: &LeaseOptions,
    generator: &Generator,
    shutdown: &Shutdown,
) -> Result<(Claim, Instant), LeaseError> {
    let zookeeper = &options.zookeeper;
    let client = call(
        options.call_timeout,
        zookeeper.connector().connect(&zookeeper.connect),
    )
    .await?;
    let horizon = horizon(client.session_timeout(), options.safety_margin)?;
    let root = options.root.trim_end_matches('/');
    let persistent = zk::CreateMode::Persistent.with_acls(zookeeper.acls());
    for directory in ["workers", "marks"] {
        let path = format!("{root}/{directory}");
        call(options.call_timeout, client.mkdir(&path, &persistent)).await?;
    }
    let chosen = choose_worker(&client, root, options, generator).await?;
    let mut claim = Claim {
        client,
        worker: chosen.worker,
        path: chosen.path,
        worker_version: chosen.version,
        mark_path: chosen.mark_path,
        mark_version: chosen.mark.version,
        inherited_mark: chosen.mark.unix_ms,
        horizon,
    };
    match settle(&mut claim, options, generator, shutdown).await {
        Ok(valid_until) => Ok((claim, valid_until)),
        Err(error) => {
            free(&claim.client, &claim.path, claim.worker_version, options).await;
            Err(error)
        }
    }
}

/// Session timeout less the safety margin, refused when nothing would be left.
fn horizon(session_timeout: Duration, safety_margin: Duration) -> Result<Duration, LeaseError> {
    session_timeout
        .checked_sub(safety_margin)
        .filter(|horizon| !horizon.is_zero())
        .ok_or(LeaseError::MarginTooLarge {
            margin_ms: safety_margin.as_millis(),
            session_ms: session_timeout.as_millis(),
        })
}

/// The first worker ID that is free and whose mark this clock can wait out. One whose mark is too far ahead
/// is freed again and skipped: waiting would take longer than allowed, and another worker ID serves as well.
async fn choose_worker(
    client: &zk::Client,
    root: &str,
    options: &LeaseOptions,
    generator: &Generator,
) -> Result<Chosen, LeaseError> {
    let worker_count = options
        .max_workers
        .unwrap_or(u64::MAX)
        .min(generator.layout().worker_count());
    let max_ms = u64::try_from(options.max_mark_wait.as_millis()).unwrap_or(u64::MAX);
    let mut skipped = 0;
    for worker in 0..worker_count {
        let path = format!("{root}/workers/{worker:04}");
        let Some(version) = create_worker(client, &path, options).await? else {
            continue;
        };
        let mark_path = mark::path(root, worker);
        let taken = match mark::take(client, &mark_path, options).await {
            Ok(taken) => taken,
            Err(error) => {
                free(client, &path, version, options).await;
                return Err(error);
            }
        };
        let ahead_ms = taken.unix_ms.saturating_sub(generator.now_unix_ms());
        if ahead_ms > max_ms {
            free(client, &path, version, options).await;
            generator
                .metrics()
                .worker_ids_skipped
                .with_label_values(&[SKIPPED_MARK_AHEAD])
                .inc();
            tracing::warn!(
                worker,
                ahead_ms,
                max_ms,
                "worker ID skipped: its recorded clock mark is further ahead of this clock than is waited out \
                 (is this clock far behind, or was the mark written by a clock far ahead?)"
            );
            skipped += 1;
            continue;
        }
        return Ok(Chosen {
            worker,
            path,
            version,
            mark_path,
            mark: taken,
        });
    }
    Err(if skipped == 0 {
        LeaseError::AllTaken(worker_count)
    } else {
        LeaseError::NoneUsable {
            count: worker_count,
            mark_ahead: skipped,
            max_ms,
        }
    })
}

/// Creates our ephemeral worker node: its version, or `None` when another session holds it.
async fn create_worker(
    client: &zk::Client,
    path: &str,
    options: &LeaseOptions,
) -> Result<Option<i32>, LeaseError> {
    let ephemeral = zk::CreateMode::Ephemeral.with_acls(options.zookeeper.acls());
    let owner = format!("{}:{}", plumbing::hostname(), std::process::id());
    match call(
        options.call_timeout,
        client.create(path, owner.as_bytes(), &ephemeral),
    )
    .await
    {
        Ok((stat, _)) => Ok(Some(stat.version)),
        Err(LeaseError::ZooKeeper(zk::Error::NodeExists)) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Frees a worker ID at once rather than after the session timeout; only the node we created, never one
/// another session made at the same path since.
pub(super) async fn free(client: &zk::Client, path: &str, version: i32, options: &LeaseOptions) {
    if let Err(error) = call(options.call_timeout, client.delete(path, Some(version))).await {
        tracing::debug!(path, %error, "worker node not deleted; it goes with the session");
    }
}

/// Waits past the worker ID's inherited mark and renews for the first time.
async fn settle(
    claim: &mut Claim,
    options: &LeaseOptions,
    generator: &Generator,
    shutdown: &Shutdown,
) -> Result<Instant, LeaseError> {
    mark::wait_past(generator, claim.worker, claim.inherited_mark, shutdown).await?;
    let grant = renew(claim, options.call_timeout, generator).await?;
    generator.grant(grant);
    Ok(grant.valid_until)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_horizon_is_the_session_timeout_less_the_margin() {
        assert_eq!(
            horizon(Duration::from_secs(6), Duration::from_secs(2)).ok(),
            Some(Duration::from_secs(4))
        );
        assert!(matches!(
            horizon(Duration::from_secs(2), Duration::from_secs(2)),
            Err(LeaseError::MarginTooLarge { .. })
        ));
    }
}
