//! Isolation for integration tests that run against the real PostgreSQL, Redis and ZooKeeper started by
//! `make test` (addresses in `DATABASE_URL`, `DATABASE_REPLICA_URL`, `REDIS_URL`, `ZOOKEEPER_CONNECT`).
//!
//! Each test gets its own database (created on the primary, visible on the replica, dropped when the test ends
//! and swept if a crashed run left it), its own Redis key prefix and its own ZooKeeper chroot. A missing or
//! unreachable service fails the test with a message that says how to start it; nothing passes silently.
//!
//! # Layout
//! - this file: the database, Redis prefix and ZooKeeper chroot of one test.
//! - [`proxy`]: a TCP proxy a test cuts or stalls, to make a dependency fail for real.
//! - [`poll`]: `eventually`, the one polling helper with a deadline.
//! - [`logs`]: the services' `tracing` output in the test's captured output.
//! - [`metrics`]: `metric`, a series' value read from a service's admin port.
#![forbid(unsafe_code)]
#![expect(
    clippy::unwrap_used,
    reason = "test support: a failure here must fail the test loudly"
)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub mod logs;
pub mod metrics;
pub mod poll;
pub mod proxy;

pub use metrics::metric;
pub use poll::eventually;

use rand::Rng;
use tokio_postgres::NoTls;

/// Test databases older than this are assumed left over by a crashed run and dropped.
const SWEEP_AFTER: Duration = Duration::from_secs(3600);
const DB_PREFIX: &str = "t_";

/// The value of a service variable, or a panic that says how to get the services.
pub fn service_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: integration tests need the real services. Run them with `make test`, or start them \
             with `scripts/services.sh up` and load `set -a; . <(scripts/services.sh env); set +a`"
        )
    })
}

/// A unique name for this test's resources: `t_<unix seconds>_<random>`, so sweepers can tell its age.
pub fn unique_name() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{DB_PREFIX}{secs}_{:08x}", rand::rng().random::<u32>())
}

/// A database of its own for one test.
pub struct TestDb {
    /// Its name.
    pub name: String,
    /// URL on the primary.
    pub url: String,
    /// URL on the streaming replica (same database, replicated): the first of [`TestDb::replica_urls`].
    pub replica_url: String,
    /// URLs on every read replica `DATABASE_REPLICA_URL` lists (comma separated, as the redirect reads it): one
    /// under `make test`, one a node under the ha topology.
    pub replica_urls: Vec<String>,
    admin_url: String,
}

impl TestDb {
    /// Creates an empty database on the primary and waits until the replica has it too. Installs the log capture
    /// (every service test starts here or at [`zookeeper_chroot`]).
    pub async fn create() -> Self {
        logs::capture();
        let admin_url = service_env("DATABASE_URL");
        let replica_admin_url = service_env("DATABASE_REPLICA_URL");
        let name = unique_name();
        let admin = connect(&admin_url).await;
        sweep(&admin).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let url = with_database(&admin_url, &name);
        let replica_urls: Vec<String> = replica_admin_url
            .split(',')
            .map(|replica| with_database(replica, &name))
            .collect();
        for replica_url in &replica_urls {
            wait_for_replica(replica_url).await;
        }
        Self {
            name,
            url,
            replica_url: replica_urls[0].clone(),
            replica_urls,
            admin_url,
        }
    }

    /// Waits until the replica has replayed everything written on the primary so far, so a test that changes
    /// rows directly does not race replication lag (tests that want lag stop the replica's path instead).
    pub async fn wait_for_replica_catch_up(&self) {
        let primary = connect(&self.url).await;
        let replica = connect(&self.replica_url).await;
        let lsn: String = primary
            // The insert position, not pg_current_wal_lsn() (the write position): test clusters run with
            // synchronous_commit off, so a commit may still sit in WAL buffers, before the write position, and a
            // replica "caught up" to that would still show the row as it was (seen in CI: a deleted link 302).
            .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
            .await
            .unwrap()
            .get(0);
        let caught_up = || async {
            replica
                .query_one(
                    "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn",
                    &[&lsn],
                )
                .await
                .unwrap()
                .get::<_, bool>(0)
        };
        let what = format!("the replica replayed up to {lsn}");
        eventually(REPLICA_PATIENCE, &what, caught_up).await;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop cannot await, and the test's runtime may be shutting down: use a runtime of our own.
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                if let Ok((client, connection)) = tokio_postgres::connect(&admin_url, NoTls).await {
                    tokio::spawn(connection);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        });
        let _ = dropper.join();
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let connecting = tokio_postgres::connect(url, NoTls);
    let (client, connection) = tokio::time::timeout(Duration::from_secs(5), connecting)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "PostgreSQL at {} did not answer in 5 s: is `make test` running it?",
                redact(url)
            )
        })
        .unwrap_or_else(|error| panic!("cannot connect to PostgreSQL at {}: {error}", redact(url)));
    tokio::spawn(connection);
    client
}

async fn sweep(admin: &tokio_postgres::Client) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let rows = admin
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE 't\\_%'",
            &[],
        )
        .await
        .unwrap();
    for row in rows {
        let name: String = row.get(0);
        let created = name
            .strip_prefix(DB_PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|s| s.parse::<u64>().ok());
        if created.is_some_and(|secs| now.saturating_sub(secs) > SWEEP_AFTER.as_secs()) {
            let _ = admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        }
    }
}

/// How long a test waits for the replica to replay what the primary did. Replay takes milliseconds on a quiet
/// machine, but a test run's hundreds of CREATE/DROP DATABASE (each a checkpoint) on 2 busy cores were seen
/// to take over 10 s; a wait is not an assertion on speed.
const REPLICA_PATIENCE: Duration = Duration::from_secs(30);

async fn wait_for_replica(url: &str) {
    let shows_it = || async {
        let Ok(Ok((client, connection))) =
            tokio::time::timeout(Duration::from_secs(2), tokio_postgres::connect(url, NoTls)).await
        else {
            return false;
        };
        tokio::spawn(connection);
        client.simple_query("SELECT 1").await.is_ok()
    };
    let what = format!("the replica at {} shows the test database", redact(url));
    eventually(REPLICA_PATIENCE, &what, shows_it).await;
}

/// `url` with its database replaced by `name`. By hand rather than with `url::Url`: a URL that lists several hosts
/// (`host1:port1,host2:port2`, the ha topology's primary URL) is libpq's syntax, not a WHATWG URL.
pub fn with_database(url: &str, name: &str) -> String {
    let authority_start = url
        .find("://")
        .map(|at| at + 3)
        .unwrap_or_else(|| panic!("bad database URL {}: no scheme", redact(url)));
    let rest = &url[authority_start..];
    let path_start = rest.find(['/', '?']).unwrap_or(rest.len());
    let query = rest[path_start..]
        .find('?')
        .map_or("", |at| &rest[path_start + at..]);
    format!(
        "{}{}/{name}{query}",
        &url[..authority_start],
        &rest[..path_start]
    )
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    let Some(authority_start) = url.find("://").map(|at| at + 3) else {
        return "<unparsable URL>".to_owned();
    };
    let rest = &url[authority_start..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or("");
            format!("{}{user}@{}", &url[..authority_start], &rest[at + 1..])
        }
        None => url.to_owned(),
    }
}

/// Redis for one test: the server's URL and a key prefix no other test uses.
pub fn redis() -> (String, String) {
    (service_env("REDIS_URL"), format!("{}:", unique_name()))
}

/// The PEM file of the throwaway CA that signed the local PostgreSQL's and Redis's TLS certificates
/// (`SNOWLINK_TLS_CA`, from `scripts/services.sh env`).
pub fn tls_ca() -> String {
    service_env("SNOWLINK_TLS_CA")
}

/// Redis over TLS for one test: `rediss://` to the local Redis's TLS port (`REDIS_TLS_URL`) and a key prefix no
/// other test uses.
pub fn redis_tls() -> (String, String) {
    (service_env("REDIS_TLS_URL"), format!("{}:", unique_name()))
}

/// A ZooKeeper connect string chrooted to a fresh node of this test's own (created here).
pub async fn zookeeper_chroot() -> String {
    logs::capture();
    use zookeeper_client as zk;
    let base = service_env("ZOOKEEPER_CONNECT");
    let connecting = zk::Client::connector()
        .with_session_timeout(Duration::from_secs(4))
        .connect(&base);
    let client = tokio::time::timeout(Duration::from_secs(5), connecting)
        .await
        .unwrap_or_else(|_| {
            panic!("ZooKeeper at {base} did not answer in 5 s: is `make test` running it?")
        })
        .unwrap_or_else(|error| panic!("cannot connect to ZooKeeper at {base}: {error}"));
    let chroot = format!("/tests/{}", unique_name());
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    client.mkdir(&chroot, &persistent).await.unwrap();
    format!("{base}{chroot}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multi_host_url_gets_the_database_and_keeps_its_hosts_and_query() {
        let url =
            "postgres://u:pw@127.0.0.1:1,127.0.0.1:2/snowlink?target_session_attrs=read-write";

        assert_eq!(
            with_database(url, "t_1"),
            "postgres://u:pw@127.0.0.1:1,127.0.0.1:2/t_1?target_session_attrs=read-write"
        );
        assert_eq!(
            with_database("postgres://u:pw@h:1", "t_1"),
            "postgres://u:pw@h:1/t_1"
        );
        assert_eq!(
            redact(url),
            "postgres://u@127.0.0.1:1,127.0.0.1:2/snowlink?target_session_attrs=read-write"
        );
    }
}
