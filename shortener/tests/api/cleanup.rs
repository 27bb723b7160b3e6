//! The expiry cleanup: what a pass purges and what it leaves, tombstones, Redis invalidation, concurrent passes,
//! and the leader election that decides which instance runs it.

use std::{collections::HashSet, time::Duration};

use database::DatabaseArgs;
use fred::prelude::{ClientLike, Config, EventInterface, PubsubInterface};
use idgen::{
    config::IdgenArgs,
    zookeeper::{ZooKeeperAuth, ZooKeeperOptions},
};
use links::{
    cache::{RedisArgs, RedisCache},
    model::Resolution,
    store::Store,
};
use plumbing::{shutdown::Shutdown, tasks::Supervisor};
use prometheus::{IntGauge, Registry};
use secrecy::ExposeSecret as _;
use serde_json::json;
use shortener::{
    cleanup::{run_once, Cleaner, CleanupMetrics},
    config::{CleanupCommandArgs, PurgeArgs, ServeArgs},
    leader::{Election, ElectionOptions},
    startup::build,
    stores::connect_and_migrate,
};
use testkit::{eventually, TestDb};

use crate::helpers::{error_code, spawn_app, TestApp};

const DEADLINE: Duration = Duration::from_secs(20);

pub async fn sql(db: &TestDb) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .expect("db");
    tokio::spawn(connection);
    client
}

pub async fn cleaner(db: &TestDb, redis: &RedisArgs, batch: u32) -> Cleaner {
    let store = connect_and_migrate(&DatabaseArgs::new(&db.url))
        .await
        .expect("database");
    let cache = RedisCache::connect(&redis.options()).await.expect("redis");
    let metrics = CleanupMetrics::register(&Registry::new()).expect("metrics");
    Cleaner::new(store, cache, batch, metrics)
}

/// Inserts `count` links that expired a second ago, named `{prefix}{n}`.
async fn insert_expired(db: &TestDb, prefix: &str, count: i64) {
    sql(db)
        .await
        .execute(
            "INSERT INTO links (id, code, long_url, url_hash, expires_at)
             SELECT (SELECT coalesce(max(id), 0) FROM links) + n, $1 || n, 'https://example.com/', '\\x00',
                    now() - interval '1 second'
             FROM generate_series(1, $2::bigint) AS n",
            &[&prefix, &count],
        )
        .await
        .expect("expired links");
}

async fn link_exists(db: &TestDb, code: &str) -> bool {
    sql(db)
        .await
        .query_opt("SELECT 1 FROM links WHERE code = $1", &[&code])
        .await
        .expect("query")
        .is_some()
}

/// Subscribes to the invalidation channel of `redis`; returns a receiver of published codes.
async fn subscribe(redis: &RedisArgs) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let client = fred::types::Builder::from_config(
        Config::from_url(redis.redis_url.expose_secret()).expect("url"),
    )
    .build()
    .expect("client");
    client.init().await.expect("redis");
    let mut messages = client.message_rx();
    let channel = links::cache::invalidation_channel(&redis.redis_prefix);
    client.subscribe(channel).await.expect("subscribe");
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let _client = client;
        while let Ok(message) = messages.recv().await {
            if sender
                .send(message.value.as_string().unwrap_or_default())
                .is_err()
            {
                break;
            }
        }
    });
    receiver
}

#[tokio::test]
async fn a_pass_purges_expired_and_deleted_links_leaves_live_ones_and_keeps_tombstones() {
    let app = spawn_app().await;
    for alias in ["was-expiring", "was-deleted", "still-live", "expires-later"] {
        let expires = (alias == "expires-later").then_some("2999-01-01T00:00:00Z");
        let response = app
            .create(json!({"long_url": format!("https://example.com/{alias}"), "alias": alias, "expires_at": expires}))
            .await;
        assert_eq!(response.status(), 201, "{alias}");
    }
    let db = sql(&app.db).await;
    db.batch_execute(
        "UPDATE links SET expires_at = now() - interval '1 second' WHERE code = 'was-expiring';
         UPDATE links SET deleted_at = now() WHERE code = 'was-deleted';
         INSERT INTO link_hits (link_id, day, hits) SELECT id, current_date, 5 FROM links;",
    )
    .await
    .expect("setup");
    let mut published = subscribe(&app.redis).await;
    // One link per statement, so the pass has to loop.
    let cleaner = cleaner(&app.db, &app.redis, 1).await;

    let summary = cleaner.pass(|| true).await.expect("the pass succeeds");

    assert_eq!(
        (summary.deleted, summary.batches, summary.redis_failures),
        (2, 3, 0)
    );
    let remaining: Vec<String> = db
        .query("SELECT code FROM links ORDER BY code", &[])
        .await
        .expect("links")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(remaining, ["expires-later", "still-live"]);
    let hits: i64 = db
        .query_one("SELECT count(*) FROM link_hits", &[])
        .await
        .expect("hits")
        .get(0);
    assert_eq!(hits, 2, "the purged links' hits go with them");
    let mut announced = HashSet::new();
    while announced.len() < 2 {
        let code = tokio::time::timeout(DEADLINE, published.recv())
            .await
            .expect("both codes are published in time")
            .expect("subscribed");
        announced.insert(code);
    }
    assert_eq!(
        announced,
        HashSet::from(["was-expiring".to_owned(), "was-deleted".to_owned()])
    );
    let cache = RedisCache::connect(&app.redis.options())
        .await
        .expect("redis");
    for code in ["was-expiring", "was-deleted"] {
        assert_eq!(
            cache.get(code).await.expect("redis answers"),
            None,
            "{code}"
        );
    }
    assert!(matches!(
        cache.get("still-live").await.expect("redis answers"),
        Some(Resolution::Live { .. })
    ));
}

#[tokio::test]
async fn a_purged_code_answers_gone_and_can_never_be_taken_again() {
    let app = spawn_app().await;
    let created = app
        .create(json!({"long_url": "https://example.com/", "alias": "printed-on-a-poster"}))
        .await;
    assert_eq!(created.status(), 201);
    sql(&app.db)
        .await
        .execute("UPDATE links SET deleted_at = now()", &[])
        .await
        .expect("delete");
    cleaner(&app.db, &app.redis, 1000)
        .await
        .pass(|| true)
        .await
        .expect("the pass succeeds");
    let store = Store::new(
        database::pool(&app.db.url, "tests", database::PoolOptions::default()).expect("pool"),
    );

    let target = store.resolve("printed-on-a-poster").await.expect("lookup");
    // Straight into the table, past the service's own checks: the database itself refuses the code.
    let inserted = sql(&app.db)
        .await
        .execute(
            "INSERT INTO links (id, code, long_url, url_hash)
             VALUES (1, 'printed-on-a-poster', 'https://phishing.example/', '\\x00')",
            &[],
        )
        .await;
    let through_the_api = app
        .create(json!({"long_url": "https://phishing.example/", "alias": "printed-on-a-poster"}))
        .await;

    assert_eq!(target, Resolution::Gone);
    assert_eq!(
        inserted.expect_err("refused").code(),
        Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
    );
    assert_eq!(through_the_api.status(), 409);
    assert_eq!(error_code(through_the_api).await, "alias_taken");
    assert_eq!(
        store.resolve("never-existed").await.expect("lookup"),
        Resolution::Unknown
    );
}

#[tokio::test]
async fn a_redis_that_is_down_is_counted_and_the_links_are_purged_anyway() {
    let db = TestDb::create().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let redis = RedisArgs::new(format!("redis://127.0.0.1:{closed}"), "unused:");
    let cleaner = cleaner(&db, &redis, 1000).await;
    insert_expired(&db, "gone-", 3).await;

    let summary = cleaner.pass(|| true).await.expect("the pass succeeds");

    assert_eq!((summary.deleted, summary.redis_failures), (3, 3));
    assert!(!link_exists(&db, "gone-1").await);
}

#[tokio::test]
async fn concurrent_passes_purge_every_link_exactly_once() {
    let db = TestDb::create().await;
    let (redis_url, prefix) = testkit::redis();
    let redis = RedisArgs::new(redis_url, prefix);
    let (first, second) = (
        cleaner(&db, &redis, 10).await,
        cleaner(&db, &redis, 10).await,
    );
    insert_expired(&db, "x", 300).await;

    let (a, b) = tokio::join!(first.pass(|| true), second.pass(|| true));
    let (a, b) = (a.expect("first pass"), b.expect("second pass"));
    // A pass stops at a short batch, which rows locked by the other can cause: one more pass takes the rest.
    let rest = first.pass(|| true).await.expect("last pass");

    assert_eq!(a.deleted + b.deleted + rest.deleted, 300);
    let retired: i64 = sql(&db)
        .await
        .query_one("SELECT count(*) FROM retired_codes", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(retired, 300);
}

#[tokio::test]
async fn cleanup_once_purges_what_is_due_and_reports_it() {
    let db = TestDb::create().await;
    let (redis_url, prefix) = testkit::redis();
    connect_and_migrate(&DatabaseArgs::new(&db.url))
        .await
        .expect("database");
    insert_expired(&db, "old-", 2).await;
    let args = CleanupCommandArgs {
        once: true,
        purge: PurgeArgs {
            cleanup_batch: 1,
            ..PurgeArgs::default()
        },
        database: DatabaseArgs::new(&db.url),
        redis: RedisArgs::new(redis_url, prefix),
    };

    let summary = run_once(&args, &Shutdown::new()).await.expect("one pass");

    assert_eq!((summary.deleted, summary.batches), (2, 3));
    assert!(!link_exists(&db, "old-1").await && !link_exists(&db, "old-2").await);
}

/// A shortener with the cleanup on, sharing `db`, `redis` and the ZooKeeper chroot `zookeeper`.
struct Instance {
    admin_address: String,
    shutdown: Shutdown,
    stopped: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Instance {
    async fn spawn(db: &TestDb, redis: &RedisArgs, zookeeper: &str) -> Self {
        let mut args = ServeArgs::for_tests(
            DatabaseArgs::new(&db.url),
            redis.clone(),
            IdgenArgs::new(zookeeper),
        );
        args.cleanup.enabled = true;
        args.cleanup.cleanup_interval = Duration::from_millis(150);
        let shutdown = Shutdown::new();
        let app = build(args).await.expect("the shortener starts");
        let admin_address = format!("http://127.0.0.1:{}", app.admin_port());
        let stopped = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        Self {
            admin_address,
            shutdown,
            stopped,
        }
    }

    async fn metric(&self, name: &str) -> i64 {
        let text = reqwest::get(format!("{}/metrics", self.admin_address))
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("text");
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .parse()
            .expect("an integer")
    }

    async fn leads(&self) -> bool {
        self.metric("shortener_cleanup_leader").await == 1
    }

    async fn stop(self) {
        self.shutdown.trigger();
        self.stopped.await.expect("joins").expect("stops cleanly");
    }
}

#[tokio::test]
async fn only_the_leader_cleans_and_another_instance_takes_over_when_it_stops() {
    let db = TestDb::create().await;
    let (redis_url, prefix) = testkit::redis();
    let redis = RedisArgs::new(redis_url, prefix);
    let zookeeper = testkit::zookeeper_chroot().await;
    let first = Instance::spawn(&db, &redis, &zookeeper).await;
    let second = Instance::spawn(&db, &redis, &zookeeper).await;

    eventually(DEADLINE, "one instance leads", || async {
        first.leads().await || second.leads().await
    })
    .await;
    for _ in 0..5 {
        assert_ne!(
            first.leads().await,
            second.leads().await,
            "exactly one leader"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (leader, follower) = if first.leads().await {
        (first, second)
    } else {
        (second, first)
    };
    insert_expired(&db, "first-", 1).await;
    eventually(DEADLINE, "the leader purges", || async {
        !link_exists(&db, "first-1").await
    })
    .await;
    let deleted = "shortener_cleanup_deleted_links_total";
    assert_eq!(
        (leader.metric(deleted).await, follower.metric(deleted).await),
        (1, 0)
    );

    leader.stop().await;
    eventually(DEADLINE, "the other instance leads", || follower.leads()).await;
    insert_expired(&db, "second-", 1).await;
    eventually(DEADLINE, "the new leader purges", || async {
        !link_exists(&db, "second-1").await
    })
    .await;
    assert_eq!(follower.metric(deleted).await, 1);
    follower.stop().await;
}

#[tokio::test]
async fn a_leader_whose_node_vanishes_steps_down_and_stands_again() {
    let zookeeper = testkit::zookeeper_chroot().await;
    let options = ElectionOptions {
        zookeeper: ZooKeeperOptions {
            connect: zookeeper.clone(),
            session_timeout: Duration::from_secs(4),
            auth: None,
        },
        path: "/election".into(),
        call_timeout: Duration::from_secs(3),
    };
    let shutdown = Shutdown::new();
    let supervisor = Supervisor::unregistered(shutdown.clone());
    let gauge = |name: &str| IntGauge::new(name, "leader").expect("gauge");
    let first = Election::start(options.clone(), gauge("first"), &supervisor);
    eventually(DEADLINE, "the first candidate leads", || async {
        first.is_leader()
    })
    .await;
    let second = Election::start(options.clone(), gauge("second"), &supervisor);
    let admin = zookeeper_client::Client::connect(&zookeeper)
        .await
        .expect("zookeeper");
    let candidates = || async { admin.list_children("/election").await.expect("children") };
    eventually(DEADLINE, "both stand", || async {
        candidates().await.len() == 2
    })
    .await;
    assert!(first.is_leader() && !second.is_leader());

    // What the server does when the leader's session expires: its node goes.
    let mut line = candidates().await;
    line.sort();
    admin
        .delete(&format!("/election/{}", line[0]), None)
        .await
        .expect("delete the leader's node");

    eventually(DEADLINE, "the second candidate leads", || async {
        second.is_leader()
    })
    .await;
    eventually(DEADLINE, "the first stands again", || async {
        candidates().await.len() == 2
    })
    .await;
    assert!(!first.is_leader());
    shutdown.trigger();
    first.stopped().await;
    second.stopped().await;
    assert!(
        candidates().await.is_empty(),
        "nodes are deleted on shutdown"
    );
}

#[tokio::test]
async fn a_leader_cut_off_from_zookeeper_steps_down_before_another_takes_over() {
    let direct = testkit::zookeeper_chroot().await;
    let (server, chroot) = direct.split_at(direct.find('/').expect("a chroot"));
    let proxy = testkit::proxy::TcpProxy::start(server).await;
    let options = |connect: String| ElectionOptions {
        zookeeper: ZooKeeperOptions {
            connect,
            session_timeout: Duration::from_secs(2),
            auth: None,
        },
        path: "/election".into(),
        call_timeout: Duration::from_secs(2),
    };
    let shutdown = Shutdown::new();
    let supervisor = Supervisor::unregistered(shutdown.clone());
    let gauge = |name: &str| IntGauge::new(name, "leader").expect("gauge");
    let through_proxy = format!("127.0.0.1:{}{chroot}", proxy.address().port());
    let first = Election::start(options(through_proxy), gauge("first"), &supervisor);
    eventually(DEADLINE, "the first candidate leads", || async {
        first.is_leader()
    })
    .await;
    let second = Election::start(options(direct.clone()), gauge("second"), &supervisor);
    let admin = zookeeper_client::Client::connect(&direct)
        .await
        .expect("zookeeper");
    let candidates = || async { admin.list_children("/election").await.expect("children") };
    eventually(DEADLINE, "both stand", || async {
        candidates().await.len() == 2
    })
    .await;

    proxy.set(testkit::proxy::ProxyMode::Refuse);

    eventually(DEADLINE, "the cut-off leader steps down", || async {
        !first.is_leader()
    })
    .await;
    // Its node lives until the server expires its session: the other candidate cannot lead before that.
    eventually(DEADLINE, "the second candidate leads", || async {
        second.is_leader()
    })
    .await;
    assert!(!first.is_leader(), "never two leaders");
    proxy.set(testkit::proxy::ProxyMode::Forward);
    eventually(DEADLINE, "the first stands again", || async {
        candidates().await.len() == 2
    })
    .await;
    assert!(second.is_leader() && !first.is_leader());
    shutdown.trigger();
    first.stopped().await;
    second.stopped().await;
}

/// Holds the cleanup's purge of `alias` open (deleted link out, tombstone in, one transaction) while `create`
/// runs, and commits it once the create waits on it (a lock wait in PostgreSQL): then it meets the tombstone.
async fn racing_the_purge_of(
    app: &TestApp,
    alias: &str,
    create: impl std::future::Future<Output = reqwest::Response>,
) -> reqwest::Response {
    let purge = sql(&app.db).await;
    purge
        .batch_execute(&format!(
            "BEGIN; DELETE FROM links WHERE code = '{alias}';
             INSERT INTO retired_codes (code) VALUES ('{alias}');"
        ))
        .await
        .expect("purge begun");
    let commit_meanwhile = async {
        eventually(DEADLINE, "the create waits on the purge", || async {
            app.lock_waiters().await >= 1
        })
        .await;
        purge
            .batch_execute("COMMIT")
            .await
            .expect("purge committed");
    };
    let (response, ()) = tokio::join!(create, commit_meanwhile);
    response
}

#[tokio::test]
async fn a_create_racing_the_purge_of_its_alias_is_a_409_not_a_500() {
    let app = spawn_app().await;
    let alias = "purged-meanwhile";
    let body = json!({"long_url": "https://example.com/", "alias": alias});
    assert_eq!(app.create(body.clone()).await.status(), 201);

    let response = racing_the_purge_of(&app, alias, app.create(body)).await;

    assert_eq!(response.status(), 409);
    assert_eq!(error_code(response).await, "alias_taken");
}

/// With an `Idempotency-Key` the insert shares a transaction with the key's claim and cannot simply run again:
/// a 503 (not kept for the key), and the retry with the same key gets the 409.
#[tokio::test]
async fn with_an_idempotency_key_a_create_racing_the_purge_is_a_503_then_a_409() {
    let app = spawn_app().await;
    let alias = "purged-meanwhile-too";
    let body = json!({"long_url": "https://example.com/", "alias": alias}).to_string();
    let first = app.post("/v1/urls", Some(&app.api_key), None, body.clone());
    assert_eq!(first.await.status(), 201);
    let retried = || app.post("/v1/urls", Some(&app.api_key), Some("race-1"), body.clone());

    let raced = racing_the_purge_of(&app, alias, retried()).await;

    assert_eq!(raced.status(), 503);
    let again = retried().await;
    assert_eq!(again.status(), 409);
    assert_eq!(error_code(again).await, "alias_taken");
}

#[tokio::test]
async fn with_zookeeper_credentials_a_session_without_them_cannot_touch_the_election() {
    let chroot = testkit::zookeeper_chroot().await;
    let zookeeper = ZooKeeperOptions {
        connect: chroot.clone(),
        session_timeout: Duration::from_secs(4),
        auth: Some(ZooKeeperAuth::new("snowlink:s3cret".into()).expect("user:password")),
    };
    let options = ElectionOptions {
        zookeeper: zookeeper.clone(),
        path: "/election".into(),
        call_timeout: Duration::from_secs(3),
    };
    let shutdown = Shutdown::new();
    let supervisor = Supervisor::unregistered(shutdown.clone());
    let gauge = IntGauge::new("leader", "leader").expect("gauge");
    let election = Election::start(options, gauge, &supervisor);
    eventually(DEADLINE, "the candidate leads", || async {
        election.is_leader()
    })
    .await;
    let ours = zookeeper
        .connector()
        .connect(&chroot)
        .await
        .expect("zookeeper");
    let anonymous = zookeeper_client::Client::connect(&chroot)
        .await
        .expect("zookeeper");
    let candidates = ours.list_children("/election").await.expect("children");
    let node = format!("/election/{}", candidates[0]);

    let deleted = anonymous.delete(&node, None).await;
    let listed = anonymous.list_children("/election").await;

    assert_eq!(deleted, Err(zookeeper_client::Error::NoAuth));
    assert_eq!(listed, Err(zookeeper_client::Error::NoAuth));
    assert!(election.is_leader());
    shutdown.trigger();
    election.stopped().await;
}

#[tokio::test]
async fn a_pass_forgets_idempotency_answers_older_than_a_day() {
    let db = TestDb::create().await;
    let (redis_url, prefix) = testkit::redis();
    let redis = RedisArgs::new(redis_url, prefix);
    let cleaner = cleaner(&db, &redis, 2).await;
    let client = sql(&db).await;
    client
        .batch_execute(
            "INSERT INTO api_keys (name, key_hash) VALUES ('k', '\\x00');
             INSERT INTO idempotency_keys (owner_id, key, request_hash, status, body, created_at)
             SELECT (SELECT id FROM api_keys), 'old-' || n, '\\x00', 201, '\\x7b7d', now() - interval '25 hours'
             FROM generate_series(1, 5) AS n;
             INSERT INTO idempotency_keys (owner_id, key, request_hash, status, body)
             VALUES ((SELECT id FROM api_keys), 'fresh', '\\x00', 201, '\\x7b7d');",
        )
        .await
        .expect("answers");

    cleaner.pass(|| true).await.expect("the pass succeeds");

    let left: Vec<String> = client
        .query("SELECT key FROM idempotency_keys", &[])
        .await
        .expect("query")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(left, ["fresh"], "five old answers purged in batches of two");
}
