//! `POST /v1/urls`.

use serde_json::json;

use crate::helpers::{error_code, spawn_app};

#[tokio::test]
async fn a_valid_url_is_shortened_with_the_contract_fields() {
    let app = spawn_app().await;

    let response = app
        .create(json!({"long_url": "https://Example.com/path?q=1"}))
        .await;

    assert_eq!(response.status(), 201);
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let body: serde_json::Value = response.json().await.expect("json");
    let code = body["code"].as_str().expect("code");
    assert_eq!(body["short_url"], format!("http://sho.rt.test/{code}"));
    assert_eq!(location, body["short_url"].as_str().expect("short_url"));
    assert_eq!(body["long_url"], "https://example.com/path?q=1");
    assert_eq!(body["redirect"], 302);
    assert!(body["expires_at"].is_null());
    assert!(
        chrono::DateTime::parse_from_rfc3339(body["created_at"].as_str().expect("created_at"))
            .is_ok()
    );
}

#[tokio::test]
async fn the_link_is_in_postgresql_and_written_through_to_redis() {
    let app = spawn_app().await;

    let response = app
        .create(json!({"long_url": "https://example.com/", "redirect": 308}))
        .await;
    let body: serde_json::Value = response.json().await.expect("json");
    let code = body["code"].as_str().expect("code");

    let (client, connection) = tokio_postgres::connect(&app.db.url, tokio_postgres::NoTls)
        .await
        .expect("db");
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT long_url, redirect_status FROM links WHERE code = $1",
            &[&code],
        )
        .await
        .expect("row");
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, i16>(1)),
        ("https://example.com/".to_owned(), 308)
    );
    let cache = links::cache::RedisCache::connect(&app.redis.options())
        .await
        .expect("redis");
    match cache.get(code).await.expect("redis answers") {
        Some(links::model::Resolution::Live {
            long_url, redirect, ..
        }) => {
            assert_eq!(
                (long_url.as_str(), redirect.code()),
                ("https://example.com/", 308)
            );
        }
        other => panic!("expected a cached live link, got {other:?}"),
    }
}

#[tokio::test]
async fn a_request_without_a_valid_key_is_a_401() {
    let app = spawn_app().await;
    let url = format!("{}/v1/urls", app.address);
    let body = json!({"long_url": "https://example.com/"});

    let without = app
        .client
        .post(&url)
        .json(&body)
        .send()
        .await
        .expect("answer");
    let wrong = app
        .client
        .post(&url)
        .bearer_auth("sl_not_a_key")
        .json(&body)
        .send()
        .await
        .expect("answer");

    assert_eq!(without.status(), 401);
    assert_eq!(error_code(without).await, "unauthorized");
    assert_eq!(wrong.status(), 401);
}

#[tokio::test]
async fn invalid_fields_are_422_with_their_codes() {
    let app = spawn_app().await;
    let cases = [
        (json!({"long_url": "ftp://example.com/"}), "invalid_url"),
        (json!({"long_url": "http://sho.rt.test/abc"}), "invalid_url"),
        (
            json!({"long_url": "https://example.com/", "alias": "a b"}),
            "invalid_alias",
        ),
        (
            json!({"long_url": "https://example.com/", "alias": "Metrics"}),
            "reserved_alias",
        ),
        (
            json!({"long_url": "https://example.com/", "expires_at": "2001-01-01T00:00:00Z"}),
            "expires_in_past",
        ),
        (
            json!({"long_url": "https://example.com/", "expires_at": "tomorrow"}),
            "invalid_expires_at",
        ),
        (
            json!({"long_url": "https://example.com/", "redirect": 303}),
            "invalid_redirect",
        ),
    ];
    for (body, expected) in cases {
        let response = app.create(body.clone()).await;
        assert_eq!(response.status(), 422, "{body}");
        assert_eq!(error_code(response).await, expected, "{body}");
    }
}

#[tokio::test]
async fn a_taken_alias_is_a_409_and_the_first_link_is_untouched() {
    let app = spawn_app().await;
    let first = app
        .create(json!({"long_url": "https://first.example/", "alias": "my-link"}))
        .await;
    assert_eq!(first.status(), 201);

    let second = app
        .create(json!({"long_url": "https://second.example/", "alias": "my-link"}))
        .await;

    assert_eq!(second.status(), 409);
    assert_eq!(error_code(second).await, "alias_taken");
    let (client, connection) = tokio_postgres::connect(&app.db.url, tokio_postgres::NoTls)
        .await
        .expect("db");
    tokio::spawn(connection);
    let row = client
        .query_one("SELECT long_url FROM links WHERE code = 'my-link'", &[])
        .await
        .expect("row");
    assert_eq!(row.get::<_, String>(0), "https://first.example/");
}

#[tokio::test]
async fn reuse_returns_the_callers_existing_link_with_200() {
    let app = spawn_app().await;
    let first: serde_json::Value = app
        .create(json!({"long_url": "https://example.com/x"}))
        .await
        .json()
        .await
        .expect("json");

    let again = app
        .create(json!({"long_url": "https://EXAMPLE.com/x", "reuse": true}))
        .await;

    assert_eq!(again.status(), 200);
    let again: serde_json::Value = again.json().await.expect("json");
    assert_eq!(again["code"], first["code"]);
}

#[tokio::test]
async fn bad_bodies_get_400_413_and_415() {
    let app = spawn_app().await;
    let url = format!("{}/v1/urls", app.address);
    let post = || app.client.post(&url).bearer_auth(&app.api_key);

    let malformed = post()
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("answer");
    let not_json = post()
        .header("content-type", "text/plain")
        .body("https://example.com/")
        .send()
        .await
        .expect("answer");
    let huge = json!({"long_url": format!("https://example.com/{}", "a".repeat(70_000))});
    let too_large = post().json(&huge).send().await.expect("answer");

    assert_eq!(malformed.status(), 400);
    assert_eq!(error_code(malformed).await, "malformed_json");
    assert_eq!(not_json.status(), 415);
    assert_eq!(too_large.status(), 413);
}

#[tokio::test]
async fn the_admin_port_reports_health_readiness_and_metrics() {
    let app = spawn_app().await;
    app.create(json!({"long_url": "https://example.com/"}))
        .await;

    let health = app
        .client
        .get(format!("{}/healthz", app.admin_address))
        .send()
        .await
        .expect("answer");
    let ready = app
        .client
        .get(format!("{}/readyz", app.admin_address))
        .send()
        .await
        .expect("answer");
    let metrics = app
        .client
        .get(format!("{}/metrics", app.admin_address))
        .send()
        .await
        .expect("answer");

    assert_eq!(health.status(), 200);
    assert_eq!(ready.status(), 200);
    let text = metrics.text().await.expect("text");
    assert!(text.contains("idgen_ids_issued_total 1"), "{text}");
    assert!(
        text.contains("http_requests_total{method=\"POST\",route=\"/v1/urls\",status=\"201\"} 1"),
        "{text}"
    );
}
