//! The clock high-water mark of a worker ID: a persistent node `{root}/marks/{NNNN}` holding, in decimal Unix
//! milliseconds, the latest timestamp any holder of that worker ID may have issued. A holder raises it every
//! mark interval to its clock plus the session timeout and never issues past what ZooKeeper has taken; a new
//! holder waits until its own clock has passed it. So hand-over is safe even when the old holder's clock ran
//! ahead of ours, or it kept issuing through a partition until its lease deadline.
//!
//! Every write names the mark version the writer last saw, and a new holder's first act is to rewrite the mark
//! (same value, new version). So a holder that lost its worker ID without noticing (an operator deleted its
//! node while its session lives on, and another generator took the ID) fails its next renewal instead of
//! raising the new holder's mark, and stops issuing. The worker node's own version cannot serve as that fence:
//! a node created again at the same path starts at version 0 just as ours did.
//!
//! A write of ours can land while its answer is lost (a partition, a timeout), leaving the version we expect
//! behind. A refused write is ours to retry when our session still owns the worker node: nobody else can take
//! the worker ID over while that node exists, so the newer version is our own write's, and is adopted.

use std::time::Duration;

use plumbing::shutdown::Shutdown;
use zookeeper_client as zk;

use super::{call, LeaseError, LeaseOptions};
use crate::Generator;

/// How often taking the mark over is tried while other sessions keep writing it.
const TAKE_ATTEMPTS: usize = 3;

/// The mark node of `worker`.
pub(super) fn path(root: &str, worker: u64) -> String {
    format!("{}/marks/{worker:04}", root.trim_end_matches('/'))
}

/// A mark as found when taking a worker ID, and the version our next write must find.
pub(super) struct Taken {
    /// The recorded mark, 0 when none was ever recorded.
    pub unix_ms: u64,
    /// The node's version after our takeover write.
    pub version: i32,
}

/// Takes over the mark of a worker ID whose node we just created: rewrites it unchanged (or creates it at 0)
/// so that whoever wrote it before us fails its next write.
///
/// # Errors
/// ZooKeeper failures, a mark that is not a number (someone else wrote it: refuse to guess), or other
/// sessions writing it on every attempt.
pub(super) async fn take(
    client: &zk::Client,
    path: &str,
    options: &LeaseOptions,
) -> Result<Taken, LeaseError> {
    let timeout = options.call_timeout;
    for _ in 0..TAKE_ATTEMPTS {
        let written = match read(client, path, timeout).await? {
            Some((unix_ms, version)) => {
                let data = unix_ms.to_string();
                call(
                    timeout,
                    client.set_data(path, data.as_bytes(), Some(version)),
                )
                .await
                .map(|stat| Taken {
                    unix_ms,
                    version: stat.version,
                })
            }
            None => {
                let persistent = zk::CreateMode::Persistent.with_acls(options.zookeeper.acls());
                call(timeout, client.create(path, b"0", &persistent))
                    .await
                    .map(|(stat, _)| Taken {
                        unix_ms: 0,
                        version: stat.version,
                    })
            }
        };
        match written {
            // Written (or created, or deleted) by another session between our read and our write: read again.
            Err(LeaseError::ZooKeeper(
                zk::Error::BadVersion | zk::Error::NodeExists | zk::Error::NoNode,
            )) => continue,
            other => return other,
        }
    }
    Err(LeaseError::ZooKeeper(zk::Error::BadVersion))
}

/// The recorded mark and its node's version, `None` when none was ever recorded.
async fn read(
    client: &zk::Client,
    path: &str,
    timeout: Duration,
) -> Result<Option<(u64, i32)>, LeaseError> {
    match call(timeout, client.get_data(path)).await {
        Ok((data, stat)) => std::str::from_utf8(&data)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .map(|unix_ms| Some((unix_ms, stat.version)))
            .ok_or_else(|| LeaseError::MarkUnreadable(path.to_owned())),
        Err(LeaseError::ZooKeeper(zk::Error::NoNode)) => Ok(None),
        Err(error) => Err(error),
    }
}

/// The mark node's version now, when our session still owns the worker node (so that version is our own
/// write's); else `None`.
async fn version_if_ours(
    client: &zk::Client,
    fence: &Fence<'_>,
    timeout: Duration,
) -> Result<Option<i32>, LeaseError> {
    let worker = call(timeout, client.check_stat(fence.worker_path)).await?;
    if worker.is_none_or(|stat| stat.ephemeral_owner != client.session_id().0) {
        return Ok(None);
    }
    let mark = call(timeout, client.check_stat(fence.mark_path)).await?;
    Ok(mark.map(|stat| stat.version))
}

/// Where a holder's writes go and what they must find there.
pub(super) struct Fence<'a> {
    /// Our worker node and the version we created it with.
    pub worker_path: &'a str,
    pub worker_version: i32,
    /// The mark node and its version after our last write.
    pub mark_path: &'a str,
    pub mark_version: i32,
}

/// Records `unix_ms` as the mark in one multi-op that also checks our worker node, so nothing is written once
/// the node or the mark is someone else's. Returns the mark's new version.
///
/// # Errors
/// `NoNode`/`BadVersion` when the worker ID is no longer ours; other ZooKeeper failures or no answer in time.
pub(super) async fn advance(
    client: &zk::Client,
    fence: &Fence<'_>,
    unix_ms: u64,
    timeout: Duration,
) -> Result<i32, LeaseError> {
    let data = unix_ms.to_string();
    let results = commit_fenced(client, fence, timeout, |writer, mark_version| {
        writer.add_check_version(fence.worker_path, fence.worker_version)?;
        writer.add_set_data(fence.mark_path, data.as_bytes(), Some(mark_version))
    })
    .await?;
    match results.last() {
        Some(zk::MultiWriteResult::SetData { stat }) => Ok(stat.version),
        _ => Err(LeaseError::ZooKeeper(zk::Error::UnexpectedError(
            "a mark renewal answered without the mark's new version".to_owned(),
        ))),
    }
}

/// Records the final mark and deletes our worker node in one multi-op: both or, when either is no longer ours,
/// neither.
///
/// # Errors
/// As [`advance`].
pub(super) async fn finish(
    client: &zk::Client,
    fence: &Fence<'_>,
    unix_ms: u64,
    timeout: Duration,
) -> Result<(), LeaseError> {
    let data = unix_ms.to_string();
    commit_fenced(client, fence, timeout, |writer, mark_version| {
        writer.add_set_data(fence.mark_path, data.as_bytes(), Some(mark_version))?;
        writer.add_delete(fence.worker_path, Some(fence.worker_version))
    })
    .await
    .map(drop)
}

/// Commits the operations `add` puts in a multi-op for the mark version given. When that version is stale
/// while our session still owns the worker node (a write of ours landed without its answer reaching us),
/// adopts the current version and commits once more; otherwise fails with `BadVersion`.
async fn commit_fenced(
    client: &zk::Client,
    fence: &Fence<'_>,
    timeout: Duration,
    add: impl Fn(&mut zk::MultiWriter<'_>, i32) -> Result<(), zk::Error>,
) -> Result<Vec<zk::MultiWriteResult>, LeaseError> {
    let mut mark_version = fence.mark_version;
    // Twice at most: after adopting, only another session's write can make the version stale again.
    for _ in 0..2 {
        let mut writer = client.new_multi_writer();
        add(&mut writer, mark_version)?;
        let committed = writer.commit();
        match call(timeout, async { committed.await.map_err(zk::Error::from) }).await {
            Err(LeaseError::ZooKeeper(zk::Error::BadVersion)) => {
                match version_if_ours(client, fence, timeout).await? {
                    Some(version) if version != mark_version => mark_version = version,
                    _ => return Err(LeaseError::ZooKeeper(zk::Error::BadVersion)),
                }
            }
            other => return other,
        }
    }
    Err(LeaseError::ZooKeeper(zk::Error::BadVersion))
}

/// Waits until the generator's clock is past `mark`, polling because the clock may be injected. The caller has
/// checked that the wait is bounded (a mark too far ahead is skipped).
///
/// # Errors
/// [`LeaseError::ShuttingDown`].
pub(super) async fn wait_past(
    generator: &Generator,
    worker: u64,
    mark: u64,
    shutdown: &Shutdown,
) -> Result<(), LeaseError> {
    let ahead_ms = mark.saturating_sub(generator.now_unix_ms());
    if ahead_ms > 0 {
        tracing::info!(
            worker,
            wait_ms = ahead_ms,
            "waiting for the clock to pass the worker ID's recorded high-water mark"
        );
    }
    loop {
        let now = generator.now_unix_ms();
        if now > mark {
            return Ok(());
        }
        let pause = Duration::from_millis((mark - now + 1).min(50));
        tokio::select! {
            () = shutdown.wait() => return Err(LeaseError::ShuttingDown),
            () = tokio::time::sleep(pause) => {}
        }
    }
}
