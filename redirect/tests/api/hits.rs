//! Hit counting: counted in memory, flushed in batches to link_hits on the primary, and on shutdown.

use std::time::Duration;

use database::DatabaseArgs;
use links::store::Store;

use plumbing::clock::Clock as _;
use testkit::eventually;

use crate::helpers::{link, spawn_pair, wait_until_exhausted};

async fn store(url: &str) -> Store {
    let pool =
        database::pool(url, "redirect-tests", DatabaseArgs::new(url).pool_options()).expect("pool");
    Store::new(pool)
}

#[tokio::test]
async fn redirects_are_flushed_to_link_hits_and_head_requests_are_not_counted() {
    let pair = spawn_pair().await;
    let code = pair.shorten(link("https://example.com/popular")).await;
    let id = pair.link_id(&code).await;

    for _ in 0..3 {
        assert_eq!(pair.follow(&code).await.status(), 302);
    }
    let head = pair
        .client
        .head(format!("{}/{code}", pair.redirect))
        .send()
        .await
        .expect("answer");
    assert_eq!(head.status(), 302);

    let store = store(&pair.db.url).await;
    eventually(Duration::from_secs(10), "3 hits flushed", || async {
        store.total_hits(id).await.expect("total") >= 3
    })
    .await;
    assert_eq!(store.total_hits(id).await.expect("total"), 3);
    let today: chrono::NaiveDate = pair
        .primary()
        .await
        .query_one("SELECT day FROM link_hits WHERE link_id = $1", &[&id])
        .await
        .expect("one row for today")
        .get(0);
    assert_eq!(today, pair.clock.now().date_naive());
}

#[tokio::test]
async fn hits_counted_before_a_shutdown_are_flushed_by_it() {
    let pair = spawn_pair().await;
    let code = pair.shorten(link("https://example.com/last")).await;
    let id = pair.link_id(&code).await;
    let mut args = pair.redirect_args();
    args.hits_flush_interval_ms = 3_600_000;
    let shutdown = plumbing::shutdown::Shutdown::new();
    let redirect = pair.spawn_redirect_until(args, shutdown.clone()).await;
    for _ in 0..2 {
        assert_eq!(pair.follow_on(&redirect.address, &code).await.status(), 302);
    }

    redirect.stop(&shutdown).await;

    let total = store(&pair.db.url)
        .await
        .total_hits(id)
        .await
        .expect("total");
    assert_eq!(total, 2);
}

#[tokio::test]
async fn hits_of_limited_links_are_written_each_tick_the_rest_with_their_sources() {
    let pair = spawn_pair().await;
    let limited = pair
        .shorten(serde_json::json!({"long_url": "https://example.com/limited", "max_hits": 100}))
        .await;
    let unlimited = pair.shorten(link("https://example.com/unlimited")).await;
    let (limited_id, unlimited_id) = (pair.link_id(&limited).await, pair.link_id(&unlimited).await);
    let mut args = pair.redirect_args();
    args.hits_flush_interval_ms = 100;
    args.hit_sources_flush_interval_ms = 3_600_000;
    let shutdown = plumbing::shutdown::Shutdown::new();
    let redirect = pair.spawn_redirect_until(args, shutdown.clone()).await;
    for code in [&limited, &unlimited, &limited, &unlimited] {
        assert_eq!(pair.follow_on(&redirect.address, code).await.status(), 302);
    }

    let store = store(&pair.db.url).await;
    eventually(
        Duration::from_secs(10),
        "the limited link's hits written",
        || async { store.total_hits(limited_id).await.expect("total") == 2 },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        store.total_hits(unlimited_id).await.expect("total"),
        0,
        "the unlimited link's hits wait for the sources interval"
    );

    redirect.stop(&shutdown).await;
    assert_eq!(store.total_hits(unlimited_id).await.expect("total"), 2);
    assert_eq!(store.total_hits(limited_id).await.expect("total"), 2);
}

/// `GET /v1/urls/{code}/stats` through the pair's shortener.
async fn stats(pair: &crate::helpers::TestPair, code: &str) -> serde_json::Value {
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

async fn visit(pair: &crate::helpers::TestPair, base: &str, code: &str, headers: &[(&str, &str)]) {
    let mut request = pair.client.get(format!("{base}/{code}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    assert_eq!(request.send().await.expect("answer").status(), 302);
}

const PHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
const TABLET: &str = "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
const CRAWLER: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

#[tokio::test]
async fn referrers_devices_and_countries_are_counted_and_bots_apart_from_hits() {
    let pair = spawn_pair().await;
    let mut args = pair.redirect_args();
    args.country_header = Some(actix_web::http::header::HeaderName::from_static(
        "cf-ipcountry",
    ));
    // The test is the CDN that writes the header.
    args.client_ip.trusted_proxies = vec!["127.0.0.0/8".parse().expect("a CIDR block")];
    let redirect = pair.spawn_redirect(args).await;
    let code = pair.shorten(link("https://example.com/campaign")).await;
    let id = pair.link_id(&code).await;

    let news = ("Referer", "https://www.News.example.com/story?id=1");
    visit(&pair, &redirect, &code, &[news, ("CF-IPCountry", "de")]).await;
    visit(
        &pair,
        &redirect,
        &code,
        &[news, ("User-Agent", PHONE), ("CF-IPCountry", "DE")],
    )
    .await;
    visit(
        &pair,
        &redirect,
        &code,
        &[("User-Agent", TABLET), ("CF-IPCountry", "XX")],
    )
    .await;
    visit(&pair, &redirect, &code, &[("User-Agent", CRAWLER), news]).await;
    visit(&pair, &redirect, &code, &[("User-Agent", "curl/8.5.0")]).await;

    let store = store(&pair.db.url).await;
    eventually(Duration::from_secs(10), "the visits flushed", || async {
        stats(&pair, &code).await["bots"] == 2
    })
    .await;
    assert_eq!(
        store.total_hits(id).await.expect("total"),
        3,
        "bots are not hits"
    );
    let body = stats(&pair, &code).await;
    assert_eq!(body["total"], 3);
    assert_eq!(body["days"], 7);
    assert_eq!(
        body["devices"],
        serde_json::json!({"desktop": 1, "mobile": 1, "tablet": 1})
    );
    assert_eq!(
        body["referrers"],
        serde_json::json!([{"domain": "news.example.com", "hits": 2}, {"domain": "direct", "hits": 1}])
    );
    assert_eq!(
        body["countries"],
        serde_json::json!([{"country": "DE", "hits": 2}, {"country": "unknown", "hits": 1}])
    );
}

#[tokio::test]
async fn a_flood_of_distinct_referrers_is_stored_as_the_top_ones_and_other() {
    let pair = spawn_pair().await;
    let code = pair.shorten(link("https://example.com/flooded")).await;
    let id = pair.link_id(&code).await;
    for n in 0..120 {
        let referer = format!("https://site{n}.example/page");
        visit(
            &pair,
            &pair.redirect,
            &code,
            &[("Referer", referer.as_str())],
        )
        .await;
    }
    let store = store(&pair.db.url).await;
    eventually(Duration::from_secs(10), "120 hits flushed", || async {
        store.total_hits(id).await.expect("total") >= 120
    })
    .await;
    let primary = pair.primary().await;
    let referrer_rows = |select: &'static str| {
        let primary = &primary;
        async move {
            let sql =
                format!("SELECT {select} FROM link_hit_sources WHERE link_id = $1 AND kind = 1");
            let value: i64 = primary
                .query_one(sql.as_str(), &[&id])
                .await
                .expect("referrer rows")
                .get(0);
            value
        }
    };
    // Sources are written after the hits, a few links a tick: wait for every visit's referrer.
    eventually(Duration::from_secs(10), "120 referrers flushed", || async {
        referrer_rows("COALESCE(sum(hits), 0)::bigint").await >= 120
    })
    .await;
    let stored = referrer_rows("count(*)").await;
    assert!(
        stored <= 2 * links::hits::MAX_REFERRERS_PER_DAY + 1,
        "{stored} referrer rows for one link and day"
    );
    let body = stats(&pair, &code).await;
    let referrers = body["referrers"].as_array().expect("referrers");
    assert_eq!(referrers.len(), 11, "top 10 and other");
    let listed: i64 = referrers
        .iter()
        .map(|r| r["hits"].as_i64().expect("hits"))
        .sum();
    assert_eq!(listed, 120, "every hit is in some row");
    assert_eq!(referrers[10]["domain"], "other");
}

#[tokio::test]
async fn a_link_at_its_visit_limit_answers_410_and_the_flush_marks_it_exhausted() {
    let pair = spawn_pair().await;
    let code = pair
        .shorten(serde_json::json!({"long_url": "https://example.com/three-times", "max_hits": 3}))
        .await;
    for _ in 0..3 {
        assert_eq!(pair.follow(&code).await.status(), 302);
    }
    assert_eq!(
        pair.follow(&code).await.status(),
        410,
        "the replica that answered the three visits knows at once"
    );
    wait_until_exhausted(&pair, &code).await;
}

#[tokio::test]
async fn stats_refuse_bad_days_and_other_owners() {
    let pair = spawn_pair().await;
    let code = pair.shorten(link("https://example.com/mine")).await;
    for days in ["0", "366", "x"] {
        let response = pair
            .client
            .get(format!(
                "{}/v1/urls/{code}/stats?days={days}",
                pair.shortener
            ))
            .bearer_auth(&pair.api_key)
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 422, "days={days}");
    }
    let (_, other) = store(&pair.db.url)
        .await
        .create_api_key("someone else")
        .await
        .expect("a key");
    for (code, key) in [("nosuchcode", &pair.api_key), (code.as_str(), &other)] {
        let response = pair
            .client
            .get(format!("{}/v1/urls/{code}/stats", pair.shortener))
            .bearer_auth(key)
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 404, "{code}");
    }
}
