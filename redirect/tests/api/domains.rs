//! Domains on the redirect: the link a code names depends on `Host` (lowercased, port and trailing dot dropped;
//! an unregistered host is the default domain), and each domain answers `/`, unknown codes and `robots.txt` its
//! own way, with `X-Robots-Tag: noindex` unless it allows indexing.

use reqwest::{header, Response};
use serde_json::json;

use crate::helpers::{link, spawn_pair, TestPair};

/// Registers the test's domains, then starts a redirect that loads them (the pair's own reloads every 5 s).
async fn redirect_knowing_domains(pair: &TestPair) -> String {
    pair.primary()
        .await
        .batch_execute(
            "INSERT INTO domains (host, root_url, not_found_url) VALUES
                 ('go.brand.example', 'https://brand.example/home', 'https://brand.example/missing');
             INSERT INTO domains (host, allow_indexing) VALUES ('open.example', true);
             UPDATE domains SET root_url = 'https://default.example/' WHERE is_default;",
        )
        .await
        .expect("domains");
    pair.db.wait_for_replica_catch_up().await;
    pair.spawn_redirect(pair.redirect_args()).await
}

async fn get_on(pair: &TestPair, base: &str, host: &str, path: &str) -> Response {
    pair.client
        .get(format!("{base}/{path}"))
        .header(header::HOST, host)
        .send()
        .await
        .expect("the redirect answers")
}

fn location(response: &Response) -> &str {
    response
        .headers()
        .get(header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

fn robots_tag(response: &Response) -> Option<&str> {
    response
        .headers()
        .get("x-robots-tag")
        .and_then(|value| value.to_str().ok())
}

#[tokio::test]
async fn one_alias_on_two_domains_answers_two_targets_by_host() {
    let pair = spawn_pair().await;
    let redirect = redirect_knowing_domains(&pair).await;
    pair.shorten(json!({"long_url": "https://example.com/default", "alias": "spring"}))
        .await;
    pair.shorten(json!({"long_url": "https://example.com/brand", "alias": "spring", "domain": "go.brand.example"}))
        .await;

    for host in [
        "go.brand.example",
        "GO.Brand.Example:8081",
        "go.brand.example.",
    ] {
        let response = get_on(&pair, &redirect, host, "spring").await;
        assert_eq!(response.status(), 302, "{host}");
        assert_eq!(location(&response), "https://example.com/brand", "{host}");
    }
    for host in ["sho.rt.test", "127.0.0.1", "unregistered.example"] {
        let response = get_on(&pair, &redirect, host, "spring").await;
        assert_eq!(response.status(), 302, "{host}");
        assert_eq!(location(&response), "https://example.com/default", "{host}");
    }
    // A code only the default domain has is unknown on the other one.
    pair.shorten(json!({"long_url": "https://example.com/only", "alias": "only-default"}))
        .await;
    let response = get_on(&pair, &redirect, "go.brand.example", "only-default").await;
    assert_eq!(location(&response), "https://brand.example/missing");
}

#[tokio::test]
async fn each_domain_has_its_root_not_found_page_and_robots() {
    let pair = spawn_pair().await;
    let redirect = redirect_knowing_domains(&pair).await;
    let code = pair.shorten(link("https://example.com/")).await;

    let root = get_on(&pair, &redirect, "go.brand.example", "").await;
    assert_eq!(root.status(), 302);
    assert_eq!(location(&root), "https://brand.example/home");
    let root = get_on(&pair, &redirect, "sho.rt.test", "").await;
    assert_eq!(location(&root), "https://default.example/");
    assert_eq!(
        get_on(&pair, &redirect, "open.example", "").await.status(),
        404
    );

    let unknown = get_on(&pair, &redirect, "go.brand.example", "nope-nope").await;
    assert_eq!(unknown.status(), 302);
    assert_eq!(location(&unknown), "https://brand.example/missing");
    assert_eq!(unknown.headers()[header::CACHE_CONTROL], "no-store");
    assert_eq!(
        get_on(&pair, &redirect, "sho.rt.test", "nope-nope")
            .await
            .status(),
        404
    );

    let robots = get_on(&pair, &redirect, "go.brand.example", "robots.txt").await;
    assert_eq!(robots.status(), 200);
    assert_eq!(
        robots.text().await.expect("text"),
        "User-agent: *\nDisallow: /\n"
    );
    let robots = get_on(&pair, &redirect, "open.example", "robots.txt").await;
    assert_eq!(
        robots.text().await.expect("text"),
        "User-agent: *\nAllow: /\n"
    );

    let closed = get_on(&pair, &redirect, "sho.rt.test", &code).await;
    assert_eq!(closed.status(), 302);
    assert_eq!(robots_tag(&closed), Some("noindex"));
    let open = pair
        .client
        .post(format!("{}/v1/urls", pair.shortener))
        .bearer_auth(&pair.api_key)
        .json(&json!({"long_url": "https://example.com/open", "domain": "open.example"}))
        .send()
        .await
        .expect("create");
    assert_eq!(
        open.status(),
        201,
        "the shortener reloads for a domain it lacks"
    );
    let open_code = open.json::<serde_json::Value>().await.expect("json")["code"]
        .as_str()
        .expect("code")
        .to_owned();
    let open = get_on(&pair, &redirect, "open.example", &open_code).await;
    assert_eq!(open.status(), 302);
    assert_eq!(robots_tag(&open), None);
}
