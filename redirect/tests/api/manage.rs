//! Links people manage, seen from the redirect: a patched target on every replica within a second, the password
//! form and its tries, the preview page, and a visit limit reached through a patch.

use std::time::Duration;

use reqwest::{header, Method};
use serde_json::json;
use testkit::eventually;

use crate::helpers::{link, spawn_pair, TestPair};

impl TestPair {
    async fn patch(&self, code: &str, body: serde_json::Value) {
        let response = self
            .client
            .patch(format!("{}/v1/urls/{code}", self.shortener))
            .bearer_auth(&self.api_key)
            .json(&body)
            .send()
            .await
            .expect("the shortener answers");
        assert_eq!(response.status(), 200, "patch {body}");
    }

    async fn post_password(&self, code: &str, password: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/{code}", self.redirect))
            .form(&[("password", password)])
            .send()
            .await
            .expect("the redirect answers")
    }
}

fn location(response: &reqwest::Response) -> &str {
    response
        .headers()
        .get(header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_patched_target_is_served_by_every_replica_within_a_second() {
    let pair = spawn_pair().await;
    let second = pair.spawn_redirect_app(pair.redirect_args()).await;
    let code = pair.shorten(link("https://example.com/poster-v1")).await;
    let replicas = [pair.redirect.as_str(), second.address.as_str()];
    for address in replicas {
        for _ in 0..2 {
            let answer = pair.follow_on(address, &code).await;
            assert_eq!(location(&answer), "https://example.com/poster-v1");
        }
    }

    pair.patch(&code, json!({"long_url": "https://example.com/poster-v2"}))
        .await;

    for address in replicas {
        eventually(
            Duration::from_secs(1),
            "the new target on every replica",
            || async {
                location(&pair.follow_on(address, &code).await) == "https://example.com/poster-v2"
            },
        )
        .await;
    }
}

#[tokio::test]
async fn a_password_link_asks_refuses_the_wrong_password_and_redirects_with_the_right_one() {
    let pair = spawn_pair().await;
    let code = pair
        .shorten(json!({"long_url": "https://example.com/private", "password": "s3cret pass"}))
        .await;

    let form = pair.follow(&code).await;
    assert_eq!(form.status(), 200);
    assert!(
        location(&form).is_empty(),
        "no redirect before the password"
    );
    assert_eq!(form.headers()[header::CACHE_CONTROL], "no-store");
    let page = form.text().await.expect("html");
    assert!(
        page.contains("type=\"password\" id=\"password\" name=\"password\""),
        "{page}"
    );
    assert!(
        !page.contains("example.com/private"),
        "the target stays hidden"
    );

    let wrong = pair.post_password(&code, "guess").await;
    assert_eq!(wrong.status(), 401);
    assert!(location(&wrong).is_empty());
    assert!(wrong.text().await.expect("html").contains("not right"));

    let right = pair.post_password(&code, "s3cret pass").await;
    assert_eq!(
        right.status(),
        303,
        "See Other: the browser GETs the target"
    );
    assert_eq!(location(&right), "https://example.com/private");
    assert_eq!(right.headers()[header::CACHE_CONTROL], "no-store");

    let head = pair
        .client
        .request(Method::HEAD, format!("{}/{code}", pair.redirect))
        .send()
        .await
        .expect("answer");
    assert_eq!(head.status(), 200);
}

#[tokio::test]
async fn password_tries_are_bounded_per_client_and_link() {
    let pair = spawn_pair().await;
    let code = pair
        .shorten(json!({"long_url": "https://example.com/guarded", "password": "right"}))
        .await;
    let other = pair
        .shorten(json!({"long_url": "https://example.com/other", "password": "right"}))
        .await;
    for _ in 0..5 {
        assert_eq!(pair.post_password(&code, "wrong").await.status(), 401);
    }

    let limited = pair.post_password(&code, "right").await;
    assert_eq!(limited.status(), 429, "even the right password waits now");
    assert!(limited.headers().contains_key(header::RETRY_AFTER));
    assert_eq!(
        pair.post_password(&other, "right").await.status(),
        303,
        "another link's tries are its own"
    );
}

#[tokio::test]
async fn a_post_to_a_link_without_a_password_or_an_unknown_code_changes_nothing() {
    let pair = spawn_pair().await;
    let code = pair.shorten(link("https://example.com/open")).await;
    let plain = pair.post_password(&code, "anything").await;
    assert_eq!(plain.status(), 405);
    assert_eq!(pair.post_password("nosuchcode1", "x").await.status(), 404);
    let huge = pair
        .client
        .post(format!("{}/{code}", pair.redirect))
        .body(vec![b'a'; 100_000])
        .send()
        .await
        .expect("answer");
    assert_eq!(huge.status(), 405, "the body of a plain link is never read");
    assert_eq!(pair.follow(&code).await.status(), 302);
}

#[tokio::test]
async fn the_preview_names_the_target_without_redirecting_and_hides_a_protected_one() {
    let pair = spawn_pair().await;
    let code = pair
        .shorten(link("https://example.com/a?b=<script>&c=1"))
        .await;
    let secret = pair
        .shorten(json!({"long_url": "https://example.com/hidden", "password": "pw"}))
        .await;

    let preview = pair.follow(&format!("{code}+")).await;
    assert_eq!(preview.status(), 200);
    assert!(location(&preview).is_empty());
    assert_eq!(preview.headers()[header::CACHE_CONTROL], "no-store");
    let page = preview.text().await.expect("html");
    assert!(page.contains("https://example.com/a?b="), "{page}");
    assert!(!page.contains("<script>"), "escaped: {page}");

    let protected = pair.follow(&format!("{secret}+")).await;
    assert_eq!(protected.status(), 200);
    let page = protected.text().await.expect("html");
    assert!(page.contains("password-protected"), "{page}");
    assert!(!page.contains("example.com/hidden"), "{page}");

    assert_eq!(pair.follow("nosuchcode1+").await.status(), 404);
    pair.sql("UPDATE links SET deleted_at = now() WHERE code = $1", &code)
        .await;
    pair.cache().await.invalidate(&code).await.expect("publish");
    eventually(Duration::from_secs(1), "410 for a deleted link", || async {
        pair.follow(&format!("{code}+")).await.status() == 410
    })
    .await;
}

#[tokio::test]
async fn a_visit_limit_lowered_under_the_hits_answers_410_on_the_redirect() {
    let pair = spawn_pair().await;
    let code = pair.shorten(link("https://example.com/limited")).await;
    assert_eq!(pair.follow(&code).await.status(), 302);
    pair.sql(
        "INSERT INTO link_hits (link_id, day, hits) SELECT id, current_date, 3 FROM links WHERE code = $1
         ON CONFLICT (link_id, day) DO UPDATE SET hits = link_hits.hits + EXCLUDED.hits",
        &code,
    )
    .await;

    pair.patch(&code, json!({"max_hits": 3})).await;

    eventually(Duration::from_secs(1), "410 at the limit", || async {
        pair.follow(&code).await.status() == 410
    })
    .await;
    pair.patch(&code, json!({"max_hits": 10})).await;
    eventually(
        Duration::from_secs(1),
        "302 again under a raised limit",
        || async { pair.follow(&code).await.status() == 302 },
    )
    .await;
}
