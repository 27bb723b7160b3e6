//! `GET /v1/urls/{code}/hits`: hits per day over the last N days (UTC), zero days filled, bounded, scoped to the
//! caller.

use chrono::{Days, NaiveDate};
use plumbing::clock::Clock as _;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{error_code, spawn_app, TestApp};

/// Records `hits` for the link `code` on `day`, as a redirect's flush would.
async fn record(app: &TestApp, code: &str, day: NaiveDate, hits: i64) {
    app.sql(
        "INSERT INTO link_hits (link_id, day, hits) SELECT id, $2, $3 FROM links WHERE code = $1",
        &[&code, &day, &hits],
    )
    .await;
}

/// The day `days` before the shortener's today, read from its clock, so a run across UTC midnight agrees with it.
fn days_ago(app: &TestApp, days: u64) -> NaiveDate {
    app.clock
        .now()
        .date_naive()
        .checked_sub_days(Days::new(days))
        .expect("a date")
}

#[tokio::test]
async fn days_without_hits_are_filled_with_zero_oldest_first() {
    let app = spawn_app().await;
    let code = app
        .shorten(json!({"long_url": "https://example.com/hits"}))
        .await;
    record(&app, &code, days_ago(&app, 0), 7).await;
    record(&app, &code, days_ago(&app, 2), 5).await;
    record(&app, &code, days_ago(&app, 40), 100).await;

    let response = app
        .call(
            Method::GET,
            &format!("/v1/urls/{code}/hits?days=3"),
            &app.api_key,
        )
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!({
            "code": code,
            "total": 12,
            "days": [
                {"day": days_ago(&app, 2).to_string(), "hits": 5},
                {"day": days_ago(&app, 1).to_string(), "hits": 0},
                {"day": days_ago(&app, 0).to_string(), "hits": 7},
            ]
        })
    );
}

#[tokio::test]
async fn the_default_is_30_days_and_365_reaches_older_hits() {
    let app = spawn_app().await;
    let code = app
        .shorten(json!({"long_url": "https://example.com/window"}))
        .await;
    record(&app, &code, days_ago(&app, 29), 3).await;
    record(&app, &code, days_ago(&app, 30), 4).await;
    record(&app, &code, days_ago(&app, 364), 5).await;

    let default: Value = app
        .call(Method::GET, &format!("/v1/urls/{code}/hits"), &app.api_key)
        .await
        .json()
        .await
        .expect("json");
    let year: Value = app
        .call(
            Method::GET,
            &format!("/v1/urls/{code}/hits?days=365"),
            &app.api_key,
        )
        .await
        .json()
        .await
        .expect("json");

    let default_days = default["days"].as_array().expect("days");
    assert_eq!(default_days.len(), 30);
    assert_eq!(
        default_days[0],
        json!({"day": days_ago(&app, 29).to_string(), "hits": 3})
    );
    assert_eq!(default["total"], 3);
    assert_eq!(year["days"].as_array().expect("days").len(), 365);
    assert_eq!(year["total"], 12);
}

#[tokio::test]
async fn days_out_of_bounds_are_422() {
    let app = spawn_app().await;
    let code = app
        .shorten(json!({"long_url": "https://example.com/bounds"}))
        .await;
    for (query, expected) in [
        ("days=0", "invalid_days"),
        ("days=366", "invalid_days"),
        ("days=-1", "invalid_days"),
        ("days=week", "invalid_query"),
    ] {
        let response = app
            .call(
                Method::GET,
                &format!("/v1/urls/{code}/hits?{query}"),
                &app.api_key,
            )
            .await;
        assert_eq!(response.status(), 422, "{query}");
        assert_eq!(error_code(response).await, expected, "{query}");
    }
}

#[tokio::test]
async fn another_keys_link_a_deleted_link_and_an_unknown_code_are_404() {
    let app = spawn_app().await;
    let code = app
        .shorten(json!({"long_url": "https://example.com/theirs"}))
        .await;
    record(&app, &code, days_ago(&app, 0), 1).await;
    let other = app.other_key().await;

    let theirs = app
        .call(Method::GET, &format!("/v1/urls/{code}/hits"), &other)
        .await;
    assert_eq!(theirs.status(), 404);
    assert_eq!(error_code(theirs).await, "not_found");
    let unknown = app
        .call(Method::GET, "/v1/urls/nosuchcode/hits", &app.api_key)
        .await;
    assert_eq!(unknown.status(), 404);
    app.call(Method::DELETE, &format!("/v1/urls/{code}"), &app.api_key)
        .await;
    let deleted = app
        .call(Method::GET, &format!("/v1/urls/{code}/hits"), &app.api_key)
        .await;
    assert_eq!(deleted.status(), 404);
}
