//! `POST /v1/urls/batch`: one multi-row insert, one result per item, in order.

use std::{sync::Arc, time::Duration};

use links::model::Resolution;
use serde_json::{json, Value};
use testkit::eventually;

use crate::helpers::{error_code, spawn_app, spawn_app_with};

const DEADLINE: Duration = Duration::from_secs(20);

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

#[tokio::test]
async fn a_four_mib_body_of_bare_items_is_refused_as_too_many_items() {
    let app = spawn_app().await;
    let mut body = String::from(r#"{"items":[0"#);
    while body.len() < 4 * 1024 * 1024 - 16 {
        body.push_str(",0");
    }
    body.push_str("]}");

    let response = app
        .post("/v1/urls/batch", Some(&app.api_key), None, body)
        .await;

    assert_eq!(response.status(), 422);
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer["error"]["code"], "invalid_batch_size");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("not 2097")),
        "the count of all items: {answer}"
    );
}

#[tokio::test]
async fn anonymous_callers_cannot_send_batches_even_where_they_may_create() {
    let app = spawn_app_with(|args| args.allow_anonymous = true).await;
    let body = json!({"items": [{"long_url": "https://example.com/anon"}]}).to_string();

    let batch = app.post("/v1/urls/batch", None, None, body).await;
    let single = app
        .post(
            "/v1/urls",
            None,
            None,
            json!({"long_url": "https://example.com/anon"}).to_string(),
        )
        .await;

    assert_eq!(batch.status(), 401);
    assert_eq!(error_code(batch).await, "unauthorized");
    assert_eq!(single.status(), 201);
}

#[tokio::test]
async fn reuse_in_a_batch_finds_each_of_the_callers_links_in_one_lookup() {
    let app = spawn_app().await;
    let a = app
        .shorten(json!({"long_url": "https://example.com/a"}))
        .await;
    let b = app
        .shorten(json!({"long_url": "https://example.com/b"}))
        .await;
    let someone_else = app.other_key().await;
    let theirs = app
        .create_as(&someone_else, json!({"long_url": "https://example.com/c"}))
        .await;
    assert_eq!(theirs.status(), 201);

    let response = app
        .batch(vec![
            json!({"long_url": "https://example.com/a", "reuse": true}),
            json!({"long_url": "https://example.com/b", "reuse": true}),
            json!({"long_url": "https://example.com/c", "reuse": true}),
            json!({"long_url": "https://example.com/a", "reuse": true}),
            json!({"long_url": "https://example.com/a"}),
            json!({"long_url": "https://example.com/a", "reuse": true, "alias": "own-a"}),
        ])
        .await;

    let body: Value = response.json().await.expect("json");
    let results = body["results"].as_array().expect("results");
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["status"].as_u64().expect("status"))
        .collect();
    assert_eq!(statuses, [200, 200, 201, 200, 201, 201]);
    assert_eq!(results[0]["link"]["code"], a.as_str());
    assert_eq!(results[1]["link"]["code"], b.as_str());
    assert_eq!(results[3]["link"]["code"], a.as_str());
    assert_ne!(results[4]["link"]["code"], a.as_str());
    assert_eq!(results[5]["link"]["code"], "own-a");
}

#[tokio::test]
async fn creates_still_succeed_while_batches_wait_in_every_direct_insert_slot() {
    // 4 connections, 1 inserter: one direct batch insert at a time.
    let app = Arc::new(
        spawn_app_with(|args| {
            args.database.database_pool_size = 4;
            args.insert_workers = 1;
            args.request_timeout_ms = 4_000;
        })
        .await,
    );
    app.shorten(json!({"long_url": "https://example.com/warm-up"}))
        .await;
    // Every batch wants the alias `held`, which an open transaction has inserted: each waits for it.
    let locker = app.locker().await;
    locker
        .batch_execute(
            "BEGIN; INSERT INTO links (id, code, long_url, url_hash) VALUES (1, 'held', 'https://example.com/', '\\x00')",
        )
        .await
        .expect("hold the alias");
    let batches: Vec<_> = (0..4)
        .map(|n| {
            let app = Arc::clone(&app);
            tokio::spawn(async move {
                let mut items: Vec<Value> = (0..70)
                    .map(|i| json!({"long_url": format!("https://example.com/{n}/{i}")}))
                    .collect();
                items.push(json!({"long_url": "https://example.com/h", "alias": "held"}));
                app.batch(items).await.status()
            })
        })
        .collect();
    eventually(DEADLINE, "a batch insert waits for the held alias", || {
        let app = Arc::clone(&app);
        async move { app.lock_waiters().await >= 1 }
    })
    .await;
    // Not a timing assertion: time for the other batches to arrive and take (or wait for) a slot.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let create = app
        .create(json!({"long_url": "https://example.com/meanwhile"}))
        .await;

    assert_eq!(create.status(), 201, "a single create finds a connection");
    locker.batch_execute("ROLLBACK").await.expect("release");
    for batch in batches {
        let status = batch.await.expect("batch task");
        assert!(status == 200 || status == 503, "{status}");
    }
}
