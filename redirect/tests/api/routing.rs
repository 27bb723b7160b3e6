//! Rules and variants on the redirect, evaluated in process from the cached entry: each condition on its own and
//! together, first match wins, variants split by weight and kept per visitor (cookie, else IP + User-Agent),
//! per-variant hits, answers no shared cache keeps, and a PATCH of rules served by every replica within 1 s.

use std::{collections::HashMap, time::Duration};

use reqwest::{header, Response};
use serde_json::{json, Value};
use testkit::eventually;

use crate::helpers::{spawn_pair, TestPair};

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
const ANDROID_PHONE: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";
const WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0";

async fn visit(base: &str, code: &str, headers: &[(&str, &str)]) -> Response {
    // A client of its own: no cookie store, no shared connection state between visitors.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut request = client.get(format!("{base}/{code}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("the redirect answers")
}

async fn target(base: &str, code: &str, headers: &[(&str, &str)]) -> String {
    let response = visit(base, code, headers).await;
    assert_eq!(response.status(), 302, "{headers:?}");
    response.headers()[header::LOCATION]
        .to_str()
        .expect("ascii")
        .to_owned()
}

/// A redirect that believes the test's country header (the test is the CDN).
async fn redirect_with_countries(pair: &TestPair) -> String {
    let mut args = pair.redirect_args();
    args.country_header = Some(actix_web::http::header::HeaderName::from_static(
        "cf-ipcountry",
    ));
    args.client_ip.trusted_proxies = vec!["127.0.0.0/8".parse().expect("a CIDR block")];
    pair.spawn_redirect(args).await
}

#[tokio::test]
async fn each_condition_holds_on_its_own_and_together_and_the_first_match_wins() {
    let pair = spawn_pair().await;
    let redirect = redirect_with_countries(&pair).await;
    let now = chrono::Utc::now();
    let code = pair
        .shorten(json!({
            "long_url": "https://example.com/default",
            "rules": [
                {"when": {"os": "ios", "language": "de"}, "long_url": "https://example.com/ios-de"},
                {"when": {"os": "ios"}, "long_url": "https://example.com/ios"},
                {"when": {"device": "mobile"}, "long_url": "https://example.com/mobile"},
                {"when": {"language": "de"}, "long_url": "https://example.com/de"},
                {"when": {"country": "fr"}, "long_url": "https://example.com/fr"},
                {"when": {"query": {"utm_source": "news letter"}}, "long_url": "https://example.com/news"},
                {"when": {"before": (now - chrono::Duration::hours(1)).to_rfc3339()}, "long_url": "https://example.com/past"},
                {"when": {"after": (now - chrono::Duration::hours(1)).to_rfc3339(),
                          "before": (now + chrono::Duration::hours(1)).to_rfc3339(),
                          "os": "windows"}, "long_url": "https://example.com/windows-now"},
            ],
        }))
        .await;
    let ua = |agent| ("User-Agent", agent);
    assert_eq!(
        target(&redirect, &code, &[ua(IPHONE)]).await,
        "https://example.com/ios"
    );
    assert_eq!(
        target(
            &redirect,
            &code,
            &[ua(IPHONE), ("Accept-Language", "de-DE,de;q=0.9,en;q=0.8")]
        )
        .await,
        "https://example.com/ios-de",
        "the first rule whose every condition holds"
    );
    assert_eq!(
        target(&redirect, &code, &[ua(ANDROID_PHONE)]).await,
        "https://example.com/mobile"
    );
    assert_eq!(
        target(
            &redirect,
            &code,
            &[ua(crate::helpers::BROWSER), ("Accept-Language", "de-DE")]
        )
        .await,
        "https://example.com/de"
    );
    assert_eq!(
        target(
            &redirect,
            &code,
            &[ua(crate::helpers::BROWSER), ("CF-IPCountry", "FR")]
        )
        .await,
        "https://example.com/fr"
    );
    assert_eq!(
        target(&redirect, &code, &[ua(crate::helpers::BROWSER)]).await,
        "https://example.com/default"
    );
    let news = visit(
        &redirect,
        &format!("{code}?utm_source=news+letter"),
        &[ua(crate::helpers::BROWSER)],
    )
    .await;
    assert_eq!(news.headers()[header::LOCATION], "https://example.com/news");
    assert_eq!(
        target(&redirect, &code, &[ua(WINDOWS)]).await,
        "https://example.com/windows-now"
    );
    // A country header from a peer that is no trusted proxy is not believed: the pair's own redirect trusts none.
    assert_eq!(
        target(
            &pair.redirect,
            &code,
            &[ua(crate::helpers::BROWSER), ("CF-IPCountry", "FR")]
        )
        .await,
        "https://example.com/default"
    );
}

#[tokio::test]
async fn routed_answers_are_private_and_a_plain_link_keeps_its_caching() {
    let pair = spawn_pair().await;
    let routed = pair
        .shorten(json!({"long_url": "https://example.com/", "rules": [{"when": {"os": "android"}, "long_url": "https://example.com/a"}]}))
        .await;
    let plain = pair
        .shorten(json!({"long_url": "https://example.com/"}))
        .await;
    let response = visit(&pair.redirect, &routed, &[("User-Agent", IPHONE)]).await;
    assert_eq!(
        response.headers()[header::CACHE_CONTROL],
        "private, no-store"
    );
    assert!(
        response.headers().get(header::SET_COOKIE).is_none(),
        "no variants, no cookie"
    );
    let response = visit(&pair.redirect, &plain, &[("User-Agent", IPHONE)]).await;
    assert_eq!(
        response.headers()[header::CACHE_CONTROL],
        "private, max-age=0"
    );
}

#[tokio::test]
async fn ten_thousand_visitors_split_by_weight_and_each_keeps_their_variant() {
    let pair = spawn_pair().await;
    let code = pair
        .shorten(json!({
            "long_url": "https://example.com/",
            "variants": [
                {"long_url": "https://example.com/a", "weight": 70},
                {"long_url": "https://example.com/b", "weight": 30},
            ],
        }))
        .await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut counts: HashMap<String, usize> = HashMap::new();
    for visitor in 0..10_000 {
        let response = client
            .get(format!("{}/{code}", pair.redirect))
            .header(header::COOKIE, format!("sl_vid=visitor{visitor}"))
            .send()
            .await
            .expect("answer");
        let location = response.headers()[header::LOCATION]
            .to_str()
            .expect("ascii")
            .to_owned();
        *counts.entry(location).or_default() += 1;
    }
    let share_a = counts.get("https://example.com/a").copied().unwrap_or(0) as f64 / 100.0;
    assert!(
        (67.0..=73.0).contains(&share_a),
        "variant a got {share_a}% ({counts:?})"
    );
    assert_eq!(counts.len(), 2, "{counts:?}");

    // One visitor with a cookie sees one variant every time.
    let seen: std::collections::HashSet<String> =
        targets_seen(&pair, &code, &[("Cookie", "sl_vid=same-visitor")]).await;
    assert_eq!(seen.len(), 1, "{seen:?}");

    // A visitor without a cookie is given one, derived from their address and User-Agent: they keep their
    // variant with or without sending it back.
    let first = visit(&pair.redirect, &code, &[("User-Agent", IPHONE)]).await;
    let cookie = first.headers()[header::SET_COOKIE]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(cookie.starts_with("sl_vid="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Max-Age=31536000", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let chosen = first.headers()[header::LOCATION]
        .to_str()
        .expect("ascii")
        .to_owned();
    let value = cookie.split(';').next().expect("the pair").to_owned();
    let without = targets_seen(&pair, &code, &[("User-Agent", IPHONE)]).await;
    let with = targets_seen(&pair, &code, &[("User-Agent", IPHONE), ("Cookie", &value)]).await;
    assert_eq!(without, std::collections::HashSet::from([chosen.clone()]));
    assert_eq!(with, std::collections::HashSet::from([chosen]));
}

/// The targets of 20 visits with `headers`.
async fn targets_seen(
    pair: &TestPair,
    code: &str,
    headers: &[(&str, &str)],
) -> std::collections::HashSet<String> {
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
        seen.insert(target(&pair.redirect, code, headers).await);
    }
    seen
}

#[tokio::test]
async fn hits_are_counted_per_variant_in_the_stats() {
    let pair = spawn_pair().await;
    let code = pair
        .shorten(json!({
            "long_url": "https://example.com/",
            "variants": [
                {"long_url": "https://example.com/a", "weight": 1},
                {"long_url": "https://example.com/b", "weight": 1},
            ],
        }))
        .await;
    let mut sent: HashMap<String, i64> = HashMap::new();
    for visitor in 0..40 {
        let cookie = format!("sl_vid=v{visitor}");
        let location = target(
            &pair.redirect,
            &code,
            &[("User-Agent", crate::helpers::BROWSER), ("Cookie", &cookie)],
        )
        .await;
        *sent.entry(location).or_default() += 1;
    }
    let stats = || async {
        let response = pair
            .client
            .get(format!("{}/v1/urls/{code}/stats", pair.shortener))
            .bearer_auth(&pair.api_key)
            .send()
            .await
            .expect("stats");
        response.json::<Value>().await.expect("json")
    };
    eventually(Duration::from_secs(10), "40 hits flushed", || async {
        stats().await["total"] == 40
    })
    .await;
    let body = stats().await;
    let expected: Vec<Value> = ["https://example.com/a", "https://example.com/b"]
        .iter()
        .map(|url| json!({"long_url": url, "weight": 1, "hits": sent.get(*url).copied().unwrap_or(0)}))
        .collect();
    assert_eq!(body["variants"], json!(expected));
}

#[tokio::test]
async fn a_patch_of_rules_is_served_by_every_replica_within_a_second() {
    let pair = spawn_pair().await;
    let other = pair.spawn_redirect(pair.redirect_args()).await;
    let code = pair
        .shorten(json!({"long_url": "https://example.com/", "rules": [{"when": {"os": "ios"}, "long_url": "https://example.com/old"}]}))
        .await;
    for base in [&pair.redirect, &other] {
        assert_eq!(
            target(base, &code, &[("User-Agent", IPHONE)]).await,
            "https://example.com/old"
        );
    }
    let patched = pair
        .client
        .patch(format!("{}/v1/urls/{code}", pair.shortener))
        .bearer_auth(&pair.api_key)
        .json(&json!({"rules": [{"when": {"os": "ios"}, "long_url": "https://example.com/new"}]}))
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status(), 200);
    for base in [&pair.redirect, &other] {
        eventually(Duration::from_secs(1), "the new rule served", || async {
            target(base, &code, &[("User-Agent", IPHONE)]).await == "https://example.com/new"
        })
        .await;
    }
}

#[tokio::test]
async fn rules_apply_behind_a_password_too() {
    let pair = spawn_pair().await;
    let code = pair
        .shorten(json!({
            "long_url": "https://example.com/",
            "password": "open sesame",
            "rules": [{"when": {"os": "ios"}, "long_url": "https://example.com/ios"}],
        }))
        .await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for (agent, expected) in [
        (IPHONE, "https://example.com/ios"),
        (WINDOWS, "https://example.com/"),
    ] {
        let unlocked = client
            .post(format!("{}/{code}", pair.redirect))
            .header(header::USER_AGENT, agent)
            .form(&[("password", "open sesame")])
            .send()
            .await
            .expect("answer");
        assert_eq!(unlocked.status(), 303);
        assert_eq!(unlocked.headers()[header::LOCATION], expected);
    }
}
