//! Fencing when ZooKeeper goes silent: a generator partitioned from ZooKeeper (through a proxy we cut) stops
//! issuing by its last answer + session timeout − margin, well before the client library would report the
//! session expired; a new holder of its worker ID issues only above everything it issued; it issues again
//! once it holds a lease again, on the same session when the partition was short.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use idgen::{config::IdgenArgs, Generator};

use testkit::proxy::{ProxyMode, TcpProxy};

use testkit::eventually;

use crate::helpers::{args, connect_string, lease, observer, server_of, worker_path};

/// What a background drawer saw.
struct Drawn {
    /// When the last call that got IDs started.
    last_success_started: Option<Instant>,
    /// The highest ID it got.
    max_id: u64,
}

/// Draws small batches every millisecond until stopped, as a busy embedder would.
struct Drawing {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Drawn>,
}

impl Drawing {
    fn start(generator: Arc<Generator>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let task = tokio::task::spawn_blocking(move || {
            let mut drawn = Drawn {
                last_success_started: None,
                max_id: 0,
            };
            while !stopping.load(Ordering::Relaxed) {
                let started = Instant::now();
                if let Ok(ids) = generator.next_ids(10) {
                    drawn.last_success_started = Some(started);
                    drawn.max_id = drawn.max_id.max(ids[9]);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            drawn
        });
        Self { stop, task }
    }

    async fn stop(self) -> Drawn {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("drawing thread")
    }
}

fn through(proxy: &TcpProxy, chroot: &str, session_ms: u64, margin_ms: u64) -> IdgenArgs {
    let mut settings = args(&connect_string(proxy, chroot));
    settings.session_timeout_ms = session_ms;
    settings.lease_safety_margin_ms = margin_ms;
    settings.zookeeper_timeout_ms = 1_000;
    settings
}

fn unix_ms(generator: &Generator, id: u64) -> u64 {
    generator.layout().decode(id).expect("ours").unix_ms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_generator_stops_within_the_bound_and_its_successor_issues_only_above_it() {
    let chroot = testkit::zookeeper_chroot().await;
    let proxy = TcpProxy::start(&server_of(&chroot).to_string()).await;
    let (session_ms, margin_ms) = (2_000, 500);
    let mut settings = through(&proxy, &chroot, session_ms, margin_ms);
    settings.max_workers = Some(1);
    let victim = lease(&settings).await.expect("the victim leases");
    let observer = observer(&chroot).await;
    let drawing = Drawing::start(Arc::clone(&victim.generator));
    eventually(Duration::from_secs(5), "the victim issues", || async {
        victim.generator.metrics().ids_issued.get() > 0
    })
    .await;

    let cut_at = Instant::now();
    proxy.set(ProxyMode::Stall);
    eventually(
        Duration::from_secs(10),
        "the victim stops issuing",
        || async { victim.generator.worker().is_none() },
    )
    .await;
    eventually(
        Duration::from_secs(15),
        "ZooKeeper expires the victim's session",
        || async { observer.check_stat(&worker_path(0)).await.ok() == Some(None) },
    )
    .await;
    let drawn = drawing.stop().await;

    let bound = Duration::from_millis(session_ms - margin_ms);
    let last_success = drawn.last_success_started.expect("the victim issued");
    assert!(
        last_success < cut_at + bound,
        "the victim issued {:?} after the partition, more than session timeout − margin ({bound:?})",
        last_success - cut_at
    );

    let mut direct = settings.clone();
    direct.zookeeper_connect = chroot.clone();
    let successor = lease(&direct).await.expect("the successor leases");
    assert_eq!(
        successor.worker(),
        0,
        "the successor has the victim's worker ID"
    );
    let successor_ids = successor.generator.next_ids(1_000).expect("IDs");
    let victim_last_ms = unix_ms(&victim.generator, drawn.max_id);
    assert!(
        unix_ms(&successor.generator, successor_ids[0]) > victim_last_ms,
        "the successor's timestamps start above the victim's last ({victim_last_ms})"
    );
    assert!(
        victim.generator.next_id().is_err(),
        "the victim stays fenced while the successor holds its worker ID"
    );

    proxy.set(ProxyMode::Forward);
    let successor_last_ms = successor.generator.last_unix_ms();
    successor.stop().await;
    eventually(
        Duration::from_secs(20),
        "the victim leases a worker ID again",
        || async { victim.generator.worker() == Some(0) },
    )
    .await;
    let again = victim.generator.next_id().expect("the victim issues again");
    assert!(unix_ms(&victim.generator, again) > successor_last_ms);
    assert!(victim.generator.metrics().lease_losses.get() >= 1);
    victim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_partition_shorter_than_the_session_the_same_lease_issues_again() {
    let chroot = testkit::zookeeper_chroot().await;
    let proxy = TcpProxy::start(&server_of(&chroot).to_string()).await;
    // ZooKeeper here allows at most 10 s; fencing 4 s after the last answer leaves 6 s to come back in.
    let settings = through(&proxy, &chroot, 10_000, 6_000);
    let leased = lease(&settings).await.expect("a lease");
    let worker = leased.worker();
    let observer = observer(&chroot).await;
    let owner_of = |stat: Option<zookeeper_client::Stat>| stat.map(|stat| stat.ephemeral_owner);
    let owner = owner_of(
        observer
            .check_stat(&worker_path(worker))
            .await
            .expect("stat"),
    );

    proxy.set(ProxyMode::Stall);
    eventually(
        Duration::from_secs(10),
        "the generator is fenced",
        || async { leased.generator.next_id().is_err() },
    )
    .await;
    proxy.set(ProxyMode::Forward);
    eventually(
        Duration::from_secs(10),
        "the generator issues again",
        || async { leased.generator.next_id().is_ok() },
    )
    .await;

    assert_eq!(
        leased.generator.worker(),
        Some(worker),
        "the same worker ID"
    );
    assert_eq!(
        owner_of(
            observer
                .check_stat(&worker_path(worker))
                .await
                .expect("stat")
        ),
        owner,
        "the same session still owns the worker node"
    );
    assert_eq!(leased.generator.metrics().lease_losses.get(), 1);
    leased.stop().await;
}
