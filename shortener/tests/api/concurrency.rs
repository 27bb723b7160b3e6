//! Races: the unique constraint decides between concurrent requests, and concurrent creates never share a code.

use std::{collections::HashSet, sync::Arc};

use links::model::Resolution;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn two_concurrent_requests_for_one_alias_give_one_201_and_one_409() {
    let app = Arc::new(spawn_app().await);
    for round in 0..5 {
        let alias = format!("race-{round}");
        let requests = (0..2).map(|n| {
            let (app, alias) = (Arc::clone(&app), alias.clone());
            tokio::spawn(async move {
                app.create(json!({"long_url": format!("https://example.com/{n}"), "alias": alias}))
                    .await
                    .status()
                    .as_u16()
            })
        });
        let mut statuses = Vec::new();
        for request in requests.collect::<Vec<_>>() {
            statuses.push(request.await.expect("request task"));
        }
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 409], "round {round}");
    }
}

#[tokio::test]
async fn a_thousand_concurrent_creates_get_a_thousand_distinct_resolvable_codes() {
    // A generous deadline: this checks uniqueness under contention, not speed, on a busy machine.
    let app = Arc::new(spawn_app_with(|args| args.request_timeout_ms = 20_000).await);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(200));
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..1000 {
        let (app, in_flight) = (Arc::clone(&app), Arc::clone(&in_flight));
        tasks.spawn(async move {
            let _slot = in_flight.acquire().await.expect("semaphore");
            let response = app
                .create(json!({"long_url": format!("https://example.com/page/{n}")}))
                .await;
            assert_eq!(response.status(), 201);
            let body: Value = response.json().await.expect("json");
            (n, body["code"].as_str().expect("code").to_owned())
        });
    }
    let mut codes = HashSet::new();
    while let Some(done) = tasks.join_next().await {
        let (n, code) = done.expect("create task");
        let Resolution::Live { long_url, .. } = app.store.resolve(&code).await.expect("lookup")
        else {
            panic!("{code} does not resolve");
        };
        assert_eq!(long_url, format!("https://example.com/page/{n}"));
        codes.insert(code);
    }
    assert_eq!(codes.len(), 1000);
}
