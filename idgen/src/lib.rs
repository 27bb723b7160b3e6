//! Snowflake-style 64-bit IDs that are never duplicated: 41 bits of milliseconds since a custom epoch, 10 bits of
//! worker ID, 12 bits of sequence (configurable). Each generator leases its worker ID from ZooKeeper and stops
//! issuing as soon as it cannot be sure it still holds it. And numbers for short codes, from blocks of one dense
//! counter leased from ZooKeeper, never issued twice. Embedded by the shortener; served over HTTP by the `idgen`
//! binary for other services.
//!
//! # Layout
//! - [`blocks`]: blocks of a dense counter leased from ZooKeeper, the numbers behind short codes.
//! - [`layout`]: the bit layout, composing and decoding IDs.
//! - [`clock`]: the time source, injectable for tests.
//! - [`config`]: the flags every embedder shares.
//! - [`generator`]: lock-free ID issue on one atomic state word.
//! - [`lease`]: the worker-ID lease and clock high-water mark in ZooKeeper, and the task that keeps them.
//! - [`metrics`]: the Prometheus series of the generator and of the code blocks.
//! - [`service`]: the HTTP service (`GET /v1/ids`, `GET /v1/ids/{id}`, `POST /v1/blocks`).
//! - [`zookeeper`]: connecting to ZooKeeper with our identity, and the ACL of our nodes (shared with the
//!   shortener's election).
#![forbid(unsafe_code)]

pub mod blocks;
pub mod clock;
pub mod config;
pub mod generator;
pub mod layout;
pub mod lease;
pub mod metrics;
pub mod service;
pub mod zookeeper;

use std::{sync::Arc, time::Duration};

use plumbing::tasks::Supervisor;

pub use generator::{GenerateError, Generator, Grant};
pub use layout::{Decoded, Layout, LayoutError};
pub use lease::{LeaseError, LeaseKeeper, LeaseOptions};

/// A generator whose worker ID is leased: what embedders hold.
pub struct LeasedGenerator {
    /// The generator; issues only while the lease is held.
    pub generator: Arc<Generator>,
    /// The task keeping the lease; await [`LeaseKeeper::stopped`] after shutdown.
    pub keeper: LeaseKeeper,
}

/// Builds the generator these flags describe and leases its worker ID; the lease is kept by a task of
/// `supervisor` until its shutdown.
///
/// # Errors
/// A bad layout, or a lease that cannot be taken (ZooKeeper unreachable, every worker ID taken).
pub async fn start(
    args: &config::IdgenArgs,
    metrics: metrics::IdgenMetrics,
    supervisor: &Supervisor,
) -> anyhow::Result<LeasedGenerator> {
    use anyhow::Context as _;
    let layout = args
        .layout()
        .context("invalid ID layout (--time-bits, --worker-bits, --sequence-bits)")?;
    if let Some(max_workers) = args.max_workers {
        anyhow::ensure!(
            (1..=layout.worker_count()).contains(&max_workers),
            "--max-workers (IDGEN_MAX_WORKERS) must be from 1 to {}, the worker IDs the layout has",
            layout.worker_count()
        );
    }
    let max_backwards = Duration::from_millis(args.max_clock_backwards_ms);
    let generator = Arc::new(Generator::new(
        layout,
        clock::SystemClock,
        max_backwards,
        metrics,
    ));
    let lease = args.lease()?;
    let keeper = LeaseKeeper::start(lease, Arc::clone(&generator), supervisor)
        .await
        .with_context(|| {
            format!(
                "cannot lease a worker ID from ZooKeeper at {} (--zookeeper-connect)",
                args.zookeeper_connect
            )
        })?;
    Ok(LeasedGenerator { generator, keeper })
}
