//! `GET`/`HEAD /{code}`.

use std::time::Duration;

use links::{
    cache::Cached,
    model::{RedirectStatus, Resolution},
};
use plumbing::clock::Clock as _;
use serde_json::json;
use testkit::eventually;

use crate::helpers::{link, spawn_pair};

#[tokio::test]
async fn a_shortened_link_redirects_to_its_long_url() {
    let pair = spawn_pair().await;
    let code = pair.shorten(link("https://example.com/landing?x=1")).await;

    let response = pair.follow(&code).await;

    assert_eq!(response.status(), 302);
    assert_eq!(
        response.headers()["location"],
        "https://example.com/landing?x=1"
    );
    assert_eq!(response.headers()["cache-control"], "private, max-age=0");
}

#[tokio::test]
async fn the_redirect_works_from_postgresql_after_the_redis_key_is_gone_and_refills_it() {
    let pair = spawn_pair().await;
    let code = pair.shorten(link("https://example.com/durable")).await;
    let cache = pair.cache().await;
    cache.delete(&code).await.expect("redis delete");
    assert_eq!(cache.get(&code).await.expect("redis"), None);

    let response = pair.follow(&code).await;

    assert_eq!(response.status(), 302);
    assert_eq!(
        response.headers()["location"],
        "https://example.com/durable"
    );
    // The fill runs after the answer has gone, on the redirect's worker.
    eventually(
        Duration::from_secs(2),
        "the lookup filled Redis again",
        || async { cache.get(&code).await.expect("redis").is_some() },
    )
    .await;
}

#[tokio::test]
async fn each_link_answers_with_its_own_status_and_permanent_ones_are_cacheable() {
    let pair = spawn_pair().await;
    for status in [301u16, 307, 308] {
        let code = pair
            .shorten(json!({"long_url": "https://example.com/", "redirect": status}))
            .await;

        let response = pair.follow(&code).await;

        assert_eq!(response.status().as_u16(), status);
        let cache_control = response.headers()["cache-control"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert_eq!(
            cache_control.starts_with("public, max-age="),
            status != 307,
            "{status}: {cache_control}"
        );
    }
}

#[tokio::test]
async fn an_unknown_code_is_a_404_that_nobody_caches() {
    let pair = spawn_pair().await;

    let response = pair.follow("NoSuchCode").await;

    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(
        pair.cache().await.get("NoSuchCode").await.expect("redis"),
        Some(links::model::Resolution::Unknown),
        "the miss is cached negatively"
    );
}

#[tokio::test]
async fn a_code_that_cannot_exist_is_a_404_without_a_lookup() {
    let pair = spawn_pair().await;

    let response = pair
        .client
        .get(format!("{}/favicon.ico", pair.redirect))
        .header("accept", "application/json")
        .send()
        .await
        .expect("answer");

    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.expect("json body when asked");
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(
        pair.cache().await.get("favicon.ico").await.expect("redis"),
        None,
        "no tier was asked"
    );
}

#[tokio::test]
async fn a_deleted_link_is_a_410() {
    let pair = spawn_pair().await;
    let code = pair.shorten(link("https://example.com/old")).await;
    pair.sql("UPDATE links SET deleted_at = now() WHERE code = $1", &code)
        .await;
    pair.cache()
        .await
        .delete(&code)
        .await
        .expect("redis delete");

    let response = pair.follow(&code).await;

    assert_eq!(response.status(), 410);
    assert_eq!(response.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn an_expired_link_is_a_410_even_from_the_cache() {
    let pair = spawn_pair().await;
    let expires_at = (pair.clock.now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
    let code = pair
        .shorten(json!({"long_url": "https://example.com/soon", "expires_at": expires_at}))
        .await;
    assert_eq!(pair.follow(&code).await.status(), 302);
    // Put the entry back in Redis for longer than the link lives, as a stale cache would hold it.
    let target = pair
        .cache()
        .await
        .get(&code)
        .await
        .expect("redis")
        .expect("cached");
    pair.cache()
        .await
        .put(&code, &target, std::time::Duration::from_secs(60))
        .await
        .expect("redis put");

    pair.clock.advance(chrono::Duration::milliseconds(1600));

    assert_eq!(pair.follow(&code).await.status(), 410);
}

#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    let pair = spawn_pair().await;
    let code = pair.shorten(link("https://example.com/head")).await;

    let response = pair
        .client
        .head(format!("{}/{code}", pair.redirect))
        .send()
        .await
        .expect("answer");

    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()["location"], "https://example.com/head");
}

#[tokio::test]
async fn a_code_missing_on_a_lagging_replica_is_confirmed_on_the_primary() {
    let pair = spawn_pair().await;
    let code = pair.shorten(link("https://example.com/fresh")).await;
    pair.cache()
        .await
        .delete(&code)
        .await
        .expect("redis delete");
    let (_lagging, redirect) = pair
        .spawn_redirect_on_an_empty_replica(|args| args.confirm_misses_on_primary = true)
        .await;

    let response = pair
        .client
        .get(format!("{}/{code}", redirect.address))
        .send()
        .await
        .expect("answer");

    assert_eq!(response.status(), 302);
}

#[tokio::test]
async fn without_confirmation_a_lagging_replica_decides() {
    let pair = spawn_pair().await;
    let code = pair.shorten(link("https://example.com/fresh")).await;
    pair.cache()
        .await
        .delete(&code)
        .await
        .expect("redis delete");
    let (_lagging, redirect) = pair
        .spawn_redirect_on_an_empty_replica(|args| args.confirm_misses_on_primary = false)
        .await;

    let response = pair
        .client
        .get(format!("{}/{code}", redirect.address))
        .send()
        .await
        .expect("answer");

    assert_eq!(
        response.status(),
        404,
        "the replica's answer was taken as it is"
    );
}

#[tokio::test]
async fn a_replica_that_is_down_is_skipped() {
    let pair = spawn_pair().await;
    let code = pair.shorten(link("https://example.com/up")).await;
    pair.cache()
        .await
        .delete(&code)
        .await
        .expect("redis delete");
    let closed_port = crate::helpers::closed_port();
    let dead = format!("postgres://nobody@127.0.0.1:{closed_port}/none");
    let args = redirect::config::RedirectArgs::for_tests(
        database::DatabaseArgs::new(&pair.db.url),
        vec![dead, pair.db.replica_url.clone()],
        pair.redis.clone(),
    );
    let redirect = pair.spawn_redirect(args).await;

    for _ in 0..2 {
        pair.cache()
            .await
            .delete(&code)
            .await
            .expect("redis delete");
        let response = pair
            .client
            .get(format!("{redirect}/{code}"))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 302);
    }
}

#[tokio::test]
async fn with_redis_down_links_are_served_from_postgresql() {
    let pair = spawn_pair().await;
    let code = pair.shorten(link("https://example.com/no-redis")).await;
    let closed_port = crate::helpers::closed_port();
    let dead_redis =
        links::cache::RedisArgs::new(format!("redis://127.0.0.1:{closed_port}"), "unused:");
    let args = redirect::config::RedirectArgs::for_tests(
        database::DatabaseArgs::new(&pair.db.url),
        vec![pair.db.replica_url.clone()],
        dead_redis,
    );
    let redirect = pair.spawn_redirect(args).await;

    let response = pair
        .client
        .get(format!("{redirect}/{code}"))
        .send()
        .await
        .expect("answer");

    assert_eq!(response.status(), 302);
    assert_eq!(
        response.headers()["location"],
        "https://example.com/no-redis"
    );
}

#[tokio::test]
async fn another_method_on_a_code_is_a_405_naming_get_and_head_and_a_deeper_path_a_404() {
    let pair = spawn_pair().await;
    let code = pair.shorten(link("https://example.com/only-get")).await;

    let posted = pair
        .client
        .post(format!("{}/{code}", pair.redirect))
        .header("accept", "application/json")
        .send()
        .await
        .expect("answer");
    let deeper = pair.follow(&format!("{code}/more")).await;

    assert_eq!(posted.status(), 405);
    assert_eq!(posted.headers()["allow"], "GET, HEAD");
    let body: serde_json::Value = posted.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "method_not_allowed");
    assert_eq!(deeper.status(), 404);
    assert_eq!(pair.follow(&code).await.status(), 302);
}

#[tokio::test]
async fn a_deleted_link_is_410_even_while_its_replica_still_has_it_live() {
    let pair = spawn_pair().await;
    let code = pair.shorten(link("https://example.com/going")).await;
    // A "replica" that has not replayed the delete: it holds the row as it was.
    let stale = testkit::TestDb::create().await;
    shortener::stores::connect_and_migrate(&database::DatabaseArgs::new(&stale.url))
        .await
        .expect("migrated");
    let (client, connection) = tokio_postgres::connect(&stale.url, tokio_postgres::NoTls)
        .await
        .expect("stale db");
    tokio::spawn(connection);
    client
        .execute(
            "INSERT INTO links (id, code, long_url, url_hash) VALUES (1, $1, 'https://example.com/going', '\\x00')",
            &[&code],
        )
        .await
        .expect("stale row");
    let args = redirect::config::RedirectArgs::for_tests(
        database::DatabaseArgs::new(&pair.db.url),
        vec![stale.url.clone()],
        pair.redis.clone(),
    );
    let redirect = pair.spawn_redirect(args).await;
    let follow = || pair.client.get(format!("{redirect}/{code}")).send();
    assert_eq!(follow().await.expect("answer").status(), 302);

    pair.sql("UPDATE links SET deleted_at = now() WHERE code = $1", &code)
        .await;
    let cache = pair.cache().await;
    let invalidated = || async {
        // What the shortener's DELETE does; repeated in case the subscriber was not connected yet.
        cache.invalidate(&code).await.expect("invalidate");
        follow().await.expect("answer").status() == 410
    };
    let what = "410: the stale replica's copy is no longer served after the invalidation";
    eventually(std::time::Duration::from_secs(10), what, invalidated).await;
    // And it stays gone: Redis holds the mark of the change, which no fill (from this stale replica or a lookup
    // that overlapped the delete) may write over for a minute.
    assert_eq!(follow().await.expect("answer").status(), 410);
    assert_eq!(
        cache.lookup(&code).await.expect("redis"),
        Cached::RecentlyChanged
    );
    let stale_copy = Resolution::Live {
        long_url: "https://example.com/going".into(),
        redirect: RedirectStatus::Found302,
        expires_at: None,
        id: 1,
        password_hash: None,
        limited: false,
        max_hits: None,
        routing: None,
        owner: None,
    };
    let filled = cache.fill(&code, &stale_copy, Duration::from_secs(60));
    assert!(!filled.await.expect("redis"), "the mark is not overwritten");
    // A redirect that never heard the invalidation (it starts now) asks the primary on seeing the mark.
    let args = redirect::config::RedirectArgs::for_tests(
        database::DatabaseArgs::new(&pair.db.url),
        vec![stale.url.clone()],
        pair.redis.clone(),
    );
    let late = pair.spawn_redirect(args).await;
    assert_eq!(pair.follow_on(&late, &code).await.status(), 410);
}
