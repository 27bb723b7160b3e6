//! A person watching a link's visits live on the page: the ticker under a link shows each visit through the
//! redirect (newest first, with its device) within seconds and counts them; one ticker runs at a time, and a
//! ticker that is closed gives its stream back (a key may hold only 5).

use std::time::{Duration, Instant};

use fantoccini::Client;
use serde_json::{json, Value};

use crate::helpers::{
    click, open_browser, screenshot_path, sign_in, spawn_services, start_driver, unique_alias,
    wait_until, Services,
};

/// A phone: the redirect files it as a mobile on Android.
const PHONE: &str =
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
                     Chrome/131.0.0.0 Mobile Safari/537.36";

/// The live view (a disclosure) in the row of the link `code`.
fn ticker(code: &str) -> String {
    format!("#links li[data-code='{code}'] details.live")
}

/// A link of the test's key; answers its short URL.
async fn link(services: &Services, alias: &str) -> String {
    let link = services
        .create(json!({"long_url": format!("https://example.com/{alias}"), "alias": alias}))
        .await;
    link["short_url"].as_str().expect("short_url").to_owned()
}

/// Opens or closes the ticker by its summary, as a person would, and waits until it says `state`.
async fn toggle(browser: &Client, code: &str, state: &str) {
    let view = ticker(code);
    click(browser, &format!("{view} > summary")).await;
    let shown = wait_until(
        browser,
        &format!(
            "(() => {{ const state = document.querySelector(\"{view} .live-state\").dataset.state; \
             return (state === '{state}' || state === 'stopped') && state; }})()"
        ),
        &format!("the ticker to say {state}"),
    )
    .await;
    let problem = value_of(
        browser,
        &format!("document.querySelector(\"{view} .live-error\").textContent"),
    )
    .await;
    assert_eq!(shown, state, "the ticker stopped: {problem}");
}

/// What `expression` (JavaScript) is in the page now.
async fn value_of(browser: &Client, expression: &str) -> Value {
    browser
        .execute(&format!("return ({expression});"), Vec::new())
        .await
        .expect("script runs")
}

/// One visitor from a phone, referred by a news site.
async fn visit(services: &Services, short_url: &str) {
    let answer = services
        .http
        .get(short_url)
        .header("user-agent", PHONE)
        .header("referer", "https://news.example.org/item")
        .send()
        .await
        .expect("the redirect answers");
    assert_eq!(answer.status(), 302);
}

#[tokio::test]
async fn a_person_sees_each_visit_in_the_live_ticker_within_seconds() {
    let services = spawn_services(|_| {}).await;
    let alias = unique_alias();
    let short_url = link(&services, &alias).await;
    let driver = start_driver().await;
    let browser = open_browser(&driver).await;
    sign_in(&browser, &services).await;
    toggle(&browser, &alias, "live").await;
    // The redirect hears of the stream's owner through the invalidation channel, moments after it opened.
    tokio::time::sleep(Duration::from_millis(500)).await;

    for _ in 0..3 {
        visit(&services, &short_url).await;
    }
    let visited = Instant::now();
    let view = ticker(&alias);
    let shown = wait_until(
        &browser,
        &format!(
            "(() => {{ const view = document.querySelector(\"{view}\"); \
             const rows = Array.from(view.querySelectorAll('tbody tr')); \
             const count = view.querySelector('.live-count'); \
             return rows.length >= 3 && count.dataset.count === '3' && {{ count: count.textContent, \
             rows: rows.map(row => ['live-device', 'live-os', 'live-referrer'] \
             .map(name => row.querySelector('.' + name).textContent)) }}; }})()"
        ),
        "3 visits in the ticker",
    )
    .await;
    let took = visited.elapsed();
    let row = json!(["mobile", "android", "news.example.org"]);
    assert_eq!(shown["rows"], json!([row, row, row]), "{shown}");
    assert_eq!(shown["count"], "3 visits since opened");
    assert!(
        took < Duration::from_secs(10),
        "the visits took {took:?} to show"
    );
    println!("3 visits shown in the ticker {took:?} after the last one");
    let picture = browser.screenshot().await.expect("a screenshot");
    std::fs::write(screenshot_path("web-page-live.png"), picture).expect("screenshot saved");

    // Closed and opened again more times than a key may hold streams: never refused, so each closed ticker gave
    // its stream back; and once closed, the key can open its 5 elsewhere.
    toggle(&browser, &alias, "closed").await;
    for _ in 0..6 {
        toggle(&browser, &alias, "live").await;
        toggle(&browser, &alias, "closed").await;
    }
    all_streams_free(&services, &alias).await;

    browser.close().await.expect("the session closes");
}

#[tokio::test]
async fn opening_another_links_ticker_closes_the_first() {
    let services = spawn_services(|_| {}).await;
    let (first, second) = (unique_alias(), unique_alias());
    let first_url = link(&services, &first).await;
    let second_url = link(&services, &second).await;
    let driver = start_driver().await;
    let browser = open_browser(&driver).await;
    sign_in(&browser, &services).await;

    toggle(&browser, &first, "live").await;
    toggle(&browser, &second, "live").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first_view = ticker(&first);
    wait_until(
        &browser,
        &format!(
            "!document.querySelector(\"{first_view}\").open && \
             document.querySelector(\"{first_view} .live-state\").dataset.state === 'closed'"
        ),
        "the first ticker folded and closed",
    )
    .await;

    visit(&services, &first_url).await;
    visit(&services, &second_url).await;
    let second_view = ticker(&second);
    wait_until(
        &browser,
        &format!("document.querySelector(\"{second_view} .live-count\").dataset.count === '1'"),
        "the second link's visit in its ticker",
    )
    .await;
    let first_rows = value_of(
        &browser,
        &format!("document.querySelectorAll(\"{first_view} tbody tr\").length"),
    )
    .await;
    assert_eq!(first_rows, json!(0), "a closed ticker shows no new visits");

    // The page holds one stream (the second ticker's): the key can open 4 more, and no 5th.
    let opened = open_streams(&services, &first, 5).await;
    assert_eq!(opened, [200, 200, 200, 200, 429], "{opened:?}");

    browser.close().await.expect("the session closes");
}

/// Waits until the key can open all 5 of its streams at once (the server notices a closed one within moments).
async fn all_streams_free(services: &Services, code: &str) {
    testkit::eventually(
        Duration::from_secs(10),
        "the page holds no stream",
        || async {
            open_streams(services, code, 5)
                .await
                .iter()
                .all(|status| *status == 200)
        },
    )
    .await;
}

/// Opens `count` streams of `code` at once with the test's key, and answers their statuses (all closed again
/// when this returns).
async fn open_streams(services: &Services, code: &str, count: usize) -> Vec<u16> {
    let mut held = Vec::new();
    let mut statuses = Vec::new();
    for _ in 0..count {
        let response = services
            .http
            .get(format!("{}/v1/urls/{code}/events", services.shortener))
            .bearer_auth(&services.api_key)
            .send()
            .await
            .expect("the shortener answers");
        statuses.push(response.status().as_u16());
        held.push(response);
    }
    drop(held);
    statuses
}
