//! `Idempotency-Key` on `POST /v1/urls` and `/v1/urls/batch`: the same key and request get the first answer,
//! another request under the key is refused, a key in flight is a 409, and a 5xx is never kept.

use std::{sync::Arc, time::Duration};

use serde_json::{json, Value};
use testkit::eventually;

use crate::helpers::{error_code, spawn_app, spawn_app_with, TestApp};

const WITHIN: Duration = Duration::from_secs(10);

async fn create_with(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.post("/v1/urls", Some(&app.api_key), Some(key), body.to_string())
        .await
}

#[tokio::test]
async fn the_same_key_and_body_get_the_first_answer_again_and_one_link() {
    let app = spawn_app().await;
    let body = json!({"long_url": "https://example.com/once"});

    let first = create_with(&app, "order-1", &body).await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let location = first.headers()["location"].clone();
    let first_body = first.bytes().await.expect("body");
    // The same request, its keys in another order and spaced otherwise.
    let retry = app
        .post(
            "/v1/urls",
            Some(&app.api_key),
            Some("order-1"),
            r#"{ "long_url" : "https://example.com/once" }"#,
        )
        .await;

    assert_eq!(retry.status(), 201);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.headers()["location"], location);
    assert_eq!(retry.bytes().await.expect("body"), first_body);
    assert_eq!(app.links_to("https://example.com/once").await, 1);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_a_422_and_keys_belong_to_their_api_key() {
    let app = spawn_app().await;
    let first = create_with(&app, "k", &json!({"long_url": "https://example.com/a"})).await;
    assert_eq!(first.status(), 201);

    let other_body = create_with(&app, "k", &json!({"long_url": "https://example.com/b"})).await;
    let batch_under_the_key = app
        .post(
            "/v1/urls/batch",
            Some(&app.api_key),
            Some("k"),
            json!({"items": [{"long_url": "https://example.com/a"}]}).to_string(),
        )
        .await;
    let someone_else = app.other_key().await;
    let their_own = app
        .post(
            "/v1/urls",
            Some(&someone_else),
            Some("k"),
            json!({"long_url": "https://example.com/b"}).to_string(),
        )
        .await;

    assert_eq!(other_body.status(), 422);
    assert_eq!(error_code(other_body).await, "idempotency_key_reused");
    assert_eq!(
        batch_under_the_key.status(),
        422,
        "another route is another request"
    );
    assert_eq!(their_own.status(), 201, "another API key's key space");
    assert_eq!(app.links_to("https://example.com/b").await, 1);
}

#[tokio::test]
async fn a_client_error_is_kept_and_replayed() {
    let app = spawn_app().await;
    app.shorten(json!({"long_url": "https://example.com/x", "alias": "taken"}))
        .await;
    let body = json!({"long_url": "https://example.com/y", "alias": "taken"});

    let first = create_with(&app, "alias-try", &body).await;
    app.sql("DELETE FROM links WHERE code = 'taken'", &[]).await;
    let retry = create_with(&app, "alias-try", &body).await;

    assert_eq!(first.status(), 409);
    assert_eq!(
        retry.status(),
        409,
        "the first answer, although the alias is free now"
    );
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(error_code(retry).await, "alias_taken");
}

#[tokio::test]
async fn a_key_still_in_flight_is_a_409_and_the_first_request_then_answers() {
    let app = Arc::new(spawn_app().await);
    let locker = app.locker().await;
    locker
        .batch_execute("BEGIN; LOCK TABLE links IN SHARE MODE")
        .await
        .expect("lock");
    let first = {
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            create_with(
                &app,
                "slow",
                &json!({"long_url": "https://example.com/slow"}),
            )
            .await
            .status()
        })
    };
    eventually(WITHIN, "the first request waits for the lock", || {
        let app = Arc::clone(&app);
        async move { app.lock_waiters().await == 1 }
    })
    .await;

    let second = create_with(
        &app,
        "slow",
        &json!({"long_url": "https://example.com/slow"}),
    )
    .await;

    assert_eq!(second.status(), 409);
    assert_eq!(second.headers()["retry-after"], "1");
    assert_eq!(error_code(second).await, "idempotency_key_in_flight");
    locker.batch_execute("COMMIT").await.expect("unlock");
    assert_eq!(first.await.expect("first request"), 201);
}

#[tokio::test]
async fn a_503_is_not_kept_so_a_retry_with_the_key_creates_the_link() {
    let app = spawn_app().await;
    let locker = app.locker().await;
    locker
        .batch_execute("BEGIN; LOCK TABLE links IN SHARE MODE")
        .await
        .expect("lock");
    let body = json!({"long_url": "https://example.com/retried"});

    let failed = create_with(&app, "retry-me", &body).await;
    locker.batch_execute("COMMIT").await.expect("unlock");
    let retry = create_with(&app, "retry-me", &body).await;

    assert_eq!(failed.status(), 503);
    assert_eq!(retry.status(), 201);
    assert!(retry.headers().get("idempotent-replayed").is_none());
    assert_eq!(app.links_to("https://example.com/retried").await, 1);
}

#[tokio::test]
async fn a_batch_with_a_key_is_answered_once() {
    let app = spawn_app().await;
    let body = json!({"items": [
        {"long_url": "https://example.com/batch/1"},
        {"long_url": "https://example.com/batch/2", "alias": "b-two"},
    ]})
    .to_string();

    let first = app
        .post(
            "/v1/urls/batch",
            Some(&app.api_key),
            Some("b"),
            body.clone(),
        )
        .await;
    let first_body = first.bytes().await.expect("body");
    let retry = app
        .post("/v1/urls/batch", Some(&app.api_key), Some("b"), body)
        .await;

    assert_eq!(retry.status(), 200);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.bytes().await.expect("body"), first_body);
    assert_eq!(app.links_to("https://example.com/batch/1").await, 1);
    let answer: Value = serde_json::from_slice(&first_body).expect("json");
    assert_eq!(answer["results"][1]["link"]["code"], "b-two");
}

#[tokio::test]
async fn a_malformed_key_or_an_anonymous_caller_with_a_key_is_a_400() {
    let app = spawn_app_with(|args| args.allow_anonymous = true).await;
    let body = json!({"long_url": "https://example.com/k"}).to_string();

    let spaced = app
        .post(
            "/v1/urls",
            Some(&app.api_key),
            Some("has space"),
            body.clone(),
        )
        .await;
    let long = app
        .post(
            "/v1/urls",
            Some(&app.api_key),
            Some(&"k".repeat(256)),
            body.clone(),
        )
        .await;
    let anonymous = app.post("/v1/urls", None, Some("anon"), body.clone()).await;
    let anonymous_without = app.post("/v1/urls", None, None, body).await;

    for response in [spaced, long, anonymous] {
        assert_eq!(response.status(), 400);
        assert_eq!(error_code(response).await, "invalid_idempotency_key");
    }
    assert_eq!(anonymous_without.status(), 201);
    assert_eq!(app.links_to("https://example.com/k").await, 1);
}
