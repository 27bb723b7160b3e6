//! `GET /v1/urls/{code}`, `GET /v1/urls`, `DELETE /v1/urls/{code}`: the caller's own links.

use std::time::Duration;

use fred::prelude::{ClientLike, EventInterface, PubsubInterface};
use links::model::Resolution;
use reqwest::Method;
use secrecy::ExposeSecret as _;
use serde_json::{json, Value};

use crate::helpers::{error_code, spawn_app};

#[tokio::test]
async fn a_link_is_read_back_with_its_total_hits() {
    let app = spawn_app().await;
    let code = app
        .shorten(json!({"long_url": "https://example.com/a", "redirect": 301}))
        .await;
    app.sql(
        "INSERT INTO link_hits (link_id, day, hits)
         SELECT id, d, 7 FROM links, (VALUES (current_date), (current_date - 1)) AS days(d) WHERE code = $1",
        &[&code],
    )
    .await;

    let response = app
        .call(Method::GET, &format!("/v1/urls/{code}"), &app.api_key)
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["code"], code.as_str());
    assert_eq!(body["long_url"], "https://example.com/a");
    assert_eq!(body["redirect"], 301);
    assert_eq!(body["short_url"], format!("http://sho.rt.test/{code}"));
    assert_eq!(body["hits"], 14);
}

#[tokio::test]
async fn an_unknown_code_is_a_404() {
    let app = spawn_app().await;
    let response = app
        .call(Method::GET, "/v1/urls/nosuchcode", &app.api_key)
        .await;
    assert_eq!(response.status(), 404);
    assert_eq!(error_code(response).await, "not_found");
}

#[tokio::test]
async fn another_keys_link_cannot_be_read_listed_or_deleted() {
    let app = spawn_app().await;
    let code = app
        .shorten(json!({"long_url": "https://example.com/mine"}))
        .await;
    let other = app.other_key().await;

    let read = app
        .call(Method::GET, &format!("/v1/urls/{code}"), &other)
        .await;
    assert_eq!(read.status(), 404);
    let delete = app
        .call(Method::DELETE, &format!("/v1/urls/{code}"), &other)
        .await;
    assert_eq!(delete.status(), 404);
    let list: Value = app
        .call(Method::GET, "/v1/urls", &other)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["items"], json!([]));
    assert!(matches!(
        app.store.resolve(&code).await.expect("lookup"),
        Resolution::Live { .. }
    ));
}

#[tokio::test]
async fn the_list_pages_through_the_callers_links_newest_first() {
    let app = spawn_app().await;
    let mut codes = Vec::new();
    for n in 0..5 {
        codes.push(
            app.shorten(json!({"long_url": format!("https://example.com/{n}")}))
                .await,
        );
    }
    let other = app.other_key().await;
    app.create_as(&other, json!({"long_url": "https://example.com/theirs"}))
        .await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/v1/urls?limit=2&cursor={cursor}"),
            None => "/v1/urls?limit=2".to_owned(),
        };
        let response = app.call(Method::GET, &path, &app.api_key).await;
        assert_eq!(response.status(), 200);
        let page: Value = response.json().await.expect("json");
        pages += 1;
        for item in page["items"].as_array().expect("items") {
            seen.push(item["code"].as_str().expect("code").to_owned());
            assert_eq!(item["hits"], 0);
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }

    codes.reverse();
    assert_eq!(seen, codes, "all five, newest first, no other key's link");
    assert_eq!(pages, 3);
}

#[tokio::test]
async fn bad_list_parameters_are_422() {
    let app = spawn_app().await;
    for (query, code) in [
        ("limit=0", "invalid_limit"),
        ("limit=101", "invalid_limit"),
        ("cursor=not-a-cursor", "invalid_cursor"),
    ] {
        let response = app
            .call(Method::GET, &format!("/v1/urls?{query}"), &app.api_key)
            .await;
        assert_eq!(response.status(), 422, "{query}");
        assert_eq!(error_code(response).await, code, "{query}");
    }
    let response = app
        .call(Method::GET, "/v1/urls?limit=ten", &app.api_key)
        .await;
    assert_eq!(response.status(), 422);
}

#[tokio::test]
async fn a_cursor_of_11_base62_digits_above_every_id_lists_from_the_newest() {
    let app = spawn_app().await;
    let code = app
        .shorten(json!({"long_url": "https://example.com/newest"}))
        .await;

    // Above u64::MAX, and between i64::MAX and u64::MAX: the document allows both.
    for cursor in ["zzzzzzzzzzz", "LygHa16AHYF"] {
        let response = app
            .call(
                Method::GET,
                &format!("/v1/urls?cursor={cursor}"),
                &app.api_key,
            )
            .await;

        assert_eq!(response.status(), 200, "{cursor}");
        let page: Value = response.json().await.expect("json");
        assert_eq!(page["items"][0]["code"], code.as_str(), "{cursor}");
    }
}

#[tokio::test]
async fn a_deleted_link_is_gone_everywhere_and_announced() {
    let app = spawn_app().await;
    let code = app
        .shorten(json!({"long_url": "https://example.com/bye"}))
        .await;
    let cache = app.cache().await;
    assert!(
        cache.get(&code).await.expect("redis").is_some(),
        "written through"
    );
    let subscriber = fred::prelude::Builder::from_config(
        fred::prelude::Config::from_url(app.redis.redis_url.expose_secret()).expect("url"),
    )
    .build()
    .expect("subscriber");
    subscriber.init().await.expect("subscriber connects");
    let mut messages = subscriber.message_rx();
    subscriber
        .subscribe(cache.invalidation_channel())
        .await
        .expect("subscribe");

    let response = app
        .call(Method::DELETE, &format!("/v1/urls/{code}"), &app.api_key)
        .await;

    assert_eq!(response.status(), 204);
    assert_eq!(
        app.store.resolve(&code).await.expect("lookup"),
        Resolution::Gone
    );
    assert_eq!(cache.get(&code).await.expect("redis"), None);
    let message = tokio::time::timeout(Duration::from_secs(5), messages.recv())
        .await
        .expect("an invalidation within 5 s")
        .expect("a message");
    assert_eq!(message.value.as_string().as_deref(), Some(code.as_str()));
    let again = app
        .call(Method::DELETE, &format!("/v1/urls/{code}"), &app.api_key)
        .await;
    assert_eq!(again.status(), 404);
    let read = app
        .call(Method::GET, &format!("/v1/urls/{code}"), &app.api_key)
        .await;
    assert_eq!(read.status(), 404);
    let _ = subscriber.quit().await;
}
