//! Leader election in ZooKeeper, so that work meant for one instance (the expiry cleanup) runs on one instance.
//!
//! The recipe is ZooKeeper's own: every candidate creates an ephemeral sequential node under the election path;
//! the lowest sequence leads; every other candidate watches only its predecessor, so a leader leaving wakes one
//! candidate, not all of them. Leadership is dropped the moment the session is in doubt (`Disconnected`), not at
//! `Expired`, which the client reports only ~1.4 × the session timeout after last contact, when another
//! candidate may already lead (shared/notes/zookeeper-client.md). It is contested again once the session is back,
//! or with a new session once it is gone. The node is deleted on shutdown so the next leader takes over at once.
//!
//! Not zookeeper-client's lock recipe (`Client::lock`, 0.11.2 `src/client/mod.rs`): it has no `Disconnected`
//! rule. Waiting, it retries through connection loss (`retry_on_connection_loss`, :360, used at :1092 and :1102)
//! and gives up only at `SessionExpired` (:1158); holding, the `LockClient` learns of a lost lock only when a
//! ZooKeeper write it guards fails (:1445), and our cleanup writes to PostgreSQL. It does not watch its own node
//! either (:1351, ZOOKEEPER-91), and its `Drop` deletes the node in the background (:1459), so [`Election::stopped`]
//! could not promise the node is gone. Keeping our rules on top of it would leave it only `take_place` to replace.

use std::time::Duration;

use idgen::zookeeper::ZooKeeperOptions;
use plumbing::{
    shutdown::Shutdown,
    tasks::{Need, Supervisor, Task},
};
use prometheus::IntGauge;
use tokio::sync::watch;
use zookeeper_client as zk;

/// Where and how to campaign.
#[derive(Debug, Clone)]
pub struct ElectionOptions {
    /// Where ZooKeeper is and as whom we connect (the ACL of our nodes follows); its session timeout is how
    /// long a silent leader keeps its node.
    pub zookeeper: ZooKeeperOptions,
    /// The election's node; candidates are its children.
    pub path: String,
    /// Bound on every ZooKeeper call.
    pub call_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
enum ElectionError {
    #[error("ZooKeeper did not answer within {0:?}")]
    Timeout(Duration),
    #[error("ZooKeeper: {0}")]
    ZooKeeper(#[from] zk::Error),
}

/// Why a candidacy ended.
enum CandidacyEnd {
    /// Shutdown started.
    Shutdown,
    /// The session (and with it our node) is gone, or ZooKeeper failed: campaign again with a new session.
    Lost,
}

const CANDIDATE_PREFIX: &str = "candidate-";

/// A running campaign: whether this instance leads, until shutdown.
pub struct Election {
    leader: watch::Receiver<bool>,
    task: Task,
}

impl Election {
    /// Starts campaigning in a task of `supervisor`; `gauge` follows leadership (1 while held). ZooKeeper being
    /// down now is not an error: the campaign retries with backoff until the supervisor's shutdown.
    pub fn start(options: ElectionOptions, gauge: IntGauge, supervisor: &Supervisor) -> Self {
        let (sender, leader) = watch::channel(false);
        gauge.set(0);
        let leadership = Leadership { sender, gauge };
        let shutdown = supervisor.shutdown().clone();
        // Optional: without it only the expiry cleanup stops; the redirect already answers expired links 410.
        let task = supervisor.spawn(
            "cleanup_election",
            Need::Optional,
            campaign(options, leadership, shutdown),
        );
        Self { leader, task }
    }

    /// Whether this instance leads now.
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// Follows leadership.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leader.clone()
    }

    /// Waits until the campaign has ended and its node is deleted (after shutdown).
    pub async fn stopped(self) {
        self.task.stopped().await;
    }
}

struct Leadership {
    sender: watch::Sender<bool>,
    gauge: IntGauge,
}

impl Leadership {
    fn set(&self, held: bool, path: &str) {
        let was = self.sender.send_replace(held);
        self.gauge.set(i64::from(held));
        match (was, held) {
            (false, true) => tracing::info!(path, "leadership taken"),
            (true, false) => tracing::info!(path, "leadership given up"),
            _ => {}
        }
    }
}

async fn call<T>(
    options: &ElectionOptions,
    future: impl std::future::Future<Output = Result<T, zk::Error>>,
) -> Result<T, ElectionError> {
    tokio::time::timeout(options.call_timeout, future)
        .await
        .map_err(|_| ElectionError::Timeout(options.call_timeout))?
        .map_err(ElectionError::from)
}

async fn campaign(options: ElectionOptions, leadership: Leadership, shutdown: Shutdown) {
    let initial_backoff = Duration::from_millis(100);
    let mut backoff = initial_backoff;
    while !shutdown.is_triggered() {
        match Candidate::enter(&options).await {
            Ok(candidate) => {
                let outcome = candidate.contest(&options, &leadership, &shutdown).await;
                leadership.set(false, &options.path);
                candidate.leave(&options).await;
                match outcome {
                    CandidacyEnd::Shutdown => break,
                    CandidacyEnd::Lost => backoff = initial_backoff,
                }
            }
            Err(error) => {
                tracing::warn!(%error, path = %options.path, retry_ms = backoff.as_millis(), "cannot stand for election yet");
            }
        }
        tokio::select! {
            () = shutdown.wait() => break,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
    leadership.set(false, &options.path);
}

/// Our node in the election, on the session that owns it.
struct Candidate {
    client: zk::Client,
    name: String,
}

impl Candidate {
    async fn enter(options: &ElectionOptions) -> Result<Self, ElectionError> {
        let zookeeper = &options.zookeeper;
        let client = call(options, zookeeper.connector().connect(&zookeeper.connect)).await?;
        let persistent = zk::CreateMode::Persistent.with_acls(zookeeper.acls());
        call(options, client.mkdir(&options.path, &persistent)).await?;
        let prefix = format!("{}/{CANDIDATE_PREFIX}", options.path);
        let owner = format!("{}:{}", plumbing::hostname(), std::process::id());
        let ephemeral = zk::CreateMode::EphemeralSequential.with_acls(zookeeper.acls());
        let (_, sequence) = call(
            options,
            client.create(&prefix, owner.as_bytes(), &ephemeral),
        )
        .await?;
        let name = format!("{CANDIDATE_PREFIX}{sequence}");
        tracing::debug!(path = %options.path, %name, "standing for election");
        Ok(Self { client, name })
    }

    fn node(&self, options: &ElectionOptions, name: &str) -> String {
        format!("{}/{name}", options.path)
    }

    /// Leads or waits in line until shutdown, or until the session or our node is lost.
    async fn contest(
        &self,
        options: &ElectionOptions,
        leadership: &Leadership,
        shutdown: &Shutdown,
    ) -> CandidacyEnd {
        let mut states = self.client.state_watcher();
        loop {
            let watcher = match self.take_place(options).await {
                Ok(Some((leads, watcher))) => {
                    leadership.set(leads, &options.path);
                    watcher
                }
                // The node we were about to watch went away in between: look again.
                Ok(None) => continue,
                Err(error) => {
                    tracing::warn!(%error, path = %options.path, "election lost its footing; campaigning again");
                    return CandidacyEnd::Lost;
                }
            };
            tokio::select! {
                () = shutdown.wait() => return CandidacyEnd::Shutdown,
                // Our predecessor left (or, when leading, our own node changed): where do we stand now?
                _ = watcher.changed() => {}
                state = states.changed() => {
                    leadership.set(false, &options.path);
                    match state {
                        zk::SessionState::SyncConnected => {}
                        zk::SessionState::Disconnected | zk::SessionState::ConnectedReadOnly => {
                            tracing::warn!(path = %options.path, "ZooKeeper connection lost; not leading until it is back");
                            if let Some(outcome) = reconnected(&mut states, shutdown).await {
                                return outcome;
                            }
                        }
                        state => {
                            tracing::warn!(?state, path = %options.path, "ZooKeeper session ended; campaigning again");
                            return CandidacyEnd::Lost;
                        }
                    }
                }
            }
        }
    }

    /// Whether we lead now, and a watch on the node whose change can alter that: our predecessor's, or our
    /// own when leading (it vanishes only with the session). `None` when that node is already gone.
    async fn take_place(
        &self,
        options: &ElectionOptions,
    ) -> Result<Option<(bool, zk::OneshotWatcher)>, ElectionError> {
        let children = call(options, self.client.list_children(&options.path)).await?;
        let mut line: Vec<(i64, &str)> = children
            .iter()
            .filter_map(|child| Some((sequence_of(child)?, child.as_str())))
            .collect();
        line.sort_unstable();
        let Some(place) = line.iter().position(|(_, child)| *child == self.name) else {
            return Err(zk::Error::NoNode.into());
        };
        let watched = match place.checked_sub(1) {
            Some(ahead) => line[ahead].1,
            None => self.name.as_str(),
        };
        let (stat, watcher) = call(
            options,
            self.client
                .check_and_watch_stat(&self.node(options, watched)),
        )
        .await?;
        Ok(stat.map(|_| (place == 0, watcher)))
    }

    /// Deletes our node (best effort: if ZooKeeper is unreachable, the node goes with the session) and closes the
    /// session.
    async fn leave(self, options: &ElectionOptions) {
        let node = self.node(options, &self.name);
        match call(options, self.client.delete(&node, None)).await {
            Ok(()) | Err(ElectionError::ZooKeeper(zk::Error::NoNode)) => {}
            Err(error) => {
                tracing::warn!(%error, %node, "cannot delete the election node; it goes with the session")
            }
        }
    }
}

/// Waits, while disconnected, for the session to come back (`None`), end, or shutdown.
async fn reconnected(states: &mut zk::StateWatcher, shutdown: &Shutdown) -> Option<CandidacyEnd> {
    loop {
        let state = tokio::select! {
            () = shutdown.wait() => return Some(CandidacyEnd::Shutdown),
            state = states.changed() => state,
        };
        match state {
            zk::SessionState::SyncConnected => return None,
            zk::SessionState::Disconnected | zk::SessionState::ConnectedReadOnly => {}
            _ => return Some(CandidacyEnd::Lost),
        }
    }
}

/// The sequence number ZooKeeper appended to a candidate node's name.
fn sequence_of(child: &str) -> Option<i64> {
    child.strip_prefix(CANDIDATE_PREFIX)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_ordered_by_their_sequence() {
        assert_eq!(sequence_of("candidate-0000000042"), Some(42));
        assert_eq!(sequence_of("candidate-2147483648"), Some(2_147_483_648));
        assert_eq!(sequence_of("lock-0000000001"), None);
        assert_eq!(sequence_of("candidate-"), None);
    }
}
