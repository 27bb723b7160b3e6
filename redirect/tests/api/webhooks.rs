//! Webhooks end to end: visits through a real redirect become signed `POST`s at a real HTTP receiver started by
//! the test, through the queue and the pair's shortener; a receiver that fails for 30 s still gets every event;
//! link events arrive; a webhook failing past the retention period is paused.

use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicU16, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use futures_util::{stream, StreamExt as _};
use serde_json::{json, Value};
use testkit::poll::eventually;

use crate::helpers::{link, spawn_pair_with, TestPair};

/// The redirect's count of click events it took.
const TAKEN: &str = "redirect_click_events_total{outcome=\"taken\"}";

/// A delivery as the receiver got it.
#[derive(Debug, Clone)]
struct Delivery {
    event_id: String,
    signature: String,
    body: String,
}

/// An HTTP server that keeps what it is sent and answers `status`.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Delivery>>>,
    status: Arc<AtomicU16>,
}

impl Receiver {
    async fn start(status: u16) -> Self {
        let got: Arc<Mutex<Vec<Delivery>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(status));
        let (kept, answer) = (got.clone(), status.clone());
        let server = HttpServer::new(move || {
            let (kept, answer) = (kept.clone(), answer.clone());
            App::new().default_service(web::to(move |req: HttpRequest, body: String| {
                let (kept, answer) = (kept.clone(), answer.clone());
                async move {
                    let header = |name: &str| {
                        req.headers()
                            .get(name)
                            .and_then(|value| value.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let status = answer.load(Ordering::SeqCst);
                    if status == 200 {
                        kept.lock().expect("not poisoned").push(Delivery {
                            event_id: header("snowlink-event-id"),
                            signature: header("snowlink-signature"),
                            body,
                        });
                    }
                    HttpResponse::build(
                        actix_web::http::StatusCode::from_u16(status).expect("a status"),
                    )
                    .finish()
                }
            }))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .expect("the receiver binds");
        let url = format!("http://{}/hook", server.addrs()[0]);
        tokio::spawn(server.run());
        Self { url, got, status }
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.got.lock().expect("not poisoned").clone()
    }

    fn distinct_ids(&self) -> usize {
        let deliveries = self.deliveries();
        deliveries
            .iter()
            .map(|delivery| delivery.event_id.as_str())
            .collect::<HashSet<_>>()
            .len()
    }
}

/// A pair whose shortener may deliver to 127.0.0.1 and retries quickly.
async fn pair() -> TestPair {
    spawn_pair_with(|args| {
        args.allow_private_webhooks = true;
        args.delivery.webhook_retry_first_ms = 200;
        args.delivery.webhook_retry_longest_ms = 2_000;
    })
    .await
}

/// Creates a webhook of the pair's key; returns its id and secret.
async fn webhook(pair: &TestPair, url: &str, events: &[&str]) -> (String, String) {
    let response = pair
        .client
        .post(format!("{}/v1/webhooks", pair.shortener))
        .bearer_auth(&pair.api_key)
        .json(&json!({"url": url, "events": events}))
        .send()
        .await
        .expect("the shortener answers");
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    (
        body["id"].as_str().expect("an id").to_owned(),
        body["secret"].as_str().expect("a secret").to_owned(),
    )
}

async fn visit(pair: &TestPair, code: &str, times: usize) {
    stream::iter(0..times)
        .for_each_concurrent(16, |_| async move {
            assert!(pair.follow(code).await.status().is_redirection());
        })
        .await;
}

#[tokio::test]
async fn every_visit_reaches_the_webhook_once_signed_with_its_secret() {
    let pair = pair().await;
    let receiver = Receiver::start(200).await;
    let code = pair.shorten(link("https://example.com/hooked")).await;
    let (_, secret) = webhook(&pair, &receiver.url, &["click"]).await;
    // The redirect hears of the webhook through the invalidation channel.
    eventually(
        Duration::from_secs(10),
        "a first click delivered",
        || async {
            visit(&pair, &code, 1).await;
            !receiver.deliveries().is_empty()
        },
    )
    .await;
    // Visits made before the redirect heard of the webhook take no event: count from where deliveries settle.
    let before = eventually(
        Duration::from_secs(10),
        "the first clicks settled",
        || async {
            let seen = receiver.distinct_ids();
            tokio::time::sleep(Duration::from_secs(2)).await;
            (receiver.distinct_ids() == seen).then_some(seen)
        },
    )
    .await;
    visit(&pair, &code, 1_000).await;
    eventually(
        Duration::from_secs(30),
        "1,000 more click events",
        || async { receiver.distinct_ids() >= before + 1_000 },
    )
    .await;
    assert_eq!(receiver.distinct_ids(), before + 1_000);
    let now = chrono::Utc::now().timestamp();
    for delivery in receiver.deliveries() {
        assert!(
            shortener::webhooks::signature::verify(
                &secret,
                &delivery.signature,
                delivery.body.as_bytes(),
                now,
                Duration::from_secs(300),
            ),
            "signature {} of {}",
            delivery.signature,
            delivery.body
        );
        let body: Value = serde_json::from_str(&delivery.body).expect("json");
        assert_eq!(body["id"], delivery.event_id.as_str());
        assert_eq!(body["type"], "click");
        assert_eq!(body["data"]["code"], code.as_str());
    }
    assert!(!shortener::webhooks::signature::verify(
        "whsec_another",
        &receiver.deliveries()[0].signature,
        receiver.deliveries()[0].body.as_bytes(),
        now,
        Duration::from_secs(300),
    ));
}

#[tokio::test]
async fn a_receiver_that_fails_for_30_s_then_answers_gets_every_event() {
    let pair = pair().await;
    let receiver = Receiver::start(500).await;
    let code = pair.shorten(link("https://example.com/flaky")).await;
    webhook(&pair, &receiver.url, &["click"]).await;
    // Visits before the redirect heard of the webhook take no event: start once one is taken.
    let taken = || testkit::metric(&pair.redirect_admin, TAKEN);
    eventually(
        Duration::from_secs(10),
        "the redirect takes clicks",
        || async {
            visit(&pair, &code, 1).await;
            taken().await >= 1.0
        },
    )
    .await;
    let started = tokio::time::Instant::now();
    visit(&pair, &code, 200).await;
    tokio::time::sleep_until(started + Duration::from_secs(30)).await;
    assert!(receiver.deliveries().is_empty());
    let expected = taken().await as usize;
    assert!(expected > 200, "{expected} events taken");
    receiver.status.store(200, Ordering::SeqCst);
    let got = eventually(
        Duration::from_secs(30),
        "every event after the receiver came back",
        || async {
            let got = receiver.distinct_ids();
            (got >= expected).then_some(got)
        },
    )
    .await;
    assert_eq!(got, expected, "every event taken, once each");
}

#[tokio::test]
async fn link_events_carry_the_link_as_the_api_shows_it() {
    let pair = pair().await;
    let receiver = Receiver::start(200).await;
    webhook(
        &pair,
        &receiver.url,
        &["link.created", "link.updated", "link.deleted"],
    )
    .await;
    let code = pair.shorten(link("https://example.com/first")).await;
    let patched = pair
        .client
        .patch(format!("{}/v1/urls/{code}", pair.shortener))
        .bearer_auth(&pair.api_key)
        .json(&json!({"long_url": "https://example.com/second"}))
        .send()
        .await
        .expect("patched");
    assert_eq!(patched.status(), 200);
    let deleted = pair
        .client
        .delete(format!("{}/v1/urls/{code}", pair.shortener))
        .bearer_auth(&pair.api_key)
        .send()
        .await
        .expect("deleted");
    assert_eq!(deleted.status(), 204);
    let events = eventually(Duration::from_secs(15), "three link events", || async {
        let deliveries = receiver.deliveries();
        (deliveries.len() >= 3).then_some(deliveries)
    })
    .await;
    let mut seen: Vec<(String, String)> = events
        .iter()
        .map(|delivery| {
            let body: Value = serde_json::from_str(&delivery.body).expect("json");
            (
                body["type"].as_str().unwrap_or_default().to_owned(),
                body["data"]["long_url"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("link.created".into(), "https://example.com/first".into()),
            ("link.deleted".into(), "https://example.com/second".into()),
            ("link.updated".into(), "https://example.com/second".into()),
        ]
    );
    for delivery in &events {
        let body: Value = serde_json::from_str(&delivery.body).expect("json");
        assert_eq!(body["data"]["code"], code.as_str());
    }
}

#[tokio::test]
async fn a_webhook_failing_past_the_retention_period_is_paused() {
    let pair = spawn_pair_with(|args| {
        args.allow_private_webhooks = true;
        args.delivery.webhook_retry_first_ms = 200;
        args.delivery.webhook_retry_longest_ms = 500;
        args.delivery.webhook_give_up_secs = 3;
    })
    .await;
    let receiver = Receiver::start(503).await;
    let code = pair.shorten(link("https://example.com/down")).await;
    let (id, _) = webhook(&pair, &receiver.url, &["click"]).await;
    let listed = || async {
        let body: Value = pair
            .client
            .get(format!("{}/v1/webhooks", pair.shortener))
            .bearer_auth(&pair.api_key)
            .send()
            .await
            .expect("listed")
            .json()
            .await
            .expect("json");
        body["items"]
            .as_array()
            .and_then(|items| items.iter().find(|item| item["id"] == id.as_str()).cloned())
            .expect("the webhook is listed")
    };
    eventually(Duration::from_secs(30), "the webhook paused", || async {
        visit(&pair, &code, 1).await;
        listed().await["paused"] == true
    })
    .await;
    assert!(listed().await["failing_since"].is_string());
}

/// Reads the stream `response` until `count` click events came, within `within`; returns their JSON.
async fn read_clicks(
    response: &mut reqwest::Response,
    count: usize,
    within: Duration,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + within;
    let mut text = String::new();
    loop {
        let events: Vec<Value> = text
            .split("\n\n")
            .filter(|message| message.contains("event: click"))
            .filter_map(|message| {
                let data = message
                    .lines()
                    .find_map(|line| line.strip_prefix("data: "))?;
                serde_json::from_str(data).ok()
            })
            .collect();
        if events.len() >= count {
            return events;
        }
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("{count} click events within {within:?}; got {text:?}"))
            .expect("the stream reads")
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn a_live_stream_sends_the_link_s_clicks_within_two_seconds_to_its_owner_only() {
    let pair = pair().await;
    let code = pair.shorten(link("https://example.com/live")).await;
    let open = |key: String| {
        let url = format!("{}/v1/urls/{code}/events", pair.shortener);
        let client = pair.client.clone();
        async move {
            client
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .expect("the shortener answers")
        }
    };
    let mut stream = open(pair.api_key.clone()).await;
    assert_eq!(stream.status(), 200);
    assert_eq!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap_or_default(),
        "text/event-stream"
    );
    // The redirect hears of the stream's owner through the invalidation channel.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let visited = tokio::time::Instant::now();
    visit(&pair, &code, 3).await;
    let clicks = read_clicks(&mut stream, 3, Duration::from_secs(2)).await;
    assert!(visited.elapsed() <= Duration::from_secs(3));
    assert!(clicks
        .iter()
        .all(|click| click["data"]["code"] == code.as_str()));
    let store = shortener::stores::connect_and_migrate(&database::DatabaseArgs::new(&pair.db.url))
        .await
        .expect("database");
    let (_, other) = store.create_api_key("other").await.expect("a key");
    assert_eq!(open(other).await.status(), 404, "another key's stream");
    let mut more = Vec::new();
    for _ in 0..4 {
        let response = open(pair.api_key.clone()).await;
        assert_eq!(response.status(), 200);
        more.push(response);
    }
    assert_eq!(
        open(pair.api_key.clone()).await.status(),
        429,
        "a sixth stream of one key"
    );
    drop(more);
}
