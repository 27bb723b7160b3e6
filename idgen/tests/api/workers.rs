//! Worker IDs: distinct per generator, so IDs drawn from many generators at once never collide; and a clear
//! error when every allowed worker ID is taken.

use std::collections::HashSet;

use crate::helpers::{args, lease, Leased};

const TOTAL: usize = 1_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_generators_get_distinct_workers_and_a_million_ids_drawn_at_once_are_unique() {
    let chroot = testkit::zookeeper_chroot().await;
    let args = args(&chroot);
    let mut generators: Vec<Leased> = Vec::new();
    for _ in 0..3 {
        generators.push(lease(&args).await.expect("a worker ID"));
    }
    let workers: HashSet<u64> = generators.iter().map(Leased::worker).collect();
    assert_eq!(workers.len(), 3, "three distinct worker IDs: {workers:?}");

    let draws: Vec<_> = generators
        .iter()
        .enumerate()
        .map(|(index, leased)| {
            let generator = std::sync::Arc::clone(&leased.generator);
            let share = TOTAL / 3 + usize::from(index < TOTAL % 3);
            tokio::task::spawn_blocking(move || {
                // Mix single IDs and batches of varying size, as the shortener and the HTTP API take them.
                let mut ids = Vec::with_capacity(share);
                while ids.len() < share {
                    let batch = (ids.len() % 997 + 1).min(share - ids.len());
                    if batch == 1 {
                        ids.push(generator.next_id().expect("an ID"));
                    } else {
                        ids.extend(generator.next_ids(batch).expect("IDs"));
                    }
                }
                ids
            })
        })
        .collect();

    let mut all = HashSet::with_capacity(TOTAL);
    for (draw, leased) in draws.into_iter().zip(&generators) {
        let ids = draw.await.expect("drawing thread");
        assert!(
            ids.windows(2).all(|pair| pair[0] < pair[1]),
            "each generator's IDs strictly increase"
        );
        let layout = leased.generator.layout();
        assert!(
            ids.iter()
                .all(|id| layout.decode(*id).map(|d| d.worker) == Some(leased.worker())),
            "every ID carries its generator's worker ID"
        );
        all.extend(ids);
    }
    assert_eq!(all.len(), TOTAL, "all {TOTAL} IDs are distinct");
    for leased in generators {
        leased.stop().await;
    }
}

#[tokio::test]
async fn with_four_worker_ids_allowed_the_fifth_generator_fails_with_a_clear_error() {
    let chroot = testkit::zookeeper_chroot().await;
    let mut args = args(&chroot);
    args.max_workers = Some(4);
    let mut generators = Vec::new();
    for _ in 0..4 {
        generators.push(lease(&args).await.expect("one of four worker IDs"));
    }

    let fifth = lease(&args).await;

    let error = format!("{:#}", fifth.err().expect("the fifth generator fails"));
    assert!(
        error.contains("all 4 worker IDs are leased by other generators"),
        "unclear error: {error}"
    );
    for leased in generators {
        leased.stop().await;
    }
}
