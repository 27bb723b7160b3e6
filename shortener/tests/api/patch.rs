//! `PATCH /v1/urls/{code}` and the new fields of a link (tags, password, visit limit) on create: validated as
//! create validates, stored, shown (never the password), and invalidated like a delete.

use links::model::Resolution;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{error_code, spawn_app};

#[tokio::test]
async fn a_patched_target_is_stored_shown_and_replaces_the_cached_one() {
    let app = spawn_app().await;
    let code = app
        .shorten(json!({"long_url": "https://example.com/poster-v1"}))
        .await;

    let response = app
        .patch(&code, json!({"long_url": "HTTPS://Example.com/poster-v2"}))
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["long_url"], "https://example.com/poster-v2",
        "normalised"
    );
    assert_eq!(body["code"], code.as_str());
    assert_eq!(body["hits"], 0);
    assert!(
        body.get("warning").is_none(),
        "302 needs no warning: {body}"
    );
    let Resolution::Live { long_url, .. } = app.store.resolve(&code).await.expect("lookup") else {
        panic!("the link is live");
    };
    assert_eq!(long_url, "https://example.com/poster-v2");
    let cached = app.cache().await.get(&code).await.expect("redis");
    assert!(
        !matches!(&cached, Some(Resolution::Live { long_url, .. }) if long_url.ends_with("v1")),
        "Redis no longer holds the old target: {cached:?}"
    );
    let read = app.read(&code).await;
    assert_eq!(read["long_url"], "https://example.com/poster-v2");
}

#[tokio::test]
async fn fields_are_set_cleared_and_kept_as_sent() {
    let app = spawn_app().await;
    let response = app
        .create(json!({
            "long_url": "https://example.com/campaign",
            "tags": ["q4", "campaign", "q4"],
            "max_hits": 100,
            "expires_at": "2099-01-01T00:00:00Z",
            "password": "open sesame",
        }))
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("json");
    assert_eq!(created["tags"], json!(["campaign", "q4"]), "sorted, unique");
    assert_eq!(created["max_hits"], 100);
    assert_eq!(created["password_protected"], true);
    assert!(created.get("password").is_none());
    assert!(
        !created.to_string().contains("argon2"),
        "the hash is never shown"
    );
    let code = created["code"].as_str().expect("code").to_owned();

    let cleared: Value = app
        .patch(
            &code,
            json!({"expires_at": null, "password": null, "max_hits": null, "tags": [], "redirect": 307}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(cleared["expires_at"], Value::Null);
    assert_eq!(cleared["password_protected"], false);
    assert_eq!(cleared["max_hits"], Value::Null);
    assert_eq!(cleared["tags"], json!([]));
    assert_eq!(cleared["redirect"], 307);
    assert_eq!(
        cleared["long_url"], "https://example.com/campaign",
        "a field not sent is kept"
    );

    let whole: Value = app
        .patch(&code, json!({"max_hits": 7.0}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(whole["max_hits"], 7, "JSON Schema's integer admits 7.0");

    let kept: Value = app
        .patch(&code, json!({"tags": ["b", "a"]}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(kept["tags"], json!(["a", "b"]));
    assert_eq!(kept["redirect"], 307, "kept");

    let default: Value = app
        .patch(&code, json!({"redirect": null}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(default["redirect"], 302, "null is the default status");
}

#[tokio::test]
async fn a_permanent_link_warns_that_browsers_cache_it() {
    let app = spawn_app().await;
    let code = app
        .shorten(json!({"long_url": "https://example.com/p", "redirect": 308}))
        .await;
    let body: Value = app
        .patch(&code, json!({"long_url": "https://example.com/q"}))
        .await
        .json()
        .await
        .expect("json");
    let warning = body["warning"].as_str().expect("a warning");
    assert!(warning.contains("cache"), "{warning}");
}

#[tokio::test]
async fn a_password_is_stored_as_an_argon2_hash_that_verifies() {
    let app = spawn_app().await;
    let code = app
        .shorten(json!({"long_url": "https://example.com/secret"}))
        .await;
    let response = app.patch(&code, json!({"password": "hunter2"})).await;
    assert_eq!(response.status(), 200);
    let Resolution::Live { password_hash, .. } = app.store.resolve(&code).await.expect("lookup")
    else {
        panic!("live");
    };
    let hash = password_hash.expect("a hash");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(links::password::verify("hunter2", &hash));
    assert!(!links::password::verify("hunter3", &hash));
}

#[tokio::test]
async fn a_visit_limit_at_or_under_the_counted_hits_makes_the_link_gone_and_raising_it_brings_it_back(
) {
    let app = spawn_app().await;
    let code = app
        .shorten(json!({"long_url": "https://example.com/limited"}))
        .await;
    app.sql(
        "INSERT INTO link_hits (link_id, day, hits) SELECT id, current_date, 5 FROM links WHERE code = $1",
        &[&code],
    )
    .await;

    assert_eq!(app.patch(&code, json!({"max_hits": 5})).await.status(), 200);
    assert_eq!(
        app.store.resolve(&code).await.expect("lookup"),
        Resolution::Gone
    );

    assert_eq!(app.patch(&code, json!({"max_hits": 6})).await.status(), 200);
    assert!(matches!(
        app.store.resolve(&code).await.expect("lookup"),
        Resolution::Live { .. }
    ));
    assert_eq!(app.patch(&code, json!({"max_hits": 2})).await.status(), 200);
    assert_eq!(
        app.patch(&code, json!({"max_hits": null})).await.status(),
        200
    );
    assert!(matches!(
        app.store.resolve(&code).await.expect("lookup"),
        Resolution::Live { .. }
    ));
}

#[tokio::test]
async fn bad_patches_are_refused_with_the_create_codes_and_change_nothing() {
    let app = spawn_app().await;
    let code = app
        .shorten(json!({"long_url": "https://example.com/stays", "tags": ["keep"]}))
        .await;
    let cases = [
        (json!({}), 422, "empty_patch"),
        (
            json!({"long_url": "ftp://example.com/"}),
            422,
            "invalid_url",
        ),
        (json!({"long_url": null}), 422, "invalid_patch"),
        (json!({"redirect": 303}), 422, "invalid_redirect"),
        (
            json!({"expires_at": "2001-01-01T00:00:00Z"}),
            422,
            "expires_in_past",
        ),
        (json!({"expires_at": "tomorrow"}), 422, "invalid_expires_at"),
        (json!({"tags": ["Not Valid"]}), 422, "invalid_tags"),
        (
            json!({"tags": (0..11).map(|n| format!("t{n}")).collect::<Vec<_>>()}),
            422,
            "invalid_tags",
        ),
        (json!({"password": ""}), 422, "invalid_password"),
        (
            json!({"password": "x".repeat(129)}),
            422,
            "invalid_password",
        ),
        (json!({"max_hits": 0}), 422, "invalid_max_hits"),
        (json!({"max_hits": 2.5}), 422, "invalid_max_hits"),
        (json!({"max_hits": 1e300}), 422, "invalid_max_hits"),
        (json!({"code": "other"}), 400, ""),
    ];
    for (body, status, code_expected) in cases {
        let response = app.patch(&code, body.clone()).await;
        assert_eq!(response.status(), status, "{body}");
        if !code_expected.is_empty() {
            assert_eq!(error_code(response).await, code_expected, "{body}");
        }
    }
    let read = app.read(&code).await;
    assert_eq!(read["long_url"], "https://example.com/stays");
    assert_eq!(read["tags"], json!(["keep"]));
}

#[tokio::test]
async fn another_owners_deleted_or_unknown_link_is_a_404() {
    let app = spawn_app().await;
    let code = app
        .shorten(json!({"long_url": "https://example.com/mine"}))
        .await;
    let other = app.other_key().await;
    let body = json!({"long_url": "https://example.com/theirs"});

    let theirs = app.patch_as(&other, &code, body.clone()).await;
    assert_eq!(theirs.status(), 404);
    assert_eq!(error_code(theirs).await, "not_found");
    assert_eq!(app.patch(&code, body.clone()).await.status(), 200);
    assert_eq!(
        app.call(Method::DELETE, &format!("/v1/urls/{code}"), &app.api_key)
            .await
            .status(),
        204
    );
    assert_eq!(app.patch(&code, body.clone()).await.status(), 404);
    assert_eq!(app.patch("nosuchcode", body).await.status(), 404);
}

#[tokio::test]
async fn create_validates_the_new_fields_and_batches_refuse_passwords() {
    let app = spawn_app().await;
    for (body, expected) in [
        (
            json!({"long_url": "https://example.com/", "tags": ["UPPER"]}),
            "invalid_tags",
        ),
        (
            json!({"long_url": "https://example.com/", "password": ""}),
            "invalid_password",
        ),
        (
            json!({"long_url": "https://example.com/", "max_hits": -3}),
            "invalid_max_hits",
        ),
    ] {
        let response = app.create(body.clone()).await;
        assert_eq!(response.status(), 422, "{body}");
        assert_eq!(error_code(response).await, expected, "{body}");
    }
    let answer: Value = app
        .batch(vec![
            json!({"long_url": "https://example.com/b1", "password": "pw"}),
            json!({"long_url": "https://example.com/b2", "tags": ["ok"]}),
        ])
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(answer["results"][0]["status"], 422);
    assert_eq!(answer["results"][0]["error"]["code"], "invalid_password");
    assert_eq!(answer["results"][1]["status"], 201);
    assert_eq!(answer["results"][1]["link"]["tags"], json!(["ok"]));
}

#[tokio::test]
async fn reuse_never_hands_out_a_link_with_a_password_or_a_visit_limit() {
    let app = spawn_app().await;
    let url = "https://example.com/shared";
    let guarded = app.shorten(json!({"long_url": url, "max_hits": 3})).await;
    let response = app.create(json!({"long_url": url, "reuse": true})).await;
    assert_eq!(
        response.status(),
        201,
        "a new plain link, not the limited one"
    );
    let plain: Value = response.json().await.expect("json");
    assert_ne!(plain["code"], guarded.as_str());
    let again = app.create(json!({"long_url": url, "reuse": true})).await;
    assert_eq!(again.status(), 200, "the plain one is reused");
    let again: Value = again.json().await.expect("json");
    assert_eq!(again["code"], plain["code"]);
}

#[tokio::test]
async fn edits_delivered_at_once_leave_the_outbox_and_are_not_delivered_again() {
    let app = spawn_app().await;
    let mut codes = Vec::new();
    for n in 0..5 {
        codes.push(
            app.shorten(json!({"long_url": format!("https://example.com/draft-{n}")}))
                .await,
        );
    }

    for code in &codes {
        let edited = app
            .patch(
                code,
                json!({"long_url": format!("https://example.com/final-{code}")}),
            )
            .await;
        assert_eq!(edited.status(), 200);
    }

    // Taken out together by the retry task's next round (every second), not one commit per edit.
    let outbox_empty = || async { app.sql("SELECT 1 FROM cache_invalidations", &[]).await == 0 };
    testkit::eventually(
        std::time::Duration::from_secs(5),
        "the delivered rows are taken out of the outbox",
        outbox_empty,
    )
    .await;
    assert_eq!(
        app.metric("shortener_invalidations_total{how=\"at_once\"}")
            .await,
        5.0
    );
    assert_eq!(
        app.metric("shortener_invalidations_total{how=\"retried\"}")
            .await,
        0.0,
        "a row delivered at once and held for the next round is not delivered again by it"
    );
}
