//! Clock steps on a leased generator: a step back of 2 ms is ridden out on the last millisecond, one of 10 s
//! is refused and counted; IDs stay unique and increasing through both.

use std::collections::HashSet;

use idgen::{
    clock::{ManualClock, SystemClock},
    GenerateError,
};

use crate::helpers::{args, lease_for, manual_generator};

#[tokio::test]
async fn a_2_ms_step_back_is_ridden_out_and_a_10_s_step_back_is_refused_without_duplicates() {
    let chroot = testkit::zookeeper_chroot().await;
    let settings = args(&chroot);
    let start = idgen::clock::Clock::now_ms(&SystemClock);
    let clock = ManualClock::at(start);
    let generator = manual_generator(&settings, &clock);
    let leased = lease_for(&settings, &generator).await.expect("a lease");
    let timestamp = |id: u64| generator.layout().decode(id).expect("ours").unix_ms;

    let mut ids = generator.next_ids(100).expect("IDs");
    clock.set(start - 2);
    let after_small_step = generator
        .next_ids(100)
        .expect("a 2 ms step back is ridden out");
    assert!(
        after_small_step.iter().all(|id| timestamp(*id) == start),
        "IDs stay on the last millisecond until the clock passes it"
    );
    ids.extend(after_small_step);
    clock.set(start + 1);
    ids.extend(generator.next_ids(100).expect("the clock passed it"));

    clock.set(start + 1 - 10_000);
    assert_eq!(
        generator.next_id(),
        Err(GenerateError::ClockMovedBackwards { by_ms: 10_000 })
    );
    assert_eq!(generator.metrics().clock_backwards.get(), 1);
    clock.set(start + 2);
    ids.extend(generator.next_ids(100).expect("the clock is back"));

    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "IDs increase");
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        400,
        "no duplicate"
    );
    leased.stop().await;
}
