//! How new links get their codes: compact 7-character codes (numbers from blocks of the code counter leased in
//! ZooKeeper, through the keyed permutation; the default), or the snowflake style (base62 of the link's ID, 10–11
//! characters). Also the task that announces the blocks being issued from to the redirect replicas, so that a
//! replica miss of a fresh compact code can be told from a made-up one.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use idgen::blocks::CodeBlocks;
use links::{
    cache::RedisCache,
    code::{self, CodeKey, CompactCodes},
    store::Store,
};
use plumbing::tasks::{Need, Supervisor, Task};

use crate::errors::ApiError;

/// How often the blocks being issued from are announced again, besides on every lease: a replica that was not
/// listening hears them within this (its grace after subscribing is longer).
const ANNOUNCE_EVERY: Duration = Duration::from_secs(5);

/// Which codes new links get (`--code-style`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CodeStyle {
    /// 7 characters: a counter number through a keyed permutation (needs CODE_KEY).
    Compact,
    /// 10–11 characters: base62 of the link's 64-bit ID.
    Snowflake,
}

/// Makes the codes of new links.
pub enum Minter {
    /// Compact codes of numbers from leased blocks.
    Compact {
        /// Where the numbers come from.
        blocks: Arc<CodeBlocks>,
        /// Numbers to codes.
        codes: CompactCodes,
    },
    /// Base62 of the link's ID.
    Snowflake,
}

impl Minter {
    /// The codes of links with these IDs, one each, never made before.
    ///
    /// # Errors
    /// 503 when no block of the code counter is at hand (ZooKeeper unreachable for longer than the blocks last).
    pub async fn mint(&self, ids: &[i64]) -> Result<Vec<String>, ApiError> {
        match self {
            Self::Snowflake => Ok(ids
                .iter()
                .map(|id| code::encode(id.unsigned_abs()))
                .collect()),
            Self::Compact { blocks, codes } => {
                let numbers = blocks
                    .take(ids.len())
                    .await
                    .map_err(|error| ApiError::unavailable_because("the code counter", error))?;
                numbers
                    .into_iter()
                    .map(|number| {
                        codes.encode(number).ok_or_else(|| {
                            ApiError::Internal(anyhow::anyhow!(
                                "the code counter is past its last range ({number})"
                            ))
                        })
                    })
                    .collect()
            }
        }
    }
}

/// Records the key's fingerprint in the database on first use, and refuses a key other than the one recorded:
/// its permutation would give out codes the first key already gave.
///
/// # Errors
/// Another key was recorded, or the database fails.
pub async fn check_key(store: &Store, key: &CodeKey) -> anyhow::Result<()> {
    let ours = key.fingerprint();
    let recorded = store
        .record_code_key(&ours)
        .await
        .context("cannot read the code key's fingerprint from PostgreSQL")?;
    anyhow::ensure!(
        recorded == ours,
        "CODE_KEY is not the key this database's codes were made with (its fingerprint is {recorded}, this key's \
         {ours}): every shortener of a deployment needs the same CODE_KEY, for good, or it would give out codes \
         already given"
    );
    Ok(())
}

/// Announces the blocks `blocks` issues from on the invalidation channel, whenever they change and every
/// [`ANNOUNCE_EVERY`], until shutdown. Best effort: a replica that misses them confirms fewer misses.
pub fn announce_blocks(blocks: &CodeBlocks, cache: RedisCache, supervisor: &Supervisor) -> Task {
    let mut live = blocks.live_blocks();
    let shutdown = supervisor.shutdown().clone();
    supervisor.spawn("code_block_announcer", Need::Optional, async move {
        let mut every = tokio::time::interval(ANNOUNCE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.wait() => return,
                changed = live.changed() => if changed.is_err() { return },
                _ = every.tick() => {}
            }
            let current = live.borrow_and_update().clone();
            if let Err(error) = cache.announce_blocks(&current).await {
                tracing::debug!(%error, "cannot announce the code blocks; next time");
            }
        }
    })
}
