//! Visit limits that hold: every answer that shows a limited link's target counts toward its `max_hits` (bots,
//! HEAD and the preview included), such links and links about to expire are never kept by a browser, and a flush
//! that fails never counts its hits twice.

use std::time::Duration;

use plumbing::clock::Clock as _;
use reqwest::header;
use serde_json::json;
use testkit::eventually;

use crate::helpers::{metric, spawn_pair, wait_until_exhausted, TestPair};

const CURL: &str = "curl/8.5.0";

/// `GET /v1/urls/{code}/stats` through the pair's shortener.
async fn stats(pair: &TestPair, code: &str) -> serde_json::Value {
    let response = pair
        .client
        .get(format!("{}/v1/urls/{code}/stats?days=7", pair.shortener))
        .bearer_auth(&pair.api_key)
        .send()
        .await
        .expect("the shortener answers");
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

async fn request(pair: &TestPair, method: reqwest::Method, path: &str, agent: &str) -> u16 {
    pair.client
        .request(method, format!("{}/{path}", pair.redirect))
        .header(header::USER_AGENT, agent)
        .send()
        .await
        .expect("the redirect answers")
        .status()
        .as_u16()
}

/// Waits until a flush has marked link `code` exhausted (asked of the database: a request to see would be a
/// visit), then until the redirect answers 410 with `agent`.
async fn gone_within_a_few_flushes(pair: &TestPair, code: &str, agent: &str) {
    wait_until_exhausted(pair, code).await;
    eventually(Duration::from_secs(5), "410 once invalidated", || async {
        request(pair, reqwest::Method::GET, code, agent).await == 410
    })
    .await;
}

#[tokio::test]
async fn a_bot_uses_up_a_one_time_link_and_is_still_reported_as_a_bot() {
    let pair = spawn_pair().await;
    let code = pair
        .shorten(json!({"long_url": "https://example.com/once", "max_hits": 1}))
        .await;

    assert_eq!(request(&pair, reqwest::Method::GET, &code, CURL).await, 302);

    wait_until_exhausted(&pair, &code).await;
    let stats = stats(&pair, &code).await;
    assert_eq!(stats["total"], 0, "people's hits: {stats}");
    assert_eq!(stats["bots"], 1, "{stats}");
    gone_within_a_few_flushes(&pair, &code, CURL).await;
}

#[tokio::test]
async fn a_head_on_a_limited_link_uses_up_a_visit() {
    let pair = spawn_pair().await;
    let code = pair
        .shorten(json!({"long_url": "https://example.com/peek", "max_hits": 1}))
        .await;

    assert_eq!(
        request(&pair, reqwest::Method::HEAD, &code, crate::helpers::BROWSER).await,
        302
    );

    gone_within_a_few_flushes(&pair, &code, crate::helpers::BROWSER).await;
}

#[tokio::test]
async fn the_preview_of_a_limited_link_uses_up_a_visit() {
    let pair = spawn_pair().await;
    let code = pair
        .shorten(json!({"long_url": "https://example.com/previewed", "max_hits": 1}))
        .await;

    let preview = format!("{code}+");
    assert_eq!(
        request(
            &pair,
            reqwest::Method::GET,
            &preview,
            crate::helpers::BROWSER
        )
        .await,
        200
    );

    gone_within_a_few_flushes(&pair, &code, crate::helpers::BROWSER).await;
    assert_eq!(
        request(
            &pair,
            reqwest::Method::GET,
            &preview,
            crate::helpers::BROWSER
        )
        .await,
        410
    );
}

fn cache_control(response: &reqwest::Response) -> String {
    response.headers()[header::CACHE_CONTROL]
        .to_str()
        .expect("ascii")
        .to_owned()
}

#[tokio::test]
async fn limited_and_soon_expiring_links_are_never_kept_by_a_browser() {
    let pair = spawn_pair().await;
    let in_minutes =
        |minutes: i64| (pair.clock.now() + chrono::Duration::minutes(minutes)).to_rfc3339();
    let limited = pair
        .shorten(json!({"long_url": "https://example.com/l", "redirect": 301, "max_hits": 100}))
        .await;
    let soon = pair
        .shorten(json!({"long_url": "https://example.com/s", "redirect": 308, "expires_at": in_minutes(30)}))
        .await;
    let temporary_soon = pair
        .shorten(json!({"long_url": "https://example.com/t", "expires_at": in_minutes(30)}))
        .await;

    for code in [&limited, &soon, &temporary_soon] {
        let response = pair.follow(code).await;
        assert!(response.status().is_redirection());
        assert_eq!(cache_control(&response), "no-store", "{code}");
    }
}

#[tokio::test]
async fn a_permanent_redirect_is_never_kept_past_its_link() {
    let pair = spawn_pair().await;
    let mut args = pair.redirect_args();
    args.permanent_max_age_secs = 86_400;
    let redirect = pair.spawn_redirect(args).await;
    let expires_at = (pair.clock.now() + chrono::Duration::hours(2)).to_rfc3339();
    let ending = pair
        .shorten(
            json!({"long_url": "https://example.com/e", "redirect": 301, "expires_at": expires_at}),
        )
        .await;
    let forever = pair
        .shorten(json!({"long_url": "https://example.com/f", "redirect": 301}))
        .await;

    let ending = cache_control(&pair.follow_on(&redirect, &ending).await);
    let forever = cache_control(&pair.follow_on(&redirect, &forever).await);

    let max_age: i64 = ending
        .strip_prefix("public, max-age=")
        .and_then(|secs| secs.parse().ok())
        .unwrap_or_else(|| panic!("a public max-age: {ending}"));
    assert!(
        (7_000..=7_200).contains(&max_age),
        "two hours at most: {ending}"
    );
    assert_eq!(forever, "public, max-age=86400");
}

#[tokio::test]
async fn a_flush_that_fails_keeps_nothing_and_its_retry_counts_each_hit_once() {
    let pair = spawn_pair().await;
    let code = pair
        .shorten(json!({"long_url": "https://example.com/twice", "max_hits": 2}))
        .await;
    let id = pair.link_id(&code).await;
    let mut args = pair.redirect_args();
    args.hits_flush_interval_ms = 100;
    args.database.database_statement_timeout_ms = 300;
    let redirect = pair.spawn_redirect_app(args).await;
    // The flush writes the hits, then marking the link exhausted (its hits reach the limit) waits on this lock
    // past the statement timeout: the flush fails after its first statement.
    let locker = pair.primary().await;
    locker.batch_execute("BEGIN").await.expect("begin");
    locker
        .execute(
            "SELECT 1 FROM links WHERE id = $1 FOR NO KEY UPDATE",
            &[&id],
        )
        .await
        .expect("row locked");

    for _ in 0..2 {
        assert_eq!(pair.follow_on(&redirect.address, &code).await.status(), 302);
    }
    eventually(Duration::from_secs(10), "two flushes failed", || async {
        metric(&redirect.admin, "redirect_hit_flush_failures_total").await >= 2.0
    })
    .await;
    let counted = || async {
        pair.primary()
            .await
            .query_one(
                "SELECT COALESCE((SELECT sum(hits + bots) FROM link_hits WHERE link_id = $1), 0)::bigint,
                        (SELECT exhausted_at IS NOT NULL FROM links WHERE id = $1)",
                &[&id],
            )
            .await
            .map(|row| (row.get::<_, i64>(0), row.get::<_, bool>(1)))
            .expect("counted")
    };
    assert_eq!(counted().await, (0, false), "a failed flush keeps nothing");

    locker.batch_execute("ROLLBACK").await.expect("rollback");

    eventually(Duration::from_secs(10), "the hits written", || async {
        metric(&redirect.admin, "redirect_hits_flushed_total").await >= 2.0
    })
    .await;
    assert_eq!(
        counted().await,
        (2, true),
        "each hit counted once, and the link ended with them"
    );
    eventually(Duration::from_secs(5), "410 at the limit", || async {
        pair.follow_on(&redirect.address, &code).await.status() == 410
    })
    .await;
}

#[tokio::test]
async fn a_country_header_from_a_peer_that_is_no_trusted_proxy_is_not_believed() {
    let pair = spawn_pair().await;
    let mut args = pair.redirect_args();
    args.country_header = Some(actix_web::http::header::HeaderName::from_static(
        "cf-ipcountry",
    ));
    args.client_ip.trusted_proxies = vec!["10.0.0.0/8".parse().expect("a CIDR block")];
    let redirect = pair.spawn_redirect(args).await;
    let code = pair
        .shorten(json!({"long_url": "https://example.com/where"}))
        .await;

    let answer = pair
        .client
        .get(format!("{redirect}/{code}"))
        .header("CF-IPCountry", "DE")
        .send()
        .await
        .expect("the redirect answers");
    assert_eq!(answer.status(), 302);

    eventually(Duration::from_secs(10), "the visit flushed", || async {
        stats(&pair, &code).await["total"] == 1
    })
    .await;
    assert_eq!(
        stats(&pair, &code).await["countries"],
        json!([{"country": "unknown", "hits": 1}])
    );
}

#[tokio::test]
async fn a_replica_answers_no_more_visits_of_a_link_than_its_limit_before_any_flush() {
    let pair = spawn_pair().await;
    let mut args = pair.redirect_args();
    args.hits_flush_interval_ms = 3_600_000;
    let redirect = pair.spawn_redirect(args).await;
    let code = pair
        .shorten(json!({"long_url": "https://example.com/two", "max_hits": 2}))
        .await;
    let answer = |method: reqwest::Method, path: String| {
        let request = pair
            .client
            .request(method, format!("{redirect}/{path}"))
            .header(header::USER_AGENT, CURL);
        async move { request.send().await.expect("the redirect answers").status() }
    };

    assert_eq!(answer(reqwest::Method::GET, code.clone()).await, 302);
    assert_eq!(answer(reqwest::Method::HEAD, code.clone()).await, 302);

    assert_eq!(answer(reqwest::Method::GET, code.clone()).await, 410);
    assert_eq!(answer(reqwest::Method::GET, format!("{code}+")).await, 410);
}
