//! `loadtest webhook-receiver` over real HTTP: signed deliveries are counted once per event id with their latency
//! from the visit, repeats are duplicates, bad signatures and malformed bodies are refused and counted.

use std::time::Duration;

use chrono::{SecondsFormat, TimeDelta, Utc};
use loadtest::receiver::{signature, Receiver, Settings, Summary};

const SECRET: &str = "whsec_receiver_test";

fn settings() -> Settings {
    Settings {
        listen: "127.0.0.1:0".to_owned(),
        secret: Some(SECRET.to_owned()),
        status: actix_web::http::StatusCode::OK,
        workers: 1,
    }
}

/// A click event's delivery body for a visit `ago` before now.
fn click(id: &str, ago: TimeDelta) -> String {
    let at = (Utc::now() - ago).to_rfc3339_opts(SecondsFormat::Millis, true);
    serde_json::json!({
        "id": id, "type": "click", "created_at": at,
        "data": {"code": "abc", "domain": null, "long_url": "https://example.com/", "at": at,
                 "referrer_domain": null, "device": "desktop", "os": "linux", "country": null, "bot": false,
                 "variant": null}
    })
    .to_string()
}

async fn post(url: &str, body: String, signature: &str) -> u16 {
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("Snowlink-Event-Id", "evt")
        .header(signature::HEADER, signature)
        .body(body)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("the receiver answers")
        .status()
        .as_u16()
}

async fn post_signed(url: &str, body: String) -> u16 {
    let header = signature::sign(SECRET, Utc::now().timestamp(), body.as_bytes());
    post(url, body, &header).await
}

#[actix_web::test]
async fn signed_deliveries_are_counted_once_per_event_with_their_latency() {
    let receiver = Receiver::bind(settings()).expect("a free port");
    let url = format!("http://{}/hook", receiver.address());
    let handle = receiver.handle();
    let running = actix_web::rt::spawn(receiver.run(None));

    let first = click("evt_1", TimeDelta::milliseconds(250));
    assert_eq!(post_signed(&url, first.clone()).await, 200);
    assert_eq!(post_signed(&url, first).await, 200, "a repeat is taken too");
    assert_eq!(
        post_signed(&url, click("evt_2", TimeDelta::milliseconds(40))).await,
        200
    );
    let forged = click("evt_3", TimeDelta::zero());
    let wrong = signature::sign("whsec_other", Utc::now().timestamp(), forged.as_bytes());
    assert_eq!(post(&url, forged, &wrong).await, 401);
    assert_eq!(post_signed(&url, r#"{"id":"evt_4"}"#.to_owned()).await, 400);
    let so_far: Summary = reqwest::get(&url)
        .await
        .expect("the summary")
        .json()
        .await
        .expect("JSON");
    handle.stop(true).await;
    let summary = running.await.expect("joined").expect("served");

    assert_eq!(so_far, summary);
    assert_eq!(
        (summary.received, summary.distinct, summary.duplicates),
        (3, 2, 1)
    );
    assert_eq!((summary.bad_signatures, summary.malformed), (1, 1));
    assert!(
        summary.latency_ms.max >= 250.0 && summary.latency_ms.max < 5_000.0,
        "{summary:?}"
    );
    assert!(summary.latency_ms.p50 >= 40.0, "{summary:?}");
    assert!(summary.first_received.is_some() && summary.delivered_per_second > 0.0);
}

#[actix_web::test]
async fn the_configured_status_answers_and_the_duration_stops_it() {
    let receiver = Receiver::bind(Settings {
        secret: None,
        status: actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
        ..settings()
    })
    .expect("a free port");
    let url = format!("http://{}/", receiver.address());
    let running = actix_web::rt::spawn(receiver.run(Some(Duration::from_millis(1500))));

    let status = post(&url, click("evt_1", TimeDelta::zero()), "unchecked").await;
    let summary = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("stopped by --duration")
        .expect("joined")
        .expect("served");

    assert_eq!(status, 500);
    assert_eq!((summary.received, summary.bad_signatures), (1, 0));
}
