//! A ZooKeeper node killed (SIGKILL) under the trickle. A follower: its clients reconnect to another server
//! inside their session timeout, so the worker-ID leases (idgen's, the shortener's) and the cleanup election
//! hold, and nothing fails. The leader: every session waits for a new election, which the lease's fence (stop
//! issuing after the session timeout less a margin without an answer) may or may not outlast; measured, not
//! asserted to be free. And the code counter leased from three sessions through a leader kill: no number is
//! ever leased twice.

use std::{
    ops::Range,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use idgen::{
    blocks::{Counter, CounterOptions},
    metrics::BlockMetrics,
};

use crate::{
    services::{self, Restore},
    stack,
    trickle::{self, Kind},
};

/// Longer than the services' ZooKeeper session timeout (6 s): a session that was not carried over to another
/// server would have expired, and its lease with it, inside the window.
const WATCH: Duration = Duration::from_secs(10);

/// The serving node in `mode` (leader or follower) holding the most client connections, so the kill cuts
/// sessions rather than an idle node.
fn victim(mode: &str) -> u16 {
    (1..=3u16)
        .filter(|&n| services::zookeeper_mode(n).as_deref() == Some(mode))
        .max_by_key(|&n| services::zookeeper_connections(n))
        .unwrap_or_else(|| panic!("no ZooKeeper {mode}"))
}

/// Kills node `n` under the trickle and watches for [`WATCH`]; what the trickle saw.
async fn kill_under_trickle(stack: &stack::Stack, n: u16) -> trickle::Record {
    let mut stored = Vec::new();
    for i in 0..20 {
        stored.push(
            stack
                .create(&format!("https://example.com/stored/{i}"))
                .await,
        );
    }
    let trickle = trickle::start(stack, stored);
    trickle
        .wait_for_successes(trickle.started(), trickle::FLOWING)
        .await;
    let killed = Instant::now();
    services::kill_by_pidfile(&services::zookeeper_pidfile(n));
    tokio::time::sleep(WATCH.saturating_sub(killed.elapsed())).await;
    trickle.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_a_zookeeper_follower_fails_no_id_request_create_or_redirect() {
    let _serial = services::serial().await;
    services::wait_whole(Duration::from_secs(60)).await;
    let stack = stack::spawn(true).await;
    let leads = || async {
        testkit::metric(&stack.shortener_admin, "shortener_cleanup_leader").await == 1.0
    };
    testkit::eventually(
        Duration::from_secs(10),
        "the shortener leads the cleanup",
        leads,
    )
    .await;
    let n = victim("follower");
    let restore = Restore::new(format!("ZooKeeper node {n}"));

    let record = kill_under_trickle(&stack, n).await;
    eprintln!("ZooKeeper follower {n} killed: {}", record.summary());

    for kind in [Kind::Ids, Kind::Create, Kind::Redirect] {
        assert!(
            record.failures(kind).is_empty(),
            "{kind:?} failed: {}",
            record.describe_failures(kind)
        );
    }
    let ready = stack.readyz(&stack.shortener_admin).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    // The election pauses while disconnected and resumes on the same session, its node intact.
    testkit::eventually(
        Duration::from_secs(5),
        "the shortener leads the cleanup again",
        leads,
    )
    .await;
    restore.now(Duration::from_secs(60)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
/// Killing the leader may fence IDs for a few seconds by design (a generator stops issuing while it cannot be sure
/// its lease holds); what must hold is that ID requests and creates come back without a restart.
async fn after_the_zookeeper_leader_is_killed_ids_and_creates_come_back() {
    let _serial = services::serial().await;
    services::wait_whole(Duration::from_secs(60)).await;
    let stack = stack::spawn(true).await;
    let n = victim("leader");
    let restore = Restore::new(format!("ZooKeeper node {n}"));

    let record = kill_under_trickle(&stack, n).await;
    eprintln!("ZooKeeper leader {n} killed: {}", record.summary());
    for kind in [Kind::Ids, Kind::Create] {
        eprintln!("{kind:?} failures: {}", record.describe_failures(kind));
    }

    for kind in [Kind::Ids, Kind::Create] {
        assert!(
            record
                .of(kind)
                .last()
                .is_some_and(|event| event.status.is_some_and(|s| s < 300)),
            "{kind:?} did not recover: {}",
            record.describe_failures(kind)
        );
    }
    restore.now(Duration::from_secs(60)).await;
}

/// What one leaser got: each block with when it came, and how many leases failed.
struct Leased {
    blocks: Vec<(Instant, Range<u64>)>,
    failures: usize,
}

/// Leases blocks of 10 on a session of its own until `stop`, going on after failures.
async fn lease_until(options: CounterOptions, stop: Arc<AtomicBool>) -> Leased {
    let counter = Counter::connect(options, BlockMetrics::unregistered())
        .await
        .expect("the counter is reachable");
    let mut leased = Leased {
        blocks: Vec::new(),
        failures: 0,
    };
    while !stop.load(Ordering::Relaxed) {
        match counter.lease(10).await {
            Ok(block) => leased.blocks.push((Instant::now(), block)),
            Err(_) => {
                leased.failures += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    leased
}

/// Writes whose answers were lost in the election are abandoned, never reused, and a read from a follower that
/// missed the last writes only costs a version conflict: what the three leasers got never overlaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leasing_code_blocks_through_a_zookeeper_leader_kill_never_repeats_a_number() {
    let _serial = services::serial().await;
    services::wait_whole(Duration::from_secs(60)).await;
    let chroot = testkit::zookeeper_chroot().await;
    let options = idgen::config::IdgenArgs::new(chroot)
        .blocks()
        .expect("settings")
        .counter;
    let stop = Arc::new(AtomicBool::new(false));
    let leasers: Vec<_> = (0..3)
        .map(|_| tokio::spawn(lease_until(options.clone(), Arc::clone(&stop))))
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let n = victim("leader");
    let restore = Restore::new(format!("ZooKeeper node {n}"));

    let killed = Instant::now();
    services::kill_by_pidfile(&services::zookeeper_pidfile(n));
    tokio::time::sleep(WATCH).await;
    stop.store(true, Ordering::Relaxed);
    let (mut blocks, mut failures) = (Vec::new(), 0);
    for leaser in leasers {
        let leased = leaser.await.expect("leaser");
        blocks.extend(leased.blocks);
        failures += leased.failures;
    }

    let after_kill = blocks.iter().filter(|(at, _)| *at > killed).count();
    eprintln!(
        "ZooKeeper leader {n} killed: {} blocks leased ({after_kill} after the kill), {failures} leases failed",
        blocks.len()
    );
    let mut ranges: Vec<Range<u64>> = blocks.into_iter().map(|(_, block)| block).collect();
    ranges.sort_by_key(|block| block.start);
    for pair in ranges.windows(2) {
        assert!(
            pair[0].end <= pair[1].start,
            "leased twice: {:?} and {:?}",
            pair[0],
            pair[1]
        );
    }
    assert!(
        after_kill > 0,
        "no block was leased after the leader was killed"
    );
    restore.now(Duration::from_secs(60)).await;
}
