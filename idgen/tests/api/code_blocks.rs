//! Numbers from blocks (`idgen::blocks::CodeBlocks`): never issued twice across embedders restarted under load;
//! the spare is leased at half use and carries takes through a ZooKeeper outage; blocks grow under a fast taker.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use idgen::{
    blocks::{BlockError, BlockOptions, CodeBlocks},
    metrics::BlockMetrics,
};
use plumbing::{shutdown::Shutdown, tasks::Supervisor};
use testkit::proxy::{ProxyMode, TcpProxy};

use crate::helpers::{args, connect_string, server_of, within};

/// Blocks from `min` to `max` numbers of the counter reached through `connect`.
fn options(connect: &str, min: u64, max: u64) -> BlockOptions {
    let mut settings = args(connect);
    settings.code_block_size = min;
    let mut options = settings.blocks().expect("settings");
    options.max_block = max;
    options
}

/// A `CodeBlocks` with its own supervisor, as one embedding process.
struct Running {
    blocks: Arc<CodeBlocks>,
    shutdown: Shutdown,
}

impl Running {
    async fn start(options: BlockOptions) -> Self {
        let shutdown = Shutdown::new();
        let supervisor = Supervisor::unregistered(shutdown.clone());
        let blocks = CodeBlocks::start(options, BlockMetrics::unregistered(), &supervisor)
            .await
            .expect("the first block is leased");
        Self { blocks, shutdown }
    }

    async fn stop(self) {
        self.shutdown.trigger();
        within(
            Duration::from_secs(10),
            "the refill stops",
            self.blocks.stopped(),
        )
        .await;
    }

    fn live_count(&self) -> usize {
        self.blocks.live_blocks().borrow().len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_embedders_restarted_under_load_never_issue_a_number_twice() {
    let chroot = testkit::zookeeper_chroot().await;
    let options = options(&chroot, 1_000, 1_000_000);
    let (runs, per_run) = (5, 66_667);

    let embedders: Vec<_> = (0..3)
        .map(|_| {
            let options = options.clone();
            tokio::spawn(async move {
                let mut numbers = Vec::with_capacity(runs * per_run);
                for run in 1..=runs {
                    let running = Running::start(options.clone()).await;
                    while numbers.len() < run * per_run {
                        numbers.extend(running.blocks.take(100).await.expect("numbers"));
                        tokio::task::yield_now().await;
                    }
                    running.stop().await;
                }
                numbers
            })
        })
        .collect();
    let mut numbers = Vec::new();
    for embedder in embedders {
        numbers.extend(embedder.await.expect("embedder"));
    }

    assert!(numbers.len() >= 1_000_000, "{}", numbers.len());
    numbers.sort_unstable();
    let repeated = numbers.windows(2).filter(|pair| pair[0] == pair[1]).count();
    assert_eq!(repeated, 0, "numbers issued twice");
    let highest = numbers.last().copied().unwrap_or(0);
    println!(
        "{} numbers from 3 embedders × {runs} runs, all distinct; highest {highest} ({} skipped by restarts)",
        numbers.len(),
        highest + 1 - numbers.len() as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_zookeeper_stalled_takes_go_on_through_the_spare_then_fail_within_the_timeout() {
    let chroot = testkit::zookeeper_chroot().await;
    let proxy = TcpProxy::start(&server_of(&chroot).to_string()).await;
    let mut options = options(&connect_string(&proxy, &chroot), 1_000, 1_000);
    options.counter.zookeeper.session_timeout = Duration::from_secs(20);
    options.counter.call_timeout = Duration::from_secs(1);
    let running = Running::start(options).await;

    running.blocks.take(499).await.expect("numbers");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        running.live_count(),
        1,
        "a spare before half the block was used"
    );
    running.blocks.take(1).await.expect("numbers");
    testkit::eventually(Duration::from_secs(5), "the spare is leased", || async {
        running.live_count() == 2
    })
    .await;
    proxy.set(ProxyMode::Stall);

    let rest = running
        .blocks
        .take(1_500)
        .await
        .expect("the spare carries on");
    let started = Instant::now();
    let failed = running.blocks.take(1).await;
    let waited = started.elapsed();

    assert_eq!(rest.len(), 1_500);
    assert!(
        matches!(failed, Err(BlockError::NoBlock { .. })),
        "{failed:?}"
    );
    assert!(
        waited < Duration::from_millis(1_800),
        "failed after {waited:?}"
    );
    proxy.set(ProxyMode::Forward);
    testkit::eventually(Duration::from_secs(10), "takes work again", || async {
        running.blocks.take(1).await.is_ok()
    })
    .await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_grow_under_a_fast_taker_and_never_pass_the_maximum() {
    let chroot = testkit::zookeeper_chroot().await;
    let running = Running::start(options(&chroot, 1_000, 16_000)).await;
    let live = running.blocks.live_blocks();
    let mut largest = 0;

    for _ in 0..400 {
        running.blocks.take(500).await.expect("numbers");
        let blocks = live.borrow().clone();
        let sizes = blocks.iter().map(|block| block.end - block.start);
        largest = sizes.fold(largest, u64::max);
        tokio::task::yield_now().await;
    }

    assert!(largest > 1_000, "blocks never grew");
    assert!(largest <= 16_000, "a block of {largest} numbers");
    println!("largest block {largest}");
    running.stop().await;
}
