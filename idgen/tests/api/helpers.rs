//! Generators leased from a test's own ZooKeeper chroot, an observer session on that chroot, and a TCP proxy
//! that can partition a generator from ZooKeeper without touching the shared server.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use idgen::{
    clock::ManualClock, config::IdgenArgs, metrics::IdgenMetrics, Generator, LeaseError,
    LeaseKeeper,
};
use plumbing::{shutdown::Shutdown, tasks::Supervisor};
use zookeeper_client as zk;

/// Worker and mark nodes live under this root inside each chroot (the flag's default).
pub const ROOT: &str = "/snowlink/idgen";

/// A generator with its lease, stopped by [`Leased::stop`].
pub struct Leased {
    pub generator: Arc<Generator>,
    keeper: LeaseKeeper,
    shutdown: Shutdown,
}

impl Leased {
    /// Releases the lease the way SIGTERM does and waits until it is released.
    pub async fn stop(self) {
        self.shutdown.trigger();
        within(
            Duration::from_secs(15),
            "the keeper stops",
            self.keeper.stopped(),
        )
        .await;
    }

    /// The worker ID leased right now.
    pub fn worker(&self) -> u64 {
        self.generator.worker().expect("a worker ID is leased")
    }
}

/// Settings for `connect` (a chroot) as embedders build them.
pub fn args(connect: &str) -> IdgenArgs {
    IdgenArgs::new(connect)
}

/// Leases through `idgen::start`, the embedders' entry point.
pub async fn lease(args: &IdgenArgs) -> anyhow::Result<Leased> {
    let shutdown = Shutdown::new();
    let started = idgen::start(
        args,
        IdgenMetrics::unregistered(),
        &Supervisor::unregistered(shutdown.clone()),
    )
    .await?;
    Ok(Leased {
        generator: started.generator,
        keeper: started.keeper,
        shutdown,
    })
}

/// A generator on an injected clock, leased through the keeper directly.
pub fn manual_generator(args: &IdgenArgs, clock: &ManualClock) -> Arc<Generator> {
    Arc::new(Generator::new(
        args.layout().expect("layout"),
        clock.clone(),
        Duration::from_millis(args.max_clock_backwards_ms),
        IdgenMetrics::unregistered(),
    ))
}

/// Leases for `generator` through the keeper directly.
pub async fn lease_for(args: &IdgenArgs, generator: &Arc<Generator>) -> Result<Leased, LeaseError> {
    let shutdown = Shutdown::new();
    let keeper = LeaseKeeper::start(
        args.lease().expect("valid lease settings"),
        Arc::clone(generator),
        &Supervisor::unregistered(shutdown.clone()),
    )
    .await?;
    Ok(Leased {
        generator: Arc::clone(generator),
        keeper,
        shutdown,
    })
}

/// A session of our own on the chroot, to look at and write the nodes the generators use.
pub async fn observer(chroot: &str) -> zk::Client {
    let connecting = zk::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(chroot);
    within(Duration::from_secs(10), "the observer connects", connecting)
        .await
        .expect("observer session")
}

/// `{ROOT}/workers/{NNNN}` and `{ROOT}/marks/{NNNN}`.
pub fn worker_path(worker: u64) -> String {
    format!("{ROOT}/workers/{worker:04}")
}

pub fn mark_path(worker: u64) -> String {
    format!("{ROOT}/marks/{worker:04}")
}

/// The mark recorded for `worker`, as a number.
pub async fn read_mark(observer: &zk::Client, worker: u64) -> u64 {
    let (data, _) = observer
        .get_data(&mark_path(worker))
        .await
        .expect("the mark node exists");
    String::from_utf8(data)
        .expect("text")
        .parse()
        .expect("a number")
}

/// Records `unix_ms` as `worker`'s mark, as an earlier holder would have.
pub async fn write_mark(observer: &zk::Client, worker: u64, unix_ms: u64) {
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    observer
        .mkdir(&format!("{ROOT}/marks"), &persistent)
        .await
        .expect("marks directory");
    observer
        .create(
            &mark_path(worker),
            unix_ms.to_string().as_bytes(),
            &persistent,
        )
        .await
        .expect("mark node");
}

/// Waits for `future`, failing the test with `what` after `limit`.
pub async fn within<T>(limit: Duration, what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {limit:?} waiting until {what}"))
}

/// The connect string for `chroot` (`host:port/path`) through `proxy` (testkit's TCP proxy: Stall is a
/// partition, not a closed port; Forward resumes the same connections).
pub fn connect_string(proxy: &testkit::proxy::TcpProxy, chroot: &str) -> String {
    let path = chroot.find('/').map_or("", |at| &chroot[at..]);
    format!("127.0.0.1:{}{path}", proxy.address().port())
}

/// The server address of a chroot connect string.
pub fn server_of(chroot: &str) -> SocketAddr {
    let host = chroot.split('/').next().unwrap_or(chroot);
    host.parse().expect("ZOOKEEPER_CONNECT is one host:port")
}
