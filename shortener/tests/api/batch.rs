//! `POST /v1/urls/batch`: one multi-row insert, one result per item, in order.

use links::model::Resolution;
use serde_json::{json, Value};

use crate::helpers::{error_code, spawn_app};

#[tokio::test]
async fn each_item_gets_its_own_result_in_order() {
    let app = spawn_app().await;
    app.shorten(json!({"long_url": "https://example.com/taken", "alias": "taken"}))
        .await;
    let reused = app
        .shorten(json!({"long_url": "https://example.com/again"}))
        .await;

    let response = app
        .batch(vec![
            json!({"long_url": "https://example.com/1"}),
            json!({"long_url": "not a url"}),
            json!({"long_url": "https://example.com/2", "alias": "taken"}),
            json!({"long_url": "https://example.com/3", "alias": "twice"}),
            json!({"long_url": "https://example.com/4", "alias": "twice"}),
            json!({"long_url": "https://example.com/again", "reuse": true}),
            json!({"long_url": "https://example.com/5", "colour": "red"}),
            json!({"long_url": "https://example.com/6", "redirect": 308}),
        ])
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let results = body["results"].as_array().expect("results");
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["status"].as_u64().expect("status"))
        .collect();
    assert_eq!(statuses, [201, 422, 409, 201, 409, 200, 422, 201]);
    assert_eq!(results[1]["error"]["code"], "invalid_url");
    assert_eq!(results[2]["error"]["code"], "alias_taken");
    assert_eq!(results[3]["link"]["code"], "twice");
    assert_eq!(results[3]["link"]["long_url"], "https://example.com/3");
    assert_eq!(results[4]["error"]["code"], "alias_taken");
    assert_eq!(results[5]["link"]["code"], reused.as_str());
    assert_eq!(results[6]["error"]["code"], "invalid_item");
    assert_eq!(results[7]["link"]["redirect"], 308);
    for index in [0, 3, 7] {
        let code = results[index]["link"]["code"].as_str().expect("code");
        assert!(
            matches!(
                app.store.resolve(code).await.expect("lookup"),
                Resolution::Live { .. }
            ),
            "item {index} is stored"
        );
        assert!(
            app.cache().await.get(code).await.expect("redis").is_some(),
            "written through"
        );
    }
    let Resolution::Live { long_url, .. } = app.store.resolve("taken").await.expect("lookup")
    else {
        panic!("the taken alias still exists");
    };
    assert_eq!(
        long_url, "https://example.com/taken",
        "untouched by the batch"
    );
}

#[tokio::test]
async fn a_thousand_links_fit_in_one_batch_and_more_do_not() {
    let app = spawn_app().await;
    let items: Vec<Value> = (0..1000)
        .map(|n| json!({"long_url": format!("https://example.com/some/longer/path/to/a/page/{n}?utm_source=batch")}))
        .collect();

    let response = app.batch(items).await;

    assert_eq!(
        response.status(),
        200,
        "a 1000-item body is over 64 KiB and still accepted"
    );
    let body: Value = response.json().await.expect("json");
    let codes: std::collections::HashSet<&str> = body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            assert_eq!(r["status"], 201);
            r["link"]["code"].as_str().expect("code")
        })
        .collect();
    assert_eq!(codes.len(), 1000);

    let too_many: Vec<Value> = (0..1001)
        .map(|n| json!({"long_url": format!("https://example.com/{n}")}))
        .collect();
    let response = app.batch(too_many).await;
    assert_eq!(response.status(), 422);
    assert_eq!(error_code(response).await, "invalid_batch_size");
    let empty = app.batch(Vec::new()).await;
    assert_eq!(empty.status(), 422);
}

#[tokio::test]
async fn a_retired_alias_is_taken_in_a_batch_without_failing_the_others() {
    let app = spawn_app().await;
    app.sql(
        "INSERT INTO retired_codes (code, retired_at) VALUES ($1, now())",
        &[&"retired"],
    )
    .await;

    let response = app
        .batch(vec![
            json!({"long_url": "https://example.com/a", "alias": "retired"}),
            json!({"long_url": "https://example.com/b"}),
        ])
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["results"][0]["status"], 409);
    assert_eq!(body["results"][0]["error"]["code"], "alias_taken");
    assert_eq!(body["results"][1]["status"], 201);
}
