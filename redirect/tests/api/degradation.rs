//! Dependencies that die: Redis behind a breaker, PostgreSQL behind the caches, and /readyz reporting them while
//! staying ready (every replica shares them: readiness never depends on them).

use database::DatabaseArgs;
use links::cache::RedisArgs;
use redirect::config::RedirectArgs;

use testkit::proxy::{ProxyMode, TcpProxy};

use crate::helpers::{closed_port, link, metric, spawn_pair};

#[tokio::test]
async fn with_redis_unreachable_known_links_still_redirect_and_the_breaker_opens() {
    let pair = spawn_pair().await;
    let dead_redis = RedisArgs::new(format!("redis://127.0.0.1:{}", closed_port()), "unused:");
    let mut args = RedirectArgs::for_tests(
        DatabaseArgs::new(&pair.db.url),
        vec![pair.db.replica_url.clone()],
        dead_redis,
    );
    args.breaker.breaker_failures = 3;
    let redirect = pair.spawn_redirect_app(args).await;
    let mut codes = Vec::new();
    for index in 0..5 {
        codes.push(
            pair.shorten(link(&format!("https://example.com/r{index}")))
                .await,
        );
    }

    for code in &codes {
        let response = pair.follow_on(&redirect.address, code).await;
        assert_eq!(response.status(), 302, "{code}");
    }

    let opened = metric(
        &redirect.admin,
        "redirect_breaker_opened_total{backend=\"redis\"}",
    )
    .await;
    assert!(opened >= 1.0, "the Redis breaker opened");
    let ready = reqwest::get(format!("{}/readyz", redirect.admin))
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200, "still serving, so still ready");
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(body["dependencies"]["redis"], "down", "{body}");
    assert_eq!(body["dependencies"]["postgresql"], "up", "{body}");
    assert_eq!(body["failing"], serde_json::json!([]), "{body}");
    let up = metric(&redirect.admin, "dependency_up{dependency=\"redis\"}").await;
    assert_eq!(up, 0.0);
}

#[tokio::test]
async fn with_postgresql_gone_cached_links_redirect_and_a_true_miss_is_a_503_with_retry_after() {
    let pair = spawn_pair().await;
    let primary = TcpProxy::start(&database_address(&pair.db.url)).await;
    let through_proxy = with_port(&pair.db.url, primary.address().port());
    let mut args = RedirectArgs::for_tests(
        DatabaseArgs::new(&through_proxy),
        Vec::new(),
        pair.redis.clone(),
    );
    args.database_lookup_timeout_ms = 500;
    let redirect = pair.spawn_redirect_app(args).await;
    let cached = pair.shorten(link("https://example.com/cached")).await;
    let uncached = pair.shorten(link("https://example.com/uncached")).await;
    pair.cache()
        .await
        .delete(&uncached)
        .await
        .expect("redis delete");
    assert_eq!(
        pair.follow_on(&redirect.address, &cached).await.status(),
        302
    );

    primary.set(ProxyMode::Refuse);

    assert_eq!(
        pair.follow_on(&redirect.address, &cached).await.status(),
        302,
        "answered from the caches"
    );
    let missed = pair.follow_on(&redirect.address, &uncached).await;
    assert_eq!(missed.status(), 503);
    assert_eq!(missed.headers()["retry-after"], "1");
    let ready = reqwest::get(format!("{}/readyz", redirect.admin))
        .await
        .expect("readyz");
    assert_eq!(
        ready.status(),
        200,
        "still serving what is cached, so still ready"
    );
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(body["dependencies"]["postgresql"], "down", "{body}");
    assert_eq!(body["dependencies"]["redis"], "up", "{body}");
}

#[tokio::test]
async fn readyz_is_ready_while_every_dependency_answers() {
    let pair = spawn_pair().await;

    let ready = reqwest::get(format!("{}/readyz", pair.redirect_admin))
        .await
        .expect("readyz");

    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.expect("json");
    let dependencies = body["dependencies"].as_object().expect("dependencies");
    assert!(!dependencies.is_empty(), "{body}");
    assert!(dependencies.values().all(|state| state == "up"), "{body}");
}

/// `host:port` of a `postgres://user:password@host:port/db` URL.
fn database_address(url: &str) -> String {
    let after_at = url.rsplit_once('@').expect("URL with credentials").1;
    after_at.split('/').next().expect("host:port").to_owned()
}

/// The same URL with another port.
fn with_port(url: &str, port: u16) -> String {
    let address = database_address(url);
    let host = address.split(':').next().expect("host");
    url.replacen(&address, &format!("{host}:{port}"), 1)
}
