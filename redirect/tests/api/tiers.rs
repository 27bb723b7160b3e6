//! Which tier answers: the local cache, Redis, PostgreSQL, negative entries; single flight; expiry in every tier.

use std::time::Duration;

use chrono::SubsecRound as _;
use plumbing::clock::Clock as _;
use serde_json::json;

use crate::helpers::{database_lookups, link, spawn_pair, tiers};

#[tokio::test]
async fn a_fresh_link_comes_from_redis_then_from_the_local_cache() {
    let pair = spawn_pair().await;
    let code = pair.shorten(link("https://example.com/tiers")).await;
    let before = tiers(&pair.redirect_admin).await;

    assert_eq!(pair.follow(&code).await.status(), 302);
    let after_first = tiers(&pair.redirect_admin).await;
    assert_eq!(pair.follow(&code).await.status(), 302);
    let after_second = tiers(&pair.redirect_admin).await;

    assert_eq!(after_first.redis, before.redis + 1.0, "{after_first:?}");
    assert_eq!(after_first.local, before.local);
    assert_eq!(after_second.local, before.local + 1.0, "{after_second:?}");
    assert_eq!(after_second.redis, after_first.redis);
}

#[tokio::test]
async fn a_link_missing_in_redis_comes_from_postgresql_and_fills_both_caches() {
    let pair = spawn_pair().await;
    let code = pair.shorten(link("https://example.com/deep")).await;
    let cache = pair.cache().await;
    cache.delete(&code).await.expect("redis delete");
    let before = tiers(&pair.redirect_admin).await;

    assert_eq!(pair.follow(&code).await.status(), 302);
    let after_first = tiers(&pair.redirect_admin).await;
    assert_eq!(pair.follow(&code).await.status(), 302);
    let after_second = tiers(&pair.redirect_admin).await;

    assert_eq!(
        after_first.database,
        before.database + 1.0,
        "{after_first:?}"
    );
    // The fill runs after the answer has gone, on the redirect's worker.
    testkit::eventually(Duration::from_secs(2), "Redis refilled", || async {
        cache.get(&code).await.expect("redis").is_some()
    })
    .await;
    assert_eq!(after_second.local, before.local + 1.0, "{after_second:?}");
    assert_eq!(after_second.database, after_first.database);
}

#[tokio::test]
async fn an_unknown_code_is_answered_from_a_negative_entry_the_second_time() {
    let pair = spawn_pair().await;
    let before = tiers(&pair.redirect_admin).await;

    assert_eq!(pair.follow("NoSuchLink").await.status(), 404);
    assert_eq!(pair.follow("NoSuchLink").await.status(), 404);
    let after = tiers(&pair.redirect_admin).await;

    assert_eq!(after.database, before.database + 1.0, "{after:?}");
    assert_eq!(after.negative, before.negative + 1.0, "{after:?}");
}

#[tokio::test]
async fn a_hundred_concurrent_misses_for_one_code_make_one_database_lookup() {
    let pair = spawn_pair().await;
    let code = pair.shorten(link("https://example.com/stampede")).await;
    // A replica that has not replayed the insert yet would add a primary confirmation: two backend calls for
    // the one lookup this test counts.
    pair.db.wait_for_replica_catch_up().await;
    pair.cache()
        .await
        .delete(&code)
        .await
        .expect("redis delete");
    let before = database_lookups(&pair.redirect_admin).await;

    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let (client, url) = (pair.client.clone(), format!("{}/{code}", pair.redirect));
        requests.spawn(async move { client.get(url).send().await.expect("answer").status() });
    }
    while let Some(status) = requests.join_next().await {
        assert_eq!(status.expect("request task"), 302);
    }

    let lookups = database_lookups(&pair.redirect_admin).await - before;
    assert_eq!(lookups, 1.0, "database lookups for 100 concurrent requests");
}

#[tokio::test]
async fn an_expired_link_cached_in_every_tier_is_a_410_as_soon_as_it_expires() {
    let pair = spawn_pair().await;
    // To the millisecond, as the Redis value keeps it, so "as soon as" below is the exact instant.
    let expires_at = (pair.clock.now() + chrono::Duration::milliseconds(3000)).trunc_subsecs(3);
    let code = pair
        .shorten(
            json!({"long_url": "https://example.com/brief", "expires_at": expires_at.to_rfc3339()}),
        )
        .await;
    assert_eq!(pair.follow(&code).await.status(), 302, "from Redis");
    assert_eq!(
        pair.follow(&code).await.status(),
        302,
        "from the local cache"
    );
    // Keep the Redis entry past the expiry, as a stale cache would.
    let cache = pair.cache().await;
    let target = cache.get(&code).await.expect("redis").expect("cached");
    cache
        .put(&code, &target, Duration::from_secs(60))
        .await
        .expect("redis put");
    let before = tiers(&pair.redirect_admin).await;

    pair.clock.set(expires_at);
    let response = pair.follow(&code).await;

    assert_eq!(response.status(), 410);
    let after = tiers(&pair.redirect_admin).await;
    assert_eq!(
        after.local,
        before.local + 1.0,
        "answered by the local cache: {after:?}"
    );
}
