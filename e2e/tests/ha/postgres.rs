//! The PostgreSQL primary killed (its Patroni and its postgres, SIGKILL) under the trickle: Patroni promotes the
//! synchronous standby once the dead leader's key expires in ZooKeeper, and the services, not restarted, follow.
//! And a planned switchover: the old primary is demoted and stays up, so connections to it must not be reused.

use std::time::{Duration, Instant};

use crate::{
    services::{self, Restore},
    stack::{self, Stack},
    trickle::{self, Kind, Record, FLOWING},
};

/// The bound on a failover, as clients see it.
const FAILOVER_BOUND: Duration = Duration::from_secs(45);

/// What a primary change may cost clients, and what it may not: creates fail only with 503 and Retry-After, for
/// at most [`FAILOVER_BOUND`], and succeed again; no redirect of a stored link and no ID request fails; every
/// acknowledged create is on the primary now; `/readyz` of the shortener and the redirect names `primary`.
async fn assert_followed(stack: &Stack, record: &Record, primary: u16) {
    let creates = record.describe_failures(Kind::Create);
    assert!(
        record
            .failures(Kind::Create)
            .iter()
            .all(|event| event.status == Some(503) && event.retry_after),
        "creates failed otherwise than 503 with Retry-After: {creates}"
    );
    let outage = record.outage(Kind::Create).unwrap_or_default();
    assert!(
        outage <= FAILOVER_BOUND,
        "creates failed for {outage:?}: {creates}"
    );
    assert!(
        record
            .of(Kind::Create)
            .last()
            .is_some_and(|event| event.status == Some(201)),
        "creates did not recover: {creates}"
    );
    for kind in [Kind::Redirect, Kind::Ids] {
        assert!(
            record.failures(kind).is_empty(),
            "{kind:?} failed: {}",
            record.describe_failures(kind)
        );
    }
    let acknowledged = record.acknowledged();
    assert_eq!(
        stack.stored(&acknowledged).await,
        i64::try_from(acknowledged.len()).expect("a count"),
        "an acknowledged create is missing on the primary"
    );
    for admin in [&stack.shortener_admin, &stack.redirect_admin] {
        let ready = stack.readyz(admin).await;
        assert_eq!(
            ready["postgresql_primary"],
            format!("127.0.0.1:{}", 55431 + primary),
            "{ready}"
        );
    }
}

/// One fault at a time, the cluster whole, the services up with links stored, and which node is primary.
async fn arrange() -> (
    tokio::sync::MutexGuard<'static, ()>,
    Stack,
    Vec<String>,
    u16,
) {
    let serial = services::serial().await;
    services::wait_whole(Duration::from_secs(60)).await;
    let stack = stack::spawn(false).await;
    let stored = stack.store_links(20).await;
    let primary = services::patroni_leader(&stack.http)
        .await
        .expect("Patroni names a leader");
    (serial, stack, stored, primary)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_primary_answers_503_with_retry_after_then_201_within_45_s_and_loses_no_acknowledged_create(
) {
    let (_serial, stack, stored, old) = arrange().await;
    let ready = stack.readyz(&stack.shortener_admin).await;
    assert_eq!(
        ready["postgresql_primary"],
        format!("127.0.0.1:{}", 55431 + old),
        "{ready}"
    );

    let trickle = trickle::start(&stack, stored);
    trickle.wait_for_successes(trickle.started(), FLOWING).await;
    let restore = Restore::new(format!("PostgreSQL node pg{old}"));
    let killed = Instant::now();
    for pidfile in services::patroni_pidfiles(old) {
        services::kill_by_pidfile(&pidfile);
    }
    trickle
        .wait_for_recovery(
            Kind::Create,
            killed,
            FAILOVER_BOUND + Duration::from_secs(15),
        )
        .await;
    trickle.wait_for_successes(Instant::now(), FLOWING).await;
    let record = trickle.stop().await;
    eprintln!("primary pg{old} killed: {}", record.summary());
    eprintln!("failed creates: {}", record.describe_failures(Kind::Create));

    let new = services::patroni_leader(&stack.http)
        .await
        .expect("Patroni names a new leader");
    assert_ne!(new, old);
    assert_followed(&stack, &record, new).await;
    restore.now(Duration::from_secs(180)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_switchover_creates_go_to_the_new_primary_without_a_restart() {
    let (_serial, stack, stored, old) = arrange().await;
    let candidate = services::patroni_member(&stack.http, "sync_standby")
        .await
        .expect("a synchronous standby");

    let trickle = trickle::start(&stack, stored);
    trickle.wait_for_successes(trickle.started(), FLOWING).await;
    let asked = Instant::now();
    services::patroni_switchover(&stack.http, old, candidate).await;
    trickle
        .wait_for_recovery(Kind::Create, asked, Duration::from_secs(20))
        .await;
    trickle.wait_for_successes(Instant::now(), FLOWING).await;
    let record = trickle.stop().await;
    eprintln!("switchover pg{old} -> pg{candidate}: {}", record.summary());

    assert_followed(&stack, &record, candidate).await;
    services::wait_whole(Duration::from_secs(60)).await;
}
