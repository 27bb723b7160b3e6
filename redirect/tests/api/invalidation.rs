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
