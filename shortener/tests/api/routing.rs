//! Rules and variants through the API: stored and shown as sent (normalised), refused with the index and the
//! field that broke a rule, changed and cleared by PATCH (each on its own), and never a way around the URL checks.

use serde_json::{json, Value};

use crate::helpers::{error_code, spawn_app, unprocessable, TestApp};

async fn refused(app: &TestApp, body: Value) -> (String, String) {
    unprocessable(app.create(body).await).await
}

#[tokio::test]
async fn rules_and_variants_are_stored_and_shown_as_sent() {
    let app = spawn_app().await;
    let rules = json!([
        {"when": {"os": "ios"}, "long_url": "https://apps.apple.com/app/id1"},
        {"when": {"language": "de", "country": "DE", "query": {"ref": "mail"}}, "long_url": "https://example.de/"},
    ]);
    let variants = json!([
        {"long_url": "https://example.com/a", "weight": 70},
        {"long_url": "https://example.com/b", "weight": 30},
    ]);
    let response = app
        .create(json!({"long_url": "https://example.com/", "rules": rules, "variants": variants}))
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("json");
    assert_eq!(created["rules"], rules);
    assert_eq!(created["variants"], variants);
    let code = created["code"].as_str().expect("code");
    let read = app.read(code).await;
    assert_eq!(read["rules"], rules);
    assert_eq!(read["variants"], variants);

    let plain = app
        .read(
            &app.shorten(json!({"long_url": "https://example.com/"}))
                .await,
        )
        .await;
    assert!(
        plain.get("rules").is_none() && plain.get("variants").is_none(),
        "{plain}"
    );
}

#[tokio::test]
async fn a_bad_rule_or_variant_is_refused_with_its_index_and_field() {
    let app = spawn_app().await;
    let (code, message) = refused(
        &app,
        json!({"long_url": "https://example.com/", "rules": [
            {"when": {"os": "ios"}, "long_url": "https://example.com/ok"},
            {"when": {"device": "fridge"}, "long_url": "https://example.com/"},
        ]}),
    )
    .await;
    assert_eq!(code, "invalid_rules");
    assert!(
        message.contains("rules[1]") && message.contains("device"),
        "{message}"
    );

    let (code, message) = refused(
        &app,
        json!({"long_url": "https://example.com/", "rules": [{"when": {}, "long_url": "https://example.com/"}]}),
    )
    .await;
    assert_eq!(code, "invalid_rules", "{message}");

    let (code, message) = refused(
        &app,
        json!({"long_url": "https://example.com/", "rules": [{"when": {"os": "ios"}, "long_url": "javascript:alert(1)"}]}),
    )
    .await;
    assert_eq!(code, "invalid_rules");
    assert!(
        message.contains("rules[0]") && message.contains("long_url"),
        "{message}"
    );

    let too_many: Vec<Value> = (0..21)
        .map(|n| json!({"when": {"query": {"n": n.to_string()}}, "long_url": "https://example.com/"}))
        .collect();
    let (code, _) = refused(
        &app,
        json!({"long_url": "https://example.com/", "rules": too_many}),
    )
    .await;
    assert_eq!(code, "invalid_rules");

    for variants in [
        json!([{"long_url": "https://example.com/a", "weight": 1}]),
        json!([{"long_url": "https://example.com/a", "weight": 1}, {"long_url": "https://example.com/b", "weight": 0}]),
        json!([{"long_url": "https://example.com/a", "weight": 1}, {"long_url": "https://example.com/b", "weight": 1001}]),
        json!([{"long_url": "https://example.com/a", "weight": 1}, {"long_url": "https://example.com/b", "weight": 1.5}]),
        json!((0..11)
            .map(|n| json!({"long_url": format!("https://example.com/{n}"), "weight": 1}))
            .collect::<Vec<_>>()),
    ] {
        let (code, message) = refused(
            &app,
            json!({"long_url": "https://example.com/", "variants": variants}),
        )
        .await;
        assert_eq!(code, "invalid_variants", "{variants}: {message}");
    }
    assert_eq!(
        app.links_to("https://example.com/").await,
        0,
        "nothing stored"
    );
}

#[tokio::test]
async fn patch_changes_rules_and_variants_each_on_its_own_and_null_clears() {
    let app = spawn_app().await;
    let rules = json!([{"when": {"device": "mobile"}, "long_url": "https://example.com/m"}]);
    let variants = json!([
        {"long_url": "https://example.com/a", "weight": 1},
        {"long_url": "https://example.com/b", "weight": 2},
    ]);
    let code = app
        .shorten(json!({"long_url": "https://example.com/", "rules": rules, "variants": variants}))
        .await;

    let new_rules = json!([{"when": {"os": "android"}, "long_url": "https://example.com/android"}]);
    let response = app.patch(&code, json!({"rules": new_rules})).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["rules"], new_rules);
    assert_eq!(body["variants"], variants, "variants kept");

    let response = app.patch(&code, json!({"variants": null})).await;
    let body: Value = response.json().await.expect("json");
    assert!(body.get("variants").is_none(), "{body}");
    assert_eq!(body["rules"], new_rules);

    let response = app.patch(&code, json!({"rules": null})).await;
    let body: Value = response.json().await.expect("json");
    assert!(body.get("rules").is_none(), "{body}");
    let stored: Option<String> = app
        .store
        .pool()
        .get()
        .await
        .expect("client")
        .query_one("SELECT routing::text FROM links WHERE code = $1", &[&code])
        .await
        .expect("row")
        .get(0);
    assert_eq!(stored, None, "no routing left");

    let response = app
        .patch(&code, json!({"variants": [{"long_url": "https://example.com/a", "weight": 5000}, {"long_url": "https://example.com/b", "weight": 1}]}))
        .await;
    assert_eq!(response.status(), 422);
    assert_eq!(error_code(response).await, "invalid_variants");
}
