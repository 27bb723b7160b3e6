//! Who may touch the lease nodes: with ZooKeeper credentials only sessions holding them; a holder writes its
//! mark only while its worker node and mark are still its own, and frees only the node it created.

use std::time::Duration;

use idgen::{
    clock::{Clock, SystemClock},
    zookeeper::{ZooKeeperAuth, ZooKeeperOptions},
};
use testkit::eventually;
use zookeeper_client as zk;

use crate::helpers::{args, lease, mark_path, observer, read_mark, worker_path};

const DEADLINE: Duration = Duration::from_secs(15);

#[tokio::test]
async fn with_credentials_a_session_without_them_cannot_write_or_delete_the_lease_nodes() {
    let chroot = testkit::zookeeper_chroot().await;
    let mut settings = args(&chroot);
    settings.zookeeper_auth = Some("snowlink:s3cret".into());
    let leased = lease(&settings).await.expect("a lease");
    let worker = leased.worker();
    let anonymous = observer(&chroot).await;

    let deleted = anonymous.delete(&worker_path(worker), None).await;
    let written = anonymous.set_data(&mark_path(worker), b"1", None).await;
    let read = anonymous.get_data(&mark_path(worker)).await;

    assert_eq!(deleted, Err(zk::Error::NoAuth));
    assert_eq!(written.err(), Some(zk::Error::NoAuth));
    assert_eq!(read.err(), Some(zk::Error::NoAuth), "no world read either");
    let ours = ZooKeeperOptions {
        connect: chroot.clone(),
        session_timeout: Duration::from_secs(10),
        auth: Some(ZooKeeperAuth::new("snowlink:s3cret".into()).expect("user:password")),
    };
    let ours = ours.connector().connect(&chroot).await.expect("zookeeper");
    assert!(ours.get_data(&mark_path(worker)).await.is_ok());
    assert!(leased.generator.next_id().is_ok());
    leased.stop().await;
}

/// Does at `worker` what another generator does when it takes a worker ID whose node vanished: creates the
/// node on its own session, then takes the mark over with a value of its own.
async fn take_over(observer: &zk::Client, worker: u64, mark: u64) {
    let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    let mut replace = observer.new_multi_writer();
    replace
        .add_delete(&worker_path(worker), None)
        .expect("delete op");
    replace
        .add_create(&worker_path(worker), b"someone else", &ephemeral)
        .expect("create op");
    replace.commit().await.expect("node replaced");
    let (_, stat) = observer
        .get_data(&mark_path(worker))
        .await
        .expect("the mark exists");
    observer
        .set_data(
            &mark_path(worker),
            mark.to_string().as_bytes(),
            Some(stat.version),
        )
        .await
        .expect("mark taken over");
}

#[tokio::test]
async fn a_holder_whose_worker_id_was_taken_over_loses_the_lease_and_leaves_the_new_marks_alone() {
    let chroot = testkit::zookeeper_chroot().await;
    let mut settings = args(&chroot);
    settings.max_workers = Some(1);
    let leased = lease(&settings).await.expect("a lease");
    let observer = observer(&chroot).await;
    let theirs = SystemClock.now_ms() + 3_600_000;

    take_over(&observer, 0, theirs).await;

    eventually(DEADLINE, "the old holder stops issuing", || async {
        leased.generator.next_id().is_err()
    })
    .await;
    assert_eq!(leased.generator.metrics().lease_losses.get(), 1);
    // Past several renewal intervals: a holder that had not noticed would have written its own mark by now.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(read_mark(&observer, 0).await, theirs);
    assert_eq!(
        leased.generator.worker(),
        None,
        "the only worker ID is taken"
    );
    leased.stop().await;
    assert!(
        observer
            .check_stat(&worker_path(0))
            .await
            .expect("stat")
            .is_some_and(|stat| stat.ephemeral_owner == observer.session_id().0),
        "the new holder's node survives the old holder's shutdown"
    );
}

#[tokio::test]
async fn a_holder_whose_worker_node_was_deleted_loses_the_lease_at_its_next_renewal_and_leases_again(
) {
    let chroot = testkit::zookeeper_chroot().await;
    let leased = lease(&args(&chroot)).await.expect("a lease");
    let observer = observer(&chroot).await;

    observer
        .delete(&worker_path(leased.worker()), None)
        .await
        .expect("operator deletes the node");

    eventually(DEADLINE, "the lease is reported lost", || async {
        leased.generator.metrics().lease_losses.get() == 1
    })
    .await;
    eventually(DEADLINE, "a worker ID is leased again", || async {
        leased.generator.next_id().is_ok()
    })
    .await;
    leased.stop().await;
}

#[tokio::test]
async fn release_leaves_alone_a_worker_node_another_session_made_at_the_same_path() {
    let chroot = testkit::zookeeper_chroot().await;
    let mut settings = args(&chroot);
    // No renewal during the test (every ~9 s): only release can touch the node.
    settings.session_timeout_ms = 30_000;
    settings.mark_interval_ms = 20_000;
    let leased = lease(&settings).await.expect("a lease");
    let worker = leased.worker();
    let observer = observer(&chroot).await;
    let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    observer
        .delete(&worker_path(worker), None)
        .await
        .expect("operator deletes the node");
    observer
        .create(&worker_path(worker), b"someone else", &ephemeral)
        .await
        .expect("another session creates it");
    observer
        .set_data(&worker_path(worker), b"someone else, again", Some(0))
        .await
        .expect("now at version 1");

    leased.stop().await;

    let stat = observer
        .check_stat(&worker_path(worker))
        .await
        .expect("stat");
    assert!(
        stat.is_some_and(|stat| stat.ephemeral_owner == observer.session_id().0),
        "the other session's node is not deleted"
    );
}
