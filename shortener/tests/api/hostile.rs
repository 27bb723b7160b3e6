//! Input no link can have, refused as a 4xx before it reaches a query or becomes a link that cannot be managed.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::{error_code, spawn_app, spawn_app_on, spawn_app_with};

#[tokio::test]
async fn a_path_code_no_link_can_have_is_a_404_on_every_route() {
    let app = spawn_app().await;

    for path in [
        "/v1/urls/%00",
        "/v1/urls/a%00b/stats",
        "/v1/urls/a%0Ab/hits",
        "/v1/urls/a%20b/qr",
    ] {
        let response = app.call(Method::GET, path, &app.api_key).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(error_code(response).await, "not_found", "{path}");
    }
    let long = "x".repeat(65);
    let deleted = app
        .call(Method::DELETE, &format!("/v1/urls/{long}"), &app.api_key)
        .await;
    assert_eq!(deleted.status(), 404);
}

#[tokio::test]
async fn a_route_segment_is_a_reserved_alias() {
    let app = spawn_app().await;

    let response = app
        .create(json!({"long_url": "https://example.com/", "alias": "batch"}))
        .await;

    assert_eq!(response.status(), 422);
    assert_eq!(error_code(response).await, "reserved_alias");
}

#[tokio::test]
async fn a_shortener_on_loopback_refuses_links_to_localhost() {
    let base = url::Url::parse("http://127.0.0.1:8081/").expect("a URL");
    let app = spawn_app_with(|args| args.public_base_url = base).await;

    let response = app
        .create(json!({"long_url": "http://localhost:8081/x"}))
        .await;

    assert_eq!(response.status(), 422);
    assert_eq!(error_code(response).await, "invalid_url");
}

#[tokio::test]
async fn a_read_past_its_deadline_leaves_no_statement_behind_on_the_pool() {
    let app = spawn_app_with(|args| args.request_timeout_ms = 1_000).await;
    // Inserted, not created: a create under a 1 s deadline could itself time out on a busy machine.
    app.sql(
        "INSERT INTO links (id, code, long_url, url_hash, owner_id)
         VALUES (1, 'held', 'https://example.com/held', '\\x00', (SELECT id FROM api_keys WHERE name = 'tests'))",
        &[],
    )
    .await;
    let code = "held";
    let locker = app.locker().await;
    locker
        .batch_execute("BEGIN; LOCK TABLE links IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");

    let response = app
        .call(Method::GET, &format!("/v1/urls/{code}"), &app.api_key)
        .await;

    assert_eq!(response.status(), 503, "the deadline passed");
    // The pool's own statement timeout is 5 s: only the request's budget can end the wait this soon.
    testkit::eventually(
        Duration::from_secs(3),
        "PostgreSQL cancelled the read its request gave up on",
        || async { app.lock_waiters().await == 0 },
    )
    .await;
    locker.batch_execute("ROLLBACK").await.expect("unlock");
}

#[tokio::test]
async fn search_stats_and_exports_read_the_replica_and_writes_and_single_reads_do_not() {
    let closed = format!(
        "postgres://snowlink@127.0.0.1:{}/nothing",
        crate::helpers::closed_port()
    );
    let app = spawn_app_with(|args| args.replica_urls = vec![closed.into()]).await;
    let code = app
        .shorten(json!({"long_url": "https://example.com/replicated"}))
        .await;

    let on_the_replica = [
        "/v1/urls?q=replicated".to_owned(),
        format!("/v1/urls/{code}/stats"),
        format!("/v1/urls/{code}/hits"),
        "/v1/urls/export.csv".to_owned(),
    ];
    for path in &on_the_replica {
        let response = app.call(Method::GET, path, &app.api_key).await;
        assert_eq!(response.status(), 503, "{path} reads the (closed) replica");
    }
    for path in [format!("/v1/urls/{code}"), "/v1/urls".to_owned()] {
        let response = app.call(Method::GET, &path, &app.api_key).await;
        assert_eq!(response.status(), 200, "{path} reads the primary");
    }
}

#[tokio::test]
async fn a_search_on_the_replica_finds_a_link_once_it_has_replicated() {
    let db = testkit::TestDb::create().await;
    let replica = db.replica_url.clone();
    let (redis_url, prefix) = testkit::redis();
    let redis = links::cache::RedisArgs::new(redis_url, prefix);
    let app = spawn_app_on(db, redis, |args| args.replica_urls = vec![replica.into()]).await;
    app.shorten(json!({"long_url": "https://example.com/replicated"}))
        .await;

    testkit::eventually(
        Duration::from_secs(10),
        "the replica has the link",
        || async {
            let response = app
                .call(Method::GET, "/v1/urls?q=replicated", &app.api_key)
                .await;
            let page: serde_json::Value = response.json().await.expect("json");
            page["items"]
                .as_array()
                .is_some_and(|items| items.len() == 1)
        },
    )
    .await;
}
