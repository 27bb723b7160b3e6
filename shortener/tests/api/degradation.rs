//! Dependencies going away: PostgreSQL down or hanging → 503 with Retry-After at once (and recovery when it is
//! back); Redis down → links are still created and resolvable from PostgreSQL.

use std::time::{Duration, Instant};

use links::{cache::RedisArgs, model::Resolution};
use serde_json::json;
use testkit::{
    eventually,
    proxy::{ProxyMode, TcpProxy},
    TestDb,
};

use crate::helpers::{closed_port, error_code, spawn_app_on};

/// A test database reached through a proxy the test controls.
pub async fn proxied_database() -> (TestDb, TcpProxy, String) {
    let db = TestDb::create().await;
    let mut url = url::Url::parse(&db.url).expect("database url");
    let upstream = format!(
        "{}:{}",
        url.host_str().expect("host"),
        url.port().unwrap_or(5432)
    );
    let proxy = TcpProxy::start(&upstream).await;
    url.set_port(Some(proxy.address().port())).expect("port");
    (db, proxy, url.to_string())
}

async fn assert_503_quickly(response: reqwest::Response, started: Instant) {
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(error_code(response).await, "unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered without hanging (took {:?})",
        started.elapsed()
    );
}

#[tokio::test]
async fn postgresql_down_is_503_and_the_service_recovers_by_itself() {
    let (db, proxy, proxied_url) = proxied_database().await;
    let (redis_url, prefix) = testkit::redis();
    let app = spawn_app_on(db, RedisArgs::new(redis_url, prefix), |args| {
        args.database.database_url = proxied_url.into();
    })
    .await;
    app.shorten(json!({"long_url": "https://example.com/before"}))
        .await;

    proxy.set(ProxyMode::Refuse);
    let started = Instant::now();
    let response = app
        .create(json!({"long_url": "https://example.com/during"}))
        .await;
    assert_503_quickly(response, started).await;
    let ready = app
        .client
        .get(format!("{}/readyz", app.admin_address))
        .send()
        .await
        .expect("readyz");
    // Every replica shares PostgreSQL: its loss is reported, and no reason to leave the Service.
    assert_eq!(ready.status(), 200, "ready: the lease holds");
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(body["dependencies"]["postgresql"], "down", "{body}");

    proxy.set(ProxyMode::Forward);
    let recovered = || async {
        let response = app
            .create(json!({"long_url": "https://example.com/after"}))
            .await;
        response.status() == 201
    };
    eventually(
        Duration::from_secs(20),
        "recovery: a create is 201 again",
        recovered,
    )
    .await;
}

#[tokio::test]
async fn a_hanging_postgresql_is_503_at_the_request_deadline() {
    let (db, proxy, proxied_url) = proxied_database().await;
    let (redis_url, prefix) = testkit::redis();
    let app = spawn_app_on(db, RedisArgs::new(redis_url, prefix), |args| {
        args.database.database_url = proxied_url.into();
        args.request_timeout_ms = 500;
    })
    .await;

    proxy.set(ProxyMode::Stall);
    let started = Instant::now();
    let response = app
        .create(json!({"long_url": "https://example.com/stuck"}))
        .await;

    assert_503_quickly(response, started).await;
}

#[tokio::test]
async fn with_redis_down_links_are_still_created_and_resolvable() {
    let db = TestDb::create().await;
    let redis = RedisArgs::new(format!("redis://127.0.0.1:{}", closed_port()), "unused:");
    let app = spawn_app_on(db, redis, |_| {}).await;

    let code = app
        .shorten(json!({"long_url": "https://example.com/no-redis"}))
        .await;

    let Resolution::Live { long_url, .. } = app.store.resolve(&code).await.expect("lookup") else {
        panic!("the link is in PostgreSQL");
    };
    assert_eq!(long_url, "https://example.com/no-redis");
    let metrics = app
        .client
        .get(format!("{}/metrics", app.admin_address))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(
            r#"shortener_degraded_total{dependency="redis",operation="write_through"} 1"#
        ),
        "the skipped write-through is counted:\n{metrics}"
    );
}

#[tokio::test]
async fn a_hung_redis_opens_the_breaker_and_creates_stop_waiting_for_it() {
    let db = TestDb::create().await;
    let (redis_url, prefix) = testkit::redis();
    let upstream = url::Url::parse(&redis_url).expect("redis url");
    let proxy = TcpProxy::start(&format!(
        "{}:{}",
        upstream.host_str().expect("host"),
        upstream.port().unwrap_or(6379)
    ))
    .await;
    let mut redis = RedisArgs::new(format!("redis://{}", proxy.address()), prefix);
    redis.redis_timeout_ms = 1_000;
    let app = spawn_app_on(db, redis, |args| args.breaker.breaker_failures = 2).await;
    app.shorten(json!({"long_url": "https://example.com/before"}))
        .await;

    proxy.set(ProxyMode::Stall);
    for index in 0..2 {
        app.shorten(json!({"long_url": format!("https://example.com/slow{index}")}))
            .await;
    }
    let started = Instant::now();
    for index in 0..5 {
        app.shorten(json!({"long_url": format!("https://example.com/fast{index}")}))
            .await;
    }

    // Without the breaker each of these waits out Redis's 1 s timeout: 5 s at least.
    assert!(
        started.elapsed() < Duration::from_millis(2_500),
        "creates skipped the hung Redis (took {:?})",
        started.elapsed()
    );
    let ready = app
        .client
        .get(format!("{}/readyz", app.admin_address))
        .send()
        .await
        .expect("readyz");
    assert_eq!(
        ready.status(),
        200,
        "Redis is shared: reported, not blocking"
    );
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(body["dependencies"]["redis"], "down", "{body}");
}
