//! The clock high-water mark: a new holder waits until its clock has passed the mark recorded for its worker
//! ID, skips a worker ID whose mark is absurdly far ahead for another one, and a clean shutdown records the
//! exact last timestamp.

use std::time::Duration;

use idgen::{
    clock::{Clock, ManualClock, SystemClock},
    GenerateError, Generator, LeaseError,
};

use crate::helpers::{
    args, lease, lease_for, manual_generator, observer, read_mark, within, worker_path, write_mark,
};

#[tokio::test]
async fn a_new_holder_whose_recorded_mark_lies_in_its_future_waits_until_past_it() {
    let chroot = testkit::zookeeper_chroot().await;
    let observer = observer(&chroot).await;
    let now = SystemClock.now_ms();
    let mark = now + 5_000;
    write_mark(&observer, 0, mark).await;
    let settings = args(&chroot);
    let clock = ManualClock::at(now);
    let generator = manual_generator(&settings, &clock);

    let mut leasing = tokio::spawn({
        let (settings, generator) = (settings.clone(), generator.clone());
        async move { lease_for(&settings, &generator).await }
    });
    // The worker node comes before the wait for the mark; at the mark itself the clock is still not past it.
    testkit::eventually(
        Duration::from_secs(10),
        "the worker ID is claimed",
        || async {
            observer
                .check_stat(&worker_path(0))
                .await
                .is_ok_and(|stat| stat.is_some())
        },
    )
    .await;
    clock.set(mark);
    let still_waiting = tokio::time::timeout(Duration::from_millis(300), &mut leasing).await;

    assert!(
        still_waiting.is_err(),
        "leasing waits while the clock is not past the mark"
    );
    assert_eq!(generator.next_id(), Err(GenerateError::NotLeased));
    clock.set(mark + 1);
    let leased = within(Duration::from_secs(10), "the lease is taken", leasing)
        .await
        .expect("task")
        .expect("a lease once past the mark");
    assert_eq!(leased.worker(), 0);
    let id = generator.next_id().expect("an ID");
    assert_eq!(
        generator.layout().decode(id).map(|d| d.unix_ms),
        Some(mark + 1)
    );
    leased.stop().await;
}

#[tokio::test]
async fn a_worker_id_whose_mark_is_absurdly_far_ahead_is_skipped_for_the_next_free_one_and_counted()
{
    let chroot = testkit::zookeeper_chroot().await;
    let observer = observer(&chroot).await;
    let now = SystemClock.now_ms();
    write_mark(&observer, 0, now + 86_400_000).await;
    let settings = args(&chroot);
    let generator = manual_generator(&settings, &ManualClock::at(now));

    let leased = lease_for(&settings, &generator)
        .await
        .expect("another worker ID");

    assert_eq!(leased.worker(), 1);
    assert!(generator.next_id().is_ok());
    assert_eq!(skipped_for_mark_ahead(&generator), 1);
    assert_eq!(
        observer.check_stat(&worker_path(0)).await.expect("stat"),
        None,
        "the skipped worker ID is free again"
    );
    leased.stop().await;
}

#[tokio::test]
async fn when_every_free_worker_id_has_a_mark_absurdly_far_ahead_leasing_fails_with_a_clear_error()
{
    let chroot = testkit::zookeeper_chroot().await;
    let observer = observer(&chroot).await;
    let now = SystemClock.now_ms();
    write_mark(&observer, 0, now + 86_400_000).await;
    let mut settings = args(&chroot);
    settings.max_workers = Some(1);
    let generator = manual_generator(&settings, &ManualClock::at(now));

    let error = lease_for(&settings, &generator)
        .await
        .err()
        .expect("refused");

    assert!(
        matches!(
            error,
            LeaseError::NoneUsable {
                count: 1,
                mark_ahead: 1,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("recorded clock mark"), "{error}");
    assert_eq!(skipped_for_mark_ahead(&generator), 1);
    assert_eq!(
        observer.check_stat(&worker_path(0)).await.expect("stat"),
        None,
        "the worker ID is free again"
    );
}

fn skipped_for_mark_ahead(generator: &Generator) -> u64 {
    generator
        .metrics()
        .worker_ids_skipped
        .with_label_values(&["mark_ahead"])
        .get()
}

#[tokio::test]
async fn a_holder_records_marks_ahead_of_its_clock_and_its_exact_last_timestamp_at_shutdown() {
    let chroot = testkit::zookeeper_chroot().await;
    let observer = observer(&chroot).await;
    let leased = lease(&args(&chroot)).await.expect("a lease");
    let worker = leased.worker();
    let generator = std::sync::Arc::clone(&leased.generator);
    let last = *generator.next_ids(10).expect("IDs").last().expect("ten");
    let last_ms = generator.layout().decode(last).expect("ours").unix_ms;

    let while_held = read_mark(&observer, worker).await;
    leased.stop().await;
    let after_shutdown = read_mark(&observer, worker).await;

    assert!(
        while_held > SystemClock.now_ms(),
        "a holder's mark reserves time ahead of its clock"
    );
    assert_eq!(
        after_shutdown, last_ms,
        "the final mark is the last timestamp issued"
    );
    assert_eq!(
        observer
            .check_stat(&worker_path(worker))
            .await
            .expect("stat"),
        None,
        "the worker ID is released"
    );
}
