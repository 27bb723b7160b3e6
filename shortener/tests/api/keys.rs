//! `shortener keys create|list|revoke`, run as the real binary against the test's database.

use std::{process::Command, time::Duration};

use serde_json::json;
use testkit::eventually;

use crate::helpers::{spawn_app, spawn_app_on};

fn shortener_keys(database_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shortener"))
        .arg("keys")
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the shortener binary runs")
}

#[tokio::test]
async fn a_key_is_created_listed_used_and_revoked() {
    let app = spawn_app().await;

    let created = shortener_keys(&app.db.url, &["create", "--name", "ci-robot"]);
    assert!(created.status.success(), "{created:?}");
    let key = String::from_utf8(created.stdout).expect("utf-8");
    let key = key.trim();
    assert!(key.starts_with("sl_") && key.len() >= 3 + 32, "{key}");
    let response = app
        .create_as(key, json!({"long_url": "https://example.com/robot"}))
        .await;
    assert_eq!(response.status(), 201);

    let listed = shortener_keys(&app.db.url, &["list"]);
    let listing = String::from_utf8(listed.stdout).expect("utf-8");
    assert!(listing.contains("ci-robot"), "{listing}");
    assert!(
        !listing.contains(key),
        "the key itself is never shown again"
    );

    // The key's owner is cached now; the revoke (another process) must reach this instance through NOTIFY, long
    // before the cache's 60 s lifetime. Delivery is asynchronous, so allow it a moment.
    let revoked = shortener_keys(&app.db.url, &["revoke", "ci-robot"]);
    assert!(revoked.status.success(), "{revoked:?}");
    let refused = || async {
        let response = app
            .create_as(key, json!({"long_url": "https://example.com/robot"}))
            .await;
        if response.status() != 401 {
            assert_eq!(response.status(), 201);
        }
        response.status() == 401
    };
    let what = "the revoked key is refused: the cache heard the revoke";
    eventually(Duration::from_secs(5), what, refused).await;
    let again = shortener_keys(&app.db.url, &["revoke", "ci-robot"]);
    assert!(!again.status.success(), "revoking nothing is an error");
}

const KEY_LOOKUPS: &str = "shortener_api_key_lookups_total";

/// Waits until the shortener hears key changes, so keys are answered from memory.
async fn until_keys_are_cached(app: &crate::helpers::TestApp) {
    let trusted = || async { app.metric("shortener_api_key_cache_trusted").await == 1.0 };
    eventually(
        Duration::from_secs(5),
        "the API key cache is trusted",
        trusted,
    )
    .await;
}

async fn list_as(app: &crate::helpers::TestApp, key: &str) -> u16 {
    app.call(reqwest::Method::GET, "/v1/urls", key)
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_flood_of_made_up_keys_costs_a_bounded_number_of_database_lookups() {
    let app = spawn_app().await;
    until_keys_are_cached(&app).await;
    assert_eq!(list_as(&app, &app.api_key).await, 200);
    let before = app.metric(KEY_LOOKUPS).await;

    let bad = links::apikey::generate();
    for _ in 0..50 {
        assert_eq!(list_as(&app, &bad).await, 401);
    }
    assert_eq!(
        app.metric(KEY_LOOKUPS).await - before,
        1.0,
        "a repeated bad key is looked up once"
    );
    let mut statuses = std::collections::BTreeMap::<u16, u32>::new();
    let started = std::time::Instant::now();
    for _ in 0..300 {
        *statuses
            .entry(list_as(&app, &links::apikey::generate()).await)
            .or_default() += 1;
    }

    let lookups = app.metric(KEY_LOOKUPS).await - before;
    // The default bound: a burst of 20 (the 21st is looked up and refuses what follows), then one a second, which
    // may cost two lookups a second (the one allowed and the one that finds the bound spent again).
    let seconds = started.elapsed().as_secs_f64().ceil();
    assert!(
        lookups <= 1.0 + 21.0 + 2.0 * seconds,
        "{lookups} lookups in {seconds} s: {statuses:?}"
    );
    assert!(
        statuses.keys().all(|status| [401, 429].contains(status)),
        "{statuses:?}"
    );
    assert!(statuses.get(&429) > Some(&200), "{statuses:?}");
    assert_eq!(
        list_as(&app, &app.api_key).await,
        200,
        "a key in use keeps working for the same client"
    );
}

#[tokio::test]
async fn a_key_created_after_it_was_refused_works_within_a_second() {
    let app = spawn_app().await;
    until_keys_are_cached(&app).await;
    let key = links::apikey::generate();
    assert_eq!(list_as(&app, &key).await, 401);
    assert_eq!(list_as(&app, &key).await, 401, "now cached as unknown");

    app.sql(
        "INSERT INTO api_keys (name, key_hash) VALUES ('late', $1)",
        &[&links::apikey::hash(&key)],
    )
    .await;

    let works = || async { list_as(&app, &key).await == 200 };
    eventually(Duration::from_secs(1), "the new key is accepted", works).await;
}

#[tokio::test]
async fn a_client_with_many_good_keys_is_not_refused_while_the_cache_is_cold() {
    let app = spawn_app().await;
    let mut keys = Vec::new();
    for n in 0..30 {
        let (_, key) = app
            .store
            .create_api_key(&format!("customer {n}"))
            .await
            .expect("a key");
        keys.push(key);
    }
    until_keys_are_cached(&app).await;

    for key in &keys {
        assert_eq!(
            list_as(&app, key).await,
            200,
            "more good keys than the bound on unknown ones"
        );
    }
}

#[tokio::test]
async fn a_burst_with_one_key_while_the_cache_is_cold_costs_one_lookup() {
    let (db, proxy, proxied_url) = crate::degradation::proxied_database().await;
    let (redis_url, prefix) = testkit::redis();
    let app = spawn_app_on(
        db,
        links::cache::RedisArgs::new(redis_url, prefix),
        |args| {
            args.database.database_url = proxied_url.into();
            // Generous deadlines: this counts queries, not speed, on a busy machine.
            args.database.database_connect_timeout_ms = 20_000;
            args.request_timeout_ms = 20_000;
        },
    )
    .await;
    let app = std::sync::Arc::new(app);
    until_keys_are_cached(&app).await;
    let before = app.metric(KEY_LOOKUPS).await;

    // A slow database makes the burst's lookups overlap, as a busy primary would.
    proxy.set(testkit::proxy::ProxyMode::Stall);
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let app = std::sync::Arc::clone(&app);
        requests.spawn(async move {
            let response = app
                .call(reqwest::Method::GET, "/v1/urls/NoSuchCode", &app.api_key)
                .await;
            response.status().as_u16()
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.set(testkit::proxy::ProxyMode::Forward);
    while let Some(status) = requests.join_next().await {
        assert_eq!(
            status.expect("request task"),
            404,
            "authenticated, then not found"
        );
    }

    let lookups = app.metric(KEY_LOOKUPS).await - before;
    assert_eq!(
        lookups, 1.0,
        "concurrent lookups of one key share one query"
    );
}
