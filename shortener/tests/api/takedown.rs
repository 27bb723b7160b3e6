//! `shortener links show|disable|enable CODE`, run as the real binary against the test's database and Redis, and
//! deletes whose invalidation Redis did not take at first.

use std::{process::Command, time::Duration};

use secrecy::ExposeSecret as _;
use serde_json::json;
use testkit::{
    eventually,
    proxy::{ProxyMode, TcpProxy},
};

use crate::helpers::{spawn_app, spawn_app_on, TestApp};

fn shortener_links(app: &TestApp, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shortener"))
        .arg("links")
        .args(args)
        .env("DATABASE_URL", &app.db.url)
        .env("REDIS_URL", app.redis.redis_url.expose_secret())
        .env("REDIS_PREFIX", &app.redis.redis_prefix)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the shortener binary runs")
}

fn stdout(output: &std::process::Output) -> String {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout.clone()).expect("utf-8")
}

#[tokio::test]
async fn show_prints_the_owner_and_the_state_through_disable_and_enable() {
    let app = spawn_app().await;
    let code = app
        .shorten(json!({"long_url": "https://example.com/reported"}))
        .await;

    let shown = stdout(&shortener_links(&app, &["show", &code]));
    assert!(shown.contains(&format!("code      {code}")), "{shown}");
    assert!(
        shown.contains("long_url  https://example.com/reported"),
        "{shown}"
    );
    assert!(shown.contains("owner     tests (API key "), "{shown}");
    assert!(shown.contains("state     active"), "{shown}");
    assert!(shown.contains("hits      0"), "{shown}");

    let disabled = stdout(&shortener_links(
        &app,
        &["disable", &code, "--reason", "phishing, report 42"],
    ));
    assert!(disabled.contains("disabled"), "{disabled}");
    let shown = stdout(&shortener_links(&app, &["show", &code]));
    assert!(shown.contains("state     disabled "), "{shown}");
    assert!(shown.contains(": phishing, report 42"), "{shown}");

    stdout(&shortener_links(&app, &["enable", &code]));
    let shown = stdout(&shortener_links(&app, &["show", &code]));
    assert!(shown.contains("state     active"), "{shown}");
}

#[tokio::test]
async fn an_unknown_code_exits_3_with_a_message_and_a_reason_is_required() {
    let app = spawn_app().await;

    for args in [
        &["show", "NoSuchCode"][..],
        &["disable", "NoSuchCode", "--reason", "spam"],
        &["enable", "NoSuchCode"],
    ] {
        let output = shortener_links(&app, args);
        assert_eq!(output.status.code(), Some(3), "{args:?}: {output:?}");
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(
            message.contains("no link has the code \"NoSuchCode\""),
            "{args:?}: {message}"
        );
    }
    let without_reason = shortener_links(&app, &["disable", "NoSuchCode"]);
    assert_eq!(without_reason.status.code(), Some(2), "{without_reason:?}");
}

#[tokio::test]
async fn a_delete_while_redis_is_down_is_dropped_from_redis_once_it_is_back() {
    let db = testkit::TestDb::create().await;
    let (redis_url, prefix) = testkit::redis();
    let mut url = url::Url::parse(&redis_url).expect("redis url");
    let upstream = format!(
        "{}:{}",
        url.host_str().expect("host"),
        url.port().unwrap_or(6379)
    );
    let proxy = TcpProxy::start(&upstream).await;
    url.set_port(Some(proxy.address().port())).expect("port");
    let through_proxy = url.to_string();
    let app = spawn_app_on(
        db,
        links::cache::RedisArgs::new(through_proxy, prefix.clone()),
        |_| {},
    )
    .await;
    let direct = links::cache::RedisCache::connect(
        &links::cache::RedisArgs::new(redis_url, prefix).options(),
    )
    .await
    .expect("redis");
    let code = app
        .shorten(json!({"long_url": "https://example.com/doomed"}))
        .await;
    assert!(
        direct.get(&code).await.expect("redis").is_some(),
        "written through"
    );

    proxy.set(ProxyMode::Refuse);
    let deleted = app
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/urls/{code}"),
            &app.api_key,
        )
        .await;

    assert_eq!(deleted.status(), 204, "the delete is committed");
    assert!(
        direct.get(&code).await.expect("redis").is_some(),
        "Redis was not told yet"
    );
    proxy.set(ProxyMode::Forward);
    let dropped = || async { direct.get(&code).await.expect("redis").is_none() };
    eventually(
        Duration::from_secs(10),
        "the stale entry is dropped",
        dropped,
    )
    .await;
    let owed = || async {
        app.metric("shortener_invalidations_total{how=\"retried\"}")
            .await
            == 1.0
    };
    eventually(Duration::from_secs(5), "the retry is counted", owed).await;
}
