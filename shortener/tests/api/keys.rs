//! `shortener keys create|list|revoke`, run as the real binary against the test's database.

use std::{process::Command, time::Duration};

use serde_json::json;
use testkit::eventually;

use crate::helpers::spawn_app;

fn shortener_keys(database_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shortener"))
        .arg("keys")
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the shortener binary runs")
}

#[tokio::test]
async fn a_key_is_created_listed_used_and_revoked() {
    let app = spawn_app().await;

    let created = shortener_keys(&app.db.url, &["create", "--name", "ci-robot"]);
    assert!(created.status.success(), "{created:?}");
    let key = String::from_utf8(created.stdout).expect("utf-8");
    let key = key.trim();
    assert!(key.starts_with("sl_") && key.len() >= 3 + 32, "{key}");
    let response = app
        .create_as(key, json!({"long_url": "https://example.com/robot"}))
        .await;
    assert_eq!(response.status(), 201);

    let listed = shortener_keys(&app.db.url, &["list"]);
    let listing = String::from_utf8(listed.stdout).expect("utf-8");
    assert!(listing.contains("ci-robot"), "{listing}");
    assert!(
        !listing.contains(key),
        "the key itself is never shown again"
    );

    // The key's owner is cached now; the revoke (another process) must reach this instance through NOTIFY, long
    // before the cache's 60 s lifetime. Delivery is asynchronous, so allow it a moment.
    let revoked = shortener_keys(&app.db.url, &["revoke", "ci-robot"]);
    assert!(revoked.status.success(), "{revoked:?}");
    let refused = || async {
        let response = app
            .create_as(key, json!({"long_url": "https://example.com/robot"}))
            .await;
        if response.status() != 401 {
            assert_eq!(response.status(), 201);
        }
        response.status() == 401
    };
    let what = "the revoked key is refused: the cache heard the revoke";
    eventually(Duration::from_secs(5), what, refused).await;
    let again = shortener_keys(&app.db.url, &["revoke", "ci-robot"]);
    assert!(!again.status.success(), "revoking nothing is an error");
}
