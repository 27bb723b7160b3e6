//! Taking a worker ID: a new ZooKeeper session, the first free ephemeral `{root}/workers/{NNNN}` won by an
//! atomic create, then the wait past that worker ID's recorded mark and the first renewal, after which the
//! generator may issue.

use std::time::{Duration, Instant};

use plumbing::shutdown::Shutdown;
use zookeeper_client as zk;

use super::{call, mark, renew, LeaseError, LeaseOptions};
use crate::Generator;

/// A worker ID held by one ZooKeeper session.
pub(super) struct Claim {
    /// The session; the worker node lives as long as it does.
    pub client: zk::Client,
    /// The worker ID.
    pub worker: u64,
    /// `{root}/workers/{NNNN}`.
    pub path: String,
    /// `{root}/marks/{NNNN}`.
    pub mark_path: String,
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

/// Claims a worker ID and lets `generator` issue with it.
///
/// # Errors
/// ZooKeeper unreachable, every worker ID taken, a mark too far ahead, or shutdown while waiting.
pub(super) async fn claim(
    options: &LeaseOptions,
    generator: &Generator,
    shutdown: &Shutdown,
) -> Result<(Claim, Instant), LeaseError> {
    let connector = zk::Client::connector().with_session_timeout(options.session_timeout);
    let client = call(options.call_timeout, connector.connect(&options.connect)).await?;
    let horizon = horizon(client.session_timeout(), options.safety_margin)?;
    let root = options.root.trim_end_matches('/');
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    for directory in ["workers", "marks"] {
        let path = format!("{root}/{directory}");
        call(options.call_timeout, client.mkdir(&path, &persistent)).await?;
    }
    let worker_count = options
        .max_workers
        .unwrap_or(u64::MAX)
        .min(generator.layout().worker_count());
    let (worker, path) = take_free_worker(&client, root, worker_count, options).await?;
    let mut claim = Claim {
        mark_path: mark::path(root, worker),
        client,
        worker,
        path,
        inherited_mark: 0,
        horizon,
    };
    match settle(&mut claim, options, generator, shutdown).await {
        Ok(valid_until) => Ok((claim, valid_until)),
        Err(error) => {
            // Free the worker ID at once rather than after the session timeout.
            let _ = call(options.call_timeout, claim.client.delete(&claim.path, None)).await;
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

async fn take_free_worker(
    client: &zk::Client,
    root: &str,
    worker_count: u64,
    options: &LeaseOptions,
) -> Result<(u64, String), LeaseError> {
    let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    let owner = format!("{}:{}", plumbing::hostname(), std::process::id());
    for worker in 0..worker_count {
        let path = format!("{root}/workers/{worker:04}");
        match call(
            options.call_timeout,
            client.create(&path, owner.as_bytes(), &ephemeral),
        )
        .await
        {
            Ok(_) => return Ok((worker, path)),
            Err(LeaseError::ZooKeeper(zk::Error::NodeExists)) => continue,
            Err(error) => return Err(error),
        }
    }
    Err(LeaseError::AllTaken(worker_count))
}

/// Reads the worker ID's mark, waits past it, and renews for the first time.
async fn settle(
    claim: &mut Claim,
    options: &LeaseOptions,
    generator: &Generator,
    shutdown: &Shutdown,
) -> Result<Instant, LeaseError> {
    claim.inherited_mark = mark::read(&claim.client, &claim.mark_path, options).await?;
    mark::wait_past(
        generator,
        claim.worker,
        claim.inherited_mark,
        options,
        shutdown,
    )
    .await?;
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
