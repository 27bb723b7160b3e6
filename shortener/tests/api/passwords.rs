//! Password hashing under hostile load: a bound on hashes at once (503 at once past it), a budget per key (429),
//! and no hash for a link the caller does not have.

use std::sync::Arc;

use serde_json::json;

use crate::helpers::{error_code, spawn_app, spawn_app_with, TestApp};

const HASHED: &str = "shortener_password_hashes_total{outcome=\"hashed\"}";
/// A request deadline and pool wait no flood here reaches on a busy machine: what these tests count is hashes
/// and refusals, not deadlines.
fn unhurried(args: &mut shortener::config::ServeArgs) {
    args.request_timeout_ms = 30_000;
    args.database.database_connect_timeout_ms = 30_000;
}

const BUSY: &str = "shortener_password_hashes_total{outcome=\"busy\"}";

/// `count` password PATCHes at once on `code(i)`, and the statuses they got.
async fn password_flood(
    app: &Arc<TestApp>,
    count: usize,
    code: impl Fn(usize) -> String,
) -> Vec<reqwest::Response> {
    let patches = (0..count).map(|i| {
        let app = Arc::clone(app);
        let code = code(i);
        tokio::spawn(async move {
            app.patch(&code, json!({"password": "correct horse battery staple"}))
                .await
        })
    });
    let mut responses = Vec::with_capacity(count);
    for patch in patches.collect::<Vec<_>>() {
        responses.push(patch.await.expect("the PATCH task"));
    }
    responses
}

#[tokio::test]
async fn password_patches_of_codes_that_do_not_exist_hash_nothing() {
    let app = Arc::new(spawn_app_with(unhurried).await);

    let responses = password_flood(&app, 50, |i| format!("nope{i}")).await;

    assert!(responses.iter().all(|response| response.status() == 404));
    assert_eq!(app.metric(HASHED).await, 0.0, "no hash for a made-up code");
}

#[tokio::test]
async fn a_password_flood_past_the_slots_is_refused_at_once_and_creates_still_answer() {
    let app = Arc::new(
        spawn_app_with(|args| {
            unhurried(args);
            args.password_hash_slots = 1;
            args.password_ops_per_minute = 0;
        })
        .await,
    );
    let code = app
        .shorten(json!({"long_url": "https://example.com/locked"}))
        .await;

    let flood = {
        let app = Arc::clone(&app);
        tokio::spawn(async move { password_flood(&app, 200, move |_| code.clone()).await })
    };
    let create = app
        .create(json!({"long_url": "https://example.com/plain"}))
        .await;
    let responses = flood.await.expect("the flood");

    assert_eq!(create.status(), 201, "a plain create beside the flood");
    let busy: Vec<_> = responses
        .iter()
        .filter(|response| response.status() == 503)
        .collect();
    assert!(!busy.is_empty(), "one slot cannot take 200 hashes at once");
    assert!(busy
        .iter()
        .all(|response| response.headers()["retry-after"] == "1"));
    assert!(responses
        .iter()
        .all(|response| matches!(response.status().as_u16(), 200 | 503)));
    assert_eq!(
        app.metric(HASHED).await + app.metric(BUSY).await,
        200.0,
        "every PATCH either hashed or was refused"
    );
}

#[tokio::test]
async fn a_key_past_its_password_budget_gets_a_429_and_another_key_does_not() {
    let app = spawn_app_with(|args| {
        args.password_ops_per_minute = 60;
        args.password_ops_burst = 2;
    })
    .await;
    let code = app
        .shorten(json!({"long_url": "https://example.com/budget"}))
        .await;
    let other = app.other_key().await;
    let theirs = app
        .create_as(&other, json!({"long_url": "https://example.com/theirs"}))
        .await
        .json::<serde_json::Value>()
        .await
        .expect("json")["code"]
        .as_str()
        .expect("code")
        .to_owned();

    let first = app.patch(&code, json!({"password": "s3cret"})).await;
    let second = app.patch(&code, json!({"password": "s3cret"})).await;
    let third = app.patch(&code, json!({"password": "s3cret"})).await;
    let other_key = app
        .patch_as(&other, &theirs, json!({"password": "s3cret"}))
        .await;

    assert_eq!(first.status(), 200);
    assert_eq!(second.status(), 200);
    assert_eq!(third.status(), 429);
    assert!(third.headers().contains_key("retry-after"));
    assert_eq!(error_code(third).await, "rate_limited");
    assert_eq!(other_key.status(), 200, "budgets are per key");
}

#[tokio::test]
async fn a_create_with_a_password_refused_for_budget_keeps_nothing_for_its_idempotency_key() {
    let app = spawn_app_with(|args| {
        args.password_ops_per_minute = 1;
        args.password_ops_burst = 1;
    })
    .await;
    let body = json!({"long_url": "https://example.com/pw", "password": "s3cret"}).to_string();
    let create = |key| app.post("/v1/urls", Some(&app.api_key), Some(key), body.clone());

    let first = create("first").await;
    let refused = create("second").await;
    let refused_again = create("second").await;

    assert_eq!(first.status(), 201);
    assert_eq!(refused.status(), 429);
    assert_eq!(
        refused_again.status(),
        429,
        "a refusal is not an answer to replay"
    );
    assert!(refused_again.headers().get("idempotent-replayed").is_none());
}

#[tokio::test]
async fn a_stored_idempotency_fingerprint_does_not_depend_on_the_password() {
    let app = spawn_app().await;
    let create = |password: &str| {
        let body = json!({"long_url": "https://example.com/fp", "password": password});
        app.post(
            "/v1/urls",
            Some(&app.api_key),
            Some("same-key"),
            body.to_string(),
        )
    };

    let first = create("hunter2").await;
    let retry = create("correct horse").await;

    assert_eq!(first.status(), 201);
    assert_eq!(
        retry.status(),
        201,
        "the password is not part of the fingerprint: a replay, not idempotency_key_reused"
    );
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
}
