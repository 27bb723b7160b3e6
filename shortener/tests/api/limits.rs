//! Blocklist, rate limits and anonymous creation.

use std::io::Write as _;

use serde_json::json;

use crate::helpers::{error_code, spawn_app, spawn_app_with};

#[tokio::test]
async fn blocked_domains_and_their_subdomains_are_422() {
    let file = tempfile_with("# phishing reports\nphish.test\n");
    let path = file.path().to_owned();
    let app = spawn_app_with(|args| {
        args.blocked_domains = vec!["evil.example".into()];
        args.blocklist_file = Some(path);
    })
    .await;

    for url in [
        "https://evil.example/login",
        "https://login.EVIL.example/",
        "http://a.phish.test/x",
    ] {
        let response = app.create(json!({"long_url": url})).await;
        assert_eq!(response.status(), 422, "{url}");
        assert_eq!(error_code(response).await, "blocked_domain", "{url}");
    }
    let fine = app
        .create(json!({"long_url": "https://notevil.example/"}))
        .await;
    assert_eq!(fine.status(), 201);
}

#[tokio::test]
async fn a_key_over_its_limit_gets_429_with_retry_after() {
    let app = spawn_app_with(|args| {
        args.rate_limit_key_per_minute = 1;
        args.rate_limit_key_burst = 3;
    })
    .await;

    for n in 0..3 {
        let response = app
            .create(json!({"long_url": format!("https://example.com/{n}")}))
            .await;
        assert_eq!(response.status(), 201, "request {n} is within the burst");
    }
    let response = app
        .create(json!({"long_url": "https://example.com/more"}))
        .await;

    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(error_code(response).await, "rate_limited");
    let other = app.other_key().await;
    let theirs = app
        .create_as(&other, json!({"long_url": "https://example.com/theirs"}))
        .await;
    assert_eq!(theirs.status(), 201, "another key has its own budget");
}

#[tokio::test]
async fn an_ip_over_its_limit_gets_429_before_its_key_is_checked() {
    let app = spawn_app_with(|args| {
        args.rate_limit_ip_per_minute = 1;
        args.rate_limit_ip_burst = 2;
    })
    .await;
    for _ in 0..2 {
        let response = app
            .create_as("sl_not_a_key", json!({"long_url": "https://example.com/"}))
            .await;
        assert_eq!(response.status(), 401);
    }
    let response = app
        .create(json!({"long_url": "https://example.com/"}))
        .await;
    assert_eq!(response.status(), 429);
}

#[tokio::test]
async fn anonymous_creation_is_refused_unless_allowed_and_then_limited() {
    let closed = spawn_app().await;
    let response = closed
        .client
        .post(format!("{}/v1/urls", closed.address))
        .json(&json!({"long_url": "https://example.com/"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");

    let open = spawn_app_with(|args| {
        args.allow_anonymous = true;
        args.rate_limit_anonymous_per_minute = 1;
        args.rate_limit_anonymous_burst = 2;
    })
    .await;
    let anonymous = || {
        open.client
            .post(format!("{}/v1/urls", open.address))
            .json(&json!({"long_url": "https://example.com/demo"}))
            .send()
    };
    assert_eq!(anonymous().await.expect("answer").status(), 201);
    assert_eq!(anonymous().await.expect("answer").status(), 201);
    assert_eq!(anonymous().await.expect("answer").status(), 429);
    let list = open
        .client
        .get(format!("{}/v1/urls", open.address))
        .send()
        .await
        .expect("answer");
    assert_eq!(
        list.status(),
        401,
        "only creation is open to anonymous callers"
    );
    let keyed = open
        .create(json!({"long_url": "https://example.com/demo"}))
        .await;
    assert_eq!(
        keyed.status(),
        201,
        "keyed callers are not under the anonymous limit"
    );
}

/// A file removed when the test ends.
struct TempFile {
    path: std::path::PathBuf,
}

impl TempFile {
    fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn tempfile_with(text: &str) -> TempFile {
    let path = std::env::temp_dir().join(format!("{}.blocklist", testkit::unique_name()));
    std::fs::File::create(&path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .expect("temp file");
    TempFile { path }
}

/// A request with an API key that does not exist, as `client` behind whatever proxy sends it.
async fn unknown_key_from(app: &crate::helpers::TestApp, forwarded_for: &str) -> u16 {
    app.client
        .get(format!("{}/v1/urls", app.address))
        .bearer_auth("sl_not_a_key")
        .header("x-forwarded-for", forwarded_for)
        .send()
        .await
        .expect("the shortener answers")
        .status()
        .as_u16()
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket() {
    let app = spawn_app_with(|args| {
        args.rate_limit_ip_per_minute = 1;
        args.rate_limit_ip_burst = 2;
        args.client_ip.trusted_proxies = vec!["127.0.0.0/8".parse().expect("a CIDR block")];
    })
    .await;

    for _ in 0..2 {
        assert_eq!(unknown_key_from(&app, "203.0.113.1").await, 401);
    }
    assert_eq!(
        unknown_key_from(&app, "203.0.113.1").await,
        429,
        "the noisy client is limited"
    );

    assert_eq!(
        unknown_key_from(&app, "203.0.113.2").await,
        401,
        "another client behind the same proxy keeps its own budget"
    );
    assert_eq!(
        unknown_key_from(&app, "1.1.1.1, 203.0.113.1").await,
        429,
        "what a client writes left of its own address does not change who it is"
    );
}

#[tokio::test]
async fn an_untrusted_peer_cannot_forward_its_way_out_of_the_limit() {
    let app = spawn_app_with(|args| {
        args.rate_limit_ip_per_minute = 1;
        args.rate_limit_ip_burst = 2;
    })
    .await;

    assert_eq!(unknown_key_from(&app, "203.0.113.1").await, 401);
    assert_eq!(unknown_key_from(&app, "203.0.113.2").await, 401);

    assert_eq!(
        unknown_key_from(&app, "203.0.113.3").await,
        429,
        "X-Forwarded-For from a peer that is not a trusted proxy is ignored"
    );
}

#[tokio::test]
async fn ipv6_clients_in_one_slash_64_share_a_bucket() {
    let app = spawn_app_with(|args| {
        args.rate_limit_ip_per_minute = 1;
        args.rate_limit_ip_burst = 2;
        args.client_ip.trusted_proxies = vec!["127.0.0.1".parse().expect("an address")];
    })
    .await;

    assert_eq!(unknown_key_from(&app, "2001:db8:1:2::1").await, 401);
    assert_eq!(unknown_key_from(&app, "2001:db8:1:2::2").await, 401);

    assert_eq!(unknown_key_from(&app, "2001:db8:1:2:ffff::9").await, 429);
    assert_eq!(
        unknown_key_from(&app, "2001:db8:1:3::1").await,
        401,
        "the next /64 is another client"
    );
}

#[tokio::test]
async fn anonymous_creators_behind_a_trusted_proxy_are_limited_one_by_one() {
    let app = spawn_app_with(|args| {
        args.allow_anonymous = true;
        args.rate_limit_anonymous_per_minute = 1;
        args.rate_limit_anonymous_burst = 1;
        args.client_ip.trusted_proxies = vec!["127.0.0.1/32".parse().expect("a CIDR block")];
    })
    .await;
    let anonymous = |client: &'static str| {
        app.client
            .post(format!("{}/v1/urls", app.address))
            .header("x-forwarded-for", client)
            .json(&json!({"long_url": "https://example.com/demo"}))
            .send()
    };

    assert_eq!(
        anonymous("203.0.113.1").await.expect("answer").status(),
        201
    );
    assert_eq!(
        anonymous("203.0.113.1").await.expect("answer").status(),
        429
    );

    assert_eq!(
        anonymous("203.0.113.2").await.expect("answer").status(),
        201
    );
}
