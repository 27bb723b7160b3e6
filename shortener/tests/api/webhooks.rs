//! `/v1/webhooks`: created with the secret shown once, listed and deleted by their owner only; URLs that reach
//! non-public addresses refused unless the operator allows them; events checked; at most 10 per key.

use serde_json::{json, Value};

use reqwest::Method;

use crate::helpers::{spawn_app, spawn_app_with, unprocessable as refusal, TestApp};

/// A public address literal: accepted without a lookup.
const PUBLIC_URL: &str = "https://93.184.215.14/hooks/snowlink";

const PRIVATE_URLS: [&str; 4] = [
    "http://127.0.0.1:9/",
    "http://10.0.0.1/",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]/",
];

impl TestApp {
    async fn create_webhook(&self, key: &str, body: Value) -> reqwest::Response {
        self.post("/v1/webhooks", Some(key), None, body.to_string())
            .await
    }

    async fn webhooks(&self, key: &str) -> Value {
        let response = self.call(Method::GET, "/v1/webhooks", key).await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("JSON")
    }

    async fn delete_webhook(&self, key: &str, id: &str) -> reqwest::Response {
        self.call(Method::DELETE, &format!("/v1/webhooks/{id}"), key)
            .await
    }
}

#[tokio::test]
async fn a_webhook_is_created_with_its_secret_listed_without_it_and_deleted() {
    let app = spawn_app().await;

    let response = app
        .create_webhook(
            &app.api_key,
            json!({"url": PUBLIC_URL, "events": ["link.created", "click"]}),
        )
        .await;

    assert_eq!(response.status(), 201);
    let location = response.headers()["location"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    let created: Value = response.json().await.expect("JSON");
    let id = created["id"].as_str().expect("a string id");
    assert!(id.parse::<i64>().is_ok(), "{id}");
    assert_eq!(location, format!("/v1/webhooks/{id}"));
    assert_eq!(created["url"], PUBLIC_URL);
    assert_eq!(created["events"], json!(["click", "link.created"]));
    assert_eq!(created["paused"], false);
    assert_eq!(created["failing_since"], Value::Null);
    let secret = created["secret"].as_str().expect("the secret");
    assert!(
        secret.starts_with("whsec_") && secret.len() == 70,
        "{secret}"
    );

    let listed = app.webhooks(&app.api_key).await;
    let items = listed["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], id);
    assert_eq!(items[0]["created_at"], created["created_at"]);
    assert!(items[0].get("secret").is_none(), "the secret is shown once");

    assert_eq!(app.delete_webhook(&app.api_key, id).await.status(), 204);
    assert_eq!(app.webhooks(&app.api_key).await["items"], json!([]));
    assert_eq!(app.delete_webhook(&app.api_key, id).await.status(), 404);
}

#[tokio::test]
async fn another_key_can_neither_see_nor_delete_a_webhook() {
    let app = spawn_app().await;
    let other = app.other_key().await;
    let created: Value = app
        .create_webhook(
            &app.api_key,
            json!({"url": PUBLIC_URL, "events": ["click"]}),
        )
        .await
        .json()
        .await
        .expect("JSON");
    let id = created["id"].as_str().expect("id");

    assert_eq!(app.webhooks(&other).await["items"], json!([]));
    let response = app.delete_webhook(&other, id).await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(app.webhooks(&app.api_key).await["items"][0]["id"], id);
}

#[tokio::test]
async fn an_id_that_is_no_number_is_a_404() {
    let app = spawn_app().await;

    for id in ["abc", "99999999999999999999999", "-1"] {
        assert_eq!(
            app.delete_webhook(&app.api_key, id).await.status(),
            404,
            "{id}"
        );
    }
}

#[tokio::test]
async fn private_and_metadata_addresses_are_refused_without_the_flag() {
    let app = spawn_app().await;

    for url in PRIVATE_URLS {
        let response = app
            .create_webhook(&app.api_key, json!({"url": url, "events": ["click"]}))
            .await;

        let (code, message) = refusal(response).await;
        assert_eq!(code, "invalid_webhook_url", "{url}");
        assert!(message.contains("non-public"), "{url}: {message}");
    }
    assert_eq!(app.webhooks(&app.api_key).await["items"], json!([]));
}

#[tokio::test]
async fn private_addresses_are_accepted_with_the_flag() {
    let app = spawn_app_with(|args| args.allow_private_webhooks = true).await;

    for url in PRIVATE_URLS {
        let response = app
            .create_webhook(&app.api_key, json!({"url": url, "events": ["click"]}))
            .await;

        assert_eq!(response.status(), 201, "{url}");
    }
}

#[tokio::test]
async fn a_url_that_is_not_http_or_carries_credentials_is_refused() {
    let app = spawn_app_with(|args| args.allow_private_webhooks = true).await;

    for (url, says) in [
        ("ftp://93.184.215.14/", "http or https"),
        ("not a url", "absolute"),
        ("https://user:pw@93.184.215.14/", "password"),
        ("https://no-such-host.invalid/", "does not resolve"),
    ] {
        let response = app
            .create_webhook(&app.api_key, json!({"url": url, "events": ["click"]}))
            .await;

        let (code, message) = refusal(response).await;
        assert_eq!(code, "invalid_webhook_url", "{url}");
        assert!(message.contains(says), "{url}: {message}");
    }
    let long = format!("https://93.184.215.14/{}", "a".repeat(2_048));
    let (code, _) = refusal(
        app.create_webhook(&app.api_key, json!({"url": long, "events": ["click"]}))
            .await,
    )
    .await;
    assert_eq!(code, "invalid_webhook_url");
}

#[tokio::test]
async fn events_must_be_known_named_once_and_at_least_one() {
    let app = spawn_app().await;

    for (events, says) in [
        (json!([]), "at least one"),
        (json!(["click", "visit"]), "\"visit\" is not an event"),
        (json!(["click", "click"]), "named twice"),
    ] {
        let response = app
            .create_webhook(&app.api_key, json!({"url": PUBLIC_URL, "events": events}))
            .await;

        let (code, message) = refusal(response).await;
        assert_eq!(code, "invalid_events", "{events}");
        assert!(message.contains(says), "{events}: {message}");
    }
}

#[tokio::test]
async fn the_eleventh_webhook_of_a_key_is_refused() {
    let app = spawn_app().await;
    for n in 0..10 {
        let response = app
            .create_webhook(
                &app.api_key,
                json!({"url": format!("{PUBLIC_URL}/{n}"), "events": ["click"]}),
            )
            .await;
        assert_eq!(response.status(), 201, "webhook {n}");
    }

    let response = app
        .create_webhook(
            &app.api_key,
            json!({"url": PUBLIC_URL, "events": ["click"]}),
        )
        .await;

    let (code, message) = refusal(response).await;
    assert_eq!(code, "too_many_webhooks");
    assert!(message.contains("at most 10"), "{message}");
    assert_eq!(
        app.webhooks(&app.api_key).await["items"]
            .as_array()
            .map(Vec::len),
        Some(10)
    );
}
