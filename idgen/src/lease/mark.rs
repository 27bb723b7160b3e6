//! The clock high-water mark of a worker ID: a persistent node `{root}/marks/{NNNN}` holding, in decimal Unix
//! milliseconds, the latest timestamp any holder of that worker ID may have issued. A holder raises it every
//! mark interval to its clock plus the session timeout and never issues past what ZooKeeper has taken; a new
//! holder waits until its own clock has passed it. So hand-over is safe even when the old holder's clock ran
//! ahead of ours, or it kept issuing through a partition until its lease deadline.

use std::time::Duration;

use plumbing::shutdown::Shutdown;
use zookeeper_client as zk;

use super::{call, LeaseError, LeaseOptions};
use crate::Generator;

/// The mark node of `worker`.
pub(super) fn path(root: &str, worker: u64) -> String {
    format!("{}/marks/{worker:04}", root.trim_end_matches('/'))
}

/// The recorded mark, 0 when none was ever recorded.
///
/// # Errors
/// ZooKeeper failures, or a node that does not hold a number (someone else wrote it: refuse to guess).
pub(super) async fn read(
    client: &zk::Client,
    path: &str,
    options: &LeaseOptions,
) -> Result<u64, LeaseError> {
    match call(options.call_timeout, client.get_data(path)).await {
        Ok((data, _stat)) => std::str::from_utf8(&data)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .ok_or_else(|| LeaseError::MarkUnreadable(path.to_owned())),
        Err(LeaseError::ZooKeeper(zk::Error::NoNode)) => Ok(0),
        Err(error) => Err(error),
    }
}

/// Records `unix_ms` as the mark, creating the node the first time.
///
/// # Errors
/// ZooKeeper failures or no answer within `timeout`.
pub(super) async fn write(
    client: &zk::Client,
    path: &str,
    unix_ms: u64,
    timeout: Duration,
) -> Result<(), LeaseError> {
    let data = unix_ms.to_string();
    match call(timeout, client.set_data(path, data.as_bytes(), None)).await {
        Err(LeaseError::ZooKeeper(zk::Error::NoNode)) => {}
        other => return other.map(drop),
    }
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    match call(timeout, client.create(path, data.as_bytes(), &persistent)).await {
        // Another session created it between our two calls; ours is the later value, so set it.
        Err(LeaseError::ZooKeeper(zk::Error::NodeExists)) => {
            call(timeout, client.set_data(path, data.as_bytes(), None))
                .await
                .map(drop)
        }
        other => other.map(drop),
    }
}

/// Waits until the generator's clock is past `mark`, polling because the clock may be injected.
///
/// # Errors
/// [`LeaseError::MarkTooFarAhead`] when that would take longer than allowed, [`LeaseError::ShuttingDown`].
pub(super) async fn wait_past(
    generator: &Generator,
    worker: u64,
    mark: u64,
    options: &LeaseOptions,
    shutdown: &Shutdown,
) -> Result<(), LeaseError> {
    let ahead_ms = mark.saturating_sub(generator.now_unix_ms());
    let max_ms = u64::try_from(options.max_mark_wait.as_millis()).unwrap_or(u64::MAX);
    if ahead_ms > max_ms {
        return Err(LeaseError::MarkTooFarAhead {
            worker,
            ahead_ms,
            max_ms,
        });
    }
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
