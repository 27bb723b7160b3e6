//! Invalidation over Redis pub/sub: every replica drops a changed code from its local cache.

use std::time::Duration;

use testkit::eventually;

use crate::helpers::{link, spawn_pair, tiers};

#[tokio::test]
async fn a_deleted_and_published_code_is_a_410_on_every_replica_within_a_second() {
    let pair = spawn_pair().await;
    let second = pair.spawn_redirect_app(pair.redirect_args()).await;
    let code = pair.shorten(link("https://example.com/doomed")).await;
    let replicas = [
        (pair.redirect.as_str(), pair.redirect_admin.as_str()),
        (second.address.as_str(), second.admin.as_str()),
    ];
    for (address, admin) in replicas {
        assert_eq!(pair.follow_on(address, &code).await.status(), 302);
        let before = tiers(admin).await;
        assert_eq!(pair.follow_on(address, &code).await.status(), 302);
        assert_eq!(
            tiers(admin).await.local,
            before.local + 1.0,
            "cached locally"
        );
    }
    pair.sql("UPDATE links SET deleted_at = now() WHERE code = $1", &code)
        .await;
    for (address, _) in replicas {
        assert_eq!(
            pair.follow_on(address, &code).await.status(),
            302,
            "the local cache still holds the link before the message"
        );
    }

    pair.cache().await.invalidate(&code).await.expect("publish");

    for (address, _) in replicas {
        eventually(
            Duration::from_secs(1),
            "410 after the invalidation",
            || async { pair.follow_on(address, &code).await.status() == 410 },
        )
        .await;
    }
}

#[tokio::test]
async fn a_published_code_that_was_unknown_is_found_at_once() {
    let pair = spawn_pair().await;
    assert_eq!(pair.follow("LateAlias").await.status(), 404);
    let code = "LateAlias";
    pair.primary()
        .await
        .execute(
            "INSERT INTO links (id, code, long_url, url_hash) VALUES (42, $1, 'https://example.com/late', '\\x00')",
            &[&code],
        )
        .await
        .expect("insert");
    pair.db.wait_for_replica_catch_up().await;

    pair.cache().await.invalidate(code).await.expect("publish");

    eventually(
        Duration::from_secs(1),
        "302 after the invalidation",
        || async { pair.follow(code).await.status() == 302 },
    )
    .await;
}

#[tokio::test]
async fn a_burst_of_announcements_does_not_drop_the_whole_cache() {
    // One batch create announces each of its (up to 1,000) codes in one pipeline; a subscriber that falls behind
    // fred's buffer drops the whole local cache, which sent every replica's traffic to Redis.
    const BURST: usize = 4_000;
    let pair = spawn_pair().await;
    let codes: Vec<String> = (0..BURST).map(|n| format!("burst{n}")).collect();
    let heard = "redirect_invalidations_total{scope=\"code\"}";
    let dropped_all = "redirect_invalidations_total{scope=\"all\"}";
    let before = testkit::metrics::metric(&pair.redirect_admin, heard).await;
    let dropped_before = testkit::metrics::metric(&pair.redirect_admin, dropped_all).await;

    // Pipelines of a batch create's size, so that a loaded test machine still takes each within Redis's timeout.
    let cache = pair.cache().await;
    // A pipeline that timed out on a loaded machine is sent again: announcing a code twice changes nothing but
    // the count heard, which only has to reach the burst.
    for chunk in codes.chunks(1_000) {
        let mut tries = 0;
        while let Err(error) = cache.invalidate_all(chunk).await {
            tries += 1;
            assert!(tries < 5, "publish: {error:?}");
        }
    }

    #[expect(clippy::cast_precision_loss, reason = "a small count")]
    let burst = BURST as f64;
    eventually(
        Duration::from_secs(5),
        "every announcement heard",
        || async { testkit::metrics::metric(&pair.redirect_admin, heard).await >= before + burst },
    )
    .await;
    assert_eq!(
        testkit::metrics::metric(&pair.redirect_admin, dropped_all).await,
        dropped_before,
        "the subscriber fell behind and dropped the whole local cache"
    );
}
