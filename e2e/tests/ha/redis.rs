//! Redis Cluster faults under traffic (`scripts/ha/redis-cluster.sh`, `REDIS_URL=redis-cluster://…`): a master
//! killed with SIGKILL fails no create and no redirect of a stored link, its replica is promoted, write-through
//! comes back on its slots and invalidations keep reaching the redirect; the node is brought back afterwards,
//! even when the test fails, and the cluster shown whole.

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use database::DatabaseArgs;
use idgen::config::IdgenArgs;
use links::cache::{RedisArgs, RedisCache};
use plumbing::shutdown::Shutdown;
use redirect::config::RedirectArgs;
use testkit::TestDb;

use crate::redis_trickle::{self, Target};

/// One test at a time: a kill disturbs every client of the cluster.
static CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Bound on every wait for the cluster (promotion, write-through, restore): generous on a shared machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// Creates that show the trickle flows: about a second of it, before the fault and after write-through is back.
const FLOWING: usize = 20;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// Runs `scripts/ha/redis-cluster.sh ARGS`; its exit status and output.
fn cluster_script(args: &[&str]) -> (bool, String) {
    let output = Command::new(repo_root().join("scripts/ha/redis-cluster.sh"))
        .args(args)
        .output();
    match output {
        Ok(output) => (
            output.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        ),
        Err(error) => (false, format!("cannot run redis-cluster.sh: {error}")),
    }
}

/// `redis-cli -p PORT ARGS` (bounded by `timeout`), its output; empty when the node does not answer.
fn redis_cli(port: u16, args: &[&str]) -> String {
    Command::new("timeout")
        .args(["3", "redis-cli", "-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default()
}

const PORTS: [u16; 6] = [56381, 56382, 56383, 56384, 56385, 56386];

/// A master of the cluster as some node sees it: its port, id and slot ranges.
#[derive(Debug, Clone)]
struct Master {
    port: u16,
    id: String,
    slots: Vec<(u16, u16)>,
}

/// The masters that hold slots, each as it sees itself (another node's view can lag behind a failover).
fn masters() -> Vec<Master> {
    let nodes: String = PORTS
        .iter()
        .map(|port| redis_cli(*port, &["cluster", "nodes"]))
        .collect();
    nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 9 || fields[2] != "myself,master" {
                return None;
            }
            let port = fields[1].split([':', '@']).nth(1)?.parse().ok()?;
            let slots = fields[8..]
                .iter()
                .filter_map(|range| {
                    let (low, high) = range.split_once('-').unwrap_or((range, range));
                    Some((low.parse().ok()?, high.parse().ok()?))
                })
                .collect();
            Some(Master {
                port,
                id: fields[0].to_owned(),
                slots,
            })
        })
        .collect()
}

/// The replica of master `id`, by port.
fn replica_of(id: &str) -> Option<u16> {
    let nodes = PORTS
        .iter()
        .map(|port| redis_cli(*port, &["cluster", "nodes"]))
        .find(|nodes| !nodes.trim().is_empty())?;
    nodes.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.len() >= 4 && fields[2].contains("slave") && fields[3] == id)
            .then(|| fields[1].split([':', '@']).nth(1)?.parse().ok())
            .flatten()
    })
}

/// Brings every node back when dropped (thaws a frozen one, then `redis-cluster.sh up`), so a failed test leaves
/// the cluster whole.
struct Restore {
    frozen: Option<String>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        if let Some(pid) = &self.frozen {
            let _ = Command::new("kill").args(["-CONT", pid]).status();
        }
        let (ok, output) = cluster_script(&["up"]);
        if !ok {
            eprintln!("restoring the redis cluster failed: {output}");
        }
    }
}

/// A redirect and a shortener on the cluster (one test database, one key prefix, one ZooKeeper chroot).
struct Services {
    target: Target,
    prefix: String,
    shutdown: Shutdown,
    _db: TestDb,
}

impl Drop for Services {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

async fn spawn_services() -> Services {
    let db = TestDb::create().await;
    let (redis_url, prefix) = testkit::redis();
    assert!(
        redis_url.starts_with("redis-cluster://"),
        "REDIS_URL must name the cluster (set -a; . <(scripts/ha/redis-cluster.sh env)), not {redis_url}"
    );
    let redis = RedisArgs::new(redis_url, prefix.clone());
    let shutdown = Shutdown::new();
    let args = RedirectArgs::for_tests(
        DatabaseArgs::new(&db.url),
        vec![db.replica_url.clone()],
        redis.clone(),
    );
    let redirect = redirect::startup::build(args)
        .await
        .expect("the redirect starts");
    let redirect_url = format!("http://127.0.0.1:{}", redirect.port());
    tokio::spawn(redirect.run_until_stopped(shutdown.clone()));

    let idgen = IdgenArgs::new(testkit::zookeeper_chroot().await);
    let args =
        shortener::config::ServeArgs::for_tests(DatabaseArgs::new(&db.url), redis.clone(), idgen);
    let app = shortener::startup::build(args)
        .await
        .expect("the shortener starts");
    let shortener = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(shutdown.clone()));

    let (api_key, http) = crate::stack::api_key_and_client(&db).await;
    let cache = RedisCache::connect(&redis.options())
        .await
        .expect("a redis client");
    Services {
        target: Target {
            shortener,
            redirect: redirect_url,
            api_key,
            http,
            cache,
        },
        prefix,
        shutdown,
        _db: db,
    }
}

impl Services {
    async fn create(&self, long_url: &str) -> String {
        let response = self
            .target
            .http
            .post(format!("{}/v1/urls", self.target.shortener))
            .bearer_auth(&self.target.api_key)
            .json(&serde_json::json!({ "long_url": long_url }))
            .send()
            .await
            .expect("create");
        assert_eq!(response.status(), 201, "create");
        let body: serde_json::Value = response.json().await.expect("JSON");
        body["code"].as_str().expect("a code").to_owned()
    }

    async fn redirect_status(&self, code: &str) -> Option<u16> {
        let answer = self
            .target
            .http
            .get(format!("{}/{code}", self.target.redirect))
            .send()
            .await;
        answer.ok().map(|response| response.status().as_u16())
    }

    async fn delete(&self, code: &str) {
        let response = self
            .target
            .http
            .delete(format!("{}/v1/urls/{code}", self.target.shortener))
            .bearer_auth(&self.target.api_key)
            .send()
            .await
            .expect("delete");
        assert_eq!(response.status(), 204, "delete");
    }

    /// How long a delete took to reach the redirect (410 instead of 302); fails the test past `within`.
    async fn delete_reaches_redirect(&self, within: Duration) -> Duration {
        let code = self.create("https://example.com/to-delete").await;
        for _ in 0..3 {
            assert_eq!(self.redirect_status(&code).await, Some(302), "cached");
        }
        let start = Instant::now();
        self.delete(&code).await;
        let what = "a delete reaches the redirect";
        testkit::eventually(within, what, || async {
            (self.redirect_status(&code).await == Some(410)).then(|| start.elapsed())
        })
        .await
    }

    /// The master where this test's redirect is subscribed to its invalidation channel.
    fn subscribed_master(&self) -> Option<Master> {
        let channel = links::cache::invalidation_channel(&self.prefix);
        masters().into_iter().find(|master| {
            let answer = redis_cli(master.port, &["pubsub", "numsub", &channel]);
            answer
                .lines()
                .nth(1)
                .is_some_and(|count| count.trim() != "0")
        })
    }

    fn slot(&self, code: &str) -> u16 {
        fred::util::redis_keyslot(self.target.cache.key(code).as_bytes())
    }
}

/// When `port` first answers `ROLE` as a master; fails the test past [`PATIENCE`].
async fn promoted(port: u16) -> Instant {
    testkit::eventually(PATIENCE, "the replica is promoted", || async {
        let role = tokio::task::spawn_blocking(move || redis_cli(port, &["role"]))
            .await
            .expect("join");
        role.starts_with("master").then(Instant::now)
    })
    .await
}

/// How the test takes a master out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// SIGKILL: its connections close at once.
    Kill,
    /// SIGSTOP: it hangs with its connections open, so clients see only timeouts.
    Freeze,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_master_fails_no_request_its_replica_takes_over_and_write_through_resumes() {
    master_fault(Fault::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frozen_master_fails_no_request_its_replica_takes_over_and_write_through_resumes() {
    master_fault(Fault::Freeze).await;
}

async fn master_fault(fault: Fault) {
    let _one = CLUSTER.lock().await;
    let (ok, output) = cluster_script(&["up"]);
    assert!(ok, "the cluster comes up: {output}");
    let services = spawn_services().await;
    let mut stored = Vec::new();
    for n in 0..30 {
        stored.push(
            services
                .create(&format!("https://example.com/stored/{n}"))
                .await,
        );
    }
    let started = Instant::now();
    let trickle = redis_trickle::start(
        services.target.clone(),
        stored,
        Duration::from_millis(50),
        Duration::from_millis(10),
    );
    trickle.wait_for_creates(started, FLOWING).await;
    // The master the redirect's subscriber is on: its death must not stop invalidations either.
    let victim = services
        .subscribed_master()
        .or_else(|| masters().into_iter().next())
        .expect("a master");
    let replica = replica_of(&victim.id).expect("the victim has a replica");

    let pidfile = repo_root().join(format!(".run/ha/redis/{}/redis.pid", victim.port));
    let pid = std::fs::read_to_string(&pidfile)
        .map(|pid| pid.trim().to_owned())
        .unwrap_or_default();
    assert!(!pid.is_empty(), "a pid in {}", pidfile.display());
    let _restore = Restore {
        frozen: (fault == Fault::Freeze).then(|| pid.clone()),
    };
    let (ok, output) = match fault {
        Fault::Kill => cluster_script(&["kill", &victim.port.to_string()]),
        Fault::Freeze => match Command::new("kill").args(["-STOP", &pid]).status() {
            Ok(status) => (status.success(), format!("kill -STOP {pid}: {status}")),
            Err(error) => (false, error.to_string()),
        },
    };
    // Dated once the node is down: a create sent while the script was still starting up would have been
    // written through to the live master.
    let killed_at = Instant::now();
    assert!(ok, "{fault:?}: {output}");
    let promoted_at = promoted(replica).await;

    // Write-through is back once a link created after the kill, on one of the dead master's slots, is in Redis
    // as soon as its create is answered.
    let what = "write-through resumes on the dead master's slots";
    let resumed_at = testkit::eventually(PATIENCE, what, || async {
        trickle
            .created_since(killed_at)
            .into_iter()
            .find(|created| {
                created.cached == Some(true)
                    && created.code.as_deref().is_some_and(|code| {
                        let slot = services.slot(code);
                        victim
                            .slots
                            .iter()
                            .any(|(low, high)| (*low..=*high).contains(&slot))
                    })
            })
            .map(|created| created.at)
    })
    .await;
    trickle.wait_for_creates(Instant::now(), FLOWING).await;
    let seen = trickle.stop().await;

    eprintln!(
        "MEASURE redis master {} {fault:?}: replica {} promoted after {} ms, write-through back after {} ms; \
         {} creates ({} failed), {} redirects ({} failed)",
        victim.port,
        replica,
        (promoted_at - killed_at).as_millis(),
        (resumed_at - killed_at).as_millis(),
        seen.created.len(),
        seen.failed_creates().len(),
        seen.redirects,
        seen.failed_redirects.len(),
    );
    assert!(
        seen.failed_creates().is_empty(),
        "failed creates: {:?}",
        seen.failed_creates()
    );
    assert!(
        seen.failed_redirects.is_empty(),
        "failed redirects: {:?}",
        seen.failed_redirects
    );

    // An invalidation still reaches the redirect, whose subscription was on the dead node.
    let took = services
        .delete_reaches_redirect(Duration::from_secs(1))
        .await;
    eprintln!("MEASURE invalidation after the failover: {took:?}");

    // The killed node comes back (as a replica) and the cluster is whole.
    drop(_restore);
    let (ok, status) = cluster_script(&["status"]);
    assert!(ok, "the cluster is whole again: {status}");
    assert_eq!(status.matches(" master ").count(), 3, "{status}");
    assert_eq!(status.matches(" replica ").count(), 3, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delete_reaches_the_redirect_within_a_second_on_the_cluster() {
    let _one = CLUSTER.lock().await;
    let (ok, output) = cluster_script(&["up"]);
    assert!(ok, "the cluster comes up: {output}");
    let services = spawn_services().await;

    let took = services
        .delete_reaches_redirect(Duration::from_secs(1))
        .await;

    eprintln!("MEASURE invalidation on the cluster: {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batched_lookups_and_fills_reach_every_master() {
    let _one = CLUSTER.lock().await;
    let (ok, output) = cluster_script(&["up"]);
    assert!(ok, "the cluster comes up: {output}");
    let (redis_url, prefix) = testkit::redis();
    let cache = RedisCache::connect(&RedisArgs::new(redis_url, prefix).options())
        .await
        .expect("a client of the cluster");
    // Enough codes that every master's slots are among them.
    let codes: Vec<String> = (0..64).map(|n| format!("batch{n}")).collect();
    let target = links::model::Resolution::Gone;
    let hour = Duration::from_secs(3600);
    let fills: Vec<_> = codes
        .iter()
        .map(|code| (code.as_str(), &target, hour))
        .collect();

    let stored = cache.fill_many(&fills).await.expect("a pipeline per node");

    assert_eq!(stored, codes.len(), "every code was absent");
    assert_eq!(
        cache.fill_many(&fills).await.expect("a pipeline per node"),
        0,
        "none is overwritten"
    );
    let found = cache.lookup_many(&codes).await.expect("GETs per node");
    assert!(
        found
            .iter()
            .all(|cached| *cached == links::cache::Cached::Found(target.clone())),
        "{found:?}"
    );
}
