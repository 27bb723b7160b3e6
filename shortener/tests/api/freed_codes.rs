//! Purged codes are taken for a grace period, then free again; `shortener links free` frees one at once.

use links::cache::RedisCache;
use prometheus::Registry;
use serde_json::json;
use shortener::{outbox::Invalidations, takedown};

use crate::{
    cleanup::{cleaner, sql},
    helpers::spawn_app,
};

#[tokio::test]
async fn a_code_purged_longer_ago_than_the_grace_is_free_again_and_a_recent_one_is_not() {
    let app = spawn_app().await;
    sql(&app.db)
        .await
        .batch_execute(
            "INSERT INTO retired_codes (code, retired_at) VALUES
                 ('last-year-sale', now() - interval '31 days'), ('last-week-sale', now() - interval '1 day')",
        )
        .await
        .expect("tombstones");

    cleaner(&app.db, &app.redis, 1000)
        .await
        .freeing_codes_after(30)
        .pass(|| true)
        .await
        .expect("the pass succeeds");
    let old = app
        .create(json!({"long_url": "https://example.com/", "alias": "last-year-sale"}))
        .await;
    let recent = app
        .create(json!({"long_url": "https://example.com/", "alias": "last-week-sale"}))
        .await;

    assert_eq!(old.status(), 201, "past the grace period");
    assert_eq!(recent.status(), 409, "within it");
}

#[tokio::test]
async fn links_free_frees_an_expired_alias_at_once_and_never_a_live_one() {
    let app = spawn_app().await;
    for alias in ["expired-sale", "live-sale"] {
        app.create(json!({"long_url": "https://example.com/", "alias": alias}))
            .await;
    }
    sql(&app.db)
        .await
        .execute(
            "UPDATE links SET expires_at = now() - interval '1 second' WHERE code = 'expired-sale'",
            &[],
        )
        .await
        .expect("expire");
    let cache = RedisCache::connect(&app.redis.options())
        .await
        .expect("redis");
    let invalidations =
        Invalidations::register(app.store.clone(), cache, &Registry::new()).expect("metrics");

    let expired = takedown::free(&app.store, &invalidations, "expired-sale").await;
    let live = takedown::free(&app.store, &invalidations, "live-sale").await;
    let retaken = app
        .create(json!({"long_url": "https://example.com/new", "alias": "expired-sale"}))
        .await;

    assert_eq!(expired.expect("freed"), takedown::Change::Delivered);
    assert_eq!(live.expect("answered"), takedown::Change::NoSuchLink);
    assert_eq!(retaken.status(), 201);
    assert_eq!(app.read("live-sale").await["code"], "live-sale");
}
