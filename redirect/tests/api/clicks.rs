//! Click events: taken only for links whose owner watches them (here a live-stream registration, as the
//! shortener makes one), each visit one event with an id of its own and no client address, and none lost when a
//! redirect is stopped mid-stream.

use std::{collections::HashSet, time::Duration};

use chrono::Utc;
use events::Queue;
use futures_util::{stream, StreamExt as _};
use plumbing::shutdown::Shutdown;
use serde_json::Value;
use testkit::poll::eventually;

use crate::helpers::{link, spawn_pair, TestPair};

/// The click events in the pair's queue.
async fn clicks(queue: &Queue) -> Vec<Value> {
    let mut after = "0-0".to_owned();
    let mut found = Vec::new();
    loop {
        let (events, next) = queue.follow(&after, 5_000).await.expect("the queue reads");
        if events.is_empty() {
            return found;
        }
        found.extend(
            events
                .iter()
                .map(|event| serde_json::from_str(&event.body).expect("json")),
        );
        after = next;
    }
}

async fn owner_of(pair: &TestPair, code: &str) -> i64 {
    pair.primary()
        .await
        .query_one("SELECT owner_id FROM links WHERE code = $1", &[&code])
        .await
        .expect("the link")
        .get(0)
}

/// Registers `owner` as watching and waits until the redirect at `base` takes a click of `code`.
async fn watch(pair: &TestPair, queue: &Queue, owner: i64, base: &str, code: &str) {
    queue
        .watch(owner, Utc::now() + chrono::Duration::seconds(120))
        .await
        .expect("registered");
    pair.cache()
        .await
        .publish_invalidation(links::cache::WATCHERS_CHANGED)
        .await
        .expect("announced");
    eventually(
        Duration::from_secs(10),
        "the redirect takes clicks",
        || async {
            pair.follow_on(base, code).await;
            !clicks(queue).await.is_empty()
        },
    )
    .await;
}

async fn visit(pair: &TestPair, base: &str, code: &str, times: usize) {
    stream::iter(0..times)
        .for_each_concurrent(16, |_| async move {
            assert!(pair.follow_on(base, code).await.status().is_redirection());
        })
        .await;
}

fn queue_of(pair: &TestPair) -> Queue {
    Queue::start(&pair.redis.options(), false).expect("a queue")
}

#[tokio::test]
async fn a_thousand_visits_are_a_thousand_click_events_with_distinct_ids_and_no_address() {
    let pair = spawn_pair().await;
    let code = pair.shorten(link("https://example.com/watched")).await;
    let queue = queue_of(&pair);
    let owner = owner_of(&pair, &code).await;
    watch(&pair, &queue, owner, &pair.redirect, &code).await;
    let before = clicks(&queue).await.len();
    visit(&pair, &pair.redirect, &code, 1_000).await;
    let events = eventually(
        Duration::from_secs(10),
        "1,000 more click events",
        || async {
            let events = clicks(&queue).await;
            (events.len() >= before + 1_000).then_some(events)
        },
    )
    .await;
    assert_eq!(events.len(), before + 1_000, "one event per visit");
    let ids: HashSet<&str> = events
        .iter()
        .filter_map(|event| event["id"].as_str())
        .collect();
    assert_eq!(ids.len(), events.len(), "every event has an id of its own");
    let event = &events[events.len() - 1];
    assert_eq!(event["type"], "click");
    assert_eq!(event["data"]["code"], code.as_str());
    assert_eq!(event["data"]["long_url"], "https://example.com/watched");
    assert_eq!(event["data"]["device"], "desktop");
    assert_eq!(event["data"]["os"], "linux");
    assert_eq!(event["data"]["bot"], false);
    assert!(!event["data"]["domain"]
        .as_str()
        .unwrap_or_default()
        .is_empty());
    let text = event.to_string();
    assert!(
        !text.contains("127.0.0.1"),
        "an event carries no address: {text}"
    );
    queue.quit().await;
}

#[tokio::test]
async fn links_of_owners_who_do_not_watch_take_no_events() {
    let pair = spawn_pair().await;
    let watched = pair.shorten(link("https://example.com/w")).await;
    let queue = queue_of(&pair);
    watch(
        &pair,
        &queue,
        owner_of(&pair, &watched).await,
        &pair.redirect,
        &watched,
    )
    .await;
    let store = shortener::stores::connect_and_migrate(&database::DatabaseArgs::new(&pair.db.url))
        .await
        .expect("database");
    let (_, other_key) = store.create_api_key("other").await.expect("a key");
    let response = pair
        .client
        .post(format!("{}/v1/urls", pair.shortener))
        .bearer_auth(&other_key)
        .json(&link("https://example.com/not-watched"))
        .send()
        .await
        .expect("created");
    let body: Value = response.json().await.expect("json");
    let other = body["code"].as_str().expect("a code").to_owned();
    let before = clicks(&queue).await.len();
    visit(&pair, &pair.redirect, &other, 50).await;
    visit(&pair, &pair.redirect, &watched, 1).await;
    let events = eventually(
        Duration::from_secs(10),
        "the watched link's click",
        || async {
            let events = clicks(&queue).await;
            (events.len() > before).then_some(events)
        },
    )
    .await;
    assert_eq!(
        events.len(),
        before + 1,
        "only the watched link's visit is an event"
    );
    assert_eq!(events[before]["data"]["code"], watched.as_str());
    queue.quit().await;
}

#[tokio::test]
async fn a_redirect_stopped_mid_stream_loses_no_click_it_took() {
    let pair = spawn_pair().await;
    let code = pair.shorten(link("https://example.com/restart")).await;
    let queue = queue_of(&pair);
    let owner = owner_of(&pair, &code).await;
    let shutdown = Shutdown::new();
    let first = pair
        .spawn_redirect_until(pair.redirect_args(), shutdown.clone())
        .await;
    watch(&pair, &queue, owner, &first.address, &code).await;
    let before = clicks(&queue).await.len();
    visit(&pair, &first.address, &code, 300).await;
    first.stop(&shutdown).await;
    assert_eq!(
        clicks(&queue).await.len(),
        before + 300,
        "every click the stopped redirect took is in the queue"
    );
    let second = pair.spawn_redirect(pair.redirect_args()).await;
    visit(&pair, &second, &code, 300).await;
    let after = eventually(
        Duration::from_secs(10),
        "the new redirect's clicks",
        || async {
            let count = clicks(&queue).await.len();
            (count >= before + 600).then_some(count)
        },
    )
    .await;
    assert_eq!(after, before + 600);
    queue.quit().await;
}
