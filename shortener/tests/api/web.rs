//! The web page at `/` and its assets: served without a key, with strict security headers, nothing loaded from
//! elsewhere, and told whether anonymous creation is allowed.

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn the_page_loads_without_a_key_under_a_strict_policy() {
    let app = spawn_app().await;

    let response = app
        .client
        .get(format!("{}/", app.address))
        .send()
        .await
        .expect("answer");

    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let policy = headers["content-security-policy"].to_str().expect("ascii");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    let page = response.text().await.expect("html");
    assert!(page.contains(r#"data-allow-anonymous="false""#));
    assert_eq!(
        page.matches("<script").count(),
        page.matches(r#"<script src="/static/"#).count(),
        "every script is a same-origin file, none inline"
    );
    for external in [r#"src="http"#, r#"href="http"#, r#"src="//"#, r#"href="//"#] {
        assert!(
            !page.contains(external),
            "nothing loaded from elsewhere: {external}"
        );
    }
}

#[tokio::test]
async fn the_assets_are_served_with_their_types_and_nothing_else_is() {
    let app = spawn_app().await;
    for (file, content_type) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
    ] {
        let response = app
            .client
            .get(format!("{}/static/{file}", app.address))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 200, "{file}");
        assert_eq!(response.headers()["content-type"], content_type, "{file}");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        let body = response.text().await.expect("text");
        assert!(
            !body.contains("@import") && !body.contains("url(http"),
            "{file} loads nothing else"
        );
    }
    let missing = app
        .client
        .get(format!("{}/static/secrets.txt", app.address))
        .send()
        .await
        .expect("answer");
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn the_page_knows_when_anonymous_creation_is_allowed() {
    let app = spawn_app_with(|args| args.allow_anonymous = true).await;
    let page = app
        .client
        .get(format!("{}/", app.address))
        .send()
        .await
        .expect("answer")
        .text()
        .await
        .expect("html");
    assert!(page.contains(r#"data-allow-anonymous="true""#));
}
