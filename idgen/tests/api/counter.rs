//! The code counter (`idgen::blocks::Counter`): leases from separate sessions at once never overlap and leave
//! no gap; a counter whose session expired opens a new one.

use std::{ops::Range, time::Duration};

use idgen::{blocks::Counter, metrics::BlockMetrics};
use testkit::proxy::{ProxyMode, TcpProxy};

use crate::helpers::{args, connect_string, server_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_leasers_get_disjoint_ranges_that_run_on_from_zero() {
    let chroot = testkit::zookeeper_chroot().await;
    let options = args(&chroot).blocks().expect("settings").counter;

    let leasers: Vec<_> = (0..3_u64)
        .map(|leaser| {
            let options = options.clone();
            tokio::spawn(async move {
                let metrics = BlockMetrics::unregistered();
                let counter = Counter::connect(options, metrics.clone())
                    .await
                    .expect("connects");
                let mut ranges = Vec::new();
                for lease in 0..40_u64 {
                    let size = 1 + (lease * 7 + leaser) % 50;
                    ranges.push(counter.lease(size).await.expect("a block"));
                }
                (ranges, metrics.lease_conflicts.get())
            })
        })
        .collect();
    let mut ranges: Vec<Range<u64>> = Vec::new();
    let mut conflicts = 0;
    for leaser in leasers {
        let (leased, conflicted) = leaser.await.expect("leaser");
        ranges.extend(leased);
        conflicts += conflicted;
    }

    assert_eq!(ranges.len(), 120);
    ranges.sort_by_key(|range| range.start);
    let mut next = 0;
    for range in &ranges {
        assert_eq!(range.start, next, "a gap or an overlap before {range:?}");
        assert!(range.end > range.start);
        next = range.end;
    }
    println!("120 leases from 3 sessions, {conflicts} version conflicts retried");
}

#[tokio::test]
async fn a_block_of_no_numbers_is_refused() {
    let chroot = testkit::zookeeper_chroot().await;
    let options = args(&chroot).blocks().expect("settings").counter;
    let counter = Counter::connect(options, BlockMetrics::unregistered())
        .await
        .expect("connects");

    assert!(counter.lease(0).await.is_err());
    assert_eq!(counter.lease(5).await.expect("a block"), 0..5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_whose_session_expired_leases_again_on_a_new_one() {
    let chroot = testkit::zookeeper_chroot().await;
    let proxy = TcpProxy::start(&server_of(&chroot).to_string()).await;
    let mut options = args(&connect_string(&proxy, &chroot))
        .blocks()
        .expect("settings")
        .counter;
    options.zookeeper.session_timeout = Duration::from_secs(2);
    options.call_timeout = Duration::from_secs(1);
    let counter = Counter::connect(options, BlockMetrics::unregistered())
        .await
        .expect("connects");
    let first = counter.lease(10).await.expect("a block");

    // Longer than the client waits before it declares the session expired (1.4 × the timeout).
    proxy.set(ProxyMode::Stall);
    tokio::time::sleep(Duration::from_secs(4)).await;
    proxy.set(ProxyMode::Forward);

    let again = testkit::eventually(Duration::from_secs(10), "a lease works again", || async {
        counter.lease(10).await.ok()
    })
    .await;
    assert!(again.start >= first.end, "{first:?} then {again:?}");
}
