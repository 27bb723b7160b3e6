//! `POST /v1/blocks?size=N` on the idgen service: disjoint blocks, 422 for a bad size, 405 for another method,
//! 503 with `Retry-After` when ZooKeeper hangs, and never more than a few leases in flight however many
//! requests come at once.

use std::{ops::Range, time::Duration};

use idgen::service::blocks::CONCURRENT_LEASES;
use serde_json::Value;
use testkit::proxy::{ProxyMode, TcpProxy};

use crate::{
    helpers::{args, connect_string, server_of},
    http::{spawn_service, spawn_service_with, TestService},
};

type Answer = (u16, Option<String>, Value);

/// Posts to `/v1/blocks{query}`: the status, `Retry-After` if any, and the JSON body.
async fn post(service: &TestService, query: &str) -> Answer {
    post_to(&service.client, &service.api, query).await
}

async fn post_to(client: &reqwest::Client, api: &str, query: &str) -> Answer {
    let response = client
        .post(format!("{api}/v1/blocks{query}"))
        .send()
        .await
        .expect("an answer");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    (
        status,
        retry_after,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// `count` posts of `query` at once.
async fn flood(service: &TestService, count: usize, query: &'static str) -> Vec<Answer> {
    let mut posts = tokio::task::JoinSet::new();
    for _ in 0..count {
        let (client, api) = (service.client.clone(), service.api.clone());
        posts.spawn(async move { post_to(&client, &api, query).await });
    }
    posts.join_all().await
}

fn block(body: &Value) -> Range<u64> {
    let bound = |name: &str| {
        body[name]
            .as_u64()
            .unwrap_or_else(|| panic!("no {name} in {body}"))
    };
    bound("start")..bound("end")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_posted_at_once_are_disjoint_and_as_large_as_asked() {
    let service = spawn_service().await;

    let (status, _, body) = post(&service, "").await;
    assert_eq!(status, 200, "{body}");
    let mut blocks = vec![block(&body)];
    for (status, _, body) in flood(&service, 32, "?size=100").await {
        assert_eq!(status, 200, "{body}");
        blocks.push(block(&body));
    }

    assert_eq!(blocks[0].end - blocks[0].start, 1_000, "the default size");
    assert!(blocks[1..]
        .iter()
        .all(|block| block.end - block.start == 100));
    blocks.sort_by_key(|block| block.start);
    assert!(
        blocks.windows(2).all(|pair| pair[0].end <= pair[1].start),
        "{blocks:?}"
    );
    service.shutdown.trigger();
}

#[tokio::test]
async fn a_bad_size_is_a_422_and_another_method_a_405() {
    let service = spawn_service().await;

    for query in ["?size=0", "?size=abc", "?size=1000001", "?size=-5"] {
        let (status, _, body) = post(&service, query).await;
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(body["error"]["code"], "invalid_size", "{query}: {body}");
    }
    let response = service
        .client
        .get(format!("{}/v1/blocks", service.api))
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    service.shutdown.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_zookeeper_hangs_a_flood_holds_only_a_few_leases_and_answers_503() {
    let chroot = testkit::zookeeper_chroot().await;
    let proxy = TcpProxy::start(&server_of(&chroot).to_string()).await;
    let mut settings = args(&connect_string(&proxy, &chroot));
    settings.session_timeout_ms = 20_000;
    settings.zookeeper_timeout_ms = 2_500;
    let service = spawn_service_with(settings).await;
    proxy.set(ProxyMode::Stall);

    let answers = flood(&service, 12, "?size=10").await;

    let mut leases_tried = 0;
    for (status, retry_after, body) in &answers {
        assert_eq!(*status, 503, "{body}");
        assert_eq!(body["error"]["code"], "counter_unavailable", "{body}");
        assert_eq!(retry_after.as_deref(), Some("1"));
        // Requests that got a turn waited for ZooKeeper; the rest gave up waiting for a turn.
        if !body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("at once")
        {
            leases_tried += 1;
        }
    }
    assert_eq!(leases_tried, CONCURRENT_LEASES, "{answers:?}");
    proxy.set(ProxyMode::Forward);
    testkit::eventually(
        Duration::from_secs(10),
        "blocks are leased again",
        || async { post(&service, "?size=10").await.0 == 200 },
    )
    .await;
    service.shutdown.trigger();
}
