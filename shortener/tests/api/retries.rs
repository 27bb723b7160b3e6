//! A request answered 503 at its deadline never takes effect afterwards, so a client that retries it never makes
//! a duplicate: PostgreSQL itself gives up on the request's statements before the deadline.

use std::time::Duration;

use links::model::Resolution;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_create_held_up_past_its_deadline_is_a_503_and_never_commits_afterwards() {
    let app = spawn_app().await;
    app.shorten(json!({"long_url": "https://example.com/warm-up"}))
        .await;
    let locker = app.locker().await;
    locker
        .batch_execute("BEGIN; LOCK TABLE links IN SHARE MODE")
        .await
        .expect("lock");

    let started = std::time::Instant::now();
    let response = app
        .create(json!({"long_url": "https://example.com/held", "alias": "held"}))
        .await;

    assert_eq!(response.status(), 503);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered by the 2 s deadline: {:?}",
        started.elapsed()
    );
    // Let go of the lock: an insert still waiting for it in PostgreSQL would now go through and commit.
    locker.batch_execute("COMMIT").await.expect("unlock");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        app.store.resolve("held").await.expect("lookup"),
        Resolution::Unknown,
        "the link answered 503 must not exist"
    );
}
