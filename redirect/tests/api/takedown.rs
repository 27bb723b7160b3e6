//! Takedown: an operator's disable reaches every redirect replica within a second, an enable brings the link
//! back, and a disable whose invalidation Redis refused is delivered by a running shortener from the outbox.

use std::time::Duration;

use database::DatabaseArgs;
use links::cache::RedisArgs;
use shortener::{
    outbox::Invalidations,
    takedown::{disable, enable, Change},
};
use testkit::{
    eventually,
    proxy::{ProxyMode, TcpProxy},
};

use crate::helpers::{link, spawn_pair, TestPair};

/// What `shortener links disable|enable` works with, for the pair's database and `redis`.
async fn operator(pair: &TestPair, redis: &RedisArgs) -> (links::store::Store, Invalidations) {
    let store = shortener::stores::connect_and_migrate(&DatabaseArgs::new(&pair.db.url))
        .await
        .expect("database");
    let cache = links::cache::RedisCache::connect(&redis.options())
        .await
        .expect("redis");
    let invalidations = Invalidations::register(store.clone(), cache, &prometheus::Registry::new())
        .expect("series");
    (store, invalidations)
}

/// Every replica answers `status` for `code` within `deadline`.
async fn every_replica_answers(
    pair: &TestPair,
    replicas: &[&str],
    code: &str,
    status: u16,
    deadline: Duration,
) {
    for replica in replicas {
        let what = format!("{replica} answers {status}");
        eventually(deadline, &what, || async {
            pair.follow_on(replica, code).await.status() == status
        })
        .await;
    }
}

#[tokio::test]
async fn a_disabled_link_is_a_410_on_every_replica_within_a_second_and_redirects_once_enabled() {
    let pair = spawn_pair().await;
    let second = pair.spawn_redirect_app(pair.redirect_args()).await;
    let replicas = [pair.redirect.as_str(), second.address.as_str()];
    let code = pair.shorten(link("https://example.com/reported")).await;
    for replica in replicas {
        for _ in 0..2 {
            assert_eq!(pair.follow_on(replica, &code).await.status(), 302, "cached");
        }
    }
    let (store, invalidations) = operator(&pair, &pair.redis).await;

    let disabled = disable(&store, &invalidations, &code, "phishing, report 42")
        .await
        .expect("disabled");

    assert_eq!(disabled, Change::Delivered);
    every_replica_answers(&pair, &replicas, &code, 410, Duration::from_secs(1)).await;
    let enabled = enable(&store, &invalidations, &code)
        .await
        .expect("enabled");
    assert_eq!(enabled, Change::Delivered);
    every_replica_answers(&pair, &replicas, &code, 302, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_disable_redis_refused_reaches_every_replica_through_a_running_shortener() {
    let pair = spawn_pair().await;
    let second = pair.spawn_redirect_app(pair.redirect_args()).await;
    let replicas = [pair.redirect.as_str(), second.address.as_str()];
    let code = pair.shorten(link("https://example.com/reported")).await;
    for replica in replicas {
        assert_eq!(pair.follow_on(replica, &code).await.status(), 302);
    }
    let redis_url = secrecy::ExposeSecret::expose_secret(&pair.redis.redis_url).to_owned();
    // REDIS_URL is redis://host:port under `make test`.
    let upstream = redis_url
        .trim_start_matches("redis://")
        .trim_end_matches('/');
    let proxy = TcpProxy::start(upstream).await;
    proxy.set(ProxyMode::Refuse);
    let cut_off = RedisArgs::new(
        format!("redis://{}", proxy.address()),
        pair.redis.redis_prefix.clone(),
    );
    let (store, invalidations) = operator(&pair, &cut_off).await;

    let disabled = disable(&store, &invalidations, &code, "malware")
        .await
        .expect("disabled");

    assert_eq!(disabled, Change::Queued, "Redis refused the invalidation");
    every_replica_answers(&pair, &replicas, &code, 410, Duration::from_secs(5)).await;
    let cached = pair.cache().await.get(&code).await.expect("redis");
    assert!(
        !matches!(cached, Some(links::model::Resolution::Live { .. })),
        "Redis holds no live copy any more (a replica may have cached it as gone since): {cached:?}"
    );
}
