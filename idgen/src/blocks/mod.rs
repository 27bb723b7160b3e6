//! Blocks of one dense counter leased from ZooKeeper: the numbers behind short codes. A process leases a block
//! `[start, end)` and issues its numbers from memory; no number is ever issued twice, by any process, even
//! across crashes, timeouts and ZooKeeper leader changes.
//!
//! The counter is one persistent znode holding a decimal `u64`, the first number nobody has leased. A lease
//! reads it with its version `v` and writes `start + size` expecting `v` ([`counter`]). Why that is safe:
//! - ZooKeeper's leader applies writes one at a time, so of all the writes that expect version `v` exactly one
//!   succeeds; every other gets `BadVersion`, reads again and retries. Each successful write moves the counter
//!   from the value it read to a higher one, so the ranges handed out are disjoint.
//! - A read may come from a follower that lags behind the leader. A stale read carries a stale version too, so
//!   the write based on it fails with `BadVersion`: a stale read costs a retry, never a repeated number.
//! - A write whose answer times out (a partition, a leader election) may or may not have been applied, and may
//!   still be applied later. Its range is abandoned, never issued: if the write lands, those numbers are simply
//!   skipped; if not, nobody saw them. A late-landing write expects a version that any later write has already
//!   moved past, so it cannot move the counter back.
//! - A process that crashes loses the rest of its blocks (at most two: the current and the spare), nothing more.
//!
//! The counter node must never be deleted: it would be created again at 0 and every number issued again.
//!
//! [`CodeBlocks`] holds a current block and a spare leased in the background once half the current one is used,
//! so a ZooKeeper outage shorter than a block's life does not stop creates; the block size adapts to the rate,
//! so at most about one lease a second per process and at most one ZooKeeper write per 1,000 numbers
//! ([`supply`]).
//!
//! # Layout
//! - [`counter`]: the counter znode and the versioned lease.
//! - [`supply`]: the current and spare block, and how big the next one is (no I/O).
//! - [`code_blocks`]: what embedders hold: issues numbers, and keeps a spare leased in the background.

pub mod code_blocks;
pub mod counter;
pub mod supply;

use std::time::Duration;

use zookeeper_client as zk;

pub use code_blocks::CodeBlocks;
pub use counter::{Counter, CounterOptions};

/// Smallest block leased unless configured otherwise: one ZooKeeper write per 1,000 numbers at most.
pub const DEFAULT_MIN_BLOCK: u64 = 1_000;
/// Largest block leased: at 20,000 numbers a second it lasts 50 s; a crash loses at most two.
pub const DEFAULT_MAX_BLOCK: u64 = 1_000_000;

/// What [`CodeBlocks`] leases and how big its blocks may get.
#[derive(Debug, Clone)]
pub struct BlockOptions {
    /// The counter and how to reach it.
    pub counter: CounterOptions,
    /// The first block's size, and the smallest any block gets.
    pub min_block: u64,
    /// The largest any block gets.
    pub max_block: u64,
}

/// Why numbers could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    /// ZooKeeper did not answer in time; a write that timed out is abandoned.
    #[error("ZooKeeper did not answer within {timeout_ms} ms")]
    Timeout {
        /// The bound.
        timeout_ms: u128,
    },
    /// ZooKeeper answered with an error.
    #[error("ZooKeeper: {0}")]
    ZooKeeper(#[from] zk::Error),
    /// Other processes moved the counter on every attempt.
    #[error("the code counter moved under us on {attempts} attempts in a row")]
    Contended {
        /// Attempts made.
        attempts: u32,
    },
    /// The counter node does not hold a decimal number.
    #[error("the code counter at {0} is not a number")]
    Unreadable(String),
    /// The counter node is gone after we used it: someone deleted it. Creating it again at 0 would issue every
    /// number again, so we refuse.
    #[error("the code counter at {0} has been deleted; it must be restored by hand, above every number issued")]
    Deleted(String),
    /// The counter would pass `u64::MAX`.
    #[error("the code counter is exhausted")]
    Exhausted,
    /// A block size of 0, or a minimum above the maximum.
    #[error("invalid block size: {0}")]
    InvalidSize(String),
    /// Both blocks were used up and no new one came within the bound: temporary.
    #[error("no block of the code counter could be leased within {waited_ms} ms")]
    NoBlock {
        /// How long the caller waited.
        waited_ms: u128,
    },
}

/// Bounds a ZooKeeper call.
async fn call<T>(
    timeout: Duration,
    future: impl std::future::Future<Output = Result<T, zk::Error>>,
) -> Result<T, BlockError> {
    crate::zookeeper::bounded(timeout, future).await
}

impl crate::zookeeper::CallError for BlockError {
    fn timed_out(timeout: Duration) -> Self {
        Self::Timeout {
            timeout_ms: timeout.as_millis(),
        }
    }
}
